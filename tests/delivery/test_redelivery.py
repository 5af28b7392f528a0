"""Issue 13, point 7: what a crash sends again is at most what was in flight at the target.

A real runtime process delivers a backlog to a slow recording target (each answer held
back, so POSTs are in flight most of the time); it is killed with SIGKILL at a random
point of the delivery and started again on the same data dir. Every event the target then
receives a second time was sent again because of the kill; the README states how many that
can be at most: the target's ``maxConnections`` POSTs (1 event each in binary mode,
``maxBatch`` each in batch mode).
"""

from __future__ import annotations

import random
import statistics
import time
from pathlib import Path

import pytest
from connector_runtime_auth0.testing import batch, jsonl

from connector_runtime.testing import RecordingTarget, connector_doc, post
from tests.procs import RuntimeProcess, write_manifest

KILLS = 4
"""Kill points per mode."""
ROWS = 100
"""Events per request (one spool row each)."""


def _manifest(path: Path, url: str, mode: str, connections: int, max_batch: int) -> Path:
    config = {"url": url, "mode": mode, "timeout": 30, "maxConnections": connections}
    if mode == "batch":
        config["maxBatch"] = max_batch
    return write_manifest(
        path,
        [
            connector_doc(
                "a0",
                "auth0",
                {},
                {"type": "http", "config": config},
                delivery={"timeout": 60},
            )
        ],
    )


def kill_during_delivery(
    target: RecordingTarget, manifest: Path, data: Path, backlog: int, tag: str, rng: random.Random
) -> int:
    """Fill the spool with ``backlog`` events, kill the runtime once the target received a
    random share of them, start it again, let it deliver everything; returns how many events
    the target received more than once."""
    proc = RuntimeProcess(manifest, data).start()
    ids: set[str] = set()
    try:
        for n in range(backlog // ROWS):
            records = batch(ROWS, prefix=f"{tag}-{n:04d}-")
            assert post(proc.url + "/a0", jsonl(records)).status == 200
            ids.update(r["log_id"] for r in records)
        share = rng.uniform(0.15, 0.75)
        deadline = time.monotonic() + 60
        while sum(e.id in ids for e in list(target.events)) < share * backlog:
            assert time.monotonic() < deadline, "the backlog is not being delivered"
            time.sleep(0.005)
        proc.kill9()
    finally:
        proc.stop()
    again = RuntimeProcess(manifest, data).start()
    try:
        assert not target.wait_for_ids(ids, timeout=120), "acknowledged events were lost"
    finally:
        again.stop()
    got = [e.id for e in list(target.events) if e.id in ids]
    return len(got) - len(set(got))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "connections", "max_batch", "delay", "backlog"),
    [("batch", 4, 50, 0.05, 5000), ("binary", 4, 1, 0.005, 1000)],
)
def test_a_kill_9_sends_again_at_most_what_was_in_flight(
    recording_target: RecordingTarget,
    tmp_path: Path,
    mode: str,
    connections: int,
    max_batch: int,
    delay: float,
    backlog: int,
):
    recording_target.delay = delay
    manifest = _manifest(tmp_path / "m.yaml", recording_target.url, mode, connections, max_batch)
    bound = connections * max_batch  # the README: maxConnections POSTs' worth of events
    rng = random.Random(13)
    sent_again = [
        kill_during_delivery(recording_target, manifest, tmp_path / "data", backlog, f"k{k}", rng)
        for k in range(KILLS)
    ]
    print(
        f"{mode}: sent again after each kill {sent_again} (max {max(sent_again)}, median"
        f" {statistics.median(sent_again)}); bound {bound}"
    )
    assert max(sent_again) <= bound, f"sent again {sent_again}, more than {bound}"
