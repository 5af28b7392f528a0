"""Issue 3: nothing acknowledged is lost — spool, retries, dead letters, dedupe, quota."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from connector_runtime_auth0.testing import batch, jsonl, record

from connector_runtime.testing import RecordingTarget, RunningRuntime, connector_doc, post
from tests.procs import RuntimeProcess, cli, write_manifest

Factory = Callable[..., RunningRuntime]


def doc(target: RecordingTarget, ack: str = "durable", mode: str = "batch", **delivery):
    return connector_doc(
        "a0",
        "auth0",
        {},
        {"type": "http", "config": {"url": target.url, "mode": mode, "timeout": 2}},
        delivery={
            "ack": ack,
            "retry": {"initialBackoff": "50ms", "maxBackoff": "200ms"},
            **delivery,
        },
    )


def test_durable_acknowledges_while_the_target_is_down_and_delivers_later(
    runtime_factory: Factory, recording_target: RecordingTarget
):
    recording_target.status = 503
    rt = runtime_factory([doc(recording_target)])
    url = rt.connector_url("a0")
    sent = []
    for n in range(20):
        records = batch(10, prefix=f"down{n:02d}-")
        sent += [r["log_id"] for r in records]
        r = post(url, jsonl(records))
        assert r.status == 200
        assert r.json()["accepted"] == 10
    time.sleep(0.3)
    assert recording_target.events == []
    recording_target.status = 200
    got = recording_target.wait_for(len(sent))
    assert sorted(e.id for e in got) == sorted(sent)
    # Spool order per connector is kept.
    assert [e.id for e in got] == sent


def test_redelivery_after_a_restart_emits_nothing_new(
    runtime_factory: Factory, recording_target: RecordingTarget, tmp_path: Path
):
    data = tmp_path / "spool"
    first = runtime_factory([doc(recording_target)], data_dir=data)
    body = jsonl(batch(25, prefix="again-"))
    assert post(first.connector_url("a0"), body).json()["accepted"] == 25
    recording_target.wait_for(25)
    first.stop()
    second = runtime_factory([doc(recording_target)], data_dir=data)
    r = post(second.connector_url("a0"), body)
    assert r.json() == {"accepted": 0, "filtered": 0, "duplicates": 25}
    time.sleep(0.3)
    assert len(recording_target.events) == 25


def test_an_id_is_remembered_for_the_window_and_forgotten_two_rotations_later(
    runtime_factory: Factory, recording_target: RecordingTarget
):
    rt = runtime_factory([doc(recording_target, dedupe={"window": "2s"})])
    body = jsonl(batch(3, prefix="win-"))
    url = rt.connector_url("a0")
    assert post(url, body).json()["accepted"] == 3
    started = time.monotonic()
    assert post(url, body).json()["duplicates"] == 3
    answer = {}
    while time.monotonic() - started < 12:
        time.sleep(0.5)
        answer = post(url, body).json()
        if answer["accepted"]:
            break
    # Forgotten after at least the window, at most twice it plus the checks' granularity.
    assert answer == {"accepted": 3, "filtered": 0, "duplicates": 0}
    assert 2 <= time.monotonic() - started < 8
    assert len(recording_target.wait_for(6)) == 6


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


def test_quota_answers_503_with_retry_after_and_readyz_turns_unready(
    runtime_factory: Factory, recording_target: RecordingTarget
):
    recording_target.status = 503
    rt = runtime_factory([doc(recording_target, quota={"maxEvents": 50})])
    url = rt.connector_url("a0")
    assert post(url, jsonl(batch(30, prefix="q1-"))).status == 200
    assert post(url, jsonl(batch(20, prefix="q2-"))).status == 200
    r = post(url, jsonl(batch(10, prefix="q3-")))
    assert r.status == 503
    assert int(r.headers["retry-after"]) >= 1
    assert "quota" in r.json()["error"]
    ready = post(rt.url + "/readyz", method="GET")
    assert ready.status == 503 and ready.json()["ready"] is False
    assert any("quota" in reason for reason in ready.json()["reasons"])
    recording_target.status = 200
    recording_target.wait_for(50)
    deadline = time.monotonic() + 10
    while post(rt.url + "/readyz", method="GET").status != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert post(rt.url + "/readyz", method="GET").status == 200
    assert post(url, jsonl(batch(10, prefix="q3-"))).status == 200
    assert len(recording_target.wait_for(60)) == 60


@pytest.mark.parametrize(
    ("ack", "down_status", "delivered_later"),
    [("durable", 200, True), ("received", 200, True), ("delivered", 503, False)],
)
def test_each_ack_policy_answers_as_its_table_says(
    runtime_factory: Factory,
    recording_target: RecordingTarget,
    ack,
    down_status,
    delivered_later,
):
    recording_target.status = 503
    rt = runtime_factory([doc(recording_target, ack=ack)])
    r = post(rt.connector_url("a0"), jsonl(batch(5)))
    assert r.status == down_status
    if down_status == 503:
        assert "retry-after" in r.headers
    recording_target.status = 200
    time.sleep(0.5)
    assert len(recording_target.events) == (5 if delivered_later else 0)
    r = post(rt.connector_url("a0"), jsonl(batch(5)))
    assert r.status == 200
    assert len(recording_target.wait_for(5)) == 5


def test_unwritable_spool_answers_503_never_2xx(tmp_path: Path, cr_loop):
    import sqlite3

    from connector_runtime.config.model import DeliverySpec
    from connector_runtime.errors import Unavailable
    from connector_runtime.ingest.handoffs import DrainRate, DurableHandoff, Quota
    from connector_runtime.spool.queues import SpoolQueue
    from connector_runtime.spool.store import Spool

    spool = Spool(tmp_path / "spool.db")
    # Fill the database to its page limit: SQLite then reports "database or disk is full".
    # (Payloads go to segment files; the long ids fill the dedupe table in the database.)
    spool.submit(lambda c: c.execute("PRAGMA max_page_count = 40")).result()
    handoff_queue = SpoolQueue(spool, "a0")

    async def run() -> list[str]:
        import asyncio

        handoff = DurableHandoff(
            spool, handoff_queue, Quota(DeliverySpec()), DrainRate(), asyncio.Event()
        )
        from connector_runtime.events import make_event

        outcomes = []
        for n in range(50):
            events = [
                make_event(id=f"{n}-{i}-" + "x" * 900, source="/s", type="t", data=b"1")
                for i in range(20)
            ]
            try:
                await handoff.take(events, "")
                outcomes.append("ok")
            except Unavailable as exc:
                outcomes.append(exc.reason)
        return outcomes

    outcomes = cr_loop.run(run())
    spool.close()
    failures = [o for o in outcomes if o != "ok"]
    assert failures, "the spool never filled up"
    assert all(f == "spool unavailable: no space left on device" for f in failures)
    # Whatever was acknowledged is in the file.
    conn = sqlite3.connect(tmp_path / "spool.db")
    (stored,) = conn.execute("SELECT coalesce(sum(count), 0) FROM batches").fetchone()
    assert stored == 20 * outcomes.count("ok")


# -- real processes, real faults ----------------------------------------------------


def _manifest(tmp_path: Path, target_url: str, mode: str = "batch") -> Path:
    return write_manifest(
        tmp_path / "m.yaml",
        [
            connector_doc(
                "a0",
                "auth0",
                {},
                {"type": "http", "config": {"url": target_url, "mode": mode, "timeout": 2}},
                delivery={"retry": {"initialBackoff": "50ms", "maxBackoff": "500ms"}},
            )
        ],
    )


@pytest.mark.slow
def test_kill_9_at_random_points_loses_no_acknowledged_event(
    recording_target: RecordingTarget, tmp_path: Path
):
    manifest = _manifest(tmp_path, recording_target.url)
    data = tmp_path / "data"
    acked: list[str] = []
    rng = random.Random(7)
    counter = iter(range(10**9))
    for _ in range(6):
        proc = RuntimeProcess(manifest, data).start()
        stop = threading.Event()

        def sender(proc: RuntimeProcess = proc, stop: threading.Event = stop) -> None:
            while not stop.is_set():
                n = next(counter)
                records = batch(20, prefix=f"k{n:05d}-")
                try:
                    r = post(proc.url + "/a0", jsonl(records), timeout=5)
                except OSError:
                    continue
                if r.status == 200:
                    acked.extend(x["log_id"] for x in records)

        threads = [threading.Thread(target=sender) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.3, 1.2))
        proc.kill9()
        stop.set()
        for t in threads:
            t.join()
    final = RuntimeProcess(manifest, data).start()
    try:
        assert acked, "no request was acknowledged"
        missing = recording_target.wait_for_ids(set(acked), timeout=60)
        assert not missing, f"{len(missing)} of {len(set(acked))} acknowledged events lost"
    finally:
        final.stop()


@pytest.mark.slow
def test_memory_does_not_grow_with_the_backlog_while_the_target_is_down(
    recording_target: RecordingTarget, tmp_path: Path
):
    recording_target.status = 503
    proc = RuntimeProcess(_manifest(tmp_path, recording_target.url), tmp_path / "data").start()
    try:
        url = proc.url + "/a0"

        def send(n: int, tag: str) -> None:
            for i in range(n):
                assert post(url, jsonl(batch(100, prefix=f"{tag}{i:05d}-"))).status == 200

        send(50, "warm")
        before = proc.rss_kib()
        send(400, "more")  # 40,000 more events waiting in the spool
        after = proc.rss_kib()
        assert after - before < 20 * 1024, f"RSS grew {before} -> {after} KiB"
        stats = json.loads(
            cli("spool", "stats", "--data-dir", str(tmp_path / "data"), "--json").stdout
        )
        assert stats[0]["depth"] == 45_000
        recording_target.status = 200
        assert len(recording_target.wait_for(45_000, timeout=60)) == 45_000
    finally:
        proc.stop()


def test_sigterm_finishes_in_flight_work_and_exits_0(
    recording_target: RecordingTarget, tmp_path: Path
):
    proc = RuntimeProcess(_manifest(tmp_path, recording_target.url), tmp_path / "data").start()
    assert post(proc.url + "/a0", jsonl(batch(10))).status == 200
    assert proc.terminate() == 0
    assert "stopped" in proc.log()
    assert len(recording_target.wait_for(10)) == 10


def test_dedupe_max_entries_0_turns_dedupe_off(
    runtime_factory: Factory, recording_target: RecordingTarget
):
    rt = runtime_factory([doc(recording_target, dedupe={"maxEntries": 0})])
    body = jsonl(batch(3, prefix="nodedupe-"))
    assert post(rt.connector_url("a0"), body).json()["accepted"] == 3
    assert post(rt.connector_url("a0"), body).json() == {
        "accepted": 3,
        "filtered": 0,
        "duplicates": 0,
    }
    assert len(recording_target.wait_for(6)) == 6
