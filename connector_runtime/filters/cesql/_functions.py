"""The function table (name + arity -> implementation) and the CESQL v1 built-in functions."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from ._types import (
    CesqlError,
    CesqlType,
    Value,
    cast_to_bool_explicit,
    cast_to_int,
    cast_to_str,
    saturate,
)

__all__ = ["BUILTINS", "Function", "FunctionImpl", "FunctionTable"]

FunctionImpl = Callable[..., Value]
"""Called as ``impl(errors, *args)``, the arguments already cast to the parameter types.

It returns a value of the declared return type and may append errors (it keeps going
after them). If it raises or returns a wrong type, the call yields the zero value of the
return type and a ``functionEvaluation`` error.
"""

_NAME = re.compile(r"[A-Z][A-Z_]*")


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    params: tuple[CesqlType, ...]
    """Types of the fixed parameters (``Any`` means: passed as it is, without a cast)."""
    returns: CesqlType
    impl: FunctionImpl
    variadic: CesqlType | None = None
    """Type of the variable tail of arguments, or None for a fixed arity."""

    def param_type(self, index: int) -> CesqlType:
        if index < len(self.params):
            return self.params[index]
        assert self.variadic is not None
        return self.variadic


class FunctionTable:
    """Functions by name and arity, with the overloading rules of the spec (section 3.5).

    A name may have several fixed arities and at most one variadic definition, whose number
    of fixed parameters must exceed every fixed arity of that name.
    """

    def __init__(self, functions: Iterable[Function] = ()) -> None:
        self._fixed: dict[tuple[str, int], Function] = {}
        self._variadic: dict[str, Function] = {}
        for fn in functions:
            self.register(fn)

    def copy(self) -> FunctionTable:
        clone = FunctionTable()
        clone._fixed = dict(self._fixed)
        clone._variadic = dict(self._variadic)
        return clone

    def register(self, fn: Function) -> None:
        name = fn.name.upper()
        if _NAME.fullmatch(name) is None:
            raise ValueError(f"invalid function name {fn.name!r}")
        if fn.returns == "Any":
            raise ValueError(f"function {name} must declare a Boolean, Integer or String result")
        fn = dataclasses.replace(fn, name=name)
        arity = len(fn.params)
        if fn.variadic is None:
            if (name, arity) in self._fixed:
                raise ValueError(f"function {name} with {arity} arguments is already defined")
            var = self._variadic.get(name)
            if var is not None and arity >= len(var.params):
                raise ValueError(
                    f"function {name}/{arity} clashes with its variadic overload, "
                    f"which has {len(var.params)} fixed arguments"
                )
            self._fixed[(name, arity)] = fn
        else:
            if name in self._variadic:
                raise ValueError(f"function {name} already has a variadic overload")
            longest = max((a for (n, a) in self._fixed if n == name), default=-1)
            if arity <= longest:
                raise ValueError(
                    f"variadic {name} needs more than {longest} fixed arguments "
                    "to be told apart from its other overloads"
                )
            self._variadic[name] = fn

    def resolve(self, name: str, arity: int) -> Function | None:
        name = name.upper()
        fn = self._fixed.get((name, arity))
        if fn is not None:
            return fn
        var = self._variadic.get(name)
        if var is not None and arity >= len(var.params):
            return var
        return None

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        up = name.upper()
        return up in self._variadic or any(n == up for (n, _) in self._fixed)


# -- built-ins ---------------------------------------------------------------------------

# Characters with the Unicode White_Space property (str.strip() would also remove the
# information separators U+001C..U+001F, which are control characters).
_UNICODE_SPACE: Final = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


def _eval_error(errors: list[CesqlError], message: str) -> None:
    errors.append(CesqlError("functionEvaluation", message))


def _abs(errors: list[CesqlError], x: int) -> int:
    # ABS(-2147483648) is 2147483647 with a math error (spec 3.5.2).
    return saturate(abs(x), errors, "ABS")


def _length(errors: list[CesqlError], x: str) -> int:
    return len(x)


def _concat(errors: list[CesqlError], *xs: str) -> str:
    return "".join(xs)


def _concat_ws(errors: list[CesqlError], sep: str, *xs: str) -> str:
    return sep.join(xs)


def _lower(errors: list[CesqlError], x: str) -> str:
    return x.lower()


def _upper(errors: list[CesqlError], x: str) -> str:
    return x.upper()


def _trim(errors: list[CesqlError], x: str) -> str:
    return x.strip(_UNICODE_SPACE)


def _left(errors: list[CesqlError], x: str, y: int) -> str:
    if y < 0:
        _eval_error(errors, f"LEFT length must not be negative, got {y}")
        return x
    return x[:y]


def _right(errors: list[CesqlError], x: str, y: int) -> str:
    if y < 0:
        _eval_error(errors, f"RIGHT length must not be negative, got {y}")
        return x
    return x[len(x) - y :] if y < len(x) else x


def _start_index(errors: list[CesqlError], x: str, pos: int) -> int | None:
    """0-based start for a 1-based (or from-the-end negative) ``pos``; None means error."""
    n = len(x)
    if pos > n or pos < -n:
        _eval_error(errors, f"SUBSTRING position {pos} is out of range for a string of {n}")
        return None
    return pos - 1 if pos > 0 else n + pos


def _substring(errors: list[CesqlError], x: str, pos: int) -> str:
    start = _start_index(errors, x, pos)
    if start is None or pos == 0:
        return ""
    return x[start:]


def _substring_len(errors: list[CesqlError], x: str, pos: int, length: int) -> str:
    start = _start_index(errors, x, pos)
    if start is None:
        return ""
    if length < 0:
        _eval_error(errors, f"SUBSTRING length must not be negative, got {length}")
        return ""
    if pos == 0:
        return ""
    return x[start : start + length]


def _int(errors: list[CesqlError], x: Value) -> int:
    return cast_to_int(x, errors)


def _bool(errors: list[CesqlError], x: Value) -> bool:
    return cast_to_bool_explicit(x, errors)


def _string(errors: list[CesqlError], x: Value) -> str:
    return cast_to_str(x)


def _is_bool(errors: list[CesqlError], x: str) -> bool:
    return x.lower() in ("true", "false")


def _is_int(errors: list[CesqlError], x: str) -> bool:
    probe: list[CesqlError] = []
    cast_to_int(x, probe)
    return not probe


BUILTINS: Final = FunctionTable(
    [
        Function("ABS", ("Integer",), "Integer", _abs),
        Function("LENGTH", ("String",), "Integer", _length),
        Function("CONCAT", (), "String", _concat, variadic="String"),
        Function("CONCAT_WS", ("String",), "String", _concat_ws, variadic="String"),
        Function("LOWER", ("String",), "String", _lower),
        Function("UPPER", ("String",), "String", _upper),
        Function("TRIM", ("String",), "String", _trim),
        Function("LEFT", ("String", "Integer"), "String", _left),
        Function("RIGHT", ("String", "Integer"), "String", _right),
        Function("SUBSTRING", ("String", "Integer"), "String", _substring),
        Function("SUBSTRING", ("String", "Integer", "Integer"), "String", _substring_len),
        Function("INT", ("Any",), "Integer", _int),
        Function("BOOL", ("Any",), "Boolean", _bool),
        Function("STRING", ("Any",), "String", _string),
        Function("IS_BOOL", ("String",), "Boolean", _is_bool),
        Function("IS_INT", ("String",), "Boolean", _is_int),
    ]
)
"""The built-in functions every CESQL v1 engine provides. Copy it to add your own."""
