"""The event type catalogue: complete, derived from the shared list, and its look-ups."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from connector_runtime_auth0 import catalogue

PLUGIN = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[3].parent / "shared"
EVENT_TYPES_FILE = SHARED / "auth0" / "event-types.json"
needs_shared = pytest.mark.skipif(
    not EVENT_TYPES_FILE.exists(), reason="shared/auth0/event-types.json is not here"
)


def load_tool():
    spec = importlib.util.spec_from_file_location(
        "build_catalogue", PLUGIN / "tools" / "build_catalogue.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_shared
def test_every_shared_code_is_present_with_its_category():
    shared = json.loads(EVENT_TYPES_FILE.read_text(encoding="utf-8"))
    assert len(shared) == 185
    assert set(catalogue.EVENT_TYPES) == {e["code"] for e in shared}
    for entry in shared:
        known = catalogue.EVENT_TYPES[entry["code"]]
        assert catalogue.category_of(entry["code"]) == entry["category"]
        assert (known.name, known.status, known.description) == (
            entry["name"],
            entry["status"],
            entry["description"],
        )


@needs_shared
def test_committed_catalogue_is_up_to_date():
    tool = load_tool()
    assert tool.main(["--check"]) == 0


def test_catalogue_keeps_only_its_fields():
    raw = json.loads((PLUGIN / "connector_runtime_auth0" / "catalogue.json").read_text("utf-8"))
    assert {tuple(sorted(e)) for e in raw} == {
        ("category", "code", "description", "name", "status")
    }
    assert [e["code"] for e in raw] == sorted(e["code"] for e in raw)


def test_build_checks_its_input():
    tool = load_tool()
    base = {"code": "s", "name": "Success Login", "category": "x", "status": "current"}
    assert tool.build([{**base, "sources": ["S1"], "notes": "n"}]) == [
        {**base, "description": None}
    ]
    with pytest.raises(ValueError, match="code 's' appears twice"):
        tool.build([base, base])
    with pytest.raises(ValueError, match="unknown status 'gone'"):
        tool.build([{**base, "status": "gone"}])
    with pytest.raises(ValueError, match="'code' must be a non-empty string"):
        tool.build([{**base, "code": ""}])
    with pytest.raises(ValueError, match="both as a code and a category"):
        tool.build([base, {**base, "code": "x"}])


def test_build_writes_the_output(tmp_path):
    tool = load_tool()
    source = tmp_path / "types.json"
    source.write_text(
        json.dumps([{"code": "zz", "name": "Z", "category": None, "status": "legacy"}])
    )
    output = tmp_path / "catalogue.json"
    assert tool.main([str(source), str(output)]) == 0
    assert json.loads(output.read_text()) == [
        {"code": "zz", "name": "Z", "category": None, "status": "legacy", "description": None}
    ]
    assert tool.main([str(source), str(output), "--check"]) == 0
    output.write_text("[]\n")
    assert tool.main([str(source), str(output), "--check"]) == 1


def test_categories():
    assert "auth.login.fail" in catalogue.CATEGORIES
    assert "user.success" in catalogue.CATEGORIES
    assert None not in catalogue.CATEGORIES  # type: ignore[comparison-overlap]
    assert not catalogue.CATEGORIES & set(catalogue.EVENT_TYPES)


@pytest.mark.parametrize(
    ("code", "category"),
    [
        ("s", "auth.login.success"),
        ("f", "auth.login.fail"),
        ("fp", "auth.login.fail"),
        ("sapi", "management.success"),
        ("seacft", "auth.token_exchange.success"),
        ("gd_module_switch", None),
        ("not_a_code", None),
    ],
)
def test_category_of(code, category):
    assert catalogue.category_of(code) == category


def test_closest():
    assert catalogue.closest("sx")[:1] == ["s"]
    assert "ss" in catalogue.closest("sx")
    assert catalogue.closest("auth.login.fails")[0] == "auth.login.fail"
    assert catalogue.closest("sapii")[0] == "sapi"
    assert catalogue.closest("completely-unrelated-words") == []
    assert len(catalogue.closest("fail", limit=2)) <= 2
