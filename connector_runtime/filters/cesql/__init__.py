"""CESQL v1: the CloudEvents SQL Expression Language, for filtering events.

>>> expr = compile_expression("type LIKE 'com.example.%' AND NOT EXISTS clientip")
>>> expr.matches({"type": "com.example.created", "source": "/s", "id": "1"})
True
>>> expr.evaluate({"type": 5})
(False, [])

Expressions are compiled once into closures. ``evaluate`` returns the value together
with every error met (evaluation goes on after an error, with the zero value of the type);
``matches`` is the filter predicate: true only for a Boolean ``true`` with no error.
"""

from ._expression import Expression, compile_expression
from ._types import CesqlError, CesqlParseError, CesqlType, ErrorKind, Value

__all__ = [
    "CesqlError",
    "CesqlParseError",
    "CesqlType",
    "ErrorKind",
    "Expression",
    "Value",
    "compile_expression",
]
