"""The spool's format version: a new spool records it, and a runtime (or an admin command)
stops at start-up, with one line, on a spool of another version instead of misreading it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from connector_runtime.errors import SpoolError
from connector_runtime.spool.schema import FORMAT_VERSION
from connector_runtime.spool.store import Spool
from connector_runtime.testing import connector_doc, free_port
from tests.procs import RuntimeProcess, cli, write_manifest


def version_of(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def stamp(path: Path, version: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    conn.close()


def manifest(tmp_path: Path) -> Path:
    doc = connector_doc("a0", "auth0", {}, {"type": "stdout"})
    return write_manifest(tmp_path / "m.yaml", [doc])


def test_a_new_spool_records_format_version_1(tmp_path: Path):
    assert FORMAT_VERSION == 1
    data = tmp_path / "data"
    proc = RuntimeProcess(manifest(tmp_path), data).start()
    assert proc.terminate() == 0
    assert version_of(data / "spool.db") == 1
    Spool(tmp_path / "other.db").close()
    assert version_of(tmp_path / "other.db") == 1


def test_a_runtime_stops_at_start_up_on_a_spool_of_another_format_version(tmp_path: Path):
    data = tmp_path / "data"
    Spool(data / "spool.db").close()
    stamp(data / "spool.db", 7)
    run = cli("run", str(manifest(tmp_path)), "--port", str(free_port()), "--data-dir", str(data))
    assert run.returncode == 3, run.stderr
    message = (
        f"spool {data}/spool.db has format version 7, this runtime reads version 1: deliver"
        " its events with the runtime that wrote it (or move the data dir away) and start again"
    )
    logged = [json.loads(line) for line in run.stderr.splitlines()]  # run logs JSON
    assert [r["msg"] for r in logged if r["level"] == "error"] == [message], run.stderr
    assert "Traceback" not in run.stderr
    for command in (["dlq", "list"], ["spool", "stats"], ["spool", "check"], ["spool", "repair"]):
        admin = cli(*command, "--data-dir", str(data))
        assert admin.returncode == 3, (command, admin.stderr)
        assert admin.stderr.splitlines() == [f"error: {message}"], command
    assert version_of(data / "spool.db") == 7  # left as it was


def test_a_database_that_is_no_spool_is_not_taken_for_a_new_one(tmp_path: Path):
    path = tmp_path / "spool.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE batches (seq INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
    conn.commit()
    conn.close()
    with pytest.raises(SpoolError, match="has format version 0, this runtime reads version 1"):
        Spool(path)
    assert version_of(path) == 0
