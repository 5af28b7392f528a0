"""Issue 18: the Auth0 ``pii`` presets over the real public Auth0 records in ../shared.

A real ``connector-runtime run`` process, a real receiver on a loopback port; the raw
request bodies the target received are scanned for every original value the preset
touches. Skipped when the shared samples are not here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from pathlib import Path
from typing import Any

import pytest
from connector_runtime_auth0.pii import ADDRESSES, IDENTIFIERS, PLACE, USER_AGENTS

from connector_runtime.testing import RecordingTarget, connector_doc, post
from tests.procs import RuntimeProcess, cli, write_manifest

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "auth0" / "samples"
FILES = sorted(SAMPLES.glob("*.jsonl")) if SAMPLES.is_dir() else []
pytestmark = pytest.mark.skipif(not FILES, reason=f"the Auth0 samples are not in {SAMPLES}")

KEY = "pii-key-0123456789-abcdef"
OTHER_KEY = "another-key-0123456789"
EMAIL = re.compile(r"[A-Za-z0-9.+_-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def records() -> list[dict[str, Any]]:
    lines = [line for f in FILES for line in f.read_text().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def at(value: Any, steps: list[str]) -> list[Any]:
    """The values a preset path reaches (written independently of the engine)."""
    if not steps:
        return [value]
    step, rest = steps[0], steps[1:]
    if step.endswith("[*]"):
        inner = value.get(step[:-3]) if isinstance(value, dict) else None
        return (
            [v for item in inner or [] for v in at(item, rest)] if isinstance(inner, list) else []
        )
    return at(value[step], rest) if isinstance(value, dict) and step in value else []


def leaves(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in leaves(v)]
    if isinstance(value, list):
        return [s for v in value for s in leaves(v)]
    return [value] if isinstance(value, str) else []


def touched_values(record: dict[str, Any]) -> set[str]:
    """Every original string the strict preset hashes or removes, and every e-mail address."""
    data = record["data"]
    found: set[str] = set()
    for path in (*IDENTIFIERS, *ADDRESSES, *USER_AGENTS, *PLACE):
        if path.startswith("data."):
            for value in at(data, path[5:].replace("[*].", "[*] ").replace(".", " ").split()):
                found.update(leaves(value))
    found.update(EMAIL.findall(json.dumps(data)))
    return {v for v in found if len(v) >= 6}  # shorter ones ("", "f") say nothing


def mac(text: str, key: str = KEY) -> str:
    return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()


def start(tmp_path: Path, target: RecordingTarget, name: str, key: str) -> RuntimeProcess:
    doc = connector_doc(
        "a0",
        "auth0",
        {"pii": {"preset": "strict", "key": "${PII_KEY}"}},
        {"type": "http", "config": {"url": target.url, "mode": "batch"}},
        delivery={"ack": "delivered"},
    )
    manifest = write_manifest(tmp_path / f"{name}.yaml", [doc])
    proc = RuntimeProcess(
        manifest, tmp_path / name, env={"PII_KEY": key}, args=["--log-level", "debug"]
    )
    return proc.start()


def send_all(proc: RuntimeProcess) -> None:
    for f in FILES:
        answer = post(proc.url + "/a0", f.read_bytes(), {"Content-Type": "application/json"})
        assert answer.status == 200, answer.body


def test_strict_leaves_no_original_value_and_the_key_nowhere(
    tmp_path: Path, recording_target: RecordingTarget
):
    proc = start(tmp_path, recording_target, "first", KEY)
    try:
        send_all(proc)
        metrics = post(proc.url + "/metrics", method="GET").body
    finally:
        assert proc.terminate() == 0
    received = b"".join(e.body for e in recording_target.events).decode()
    originals = set().union(*(touched_values(r) for r in records()))
    assert len(originals) > 30  # the samples do carry personal data
    leaked = sorted(v for v in originals if v in received)
    assert leaked == []
    assert not EMAIL.search(received)
    # identifiers became their HMAC: the same person, the same hash
    by_id = {e.id: e for e in recording_target.events}
    for record in records():
        event = by_id[record["data"]["log_id"]]
        if record["data"].get("user_name"):
            assert event.data["user_name"] == mac(record["data"]["user_name"])
        if record["data"].get("user_id"):
            assert event.attributes["subject"] == mac(record["data"]["user_id"])
        assert "ip" not in event.data and "user_agent" not in event.data
    for text in (received, metrics.decode(), proc.log()):
        assert KEY not in text
    assert "listening on" in proc.log()


def test_same_key_same_hash_across_a_restart_other_key_other_hash(
    tmp_path: Path, recording_target: RecordingTarget
):
    def hashes(name: str, key: str) -> dict[str, str]:
        recording_target.events.clear()
        proc = start(tmp_path, recording_target, name, key)
        try:
            send_all(proc)
        finally:
            proc.terminate()
        return {e.id: e.data["user_name"] for e in recording_target.events if "user_name" in e.data}

    first = hashes("one", KEY)
    again = hashes("two", KEY)
    other = hashes("three", OTHER_KEY)
    assert len(first) > 20
    assert again == first
    assert all(other[i] != first[i] for i in first)


def test_validate_needs_a_key_of_16_bytes_and_never_prints_it(tmp_path: Path):
    def validate(key: str | None):
        pii: dict[str, str] = {"preset": "strict"}
        if key is not None:
            pii["key"] = key
        doc = connector_doc("a0", "auth0", {"pii": pii}, {"type": "stdout"})
        manifest = write_manifest(tmp_path / "v.yaml", [doc])
        return cli("validate", str(manifest))

    good = validate(KEY)
    assert good.returncode == 0, good.stderr
    assert KEY not in good.stdout + good.stderr
    short = validate("short-key-15byt")
    assert short.returncode == 1
    assert "spec.source.config.pii.key" in short.stderr
    assert "short-key-15byt" not in short.stdout + short.stderr
    assert "Traceback" not in short.stderr
    missing = validate(None)
    assert missing.returncode == 1 and "key" in missing.stderr
    for entry in (
        {"hash": {"paths": ["data.a"], "key": "too-short"}},
        {"hash": {"paths": ["id"], "key": KEY}},
    ):
        doc = connector_doc("a0", "auth0", {}, {"type": "stdout"}, transforms=[entry])
        out = cli("validate", str(write_manifest(tmp_path / "t.yaml", [doc])))
        assert out.returncode == 1, out.stdout
        assert "spec.transforms[0].hash" in out.stderr, out.stderr
        assert "too-short" not in out.stdout + out.stderr and KEY not in out.stdout + out.stderr
