"""Compiled CESQL expressions."""

from __future__ import annotations

from collections.abc import Mapping

from ._compiler import compile_tree
from ._functions import BUILTINS, FunctionTable
from ._parser import parse
from ._types import CesqlError, CesqlType, EvalFn, Value

__all__ = ["Expression", "compile_expression"]


class Expression:
    """A CESQL expression compiled once into closures; evaluate it against many events.

    ``attrs`` maps lower-case CloudEvent context attribute and extension names to their
    values (str, int or bool; anything else is represented as a String, and a None value
    counts as absent).
    """

    __slots__ = ("_fn", "result_type", "source")

    def __init__(self, source: str, fn: EvalFn, result_type: CesqlType) -> None:
        self.source = source
        """The expression text as given."""
        self.result_type: CesqlType = result_type
        """Static type of the result: Boolean, Integer, String, or Any (a bare attribute)."""
        self._fn = fn

    def evaluate(self, attrs: Mapping[str, object]) -> tuple[Value, list[CesqlError]]:
        """The value and the errors met, in evaluation order (complete evaluation mode)."""
        errors: list[CesqlError] = []
        value = self._fn(attrs, errors)
        return value, errors

    def matches(self, attrs: Mapping[str, object]) -> bool:
        """Filter semantics (spec 1.2): the value must be Boolean true, with no errors."""
        errors: list[CesqlError] = []
        return self._fn(attrs, errors) is True and not errors

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def compile_expression(source: str, *, functions: FunctionTable | None = None) -> Expression:
    """Parse and compile ``source``; raises ``CesqlParseError(message, column)``.

    ``functions`` replaces the built-in function table (start from a copy of it to extend).
    A call to a function that is not in the table compiles, and evaluates to false with a
    ``missingFunction`` error, as the spec asks.
    """
    if not isinstance(source, str):
        raise TypeError(f"a CESQL expression must be a str, got {type(source).__name__}")
    tree = parse(source)
    compiled = compile_tree(tree, BUILTINS if functions is None else functions)
    return Expression(source, compiled.fn, compiled.type)
