"""What SQLite settings cost per record, in a spool-shaped workload (no runtime involved).

Each transaction appends 4 request rows (one ~110 KB JSON Lines payload each, like the
spool's ``batches``) and 100 ``seen`` ids per row (a WITHOUT ROWID table keyed on connector
and id); every other transaction deletes the rows before the last 8, as the dispatcher
does after delivery. WAL, ``synchronous=FULL``, one connection.

It prints CPU and wall microseconds per record for a few ``page_size`` /
``secure_delete`` combinations, twice each, alternating, so a busy moment of the machine
does not favour one of them. (The system SQLite here is built with
``SQLITE_SECURE_DELETE``: ``PRAGMA secure_delete`` is 1 unless turned off.)

    python bench/spool_pragmas.py
"""

from __future__ import annotations

import resource
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from records import BodyMaker

SETTINGS = ((4096, "ON"), (4096, "OFF"), (16384, "OFF"), (65536, "OFF"))


def run(bodies: list[bytes], page_size: int, secure: str, txns: int = 300) -> tuple[float, float]:
    where = Path(tempfile.mkdtemp(prefix="bench-pragmas-"))
    try:
        conn = sqlite3.connect(where / "spool.db", isolation_level=None)
        conn.execute(f"PRAGMA page_size={page_size}")
        conn.execute(f"PRAGMA secure_delete={secure}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE batches (seq INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
        conn.execute(
            "CREATE TABLE seen (connector TEXT, id TEXT, at INTEGER,"
            " PRIMARY KEY (connector, id)) WITHOUT ROWID"
        )
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        rows = 0
        for t in range(txns):
            conn.execute("BEGIN IMMEDIATE")
            for _ in range(4):
                conn.execute("INSERT INTO batches (payload) VALUES (?)", (bodies[rows % 64],))
                ids = [(f"{rows:020d}{k:06d}",) for k in range(100)]
                conn.executemany("INSERT INTO seen VALUES ('auth0', ?, 0)", ids)
                rows += 1
            conn.execute("COMMIT")
            if t % 2:
                conn.execute("DELETE FROM batches WHERE seq <= ?", (rows - 8,))
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        conn.close()
    finally:
        shutil.rmtree(where, ignore_errors=True)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    records = rows * 100
    return cpu / records * 1e6, wall / records * 1e6


def main() -> None:
    maker = BodyMaker(100, 0.0)
    bodies = [maker.body()[0] for _ in range(64)]
    print(f"SQLite {sqlite3.sqlite_version}")
    for _ in range(2):
        for page_size, secure in SETTINGS:
            cpu, wall = run(bodies, page_size, secure)
            print(
                f"page_size {page_size:>5}  secure_delete {secure:<3}:"
                f" {cpu:5.1f} us CPU, {wall:5.1f} us wall per record"
            )


if __name__ == "__main__":
    main()
