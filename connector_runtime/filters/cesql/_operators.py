"""Closure builders for attribute access and the unary, arithmetic and comparison operators.

Every compiled subexpression is an :data:`EvalFn` ``fn(attrs, errors) -> value``.
Error semantics (spec 3.3 and the TCK):

* an operator or function whose operand evaluation added errors returns the zero value of
  its own result type, without doing its own work (so ``missing / 0`` only reports the
  missing attribute, and ``TRUE AND (1 != 1 / 0)`` is false);
* errors the operator raises itself (casting its operands, division by zero, overflow)
  keep the value it defines (``NOT 10`` is ``true`` with a cast error).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from ._types import (
    INT_MAX,
    INT_MIN,
    CesqlError,
    CesqlType,
    EvalFn,
    Value,
    cast,
    cast_to_bool,
    cast_to_int,
    cast_to_str,
    normalize,
    saturate,
    type_of,
)

__all__ = [
    "PY_TYPES",
    "Compiled",
    "arithmetic",
    "attribute",
    "compare",
    "constant",
    "equality",
    "exists",
    "missing_error",
    "negate",
    "not_",
]

PY_TYPES: Final[dict[CesqlType, type]] = {"Boolean": bool, "Integer": int, "String": str}


@dataclass(slots=True)
class Compiled:
    fn: EvalFn
    type: CesqlType
    """Static result type; ``Any`` for a bare attribute reference."""
    const: bool = False
    value: Value = False
    """The value, when ``const``."""
    attr: str | None = None
    """The attribute name, when this is a bare attribute reference."""


def constant(value: Value) -> Compiled:
    def fn(attrs: Mapping[str, object], errors: list[CesqlError]) -> Value:
        return value

    return Compiled(fn, type_of(value), const=True, value=value)


def missing_error(name: str) -> CesqlError:
    return CesqlError("missingAttribute", f"attribute '{name}' is not present in the event")


def fetch_slow(v: object, missing: CesqlError, errors: list[CesqlError]) -> Value:
    """Attribute value that is not a plain str: missing (None) or to be normalized."""
    if v is None:
        errors.append(missing)
        return False
    return normalize(v)


def attribute(name: str) -> Compiled:
    missing = missing_error(name)

    def fn(attrs: Mapping[str, object], errors: list[CesqlError]) -> Value:
        v = attrs.get(name)
        if type(v) is str:
            return v
        return fetch_slow(v, missing, errors)

    return Compiled(fn, "Any", attr=name)


def exists(name: str) -> Compiled:
    def fn(attrs: Mapping[str, object], errors: list[CesqlError]) -> Value:
        return attrs.get(name) is not None

    return Compiled(fn, "Boolean")


def not_(operand: Compiled) -> Compiled:
    f = operand.fn

    def fn(attrs: Mapping[str, object], errors: list[CesqlError]) -> Value:
        n = len(errors)
        x = f(attrs, errors)
        if len(errors) != n:
            return False
        if type(x) is not bool:
            x = cast_to_bool(x, errors)
        return not x

    return Compiled(fn, "Boolean")


def negate(operand: Compiled) -> Compiled:
    f = operand.fn

    def fn(attrs: Mapping[str, object], errors: list[CesqlError]) -> Value:
        n = len(errors)
        x = f(attrs, errors)
        if len(errors) != n:
            return 0
        if type(x) is not int:
            x = cast_to_int(x, errors)
        r = -x
        return r if INT_MIN <= r <= INT_MAX else saturate(r, errors, "negation")

    return Compiled(fn, "Integer")


# -- arithmetic --------------------------------------------------------------------------


def _add(x: int, y: int, errors: list[CesqlError]) -> int:
    r = x + y
    return r if INT_MIN <= r <= INT_MAX else saturate(r, errors, "addition")


def _sub(x: int, y: int, errors: list[CesqlError]) -> int:
    r = x - y
    return r if INT_MIN <= r <= INT_MAX else saturate(r, errors, "subtraction")


def _mul(x: int, y: int, errors: list[CesqlError]) -> int:
    r = x * y
    return r if INT_MIN <= r <= INT_MAX else saturate(r, errors, "multiplication")


def _div(x: int, y: int, errors: list[CesqlError]) -> int:
    if y == 0:
        errors.append(CesqlError("math", "division by zero"))
        return 0
    q = abs(x) // abs(y)  # truncated division: rounds towards zero
    if (x < 0) != (y < 0):
        q = -q
    return q if q <= INT_MAX else saturate(q, errors, "division")


def _mod(x: int, y: int, errors: list[CesqlError]) -> int:
    if y == 0:
        errors.append(CesqlError("math", "modulo by zero"))
        return 0
    r = abs(x) % abs(y)  # the remainder takes the sign of the dividend
    return -r if x < 0 else r


_ARITHMETIC: Final[dict[str, Callable[[int, int, list[CesqlError]], int]]] = {
    "+": _add,
    "-": _sub,
    "*": _mul,
    "/": _div,
    "%": _mod,
}


def arithmetic(op: str, left: Compiled, right: Compiled) -> Compiled:
    lf, rf, compute = left.fn, right.fn, _ARITHMETIC[op]

    def fn(attrs: Mapping[str, object], errors: list[CesqlError]) -> Value:
        n = len(errors)
        x = lf(attrs, errors)
        y = rf(attrs, errors)
        if len(errors) != n:
            return 0
        if type(x) is not int:
            x = cast_to_int(x, errors)
        if type(y) is not int:
            y = cast_to_int(y, errors)
        return compute(x, y, errors)

    return Compiled(fn, "Integer")


# -- comparison --------------------------------------------------------------------------

_ORDERING: Final[dict[str, Callable[[int, int], bool]]] = {
    "<": lambda x, y: x < y,
    "<=": lambda x, y: x <= y,
    ">": lambda x, y: x > y,
    ">=": lambda x, y: x >= y,
}


def compare(op: str, left: Compiled, right: Compiled) -> Compiled:
    """``< <= > >=``: only defined on Integers, so both operands are cast to Integer."""
    lf, rf, test = left.fn, right.fn, _ORDERING[op]

    def fn(attrs: Mapping[str, object], errors: list[CesqlError]) -> Value:
        n = len(errors)
        x = lf(attrs, errors)
        y = rf(attrs, errors)
        if len(errors) != n:
            return False
        if type(x) is not int:
            x = cast_to_int(x, errors)
        if type(y) is not int:
            y = cast_to_int(y, errors)
        return test(x, y)

    return Compiled(fn, "Boolean")


def equality(negated: bool, left: Compiled, right: Compiled) -> Compiled:
    """``=``, ``!=``, ``<>``: ambiguous over the three types, so the right operand's type
    decides and the left operand is cast to it (spec 3.7)."""
    if left.attr is not None and right.const:
        return _attr_equals_constant(negated, left.attr, right.value)
    lf, rf = left.fn, right.fn

    def fn(attrs: Mapping[str, object], errors: list[CesqlError]) -> Value:
        n = len(errors)
        x = lf(attrs, errors)
        y = rf(attrs, errors)
        if len(errors) != n:
            return False
        if type(x) is not type(y):
            x = cast(x, type_of(y), errors)
        return (x == y) is not negated

    return Compiled(fn, "Boolean")


def _attr_equals_constant(negated: bool, name: str, c: Value) -> Compiled:
    missing = missing_error(name)
    target = type_of(c)
    ctype = type(c)

    def fn(attrs: Mapping[str, object], errors: list[CesqlError]) -> Value:
        v = attrs.get(name)
        if type(v) is ctype:
            return (v == c) is not negated
        if v is None:
            errors.append(missing)
            return False
        x = cast(normalize(v), target, errors)
        return (x == c) is not negated

    if target == "String" and not negated:

        def fn_str(attrs: Mapping[str, object], errors: list[CesqlError]) -> Value:
            v = attrs.get(name)
            if type(v) is str:
                return v == c
            if v is None:
                errors.append(missing)
                return False
            return cast_to_str(normalize(v)) == c

        return Compiled(fn_str, "Boolean")
    return Compiled(fn, "Boolean")
