"""CloudEvents Subscriptions API filter dialects, compiled once into predicates.

A filter list is ANDed; each entry is an object with exactly one dialect key:

* ``{"exact": {"type": "com.example.created"}}`` - every named attribute exists and equals
  the value (several keys are ANDed); ``prefix`` and ``suffix`` likewise with
  starts-with / ends-with. Comparisons are case-sensitive, on the attribute's String form
  (an Integer ``5`` is ``"5"``, a Boolean is ``"true"``/``"false"``).
* ``{"all": [filters]}`` - every nested filter passes (at least one filter).
* ``{"any": [filters]}`` - at least one nested filter passes (at least one filter).
* ``{"not": filter}`` - the nested filter fails.
* ``{"sql": "CESQL expression"}`` - the expression yields Boolean true with no error.

:func:`compile_filters` validates a list (errors carry a JSON pointer) and builds the
compiled nodes of :mod:`.dialects`.

>>> f = compile_filters([{"prefix": {"type": "com.example."}}, {"sql": "EXISTS subject"}])
>>> f({"type": "com.example.created", "subject": "x"})
True
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from connector_runtime.filters.cesql import CesqlParseError, Expression, compile_expression
from connector_runtime.filters.dialects import (
    AllOf,
    AnyOf,
    AttributeMatch,
    CompiledFilter,
    FilterTrace,
    Node,
    Not,
    OnSqlError,
    Sql,
)

__all__ = [
    "DIALECTS",
    "FILTERS_SCHEMA",
    "CompiledFilter",
    "FilterConfigError",
    "FilterTrace",
    "OnSqlError",
    "compile_filters",
]

DIALECTS: Final = ("exact", "prefix", "suffix", "all", "any", "not", "sql")
_ATTRIBUTE_NAME: Final = re.compile(r"[a-z0-9]+")


class FilterConfigError(ValueError):
    """A filter list that is not valid; ``path`` is a JSON pointer to the culprit."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _pointer(path: str, token: str | int) -> str:
    text = str(token).replace("~", "~0").replace("/", "~1")
    return f"{path}/{text}"


# -- validation and compilation ----------------------------------------------------------


def _compile(spec: object, path: str, on_error: OnSqlError | None) -> Node:
    if not isinstance(spec, Mapping):
        raise FilterConfigError(
            path, f"a filter must be an object with one dialect key, got {_json_type(spec)}"
        )
    expected = ", ".join(DIALECTS)
    if not spec:
        raise FilterConfigError(path, f"empty filter object; expected one of: {expected}")
    if len(spec) > 1:
        keys = ", ".join(sorted(str(k) for k in spec))
        raise FilterConfigError(
            path, f"a filter object takes exactly one dialect key, got {len(spec)}: {keys}"
        )
    ((dialect, value),) = spec.items()
    if dialect not in DIALECTS:
        raise FilterConfigError(
            path, f"unknown filter dialect {dialect!r}; expected one of: {expected}"
        )
    here = _pointer(path, dialect)
    if dialect in ("exact", "prefix", "suffix"):
        return AttributeMatch(here, dialect, _attribute_items(value, here, dialect))
    if dialect in ("all", "any"):
        if not isinstance(value, list | tuple):
            raise FilterConfigError(
                here, f"'{dialect}' takes an array of filters, got {_json_type(value)}"
            )
        if not value:
            raise FilterConfigError(here, f"'{dialect}' needs at least one filter")
        children = tuple(_compile(v, _pointer(here, i), on_error) for i, v in enumerate(value))
        return AllOf(here, children) if dialect == "all" else AnyOf(here, children)
    if dialect == "not":
        return Not(here, _compile(value, here, on_error))
    return Sql(here, _sql_expression(value, here), on_error)


def _attribute_items(value: object, path: str, dialect: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping):
        raise FilterConfigError(
            path,
            f"'{dialect}' takes an object of attribute names to strings, got {_json_type(value)}",
        )
    if not value:
        raise FilterConfigError(path, f"'{dialect}' needs at least one attribute")
    items: list[tuple[str, str]] = []
    for name, want in value.items():
        if not isinstance(name, str) or _ATTRIBUTE_NAME.fullmatch(name) is None:
            raise FilterConfigError(
                _pointer(path, str(name)),
                f"{str(name)!r} is not a CloudEvents attribute name "
                "(lower-case letters a-z and digits only)",
            )
        if not isinstance(want, str):
            raise FilterConfigError(
                _pointer(path, name),
                f"the value to match must be a string, got {_json_type(want)}",
            )
        items.append((name, want))
    return tuple(items)


def _sql_expression(value: object, path: str) -> Expression:
    if not isinstance(value, str):
        raise FilterConfigError(
            path, f"'sql' takes a CESQL expression string, got {_json_type(value)}"
        )
    try:
        expression = compile_expression(value)
    except CesqlParseError as err:
        raise FilterConfigError(path, f"invalid CESQL expression: {err}") from err
    if expression.result_type in ("Integer", "String"):
        raise FilterConfigError(
            path,
            f"the expression yields {expression.result_type}, but a filter needs a Boolean",
        )
    return expression


def compile_filters(
    filters: object,
    on_error: OnSqlError | None = None,
    *,
    base_path: str = "/filters",
) -> CompiledFilter:
    """Validate and compile a Subscriptions API filter list (ANDed).

    Raises :class:`FilterConfigError` with a JSON pointer below ``base_path`` (for example
    ``/filters/1/sql``); a CESQL parse error's message carries its column.
    """
    if isinstance(filters, str | bytes) or not isinstance(filters, Sequence):
        raise FilterConfigError(
            base_path, f"filters must be an array of filter objects, got {_json_type(filters)}"
        )
    nodes = tuple(
        _compile(spec, _pointer(base_path, i), on_error) for i, spec in enumerate(filters)
    )
    return CompiledFilter(nodes)


def _attribute_map(dialect: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": f"CloudEvents attribute name -> string the attribute must {dialect}.",
        "minProperties": 1,
        "propertyNames": {"pattern": "^[a-z0-9]+$"},
        "additionalProperties": {"type": "string"},
    }


FILTERS_SCHEMA: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:connector-runtime:subscription-filters",
    "title": "CloudEvents Subscriptions API filters",
    "description": "Filters, ANDed; each object has exactly one dialect key.",
    "type": "array",
    "items": {"$ref": "#/$defs/filter"},
    "$defs": {
        "filter": {
            "type": "object",
            "minProperties": 1,
            "maxProperties": 1,
            "additionalProperties": False,
            "properties": {
                "exact": _attribute_map("equal"),
                "prefix": _attribute_map("start with"),
                "suffix": _attribute_map("end with"),
                "all": {
                    "type": "array",
                    "description": "Passes when every nested filter passes.",
                    "minItems": 1,
                    "items": {"$ref": "#/$defs/filter"},
                },
                "any": {
                    "type": "array",
                    "description": "Passes when at least one nested filter passes.",
                    "minItems": 1,
                    "items": {"$ref": "#/$defs/filter"},
                },
                "not": {
                    "$ref": "#/$defs/filter",
                    "description": "Passes when the nested filter fails.",
                },
                "sql": {
                    "type": "string",
                    "minLength": 1,
                    "description": "A CESQL v1 expression; passes on true with no error.",
                },
            },
        }
    },
}
"""JSON Schema (2020-12) of a filter list. It has its own ``$id``, so it can be embedded as a
subschema (its ``#/$defs`` references resolve within it); deep-copy it before changing it."""
