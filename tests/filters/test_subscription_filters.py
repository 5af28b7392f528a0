"""CloudEvents Subscriptions API filter dialects."""

from __future__ import annotations

import copy
import random
from typing import Any

import jsonschema
import pytest

from connector_runtime.filters.cesql import CesqlError, compile_expression
from connector_runtime.filters.subscription import (
    FILTERS_SCHEMA,
    FilterConfigError,
    FilterTrace,
    compile_filters,
)

EVENT: dict[str, object] = {
    "specversion": "1.0",
    "id": "evt-1",
    "source": "https://example.com/hooks",
    "type": "com.example.order.created",
    "subject": "orders/42",
    "priority": 3,
    "urgent": True,
}


def passes(filters: Any, event: dict[str, object] | None = None) -> bool:
    return compile_filters(filters)(EVENT if event is None else event)


# -- dialects ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([], True),
        ([{"exact": {"type": "com.example.order.created"}}], True),
        ([{"exact": {"type": "com.example.order"}}], False),
        ([{"exact": {"type": "COM.EXAMPLE.ORDER.CREATED"}}], False),  # case-sensitive
        ([{"exact": {"type": "com.example.order.created", "subject": "orders/42"}}], True),
        ([{"exact": {"type": "com.example.order.created", "subject": "orders/7"}}], False),
        ([{"exact": {"missing": ""}}], False),  # the attribute must exist
        ([{"exact": {"priority": "3"}}], True),  # an Integer compares as its String form
        ([{"exact": {"urgent": "true"}}], True),
        ([{"prefix": {"source": "https://"}}], True),
        ([{"prefix": {"source": "http://"}}], False),
        ([{"prefix": {"source": ""}}], True),
        ([{"prefix": {"missing": ""}}], False),
        ([{"prefix": {"type": "com.example.", "subject": "orders/"}}], True),
        ([{"prefix": {"type": "com.example.", "subject": "users/"}}], False),
        ([{"suffix": {"type": ".created"}}], True),
        ([{"suffix": {"type": ".deleted"}}], False),
        ([{"suffix": {"missing": ""}}], False),
        ([{"sql": "priority > 2 AND urgent"}], True),
        ([{"sql": "priority > 5"}], False),
        ([{"sql": "missing = 1"}], False),
        ([{"sql": "NOT 10"}], False),  # true, but with a cast error
        ([{"sql": "subject"}], False),  # a String result never passes
        ([{"not": {"exact": {"type": "x"}}}], True),
        ([{"not": {"prefix": {"source": "https://"}}}], False),
        ([{"all": [{"prefix": {"type": "com."}}, {"suffix": {"type": ".created"}}]}], True),
        ([{"all": [{"prefix": {"type": "com."}}, {"suffix": {"type": ".deleted"}}]}], False),
        ([{"any": [{"exact": {"type": "a"}}, {"suffix": {"type": ".created"}}]}], True),
        ([{"any": [{"exact": {"type": "a"}}, {"exact": {"type": "b"}}]}], False),
        ([{"prefix": {"type": "com."}}, {"exact": {"subject": "orders/42"}}], True),
        ([{"prefix": {"type": "com."}}, {"exact": {"subject": "nope"}}], False),
        (
            [
                {
                    "any": [
                        {"all": [{"exact": {"type": "x"}}, {"sql": "TRUE"}]},
                        {"not": {"any": [{"exact": {"id": "nope"}}, {"sql": "priority = 4"}]}},
                    ]
                }
            ],
            True,
        ),
        ((({"exact": {"id": "evt-1"}}),), True),  # any sequence, e.g. a manifest's tuple
    ],
)
def test_dialects(filters: Any, expected: bool) -> None:
    assert passes(filters) is expected


def test_on_error_reports_sql_errors_only() -> None:
    seen: list[tuple[str, list[CesqlError]]] = []
    f = compile_filters(
        [{"any": [{"sql": "ghost = 'x'"}, {"sql": "priority = 3"}, {"sql": "1 / 0 = 0"}]}],
        on_error=lambda source, errors: seen.append((source, errors)),
    )
    assert f(EVENT) is True  # the first sql errs, the second passes; any() stops there
    assert seen == [
        (
            "ghost = 'x'",
            [CesqlError("missingAttribute", "attribute 'ghost' is not present in the event")],
        )
    ]
    seen.clear()
    assert f({**EVENT, "priority": 4}) is False
    assert [(s, [e.kind for e in errs]) for s, errs in seen] == [
        ("ghost = 'x'", ["missingAttribute"]),
        ("1 / 0 = 0", ["math"]),
    ]
    seen.clear()
    assert (
        compile_filters([{"sql": "priority = 3"}], on_error=lambda s, e: seen.append((s, e)))(EVENT)
        is True
    )
    assert seen == []


def test_explain_lists_every_filter_with_the_reason() -> None:
    f = compile_filters(
        [
            {"prefix": {"type": "com.example.", "source": "http://"}},
            {
                "any": [
                    {"sql": "priority > 5 OR ghost"},
                    {"not": {"suffix": {"type": ".deleted"}}},
                ]
            },
            {"exact": {"subject": "orders/42"}},
            {"sql": "subject"},
        ]
    )
    assert f.explain(EVENT) == [
        FilterTrace(
            "/filters/0/prefix",
            "prefix: type starts with 'com.example.', source starts with 'http://'",
            False,
            "source is 'https://example.com/hooks', which does not start with 'http://'",
        ),
        FilterTrace("/filters/1/any", "any of 2 filters", True, "1 of 2 nested filters passed"),
        FilterTrace(
            "/filters/1/any/0/sql",
            "sql: priority > 5 OR ghost",
            False,
            "value false; errors: missingAttribute: attribute 'ghost' is not present in the event",
        ),
        FilterTrace("/filters/1/any/1/not", "not", True, "the nested filter failed"),
        FilterTrace(
            "/filters/1/any/1/not/suffix",
            "suffix: type ends with '.deleted'",
            False,
            "type is 'com.example.order.created', which does not end with '.deleted'",
        ),
        FilterTrace(
            "/filters/2/exact", "exact: subject = 'orders/42'", True, "subject is 'orders/42'"
        ),
        FilterTrace(
            "/filters/3/sql",
            "sql: subject",
            False,
            "value 'orders/42' (not a Boolean)",
        ),
    ]
    trace = compile_filters([{"exact": {"ghost": "x", "id": "evt-1"}}]).explain(EVENT)
    assert trace[0].detail == "attribute 'ghost' is absent"
    assert [tuple(t) for t in compile_filters([{"sql": "TRUE"}]).explain({})] == [
        ("/filters/0/sql", "sql: TRUE", True, "value true")
    ]


def test_explain_agrees_with_the_predicate() -> None:
    rng = random.Random(5)
    leaves: list[dict[str, Any]] = [
        {"exact": {"type": "a"}},
        {"prefix": {"type": "a"}},
        {"suffix": {"source": "b"}},
        {"sql": "type LIKE '%b%'"},
        {"sql": "ghost = 1"},
    ]

    def random_filter(depth: int) -> dict[str, Any]:
        kind = rng.choice(["leaf", "leaf", "all", "any", "not"] if depth < 3 else ["leaf"])
        if kind == "leaf":
            return copy.deepcopy(rng.choice(leaves))
        if kind == "not":
            return {"not": random_filter(depth + 1)}
        return {kind: [random_filter(depth + 1) for _ in range(rng.randint(1, 3))]}

    for _ in range(300):
        filters = [random_filter(0) for _ in range(rng.randint(0, 3))]
        f = compile_filters(filters)
        for event in ({"type": "ab", "source": "xb"}, {"type": "ba", "source": "bx"}):
            trace = f.explain(event)
            top = [t for t in trace if t.path.count("/") == 3]
            assert len(top) == len(filters)
            assert f(event) is all(t.passed for t in top)


def test_prefix_suffix_exact_agree_with_cesql_like() -> None:
    """The dialects are the TCK's 'Subscriptions API recreations' in CESQL."""
    rng = random.Random(11)

    def cesql_literal(text: str) -> str:
        return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"

    def like_escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

    for _ in range(500):
        want = "".join(rng.choice("a%_\\'") for _ in range(rng.randint(0, 3)))
        value = "".join(rng.choice("a%_\\'") for _ in range(rng.randint(0, 5)))
        event = {"myext": value}
        pairs = [
            ({"prefix": {"myext": want}}, f"myext LIKE {cesql_literal(like_escape(want) + '%')}"),
            ({"suffix": {"myext": want}}, f"myext LIKE {cesql_literal('%' + like_escape(want))}"),
            ({"exact": {"myext": want}}, f"myext = {cesql_literal(want)}"),
        ]
        for dialect, sql in pairs:
            assert compile_filters([dialect])(event) is compile_expression(sql).matches(event), (
                dialect,
                sql,
                value,
            )


# -- configuration errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "path", "message"),
    [
        (
            {"exact": {"type": "x"}},
            "/filters",
            "filters must be an array of filter objects, got object",
        ),
        ("type = 'x'", "/filters", "filters must be an array of filter objects, got string"),
        (None, "/filters", "filters must be an array of filter objects, got null"),
        (["sql"], "/filters/0", "a filter must be an object with one dialect key, got string"),
        (
            [{}],
            "/filters/0",
            "empty filter object; expected one of: exact, prefix, suffix, all, any, not, sql",
        ),
        (
            [{"exact": {"a": "b"}, "sql": "TRUE"}],
            "/filters/0",
            "a filter object takes exactly one dialect key, got 2: exact, sql",
        ),
        (
            [{"regex": {"type": ".*"}}],
            "/filters/0",
            "unknown filter dialect 'regex'; "
            "expected one of: exact, prefix, suffix, all, any, not, sql",
        ),
        (
            [{"exact": ["type"]}],
            "/filters/0/exact",
            "'exact' takes an object of attribute names to strings, got array",
        ),
        ([{"prefix": {}}], "/filters/0/prefix", "'prefix' needs at least one attribute"),
        (
            [{"suffix": {"Type": "x"}}],
            "/filters/0/suffix/Type",
            "'Type' is not a CloudEvents attribute name (lower-case letters a-z and digits only)",
        ),
        (
            [{"exact": {"a/b": "x"}}],
            "/filters/0/exact/a~1b",
            "'a/b' is not a CloudEvents attribute name (lower-case letters a-z and digits only)",
        ),
        (
            [{"exact": {"priority": 3}}],
            "/filters/0/exact/priority",
            "the value to match must be a string, got integer",
        ),
        ([{"all": {"exact": {}}}], "/filters/0/all", "'all' takes an array of filters, got object"),
        ([{"any": []}], "/filters/0/any", "'any' needs at least one filter"),
        (
            [{"not": []}],
            "/filters/0/not",
            "a filter must be an object with one dialect key, got array",
        ),
        ([{"sql": True}], "/filters/0/sql", "'sql' takes a CESQL expression string, got boolean"),
        ([{"sql": ""}], "/filters/0/sql", "invalid CESQL expression: column 1: empty expression"),
        (
            [{"exact": {"type": "x"}}, {"sql": "type = 'x' OR AND subject = 'y'"}],
            "/filters/1/sql",
            "invalid CESQL expression: column 15: unexpected token 'AND'",
        ),
        (
            [{"any": [{"sql": "TRUE"}, {"not": {"sql": "LENGTH(type)"}}]}],
            "/filters/0/any/1/not/sql",
            "the expression yields Integer, but a filter needs a Boolean",
        ),
        (
            [{"all": [{"not": {"all": [{"exact": {"id": 1.5}}]}}]}],
            "/filters/0/all/0/not/all/0/exact/id",
            "the value to match must be a string, got number",
        ),
    ],
)
def test_configuration_errors(filters: Any, path: str, message: str) -> None:
    with pytest.raises(FilterConfigError) as raised:
        compile_filters(filters)
    assert (raised.value.path, raised.value.message) == (path, message)
    assert str(raised.value) == f"{path}: {message}"


def test_base_path_prefixes_error_paths() -> None:
    with pytest.raises(FilterConfigError) as raised:
        compile_filters([{"sql": "("}], base_path="/spec/filters")
    assert raised.value.path == "/spec/filters/0/sql"
    assert (
        raised.value.message == "invalid CESQL expression: column 2: unexpected end of expression"
    )


# -- JSON Schema ------------------------------------------------------------------------

VALID: list[Any] = [
    [],
    [{"exact": {"type": "x"}}],
    [{"prefix": {"type": "x", "source": "y"}}, {"suffix": {"subject": ""}}],
    [{"all": [{"any": [{"not": {"sql": "TRUE"}}]}]}],
]
INVALID: list[Any] = [
    {"exact": {"type": "x"}},
    [{}],
    [{"exact": {"type": "x"}, "sql": "TRUE"}],
    [{"regex": "x"}],
    [{"exact": {}}],
    [{"exact": {"Type": "x"}}],
    [{"exact": {"type": 1}}],
    [{"all": []}],
    [{"any": [{"nope": 1}]}],
    [{"not": {"all": [{}]}}],
    [{"sql": ""}],
    [{"sql": 1}],
]


def test_schema_accepts_what_compile_filters_accepts() -> None:
    jsonschema.Draft202012Validator.check_schema(FILTERS_SCHEMA)
    validator = jsonschema.Draft202012Validator(FILTERS_SCHEMA)
    for doc in VALID:
        assert list(validator.iter_errors(doc)) == []
        compile_filters(doc)
    for doc in INVALID:
        assert list(validator.iter_errors(doc)) != [], doc
        with pytest.raises(FilterConfigError):
            compile_filters(doc)


def test_schema_can_be_embedded() -> None:
    manifest_schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {"filters": FILTERS_SCHEMA}}},
        "$defs": {"filter": {"type": "string"}},  # a clashing name in the host document
    }
    validator = jsonschema.Draft202012Validator(manifest_schema)
    assert list(validator.iter_errors({"spec": {"filters": VALID[3]}})) == []
    assert list(validator.iter_errors({"spec": {"filters": [{"all": [{}]}]}})) != []
