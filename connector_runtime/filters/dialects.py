"""The compiled form of each Subscriptions API dialect (see :mod:`.subscription`).

Each node has ``test``, the fast predicate evaluated per event, and ``explain``, a walk that
says which filter passed and why (``connector-runtime filter test``). :class:`CompiledFilter`
ANDs a list of them. The nodes trust their input: :func:`.subscription.compile_filters`
validates a filter list and builds them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final, NamedTuple

from connector_runtime.filters.cesql import CesqlError, Expression
from connector_runtime.filters.cesql._types import cast_to_str, normalize

__all__ = [
    "AllOf",
    "AnyOf",
    "AttributeMatch",
    "Attrs",
    "CompiledFilter",
    "FilterTrace",
    "Node",
    "Not",
    "OnSqlError",
    "Predicate",
    "Sql",
]

Attrs = Mapping[str, object]
Predicate = Callable[[Attrs], bool]
OnSqlError = Callable[[str, list[CesqlError]], None]
"""Called as ``on_error(expression_source, errors)`` when a ``sql`` filter's evaluation erred."""


class FilterTrace(NamedTuple):
    """One line of :meth:`CompiledFilter.explain`."""

    path: str
    description: str
    passed: bool
    detail: str


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _as_text(value: object) -> str | None:
    """The String form of an attribute value, or None when the attribute is absent."""
    if type(value) is str:
        return value
    if value is None:
        return None
    return cast_to_str(normalize(value))


class Node:
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


class AttributeMatch(Node):
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


class AllOf(Node):
    __slots__ = ("children",)

    def __init__(self, path: str, children: tuple[Node, ...]) -> None:
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


class AnyOf(Node):
    __slots__ = ("children",)

    def __init__(self, path: str, children: tuple[Node, ...]) -> None:
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


class Not(Node):
    __slots__ = ("child",)

    def __init__(self, path: str, child: Node) -> None:
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


class Sql(Node):
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


class CompiledFilter:
    """The compiled filter list: call it with an event's attributes to get pass/fail."""

    __slots__ = ("_nodes", "_test")

    def __init__(self, nodes: tuple[Node, ...]) -> None:
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
