"""Real public Auth0 records from the shared folder (skipped when the folder is absent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connector_runtime_auth0.mapping import to_event
from connector_runtime_auth0.parse import parse_body

SAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "auth0" / "samples"
FILES = sorted(SAMPLES.glob("*.jsonl")) if SAMPLES.is_dir() else []


@pytest.mark.skipif(not FILES, reason="shared/auth0/samples is not here")
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
@pytest.mark.parametrize("fmt", ["jsonlines", "array", "auto"])
def test_samples_parse_and_map(path, fmt):
    text = path.read_bytes()
    lines = [line for line in text.split(b"\n") if line.strip()]
    body = b"[" + b",".join(lines) + b"]" if fmt == "array" else text
    records = parse_body(body, fmt)
    assert len(records) == len(lines)
    for line, record in zip(lines, records, strict=True):
        original = json.loads(line)
        event = to_event(record, "/auth0/samples")
        assert event.id == (original.get("log_id") or original["data"]["log_id"])
        assert event.type == "com.auth0.log." + original["data"]["type"]
        assert event.attributes.get("subject") == (original["data"].get("user_id") or None)
        assert event.attributes.get("time") == original["data"].get("date")
        assert b'"data":' + record.data in line  # the exact text, not a re-encoding
        assert json.loads(record.data) == original["data"]
