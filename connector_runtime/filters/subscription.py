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

>>> f = compile_filters([{"prefix": {"type": "com.example."}}, {"sql": "EXISTS subject"}])
>>> f({"type": "com.example.created", "subject": "x"})
True
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, NamedTuple

from connector_runtime.filters.cesql import (
    CesqlError,
    CesqlParseError,
    Expression,
    compile_expression,
)
from connector_runtime.filters.cesql._types import cast_to_str, normalize

__all__ = [
    "DIALECTS",
    "FILTERS_SCHEMA",
    "CompiledFilter",
    "FilterConfigError",
    "FilterTrace",
    "OnSqlError",
    "compile_filters",
]

Attrs = Mapping[str, object]
Predicate = Callable[[Attrs], bool]
OnSqlError = Callable[[str, list[CesqlError]], None]
"""Called as ``on_error(expression_source, errors)`` when a ``sql`` filter's evaluation erred."""

DIALECTS: Final = ("exact", "prefix", "suffix", "all", "any", "not", "sql")
_ATTRIBUTE_NAME: Final = re.compile(r"[a-z0-9]+")


class FilterConfigError(ValueError):
    """A filter list that is not valid; ``path`` is a JSON pointer to the culprit."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class FilterTrace(NamedTuple):
    """One line of :meth:`CompiledFilter.explain`."""

    path: str
    description: str
    passed: bool
    detail: str


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


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _as_text(value: object) -> str | None:
    """The String form of an attribute value, or None when the attribute is absent."""
    if type(value) is str:
        return value
    if value is None:
        return None
    return cast_to_str(normalize(value))


# -- compiled nodes ----------------------------------------------------------------------


class _Node:
    """A compiled filter: ``test`` is the fast predicate, ``explain`` the diagnostic walk."""

    __slots__ = ("path", "test")

    def __init__(self, path: str, test: Predicate) -> None:
        self.path = path
        self.test = test

    def explain(self, attrs: Attrs, out: list[FilterTrace]) -> bool:
        raise NotImplementedError


_VERBS: Final[dict[str, str]] = {"exact": "=", "prefix": "starts with", "suffix": "ends with"}
_NEGATED_VERBS: Final[dict[str, str]] = {
    "exact": "is not",
    "prefix": "does not start with",
    "suffix": "does not end with",
}


def _text_test(kind: str, want: str) -> Callable[[str], bool]:
    if kind == "exact":
        return lambda s: s == want
    if kind == "prefix":
        return lambda s: s.startswith(want)
    return lambda s: s.endswith(want)


class _AttributeFilter(_Node):
    __slots__ = ("items", "kind")

    def __init__(self, path: str, kind: str, items: tuple[tuple[str, str], ...]) -> None:
        checks = tuple((name, _text_test(kind, want)) for name, want in items)
        if len(checks) == 1:
            ((name, check),) = checks

            def test(attrs: Attrs) -> bool:
                v = attrs.get(name)
                if type(v) is str:
                    return check(v)
                text = _as_text(v)
                return text is not None and check(text)

        else:

            def test(attrs: Attrs) -> bool:
                for name, check in checks:
                    text = _as_text(attrs.get(name))
                    if text is None or not check(text):
                        return False
                return True

        super().__init__(path, test)
        self.kind = kind
        self.items = items

    def explain(self, attrs: Attrs, out: list[FilterTrace]) -> bool:
        verb = _VERBS[self.kind]
        description = f"{self.kind}: " + ", ".join(
            f"{name} {verb} {_quote(want)}" for name, want in self.items
        )
        failures: list[str] = []
        seen: list[str] = []
        for name, want in self.items:
            text = _as_text(attrs.get(name))
            if text is None:
                failures.append(f"attribute '{name}' is absent")
            elif not _text_test(self.kind, want)(text):
                failures.append(
                    f"{name} is {_quote(text)}, which {_NEGATED_VERBS[self.kind]} {_quote(want)}"
                )
            else:
                seen.append(f"{name} is {_quote(text)}")
        passed = not failures
        out.append(FilterTrace(self.path, description, passed, "; ".join(failures or seen)))
        return passed


def _all_of(tests: tuple[Predicate, ...]) -> Predicate:
    if len(tests) == 1:
        return tests[0]

    def test(attrs: Attrs) -> bool:
        for t in tests:  # noqa: SIM110 - a plain loop beats all() + generator per event
            if not t(attrs):
                return False
        return True

    return test


def _any_of(tests: tuple[Predicate, ...]) -> Predicate:
    if len(tests) == 1:
        return tests[0]

    def test(attrs: Attrs) -> bool:
        for t in tests:  # noqa: SIM110 - a plain loop beats any() + generator per event
            if t(attrs):
                return True
        return False

    return test


class _All(_Node):
    __slots__ = ("children",)

    def __init__(self, path: str, children: tuple[_Node, ...]) -> None:
        super().__init__(path, _all_of(tuple(c.test for c in children)))
        self.children = children

    def explain(self, attrs: Attrs, out: list[FilterTrace]) -> bool:
        at = len(out)
        out.append(FilterTrace(self.path, "", False, ""))
        results = [c.explain(attrs, out) for c in self.children]
        passed = all(results)
        detail = f"{sum(results)} of {len(results)} nested filters passed"
        out[at] = FilterTrace(self.path, f"all of {len(results)} filters", passed, detail)
        return passed


class _Any(_Node):
    __slots__ = ("children",)

    def __init__(self, path: str, children: tuple[_Node, ...]) -> None:
        super().__init__(path, _any_of(tuple(c.test for c in children)))
        self.children = children

    def explain(self, attrs: Attrs, out: list[FilterTrace]) -> bool:
        at = len(out)
        out.append(FilterTrace(self.path, "", False, ""))
        results = [c.explain(attrs, out) for c in self.children]
        passed = any(results)
        detail = f"{sum(results)} of {len(results)} nested filters passed"
        out[at] = FilterTrace(self.path, f"any of {len(results)} filters", passed, detail)
        return passed


class _Not(_Node):
    __slots__ = ("child",)

    def __init__(self, path: str, child: _Node) -> None:
        inner = child.test
        super().__init__(path, lambda attrs: not inner(attrs))
        self.child = child

    def explain(self, attrs: Attrs, out: list[FilterTrace]) -> bool:
        at = len(out)
        out.append(FilterTrace(self.path, "", False, ""))
        inner = self.child.explain(attrs, out)
        detail = "the nested filter " + ("passed" if inner else "failed")
        out[at] = FilterTrace(self.path, "not", not inner, detail)
        return not inner


def _show(value: object) -> str:
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is str:
        return _quote(value)
    return str(value)


class _Sql(_Node):
    __slots__ = ("expression",)

    def __init__(self, path: str, expression: Expression, on_error: OnSqlError | None) -> None:
        evaluate = expression.evaluate
        source = expression.source
        if on_error is None:
            test: Predicate = expression.matches
        else:
            report = on_error

            def test(attrs: Attrs) -> bool:
                value, errors = evaluate(attrs)
                if errors:
                    report(source, errors)
                    return False
                return value is True

        super().__init__(path, test)
        self.expression = expression

    def explain(self, attrs: Attrs, out: list[FilterTrace]) -> bool:
        value, errors = self.expression.evaluate(attrs)
        passed = value is True and not errors
        detail = f"value {_show(value)}"
        if type(value) is not bool:
            detail += " (not a Boolean)"
        if errors:
            detail += "; errors: " + "; ".join(str(e) for e in errors)
        out.append(FilterTrace(self.path, f"sql: {self.expression.source}", passed, detail))
        return passed


# -- validation and compilation ----------------------------------------------------------


def _compile(spec: object, path: str, on_error: OnSqlError | None) -> _Node:
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
        return _AttributeFilter(here, dialect, _attribute_items(value, here, dialect))
    if dialect in ("all", "any"):
        if not isinstance(value, list | tuple):
            raise FilterConfigError(
                here, f"'{dialect}' takes an array of filters, got {_json_type(value)}"
            )
        if not value:
            raise FilterConfigError(here, f"'{dialect}' needs at least one filter")
        children = tuple(_compile(v, _pointer(here, i), on_error) for i, v in enumerate(value))
        return _All(here, children) if dialect == "all" else _Any(here, children)
    if dialect == "not":
        return _Not(here, _compile(value, here, on_error))
    return _Sql(here, _sql_expression(value, here), on_error)


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


class CompiledFilter:
    """The compiled filter list: call it with an event's attributes to get pass/fail."""

    __slots__ = ("_nodes", "_test")

    def __init__(self, nodes: tuple[_Node, ...]) -> None:
        self._nodes = nodes
        tests = tuple(n.test for n in nodes)
        self._test: Predicate = _all_of(tests) if tests else (lambda attrs: True)

    def __call__(self, attrs: Attrs) -> bool:
        return self._test(attrs)

    def __len__(self) -> int:
        return len(self._nodes)

    def explain(self, attrs: Attrs) -> list[FilterTrace]:
        """Every filter, nested ones included (pre-order), with whether it passed and why.

        Nested ``all``/``any`` filters are all evaluated here, so the trace is complete;
        ``on_error`` is not called.
        """
        out: list[FilterTrace] = []
        for node in self._nodes:
            node.explain(attrs, out)
        return out


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
