"""Issue 13 points 3 and 8: a full or read-only data dir, said plainly, and readiness that
follows it: a real runtime process on a small tmpfs of its own (needs root for ``mount``)."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from connector_runtime_auth0.testing import batch, jsonl

from connector_runtime.spool.datadir import cause_of, is_storage_failure
from connector_runtime.testing import LoopThread, RecordingTarget, connector_doc, free_port, post
from tests.procs import RuntimeProcess, cli, write_manifest


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 32 MiB tmpfs mounted at a fresh directory; unmounted after the test."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    where = tmp_path / "fs"
    where.mkdir()
    done = _mount("-t", "tmpfs", "-o", "size=32m", "tmpfs", str(where))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _fill(directory: Path) -> Path:
    """Write a file into ``directory`` until its file system has no byte left."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as f:
        for chunk in (1 << 20, 4096, 1):
            try:
                while True:
                    f.write(bytes(chunk))
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


def _manifest(tmp_path: Path, target: RecordingTarget) -> Path:
    doc = connector_doc(
        "a0",
        "auth0",
        {},
        {"type": "http", "config": {"url": target.url, "mode": "batch", "timeout": 2}},
        delivery={"retry": {"initialBackoff": "50ms", "maxBackoff": "200ms"}},
    )
    return write_manifest(tmp_path / "m.yaml", [doc])


def _ids(records: list[dict]) -> set[str]:
    return {r["log_id"] for r in records}


def test_full_disk_makes_readyz_unready_with_the_reason_and_it_recovers_alone(
    small_fs: Path, tmp_path: Path, cr_loop: LoopThread
):
    target = RecordingTarget(cr_loop, port=free_port())  # down until the end
    # The data dir is the tmpfs itself; the runtime's stderr goes next to it, not into it.
    proc = RuntimeProcess(_manifest(tmp_path, target), small_fs).start()
    first, second = batch(100, prefix="first"), batch(100, prefix="second")
    try:
        assert post(proc.url + "/a0", jsonl(first)).status == 200
        assert post(proc.url + "/readyz", method="GET").status == 200
        filler = _fill(small_fs)

        refused = post(proc.url + "/a0", jsonl(second))
        assert refused.status == 503
        assert refused.json() == {"error": "spool unavailable: no space left on device"}
        assert int(refused.headers["retry-after"]) >= 1
        ready = post(proc.url + "/readyz", method="GET")
        assert ready.status == 503
        reason = f"spool cannot be written: no space left on device (data dir {small_fs})"
        assert ready.json() == {"ready": False, "reasons": [reason]}
        metrics = post(proc.url + "/metrics", method="GET").body.decode()
        assert "connector_runtime_ready 0.0" in metrics

        filler.unlink()  # space is back: readiness follows without any request
        deadline = time.monotonic() + 20
        while post(proc.url + "/readyz", method="GET").status != 200:
            assert time.monotonic() < deadline, proc.log()
            time.sleep(0.2)
        assert (
            "connector_runtime_ready 1.0" in post(proc.url + "/metrics", method="GET").body.decode()
        )
        assert post(proc.url + "/a0", jsonl(second)).status == 200

        target.start()  # everything acknowledged arrives
        assert target.wait_for_ids(_ids(first) | _ids(second)) == set()
    finally:
        code = proc.terminate()
        target.stop()
    assert code == 0
    log = proc.log()
    assert "503 spool unavailable: no space left on device" in log
    assert "spool can be written again" in log
    assert "Errno 28" not in log and "Traceback" not in log, log


def test_read_only_data_dir_names_the_cause_at_start_up(
    small_fs: Path, tmp_path: Path, cr_loop: LoopThread
):
    target = RecordingTarget(cr_loop, port=free_port())
    manifest = _manifest(tmp_path, target)
    records = batch(20, prefix="ro")
    proc = RuntimeProcess(manifest, small_fs).start()
    try:
        assert post(proc.url + "/a0", jsonl(records)).status == 200
    finally:
        assert proc.terminate() == 0
    remounted = _mount("-o", "remount,ro", str(small_fs))
    if remounted.returncode != 0:
        pytest.skip(f"cannot remount the tmpfs read-only: {remounted.stderr.strip()}")
    run = cli("run", str(manifest), "--port", str(free_port()), "--data-dir", str(small_fs))
    assert run.returncode == 3, run.stderr
    logged = [json.loads(line) for line in run.stderr.splitlines()]  # run logs JSON
    errors = [r["msg"] for r in logged if r["level"] == "error"]
    assert errors == [
        f"spool {small_fs}/spool.db cannot be opened:"
        f" the data dir {small_fs} is on a read-only file system"
    ], run.stderr
    assert "Traceback" not in run.stderr
    assert _mount("-o", "remount,rw", str(small_fs)).returncode == 0
    target.start()  # writable again: the spool held on to its events
    proc = RuntimeProcess(manifest, small_fs).start()
    try:
        assert target.wait_for_ids(_ids(records)) == set()
    finally:
        assert proc.terminate() == 0
        target.stop()


def test_storage_causes_are_named_without_errno_noise(tmp_path: Path):
    assert cause_of(OSError(errno.ENOSPC, "No space left on device")) == "no space left on device"
    assert cause_of(OSError(errno.EROFS, "Read-only file system")) == "read-only file system"
    assert is_storage_failure(OSError(errno.EIO, "x"))
    assert not is_storage_failure(OSError(errno.ENOENT, "x"))
    conn = sqlite3.connect(tmp_path / "full.db")
    conn.execute("PRAGMA max_page_count = 2")
    with pytest.raises(sqlite3.Error) as full:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES (zeroblob(100000))")
    conn.close()
    assert cause_of(full.value) == "no space left on device"
    assert is_storage_failure(full.value)
