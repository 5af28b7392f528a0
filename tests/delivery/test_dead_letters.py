"""Issue 3, dead letters: permanent rejections and exhausted attempts end up in the
dead-letter store with the target's status and reason; ``dlq redrive`` and ``dlq purge``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from connector_runtime_auth0.testing import batch, jsonl, record

from connector_runtime.testing import RecordingTarget, RunningRuntime, post
from tests.connectors import doc
from tests.procs import cli

Factory = Callable[..., RunningRuntime]


def test_permanent_rejections_go_to_the_dead_letter_store_and_can_be_redriven(
    runtime_factory: Factory, recording_target: RecordingTarget, tmp_path: Path
):
    data = tmp_path / "spool"
    broken = {"bad-1", "bad-2"}
    recording_target.respond = lambda e: 400 if e.id in broken else 200
    rt = runtime_factory([doc(recording_target, mode="batch")], data_dir=data)
    records = [record("good-1"), record("bad-1"), record("good-2"), record("bad-2")]
    assert post(rt.connector_url("a0"), jsonl(records)).status == 200
    recording_target.wait_for(2)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        listing = cli("dlq", "list", "--data-dir", str(data), "--json")
        rows = json.loads(listing.stdout)
        if len(rows) == 2:
            break
        time.sleep(0.05)
    assert sorted(r["eventId"] for r in rows) == ["bad-1", "bad-2"]
    assert all(r["status"] == 400 for r in rows)
    assert all("HTTP 400" in r["reason"] for r in rows)
    shown = json.loads(cli("dlq", "show", str(rows[0]["id"]), "--data-dir", str(data)).stdout)
    assert json.loads(shown["event"])["id"] == rows[0]["eventId"]
    stats = json.loads(cli("spool", "stats", "--data-dir", str(data), "--json").stdout)
    assert stats[0]["deadLettered"] == 2 and stats[0]["delivered"] == 2
    # The target gets fixed; redrive delivers them.
    recording_target.respond = None
    out = cli("dlq", "redrive", "--data-dir", str(data), "--connector", "a0")
    assert out.returncode == 0 and "2 event" in out.stdout
    got = recording_target.wait_for(4)
    assert sorted(e.id for e in got) == ["bad-1", "bad-2", "good-1", "good-2"]
    assert json.loads(cli("dlq", "list", "--data-dir", str(data), "--json").stdout) == []


def test_purge_drops_dead_letters_deliberately(
    runtime_factory: Factory, recording_target: RecordingTarget, tmp_path: Path
):
    data = tmp_path / "spool"
    recording_target.status = 422
    rt = runtime_factory([doc(recording_target, mode="binary")], data_dir=data)
    assert post(rt.connector_url("a0"), jsonl(batch(3))).status == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if len(json.loads(cli("dlq", "list", "--data-dir", str(data), "--json").stdout)) == 3:
            break
        time.sleep(0.05)
    refused = cli("dlq", "purge", "--data-dir", str(data))
    assert refused.returncode == 2
    out = cli("dlq", "purge", "--data-dir", str(data), "--connector", "a0")
    assert out.returncode == 0 and "purged: 3" in out.stdout


def test_exhausted_attempts_are_dead_lettered_with_the_last_reason(
    runtime_factory: Factory, recording_target: RecordingTarget, tmp_path: Path
):
    data = tmp_path / "spool"
    recording_target.status = 503
    d = doc(recording_target)
    d["spec"]["delivery"]["retry"]["attempts"] = 3
    rt = runtime_factory([d], data_dir=data)
    assert post(rt.connector_url("a0"), jsonl(batch(2))).status == 200
    deadline = time.monotonic() + 10
    rows: list = []
    while time.monotonic() < deadline and len(rows) < 2:
        rows = json.loads(cli("dlq", "list", "--data-dir", str(data), "--json").stdout)
        time.sleep(0.05)
    assert len(rows) == 2
    assert all(r["reason"].startswith("gave up after 3 attempts: HTTP 503") for r in rows)
    assert recording_target.requests >= 3


def test_ack_delivered_rejections_are_dead_letters_with_the_targets_status(
    runtime_factory: Factory, recording_target: RecordingTarget, tmp_path: Path
):
    """``ack: delivered`` dead-letters on the request's path; the status is the one the
    target answered, carried as a field, and ``dlq list`` shows it as before."""
    data = tmp_path / "spool"
    recording_target.respond = lambda e: 400 if e.id == "bad-1" else 200
    rt = runtime_factory([doc(recording_target, ack="delivered", mode="binary")], data_dir=data)
    assert post(rt.connector_url("a0"), jsonl([record("good-1"), record("bad-1")])).status == 200
    rows = json.loads(cli("dlq", "list", "--data-dir", str(data), "--json").stdout)
    assert [(r["eventId"], r["status"], r["reason"]) for r in rows] == [
        ("bad-1", 400, "HTTP 400: rejected by test target")
    ]
    text = cli("dlq", "list", "--data-dir", str(data)).stdout
    assert "status=400\tHTTP 400: rejected by test target" in text
