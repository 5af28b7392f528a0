"""Turns a syntax tree into a tree of closures, folding constant subexpressions."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from . import _parser as ast
from ._functions import Function, FunctionTable
from ._like import compile_like
from ._operators import (
    PY_TYPES,
    Compiled,
    arithmetic,
    attribute,
    compare,
    constant,
    equality,
    exists,
    fetch_slow,
    missing_error,
    negate,
    not_,
)
from ._types import (
    CesqlError,
    CesqlType,
    EvalFn,
    Value,
    cast,
    cast_to_bool,
    cast_to_str,
    normalize,
    type_of,
    zero_value,
)

__all__ = ["compile_tree"]

_NO_ATTRS: Mapping[str, object] = {}


def compile_tree(node: ast.Node, functions: FunctionTable) -> Compiled:
    return _Compiler(functions).compile(node)


class _Compiler:
    def __init__(self, functions: FunctionTable) -> None:
        self.functions = functions

    def compile(self, node: ast.Node) -> Compiled:
        if isinstance(node, ast.Literal):
            return constant(node.value)
        if isinstance(node, ast.Attribute):
            return attribute(node.name)
        if isinstance(node, ast.Exists):
            return exists(node.name)
        if isinstance(node, ast.Not):
            return self.fold([c := self.compile(node.operand)], not_(c))
        if isinstance(node, ast.Negate):
            return self.fold([c := self.compile(node.operand)], negate(c))
        if isinstance(node, ast.Binary):
            left, right = self.compile(node.left), self.compile(node.right)
            op = node.op
            if op in ("=", "!=", "<>"):
                built = equality(op != "=", left, right)
            elif op in ("<", "<=", ">", ">="):
                built = compare(op, left, right)
            else:
                built = arithmetic(op, left, right)
            return self.fold([left, right], built)
        if isinstance(node, ast.Logic):
            operands = [self.compile(o) for o in node.operands]
            return self.fold(operands, _logic(node.op, operands))
        if isinstance(node, ast.Like):
            operand = self.compile(node.operand)
            return self.fold([operand], _like(operand, node.pattern, node.negated))
        if isinstance(node, ast.In):
            operand = self.compile(node.operand)
            items = [self.compile(i) for i in node.items]
            return self.fold([operand, *items], _in(operand, items, node.negated))
        args = [self.compile(a) for a in node.args]
        return self.fold(args, _call(node.name, self.functions.resolve(node.name, len(args)), args))

    @staticmethod
    def fold(children: list[Compiled], built: Compiled) -> Compiled:
        """Replace a subexpression of constants by its value, unless evaluating it errs."""
        if not all(c.const for c in children):
            return built
        errors: list[CesqlError] = []
        value = built.fn(_NO_ATTRS, errors)
        if errors:
            return built
        return constant(value)


# -- logic -------------------------------------------------------------------------------


def _logic(op: str, operands: list[Compiled]) -> Compiled:
    fns = tuple(o.fn for o in operands)
    if all(o.type == "Boolean" for o in operands):
        fn = _LOGIC_BOOL[op](fns)
    else:
        casts = tuple(o.type != "Boolean" for o in operands)
        fn = _LOGIC_ANY[op](tuple(zip(fns, casts, strict=True)))
    return Compiled(fn, "Boolean")


def _and_bool(fns: tuple[EvalFn, ...]) -> EvalFn:
    def fn(attrs: Mapping[str, object], errors: list[CesqlError]) -> Value:
        n = len(errors)
        for f in fns:
            if f(attrs, errors) is not True:
                return False
        return len(errors) == n

    return fn


def _or_bool(fns: tuple[EvalFn, ...]) -> EvalFn:
    def fn(attrs: Mapping[str, object], errors: list[CesqlError]) -> Value:
        n = len(errors)
        for f in fns:
            if f(attrs, errors) is True:
                return len(errors) == n
        return False

    return fn


def _xor_bool(fns: tuple[EvalFn, ...]) -> EvalFn:
    def fn(attrs: Mapping[str, object], errors: list[CesqlError]) -> Value:
        n = len(errors)
        acc = False
        for f in fns:
            acc = acc is not f(attrs, errors)
        return acc and len(errors) == n

    return fn


def _operand_bool(
    f: EvalFn, needs_cast: bool, attrs: Mapping[str, object], errors: list[CesqlError]
) -> tuple[bool, bool]:
    """(value as Boolean, whether the operand's own evaluation erred)."""
    n = len(errors)
    v = f(attrs, errors)
    if len(errors) != n:
        return (v if type(v) is bool else False), True
    if needs_cast and type(v) is not bool:
        return cast_to_bool(v, errors), False
    return bool(v), False


def _and_any(ops: tuple[tuple[EvalFn, bool], ...]) -> EvalFn:
    def fn(attrs: Mapping[str, object], errors: list[CesqlError]) -> Value:
        bad = False
        for f, needs_cast in ops:
            v, erred = _operand_bool(f, needs_cast, attrs, errors)
            bad = bad or erred
            if not v:
                return False
        return not bad

    return fn


def _or_any(ops: tuple[tuple[EvalFn, bool], ...]) -> EvalFn:
    def fn(attrs: Mapping[str, object], errors: list[CesqlError]) -> Value:
        bad = False
        for f, needs_cast in ops:
            v, erred = _operand_bool(f, needs_cast, attrs, errors)
            bad = bad or erred
            if v:
                return not bad
        return False

    return fn


def _xor_any(ops: tuple[tuple[EvalFn, bool], ...]) -> EvalFn:
    def fn(attrs: Mapping[str, object], errors: list[CesqlError]) -> Value:
        bad = False
        acc = False
        for f, needs_cast in ops:
            v, erred = _operand_bool(f, needs_cast, attrs, errors)
            bad = bad or erred
            acc = acc is not v
        return acc and not bad

    return fn


_LOGIC_BOOL: dict[str, Callable[[tuple[EvalFn, ...]], EvalFn]] = {
    "AND": _and_bool,
    "OR": _or_bool,
    "XOR": _xor_bool,
}
_LOGIC_ANY: dict[str, Callable[[tuple[tuple[EvalFn, bool], ...]], EvalFn]] = {
    "AND": _and_any,
    "OR": _or_any,
    "XOR": _xor_any,
}


# -- LIKE --------------------------------------------------------------------------------


def _like(operand: Compiled, pattern: str, negated: bool) -> Compiled:
    like = compile_like(pattern)
    match = like.match
    name = operand.attr
    if name is not None:
        missing = missing_error(name)
        if like.kind == "prefix" and not negated:
            prefix = like.text

            def fn_prefix(attrs: Mapping[str, object], errors: list[CesqlError]) -> Value:
                v = attrs.get(name)
                if type(v) is str:
                    return v.startswith(prefix)
                x = fetch_slow(v, missing, errors)
                return v is not None and cast_to_str(x).startswith(prefix)

            return Compiled(fn_prefix, "Boolean")

        def fn_attr(attrs: Mapping[str, object], errors: list[CesqlError]) -> Value:
            v = attrs.get(name)
            if type(v) is str:
                return match(v) is not negated
            x = fetch_slow(v, missing, errors)
            return v is not None and match(cast_to_str(x)) is not negated

        return Compiled(fn_attr, "Boolean")

    f = operand.fn

    def fn(attrs: Mapping[str, object], errors: list[CesqlError]) -> Value:
        n = len(errors)
        x = f(attrs, errors)
        if len(errors) != n:
            return False
        return match(cast_to_str(x)) is not negated

    return Compiled(fn, "Boolean")


# -- IN ----------------------------------------------------------------------------------


def _in(operand: Compiled, items: list[Compiled], negated: bool) -> Compiled:
    """The left operand's type is the target type the set elements are cast to."""
    if all(i.const for i in items):
        return _in_constants(operand, [i.value for i in items], negated)
    f = operand.fn
    item_fns = tuple(i.fn for i in items)

    def fn(attrs: Mapping[str, object], errors: list[CesqlError]) -> Value:
        n = len(errors)
        x = f(attrs, errors)
        ys = [g(attrs, errors) for g in item_fns]
        if len(errors) != n:
            return False
        tx = type(x)
        target = type_of(x)
        found = False
        for y in ys:
            member = y if type(y) is tx else cast(y, target, errors)
            if member == x:
                found = True
        return found is not negated

    return Compiled(fn, "Boolean")


def _in_constants(operand: Compiled, values: list[Value], negated: bool) -> Compiled:
    # Per target type: the set of cast elements, and the cast errors casting them gives.
    table: dict[type, tuple[frozenset[Value], tuple[CesqlError, ...]]] = {}
    for target, py in PY_TYPES.items():
        errs: list[CesqlError] = []
        cast_values = frozenset(cast(v, target, errs) for v in values)
        table[py] = (cast_values, tuple(errs))
    strings = table[str][0]
    name = operand.attr
    if name is not None:
        missing = missing_error(name)

        def fn_attr(attrs: Mapping[str, object], errors: list[CesqlError]) -> Value:
            v = attrs.get(name)
            if type(v) is str:
                return (v in strings) is not negated
            if v is None:
                errors.append(missing)
                return False
            x = normalize(v)
            members, errs = table[type(x)]
            if errs:
                errors.extend(errs)
            return (x in members) is not negated

        return Compiled(fn_attr, "Boolean")

    f = operand.fn

    def fn(attrs: Mapping[str, object], errors: list[CesqlError]) -> Value:
        n = len(errors)
        x = f(attrs, errors)
        if len(errors) != n:
            return False
        members, errs = table[type(x)]
        if errs:
            errors.extend(errs)
        return (x in members) is not negated

    return Compiled(fn, "Boolean")


# -- function calls ----------------------------------------------------------------------


def _call(name: str, fdef: Function | None, args: list[Compiled]) -> Compiled:
    if fdef is None:
        plural = "" if len(args) == 1 else "s"
        err = CesqlError(
            "missingFunction", f"no function {name} taking {len(args)} argument{plural}"
        )

        def missing(attrs: Mapping[str, object], errors: list[CesqlError]) -> Value:
            errors.append(err)
            return False

        return Compiled(missing, "Boolean")

    arg_fns = tuple(a.fn for a in args)
    casts: list[tuple[int, CesqlType, type]] = []
    for i, a in enumerate(args):
        target = fdef.param_type(i)
        if target not in ("Any", a.type):
            casts.append((i, target, PY_TYPES[target]))
    impl = fdef.impl
    returns = fdef.returns
    ret_py = PY_TYPES[returns]
    zero = zero_value(returns)

    def fn(attrs: Mapping[str, object], errors: list[CesqlError]) -> Value:
        n = len(errors)
        values = [g(attrs, errors) for g in arg_fns]
        if len(errors) != n:
            return zero
        for i, target, py in casts:
            if type(values[i]) is not py:
                values[i] = cast(values[i], target, errors)
        try:
            result = impl(errors, *values)
        except Exception as exc:  # a user-defined function failing: spec 3.5.3
            errors.append(CesqlError("functionEvaluation", f"{name} failed: {exc}"))
            return zero
        if type(result) is not ret_py:
            errors.append(
                CesqlError(
                    "functionEvaluation",
                    f"{name} returned a {type(result).__name__}, not a {returns}",
                )
            )
            return zero
        return result

    return Compiled(fn, returns)
