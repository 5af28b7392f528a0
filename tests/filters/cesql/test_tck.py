"""Runs every case of the CloudEvents CESQL TCK (``tck/*.yaml``) against our engine."""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from connector_runtime.filters.cesql import CesqlParseError, compile_expression

TCK_DIR = Path(__file__).parent / "tck"

# Used when a case has no `event`: any valid event, with the case's `eventOverrides` on top.
DEFAULT_EVENT: Mapping[str, object] = {
    "specversion": "1.0",
    "id": "tck-default-id",
    "source": "/cesql/tck",
    "type": "io.cloudevents.cesql.tck",
}


def _plain(value: Any) -> Any:
    """YAML reads unquoted timestamps as datetimes; CloudEvents carries them as text."""
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return value


def _as_written(text: str) -> list[dict[str, str]]:
    """`name` and `expression` of each case as text: YAML would read `expression: TRUE`
    as a boolean and `expression: -10` as an integer, but they are CESQL source."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    assert isinstance(root, yaml.MappingNode)
    tests = next(v for k, v in root.value if k.value == "tests")
    return [
        {k.value: v.value for k, v in item.value if k.value in ("name", "expression")}
        for item in tests.value
    ]


def _cases() -> Iterator[Any]:
    for path in sorted(TCK_DIR.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        suite = yaml.safe_load(text)
        for case, written in zip(suite["tests"], _as_written(text), strict=True):
            case.update(written)
            yield pytest.param(case, id=f"{path.stem}::{case['name']}")


CASES = list(_cases())


def _event_for(case: Mapping[str, Any]) -> dict[str, object]:
    event = dict(case["event"]) if case.get("event") is not None else dict(DEFAULT_EVENT)
    event.update(case.get("eventOverrides") or {})
    return {name: _plain(value) for name, value in event.items()}


def test_the_tck_is_all_there() -> None:
    files = sorted(p.stem for p in TCK_DIR.glob("*.yaml"))
    assert len(files) == 18
    assert len(CASES) == 275
    assert (TCK_DIR / "LICENSE").is_file()
    assert (TCK_DIR / "README.md").is_file()
    ids = [p.id for p in CASES]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("case", CASES)
def test_tck_case(case: Mapping[str, Any]) -> None:
    expected_error = case.get("error")
    has_result = "result" in case
    expected = _plain(case.get("result"))

    if expected_error == "parse":
        with pytest.raises(CesqlParseError) as raised:
            compile_expression(case["expression"])
        assert raised.value.kind == "parse"
        assert raised.value.column >= 1
        if has_result:
            # A parse error leaves no expression: its value is the Boolean zero value.
            assert expected is False
        return

    expr = compile_expression(case["expression"])
    value, errors = expr.evaluate(_event_for(case))

    if has_result:
        assert value == expected
        assert type(value) is type(expected)
    kinds = [e.kind for e in errors]
    if expected_error is None:
        assert kinds == []
    else:
        assert kinds == [expected_error]
    # The filter predicate agrees with the value and the errors.
    assert expr.matches(_event_for(case)) is (value is True and not errors)
