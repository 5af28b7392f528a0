"""Delivery progress in the spool: rows delivered in part keep which events are done, are
read back without them (also after a restart), and every event is counted once."""

from __future__ import annotations

from pathlib import Path

from connector_runtime.config.model import RetrySpec
from connector_runtime.delivery.dispatcher import Dispatcher
from connector_runtime.observe.stats import ConnectorStats
from connector_runtime.records import TargetContext
from connector_runtime.spool.queues import Mark, Settlement, SpoolQueue
from connector_runtime.spool.store import Spool
from connector_runtime.targets.http.target import create as create_http_target
from connector_runtime.testing import LoopThread, RecordingTarget
from tests.delivery.test_dispatcher import LOG, filled


def stored(spool: Spool) -> tuple[int, int, int]:
    """Rows, and the events and bytes the spool says are still to deliver."""
    return spool.read(
        lambda c: c.execute(
            "SELECT count(*), coalesce(sum(count), 0), coalesce(sum(bytes), 0) FROM batches"
        ).fetchone()
    )


def record(cr_loop: LoopThread, queue: SpoolQueue, marks: list[Mark]) -> None:
    async def recorded() -> None:
        await queue.record(marks)

    cr_loop.run(recorded())


def delivered_counter(spool: Spool) -> int:
    return spool.read(
        lambda c: c.execute("SELECT delivered FROM counters WHERE connector = 'c'").fetchone()
    )[0]


def test_a_row_delivered_in_part_is_read_back_without_its_delivered_events(
    tmp_path: Path, cr_loop: LoopThread
):
    spool, ids, queue = filled(tmp_path, rows=2, per_row=50)
    first, second = cr_loop.run(queue.head(100))
    record(cr_loop, queue, [(first, range(0, 30))])
    record(cr_loop, queue, [(first, [35, 40]), (second, range(50))])
    rest = ids[30:35] + ids[36:40] + ids[41:50]
    assert stored(spool) == (1, 18, queue.pending_bytes) and queue.pending_events == 18
    spool.close()

    spool = Spool(tmp_path / "spool.db")  # as after a crash: the progress is on disk
    queue = SpoolQueue(spool, "c")
    queue.load_depth()
    assert queue.pending_events == 18
    (again,) = cr_loop.run(queue.head(100))
    assert [e.id for e in again.events] == rest
    assert again.positions == (*range(30, 35), *range(36, 40), *range(41, 50))
    record(cr_loop, queue, [(again, [0, 5])])  # positions 30 and 36
    (third,) = cr_loop.run(queue.head(100))
    assert [e.id for e in third.events] == rest[1:5] + rest[6:]
    assert stored(spool)[1:] == (16, queue.pending_bytes)
    record(cr_loop, queue, [(third, range(len(third.events)))])
    assert stored(spool) == (0, 0, 0) and queue.pending_events == queue.pending_bytes == 0
    assert delivered_counter(spool) == 100
    spool.close()


def test_settling_a_row_delivered_in_part_keeps_only_the_events_left(
    tmp_path: Path, cr_loop: LoopThread
):
    spool, ids, queue = filled(tmp_path, rows=1, per_row=10)
    (batch,) = cr_loop.run(queue.head(100))
    record(cr_loop, queue, [(batch, range(0, 4))])  # recorded as the chunk was answered
    events = list(batch.events)
    settled = Settlement(
        batch,
        delivered=6,
        dead=[(events[4], "HTTP 400", 400)],
        remaining=events[5:8],
        next_attempt=0.0,
        error="HTTP 503",
    )
    cr_loop.run(queue.settle([settled]))  # events 8 and 9 delivered, not recorded before
    (again,) = cr_loop.run(queue.head(100))
    assert [e.id for e in again.events] == ids[5:8] and again.positions is None
    assert again.attempts == 1
    assert stored(spool)[1:] == (3, queue.pending_bytes) and queue.pending_events == 3
    assert delivered_counter(spool) == 6  # 4 recorded, 2 settled: each once
    spool.close()


def test_chunks_answered_before_a_timeout_are_not_sent_again(
    tmp_path: Path, cr_loop: LoopThread, recording_target: RecordingTarget
):
    """One connection, chunks of 10, answers after 0.2 s, attempts cut at 0.3 s: the first
    chunk is recorded, the second is in flight when the attempt times out (the target has
    it: sent again), the third was never sent."""
    spool, ids, queue = filled(tmp_path, rows=1, per_row=30)
    recording_target.delay = 0.2
    stats = ConnectorStats()
    config = {"url": recording_target.url, "mode": "batch", "maxBatch": 10, "maxConnections": 1}

    async def scenario() -> None:
        target = create_http_target(config, TargetContext("c", LOG))
        await target.start()
        retry = RetrySpec(initial_backoff=0.01, max_backoff=0.02)
        dispatcher = Dispatcher("c", queue, target, retry, 0.3, LOG, stats)
        try:
            assert await dispatcher.step()
            recording_target.delay = 0.0
            while await dispatcher.step():
                pass
            await dispatcher.stop()
        finally:
            await target.close()

    cr_loop.run(scenario())
    got = recording_target.ids
    assert sorted(set(got)) == sorted(ids)
    assert sorted(i for i in set(got) if got.count(i) > 1) == ids[10:20]
    assert stats.delivered == 30 and delivered_counter(spool) == 30
    assert stored(spool) == (0, 0, 0)
    assert stats.retried == 20  # the second and third chunks, once
    spool.close()


def test_a_commit_of_progress_alone_is_not_fsynced_and_the_next_one_is(
    tmp_path: Path, cr_loop: LoopThread
):
    """Recording rides on group commits and adds no fsync of its own; a commit with
    anything else (an acknowledged request) is synchronous=FULL again."""
    spool = Spool(tmp_path / "spool.db")

    def synchronous(conn):
        return conn.execute("PRAGMA synchronous").fetchone()[0]

    async def both() -> tuple[int, int]:
        unsynced = await spool.run(synchronous, synced=False)
        return unsynced, await spool.run(synchronous)

    assert cr_loop.run(both()) == (1, 2)  # NORMAL, then FULL
    spool.close()
