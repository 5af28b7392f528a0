"""Issue 3: nothing acknowledged is lost, with real runtime processes and real faults:
``kill -9`` at random points, a backlog that stays on disk while the target is down (memory
stays flat), SIGTERM finishing the work in flight. (The ack policies and dedupe are tested
in tests/ingest/, dead letters in tests/delivery/.)"""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path

import pytest
from connector_runtime_auth0.testing import batch, jsonl

from connector_runtime.testing import RecordingTarget, connector_doc, post
from tests.procs import RuntimeProcess, cli, write_manifest


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
