"""``run --workers N``: processes sharing one port, each with its own spool shard."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from connector_runtime_auth0.testing import batch, jsonl

from connector_runtime.testing import (
    RecordingTarget,
    connector_doc,
    free_port,
    post,
    wait_healthy,
)
from tests.procs import cli, write_manifest


def start_two_workers(
    tmp_path: Path,
    target: RecordingTarget,
    mode: str,
    delivery: dict[str, Any] | None = None,
) -> tuple[subprocess.Popen[str], int, TextIO]:
    """``run --workers 2`` of one auth0 connector ``w`` into ``target``; its stderr goes to
    ``tmp_path/err.log``. Returns the process, its port and the open log file."""
    connector = connector_doc(
        "w", "auth0", {}, {"type": "http", "config": {"url": target.url, "mode": mode}}, delivery
    )
    manifest = write_manifest(tmp_path / "m.yaml", [connector])
    port = free_port()
    log = open(tmp_path / "err.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "connector_runtime.cli", "run", str(manifest)),
            *("--port", str(port), "--workers", "2", "--data-dir", str(tmp_path / "data")),
            *("--log-format", "text"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
    )
    return proc, port, log


def test_two_workers_share_the_port_and_keep_their_own_shards(
    recording_target: RecordingTarget, tmp_path: Path
):
    recording_target.respond = lambda e: 400 if e.id.endswith("-000000") else 200
    proc, port, log = start_two_workers(tmp_path, recording_target, "binary")
    try:
        wait_healthy(f"http://127.0.0.1:{port}")
        wait_listening(port)
        for n in range(60):  # each request on a new connection: the kernel spreads them
            assert post(f"http://127.0.0.1:{port}/w", jsonl(batch(5, f"r{n:03d}-"))).status == 200
        recording_target.wait_for(240)
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        log.close()
    assert len(recording_target.events) == 240
    shards = sorted(p.parent.name for p in (tmp_path / "data").glob("shard-*/spool.db"))
    assert shards == ["shard-0", "shard-1"]
    stats = json.loads(cli("spool", "stats", "--data-dir", str(tmp_path / "data"), "--json").stdout)
    assert stats == [
        {
            "connector": "w",
            "depth": 0,
            "oldestAgeSeconds": None,
            "accepted": 300,
            "delivered": 240,
            "retried": 0,
            "deadLettered": 60,
            "deadLettersNow": 60,
        }
    ]
    per_shard = [
        json.loads(
            cli("spool", "stats", "--data-dir", str(tmp_path / "data" / s), "--json").stdout
        )[0]["accepted"]
        for s in shards
    ]
    assert all(n > 0 for n in per_shard), per_shard  # both workers took requests
    listed = json.loads(cli("dlq", "list", "--data-dir", str(tmp_path / "data"), "--json").stdout)
    assert len(listed) == 60 and all(r["id"].startswith("shard-") for r in listed)
    one = cli("dlq", "show", listed[0]["id"], "--data-dir", str(tmp_path / "data"))
    assert json.loads(one.stdout)["eventId"] == listed[0]["eventId"]
    bad = cli("dlq", "show", "17", "--data-dir", str(tmp_path / "data"))
    assert bad.returncode == 2 and "SHARD:ID" in bad.stderr
    log_text = (tmp_path / "err.log").read_text()
    assert log_text.count("webhook URL") == 1


def wait_listening(port: int, workers: int = 2, timeout: float = 20) -> None:
    """Wait until ``workers`` sockets listen on ``port`` (each worker binds its own, with
    SO_REUSEPORT): before that, the kernel hands every connection to the ones that do."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listening = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                listening += state == "0A" and int(local.rsplit(":", 1)[1], 16) == port
        if listening >= workers:
            return
        time.sleep(0.05)
    raise AssertionError(f"{workers} workers did not listen on port {port} in {timeout}s")


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def test_a_killed_worker_is_started_again_and_delivers_what_it_acknowledged(
    recording_target: RecordingTarget, tmp_path: Path
):
    recording_target.respond = lambda e: 503  # hold everything in the shards for now
    delivery = {"retry": {"initialBackoff": "100ms", "maxBackoff": "300ms"}}
    proc, port, log = start_two_workers(tmp_path, recording_target, "batch", delivery)
    try:
        wait_healthy(f"http://127.0.0.1:{port}")
        wait_listening(port)
        deadline = time.monotonic() + 10
        while len(_children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        first = _children(proc.pid)
        acked = set()
        for n in range(40):
            body = jsonl(batch(3, f"k{n:03d}-"))
            assert post(f"http://127.0.0.1:{port}/w", body).status == 200
            acked |= {f"k{n:03d}-{i:06d}" for i in range(3)}
        for shard in ("shard-0", "shard-1"):  # both workers hold acknowledged events
            stats = cli("spool", "stats", "--data-dir", str(tmp_path / "data" / shard), "--json")
            assert json.loads(stats.stdout)[0]["depth"] > 0
        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            now = _children(proc.pid)
            if len(now) == 2 and first[0] not in now:
                break
            time.sleep(0.1)
        assert len(now) == 2 and first[0] not in now and first[1] in now
        wait_healthy(f"http://127.0.0.1:{port}")
        recording_target.respond = lambda e: 200
        assert recording_target.wait_for_ids(acked, timeout=30) == set()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        log.close()
    assert code in (0, -9, 137), code  # the killed worker's code may surface
    assert "exited with code -9; starting it again" in (tmp_path / "err.log").read_text()
