"""Issue 3, the ack policies: what a 2xx means under ``durable``, ``received`` and
``delivered`` while the target is down, the spool quota, and a spool that cannot be
written (503, never a 2xx)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from connector_runtime_auth0.testing import batch, jsonl

from connector_runtime.testing import RecordingTarget, RunningRuntime, post
from tests.connectors import doc

Factory = Callable[..., RunningRuntime]


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


def test_ack_delivered_passes_on_the_targets_retry_after(
    runtime_factory: Factory, recording_target: RecordingTarget
):
    rt = runtime_factory([doc(recording_target, ack="delivered")])
    recording_target.status = 503
    recording_target.headers = {"Retry-After": "17"}
    r = post(rt.connector_url("a0"), jsonl(batch(3)))
    assert (r.status, r.headers["retry-after"]) == (503, "17")
    recording_target.headers = {"Retry-After": "86400"}  # capped: a sender should come back
    r = post(rt.connector_url("a0"), jsonl(batch(3)))
    assert (r.status, r.headers["retry-after"]) == (503, "300")
    recording_target.headers = {}  # no wait named: the default
    r = post(rt.connector_url("a0"), jsonl(batch(3)))
    assert (r.status, r.headers["retry-after"]) == (503, "5")
    assert recording_target.events == []


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
