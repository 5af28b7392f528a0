"""Value types, error types and the casting rules of CESQL v1."""

from __future__ import annotations

import base64
import datetime
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "CesqlError",
    "CesqlParseError",
    "CesqlType",
    "ErrorKind",
    "EvalFn",
    "Value",
    "cast",
    "cast_to_bool",
    "cast_to_bool_explicit",
    "cast_to_int",
    "cast_to_str",
    "normalize",
    "saturate",
    "type_of",
    "zero_value",
]

Value = bool | int | str
"""A CESQL runtime value: Boolean, Integer or String."""

CesqlType = Literal["Boolean", "Integer", "String", "Any"]
"""Static type of an expression; ``Any`` is an attribute whose type is known only at runtime."""

ErrorKind = Literal[
    "parse",
    "math",
    "cast",
    "missingFunction",
    "functionEvaluation",
    "missingAttribute",
    "generic",
]

INT_MIN: Final = -(2**31)
INT_MAX: Final = 2**31 - 1

_INT_TEXT = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True, slots=True)
class CesqlError:
    """One error collected while evaluating an expression (evaluation goes on after it)."""

    kind: ErrorKind
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


class CesqlParseError(ValueError):
    """The expression text is not valid CESQL. ``column`` is 1-based."""

    kind: Final = "parse"

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"column {column}: {message}")
        self.message = message
        self.column = column

    def as_error(self) -> CesqlError:
        """The same problem as an entry of an error list."""
        return CesqlError("parse", str(self))


EvalFn = Callable[[Mapping[str, object], list[CesqlError]], Value]
"""A compiled (sub)expression: reads the event attributes, appends errors, returns a value."""


def zero_value(t: CesqlType) -> Value:
    """The zero value of a type; ``Any`` is treated as Boolean, as the spec asks."""
    if t == "Integer":
        return 0
    if t == "String":
        return ""
    return False


def type_of(v: Value) -> CesqlType:
    t = type(v)
    if t is bool:
        return "Boolean"
    if t is int:
        return "Integer"
    return "String"


def normalize(v: object) -> Value:
    """Represent an attribute value that is not a CESQL primitive as a String."""
    if isinstance(v, bool):
        return bool(v)
    if isinstance(v, int):
        return int(v)
    if isinstance(v, str):
        return str(v)
    if isinstance(v, datetime.datetime):
        text = v.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(v, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(v)).decode("ascii")
    return str(v)


def saturate(n: int, errors: list[CesqlError], what: str) -> int:
    """Clamp an integer result to 32 bits, reporting a math error when it had to."""
    if n > INT_MAX:
        errors.append(CesqlError("math", f"integer overflow in {what}"))
        return INT_MAX
    if n < INT_MIN:
        errors.append(CesqlError("math", f"integer overflow in {what}"))
        return INT_MIN
    return n


def cast_to_str(v: Value) -> str:
    """Integer and Boolean to String never fail."""
    if type(v) is str:
        return v
    if type(v) is bool:
        return "true" if v else "false"
    return str(v)


def cast_to_int(v: Value, errors: list[CesqlError]) -> int:
    """String and Boolean to Integer; a bad or out-of-range string gives 0 and a cast error."""
    if type(v) is int:
        return v
    if type(v) is bool:
        return 1 if v else 0
    assert isinstance(v, str)
    if _INT_TEXT.fullmatch(v) is None:
        errors.append(CesqlError("cast", f"cannot cast String {v!r} to Integer"))
        return 0
    n = int(v)
    if n < INT_MIN or n > INT_MAX:
        errors.append(
            CesqlError("cast", f"cannot cast String {v!r} to Integer: out of 32-bit range")
        )
        return 0
    return n


def _str_to_bool(v: str, errors: list[CesqlError]) -> bool:
    low = v.lower()
    if low == "true":
        return True
    if low == "false":
        return False
    errors.append(CesqlError("cast", f"cannot cast String {v!r} to Boolean"))
    return False


def cast_to_bool(v: Value, errors: list[CesqlError]) -> bool:
    """Implicit cast to Boolean, as done by operators.

    Strings "true"/"false" (any case) cast; an Integer operand where a Boolean is expected
    is a cast error with value false (the TCK's ``NOT 10``). ``BOOL(x)`` is the explicit way.
    """
    if type(v) is bool:
        return v
    if type(v) is str:
        return _str_to_bool(v, errors)
    errors.append(CesqlError("cast", f"cannot implicitly cast Integer {v} to Boolean (use BOOL())"))
    return False


def cast_to_bool_explicit(v: Value, errors: list[CesqlError]) -> bool:
    """Explicit cast (``BOOL``): Integer 0 is false, any other Integer is true."""
    if type(v) is bool:
        return v
    if type(v) is str:
        return _str_to_bool(v, errors)
    return v != 0


def cast(v: Value, target: CesqlType, errors: list[CesqlError]) -> Value:
    """Implicit cast of ``v`` to ``target`` (``Any`` leaves it as it is)."""
    if target == "String":
        return cast_to_str(v)
    if target == "Integer":
        return cast_to_int(v, errors)
    if target == "Boolean":
        return cast_to_bool(v, errors)
    return v
