"""The spool on its own: group commits, cancelled waiters, pruning the dedupe window."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from connector_runtime.events import make_event
from connector_runtime.spool.store import Spool, seen


def events(prefix: str, n: int):
    return [make_event(id=f"{prefix}{i}", source="/s", type="t", data=b"{}") for i in range(n)]


def test_a_cancelled_waiter_does_not_stop_the_writer(tmp_path: Path, cr_loop):
    spool = Spool(tmp_path / "spool.db")

    async def scenario() -> tuple[int, int]:
        task = asyncio.ensure_future(spool.run(spool.append_job("c", events("a", 5), True)))
        await asyncio.sleep(0)
        task.cancel()
        appended = await spool.run(spool.append_job("c", events("b", 5), True))
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
    futures = [spool.submit(spool.append_job("c", events(f"g{n}-", 3), True)) for n in range(50)]
    assert [f.result(10)[:2] for f in futures] == [(3, 0)] * 50
    assert spool.commits < 50
    spool.close()


def test_dedupe_window_remembers_ids_for_one_rotation_and_forgets_them_at_the_next(
    tmp_path: Path,
):
    spool = Spool(tmp_path / "spool.db")

    def append(prefix: str) -> tuple[int, int]:
        done = spool.submit(spool.append_job("c", events(prefix, 10), True)).result(5)
        return done.stored, done.duplicates

    assert append("a") == (10, 0)
    assert append("a") == (0, 10)
    spool.submit(lambda c: seen.rotate(c, time.time())).result(5)
    assert append("a") == (0, 10)  # the old generation is still looked up
    assert spool.read(lambda c: seen.seen_ids(c, "c", ["a1", "zz"])) == {"a1"}
    assert append("b") == (10, 0)
    spool.submit(lambda c: seen.rotate(c, time.time())).result(5)
    assert append("a") == (10, 0)  # two rotations later, "a" is forgotten
    assert append("b") == (0, 10)  # "b" came after the first: still known
    assert spool.read(seen.count_new) == 10
    spool.close()
    conn = sqlite3.connect(tmp_path / "spool.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA page_size").fetchone()[0] == 16384


def test_a_generation_rotates_when_it_is_as_old_as_the_window_or_holds_max_entries():
    start = 1_000_000.0
    assert not seen.due(start, 10, window=3600, max_entries=100, now=start + 3599)
    assert seen.due(start, 10, window=3600, max_entries=100, now=start + 3600)
    assert seen.due(start, 100, window=3600, max_entries=100, now=start + 1)
    assert not seen.due(start, 10**9, window=3600, max_entries=0, now=start + 1)


def test_ids_repeated_within_one_append_are_stored_once(tmp_path: Path):
    spool = Spool(tmp_path / "spool.db")
    batch = events("x", 3) + events("x", 2)
    done = spool.submit(spool.append_job("c", batch, True)).result(5)
    assert (done.stored, done.duplicates) == (3, 2)
    stored = spool.read(lambda c: c.execute("SELECT count FROM batches").fetchall())
    assert stored == [(3,)]
    spool.close()


def test_a_delivery_attempt_takes_at_most_max_batch_bytes_but_always_one_row(
    tmp_path: Path, cr_loop
):
    from connector_runtime.spool.queues import MAX_BATCH_BYTES, SpoolQueue

    spool = Spool(tmp_path / "spool.db")
    big = b'"' + b"x" * 100_000 + b'"'
    for n in range(6):  # rows of about 1 MB
        batch = [make_event(id=f"r{n}-{i}", source="/s", type="t", data=big) for i in range(10)]
        spool.submit(spool.append_job("c", batch, True)).result(5)
    head = cr_loop.run(SpoolQueue(spool, "c").head(5000))
    sizes = spool.read(lambda c: [r[0] for r in c.execute("SELECT bytes FROM batches")])
    assert len(head) == 3 and sum(sizes[:3]) <= MAX_BATCH_BYTES < sum(sizes[:4])
    huge = [make_event(id="h", source="/s", type="t", data=b'"' + b"y" * 5_000_000 + b'"')]
    other = Spool(tmp_path / "other.db")
    other.submit(other.append_job("c", huge, True)).result(5)
    assert [len(b.events) for b in cr_loop.run(SpoolQueue(other, "c").head(5000))] == [1]
    other.close()
    spool.close()


def test_appends_in_one_commit_see_each_others_ids(tmp_path: Path):
    """The usual append inserts its ids without reading any back; one that meets a known
    id is undone and redone id by id, without touching the other appends of its commit."""
    spool = Spool(tmp_path / "spool.db")
    first = events("p", 10)
    half = events("p", 5) + events("q", 5)
    futures = [
        spool.submit(spool.append_job("c", batch, True))
        for batch in (first, half, events("r", 10), events("p", 10))
    ]
    assert [f.result(5)[:2] for f in futures] == [(10, 0), (5, 5), (10, 0), (0, 10)]
    assert spool.read(seen.count_new) == 25
    stored = spool.read(lambda c: [r[0] for r in c.execute("SELECT count FROM batches")])
    assert stored == [10, 5, 10]
    spool.close()
