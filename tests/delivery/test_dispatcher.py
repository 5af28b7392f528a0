"""The dispatcher over a real spool, a real HTTP target and a recording receiver: the next
attempt goes out while the last one is recorded; nothing is lost or reordered, and a
recording that fails sends its events again instead of dropping them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from connector_runtime.config.model import RetrySpec
from connector_runtime.delivery.dispatcher import Dispatcher
from connector_runtime.events import make_event
from connector_runtime.observe.stats import ConnectorStats
from connector_runtime.records import TargetContext
from connector_runtime.spool.queues import Mark, SpoolQueue
from connector_runtime.spool.store import Spool
from connector_runtime.targets.http.target import create as create_http_target
from connector_runtime.testing import LoopThread, RecordingTarget

LOG = logging.getLogger("test.dispatcher")


def filled(
    tmp_path: Path, rows: int, per_row: int, kind: type[SpoolQueue] = SpoolQueue
) -> tuple[Spool, list[str], SpoolQueue]:
    """A spool with ``rows`` appends of ``per_row`` events, its ids, and a queue on it."""
    spool = Spool(tmp_path / "spool.db")
    ids = fill(spool, rows, per_row)
    queue = kind(spool, "c")
    queue.load_depth()
    return spool, ids, queue


def fill(spool: Spool, rows: int, per_row: int) -> list[str]:
    ids = []
    for r in range(rows):
        batch = [
            make_event(id=f"r{r:03d}-{i:03d}", source="/s", type="t", data=b'{"n":%d}' % i)
            for i in range(per_row)
        ]
        spool.submit(spool.append_job("c", batch, True)).result(5)
        ids += [e.id for e in batch]
    return ids


def run_until_empty(
    cr_loop: LoopThread,
    queue: SpoolQueue,
    url: str,
    max_events: int,
    retry: RetrySpec = RetrySpec(),  # noqa: B008 - frozen
) -> tuple[ConnectorStats, int]:
    """Run a dispatcher until the queue is empty; returns its stats and attempts made."""
    stats = ConnectorStats()

    async def scenario() -> int:
        target = create_http_target({"url": url, "mode": "batch"}, TargetContext("c", LOG))
        await target.start()
        dispatcher = Dispatcher("c", queue, target, retry, 10.0, LOG, stats, max_events)
        dispatcher.max_events = max_events  # below the target's own batch size, on purpose
        attempts = 0
        try:
            while await dispatcher.step():
                attempts += 1
            await dispatcher.stop()
        finally:
            await target.close()
        return attempts

    return stats, cr_loop.run(scenario())


def test_attempts_go_out_while_the_last_one_is_recorded(
    tmp_path: Path, cr_loop: LoopThread, recording_target: RecordingTarget
):
    spool, ids, queue = filled(tmp_path, rows=12, per_row=50)
    stats, attempts = run_until_empty(cr_loop, queue, recording_target.url, max_events=100)
    assert attempts == 6  # two rows per attempt
    assert recording_target.ids == ids  # each once, in spool order
    assert stats.delivered == 600 and queue.pending_events == 0
    assert spool.read(lambda c: c.execute("SELECT count(*) FROM batches").fetchone()) == (0,)
    spool.close()


class FailingOnce(SpoolQueue):
    """A spool queue whose second recording of delivered events fails (as a full disk
    would make it)."""

    records = 0

    def record(self, marks: Sequence[Mark]) -> asyncio.Future[None]:
        self.records += 1
        if self.records == 2:

            async def fail() -> None:
                await asyncio.sleep(0.01)
                raise OSError("no space left on device")

            return asyncio.ensure_future(fail())
        return super().record(marks)


def test_a_failed_recording_sends_its_events_again(
    tmp_path: Path, cr_loop: LoopThread, recording_target: RecordingTarget, caplog
):
    spool, ids, queue = filled(tmp_path, rows=6, per_row=50, kind=FailingOnce)
    stats, _ = run_until_empty(cr_loop, queue, recording_target.url, max_events=100)
    got = recording_target.ids
    assert set(got) == set(ids)  # nothing lost
    repeated = {i for i in got if got.count(i) > 1}
    assert repeated == set(ids[100:200])  # the second attempt's events, sent again
    assert spool.read(lambda c: c.execute("SELECT count(*) FROM batches").fetchone()) == (0,)
    assert stats.delivered == 300  # counted once each: the failed recording counted nothing
    assert "they will be sent again" in caplog.text
    spool.close()


def test_while_the_target_fails_each_retry_takes_only_the_head_batch(
    tmp_path: Path, cr_loop: LoopThread, recording_target: RecordingTarget
):
    spool, ids, queue = filled(tmp_path, rows=6, per_row=50)
    offered: dict[int, int] = {}

    def respond(event) -> int:
        n = recording_target.requests
        offered[n] = offered.get(n, 0) + 1
        return 503 if n <= 3 else 200

    recording_target.respond = respond
    retry = RetrySpec(initial_backoff=0.02, max_backoff=0.05)
    run_until_empty(cr_loop, queue, recording_target.url, max_events=100, retry=retry)
    # a full attempt fails; the two retries and the first success send the head row alone;
    # then attempts are full again
    assert [offered[n] for n in sorted(offered)] == [100, 50, 50, 50, 100, 100, 50]
    assert recording_target.ids == ids
    spool.close()
