"""Issue 18: ``connector-runtime filter test`` shows each event before and after transforms."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

from connector_runtime_auth0.testing import jsonl, record

from connector_runtime.testing import connector_doc
from tests.procs import cli, write_manifest

KEY = "filter-test-key-0123456789"


def test_filter_test_shows_each_event_before_and_after(tmp_path: Path):
    transforms = [
        {"ipPrefix": {"paths": ["data.ip"]}},
        {"mask": {"paths": ["data.description"], "keepStart": 1}},
        {"hash": {"paths": ["data.user_name", "data.details"], "key": "${PII_KEY}"}},
    ]
    doc = connector_doc("t1", "auth0", {}, {"type": "stdout"}, transforms=transforms)
    manifest = write_manifest(tmp_path / "m.yaml", [doc])
    deliveries = tmp_path / "deliveries.jsonl"
    records = [
        record("r1", "f", user_id=None, ip="not-an-address", description=""),
        record("r2", "s", details={"nested": True}),  # an object under hash: filtered out
        record("r3", "s", user_id=None, ip=None, description=None),  # nothing to change
    ]
    deliveries.write_bytes(jsonl(records))

    out = cli(
        "filter",
        "test",
        str(manifest),
        "--connector",
        "t1",
        str(deliveries),
        env={"PII_KEY": KEY},
    )

    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    r1 = lines.index(f"{deliveries}: r1 com.auth0.log.f: PASS")
    assert lines[r1 + 1] == "    transform: ipPrefix data.ip: not an IP address, replaced by null"
    before = json.loads(lines[r1 + 2].removeprefix("    before: "))
    after = json.loads(lines[r1 + 3].removeprefix("    after:  "))
    assert before["data"]["ip"] == "not-an-address" and after["data"]["ip"] is None
    assert after["id"] == before["id"] == "r1"
    assert f"{deliveries}: r2 com.auth0.log.s: FILTERED" in lines
    assert any(
        "transform: connector_runtime.transforms.builtin: TransformError: hash "
        "data.details: found an object" in x
        for x in lines
    )
    assert "    after:  (filtered out)" in lines
    r3 = lines.index(f"{deliveries}: r3 com.auth0.log.s: PASS")
    assert lines[r3 + 2] == "    after:  (unchanged)"
    assert "2 of 3 event(s) pass" in out.stderr
    assert KEY not in out.stdout + out.stderr
    digest = hmac.new(KEY.encode(), b"ada@example.org", hashlib.sha256).hexdigest()
    assert digest not in out.stdout  # r2 had the address, but r2 was filtered out
