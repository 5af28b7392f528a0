"""The spool on its own: group commits, cancelled waiters, pruning the dedupe window."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from connector_runtime.events import make_event
from connector_runtime.spool import Spool, prune_job, seen_ids


def events(prefix: str, n: int):
    return [make_event(id=f"{prefix}{i}", source="/s", type="t", data=b"{}") for i in range(n)]


def test_a_cancelled_waiter_does_not_stop_the_writer(tmp_path: Path, cr_loop):
    spool = Spool(tmp_path / "spool.db")

    async def scenario() -> tuple[int, int]:
        task = asyncio.ensure_future(spool.run(Spool.append_job("c", events("a", 5), True)))
        await asyncio.sleep(0)
        task.cancel()
        appended = await spool.run(Spool.append_job("c", events("b", 5), True))
        return appended.stored, appended.duplicates

    assert cr_loop.run(scenario()) == (5, 0)
    # The writer is still alive and the cancelled append was committed all the same.
    assert (
        spool.submit(lambda c: c.execute("SELECT sum(count) FROM batches").fetchone()[0]).result(5)
        == 10
    )
    spool.close()


def test_group_commit_takes_every_waiting_job(tmp_path: Path):
    spool = Spool(tmp_path / "spool.db")
    futures = [spool.submit(Spool.append_job("c", events(f"g{n}-", 3), True)) for n in range(50)]
    assert [f.result(10)[:2] for f in futures] == [(3, 0)] * 50
    assert spool.commits < 50
    spool.close()


def test_dedupe_window_is_pruned_by_age_and_count(tmp_path: Path):
    spool = Spool(tmp_path / "spool.db")
    old = time.time() - 10 * 86400
    spool.submit(Spool.append_job("c", events("old", 30), True, now=old)).result(5)
    spool.submit(Spool.append_job("c", events("new", 30), True)).result(5)
    removed = spool.submit(prune_job(window=86400, max_entries=20, total=60)).result(5)
    assert removed == 40  # 30 by age, then the 10 oldest past the cap
    left = spool.read(lambda c: seen_ids(c, "c", [f"new{i}" for i in range(30)]))
    assert len(left) == 20
    assert spool.read(lambda c: seen_ids(c, "c", ["old1"])) == set()
    spool.close()
    conn = sqlite3.connect(tmp_path / "spool.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
