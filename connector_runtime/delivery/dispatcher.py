"""The dispatcher: one task per connector delivering queued events to its target.

It takes the oldest batches (in spool order), sends their events in one attempt, and
settles each batch: delivered events leave the queue; events the target rejected for good
go to the dead-letter store with the target's reason and status; events that failed
transiently stay, in order, and the head of the queue waits for an exponential backoff with
jitter before the next attempt, or as long as the target's Retry-After asked if that is
longer (up to ``maxBackoff``: see :func:`backoff`). Events that used up their attempts or
outlived ``max_age`` are dead-lettered too. Only one attempt is in flight per connector,
which keeps the order and keeps memory bounded: the backlog stays on disk, never in RAM.
After a failed attempt, retries take only the head batch until one succeeds.

With the spool (a queue that ``records_progress``), delivered events leave it chunk by
chunk: each chunk the target accepted is recorded as its answer arrives
(:mod:`connector_runtime.delivery.progress`), and the chunk keeps one of the target's
``max_in_flight`` slots until that recording is committed. A fully delivered attempt then
needs no settling, and the next one goes out while its last chunks are being recorded.
Other queues settle a fully delivered attempt while the next one goes out.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import random
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from connector_runtime.config.model import RetrySpec
from connector_runtime.delivery.attempt import Answered, Slots, attempt, max_in_flight
from connector_runtime.delivery.progress import Recorder
from connector_runtime.observe.stats import ConnectorStats
from connector_runtime.records import Target
from connector_runtime.spool.payloads import concat
from connector_runtime.spool.queues import BatchQueue, Mark, Settlement, wait_or_timeout
from connector_runtime.spool.store import Batch

if TYPE_CHECKING:
    from connector_runtime.observe.tap import Tap

MAX_EVENTS_PER_ATTEMPT = 5000
"""Events one attempt takes from the head of the queue (in ``maxBatch`` POSTs at once):
each attempt waits for a commit to settle, so bigger attempts keep up with more events per
second (2,000 fell behind 50k records/s in the benchmark; 5,000 did not)."""
IDLE_POLL = 1.0
"""Seconds between looks at an idle queue (redriven dead letters appear this way)."""


def backoff(
    retry: RetrySpec, attempts: int, rng: random.Random, retry_after: float | None = None
) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: exponential, capped at
    ``maxBackoff``, with "equal jitter" (between half and all of the capped value).

    When the target asked for a wait (``retry_after``, e.g. HTTP ``Retry-After`` on a 429
    or 503), the wait is at least that, but never more than ``maxBackoff`` (the operator's
    bound on how long a delivery may stall: a target asking for a day still gets tried
    after ``maxBackoff``), and never less than the computed backoff."""
    base = min(retry.max_backoff, retry.initial_backoff * (2 ** min(attempts, 30)))
    wait = float(base / 2 + rng.uniform(0, base / 2))
    if retry_after is not None and retry_after > 0:
        wait = max(wait, min(float(retry_after), retry.max_backoff))
    return wait


class Dispatcher:
    def __init__(
        self,
        connector: str,
        queue: BatchQueue,
        target: Target,
        retry: RetrySpec,
        timeout: float,
        log: logging.Logger,
        stats: ConnectorStats,
        max_events: int = MAX_EVENTS_PER_ATTEMPT,
    ) -> None:
        self.connector = connector
        self.queue = queue
        self.target = target
        self.retry = retry
        self.timeout = timeout
        self.log = log
        self.max_events = max(max_events, target.max_batch)
        self.wake = asyncio.Event()
        self.stats = stats
        self.last_error: str | None = None
        self.tap: Tap | None = None
        """Set while a tap client watches this connector (:mod:`connector_runtime.observe.tap`)."""
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._rng = random.Random()
        self._sent_upto = 0
        """With a queue that reads past: the last seq of an attempt whose settle is under
        way (the next attempt starts after it)."""
        self._settling: asyncio.Task[None] | None = None
        self._probing = False
        """After an attempt that failed for the target's sake, the next one takes only the
        head batch: while a target is down, each retry reads, encodes and holds one batch
        instead of megabytes. A full success ends it."""
        self._slots: Slots = [None] * max_in_flight(target)
        """Taken by each chunk from before it is sent until what the target accepted of it
        is recorded (:func:`~connector_runtime.delivery.attempt`)."""
        self._recorder = None
        if queue.records_progress:
            self._recorder = Recorder(queue, stats, log, len(self._slots))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.connector)

    async def stop(self) -> None:
        """Finish the attempt in flight, then stop."""
        self._stopping = True
        self.wake.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while not self._stopping:
            try:
                did = await self.step()
            except Exception:
                self.log.exception("dispatcher step failed; retrying in %.0fs", IDLE_POLL)
                did = False
            if not did and not self._stopping:
                self.wake.clear()
                await wait_or_timeout(self.wake, self._idle_wait())
        await self._settled()

    def _idle_wait(self) -> float:
        return IDLE_POLL

    async def step(self) -> bool:
        """One delivery attempt of the due head of the queue; False when nothing was due.

        When every event of an attempt was delivered and more wait behind it, the next
        attempt reads the batches after it and goes out while the last chunks are recorded
        (or, with a queue that reads past but records no progress, while the attempt is
        settled in the background): a commit's wait then no longer holds up a backlog. Any
        other outcome is recorded and settled before the next look at the queue, which
        then starts from its head."""
        recorder = self._recorder
        if recorder is not None and recorder.failed:  # from the head again: sent again
            await recorder.drain()
            recorder.failed = False
            self._sent_upto = 0
        limit = 1 if self._probing else self.max_events  # head gives at least one batch
        batches = await self.queue.head(limit, after=self._sent_upto)
        if not batches:
            await self._settled()
            return False
        now = time.time()
        due = []
        for b in batches:
            if b.next_attempt > now:
                break
            due.append(b)
        if not due:
            await self._settled()
            wait = batches[0].next_attempt - now
            self.wake.clear()
            await wait_or_timeout(self.wake, min(wait, IDLE_POLL))
            return True
        settlements = await self._attempt(due, now)
        sent = sum(s.delivered for s in settlements)
        clean = sent == sum(len(b.events) for b in due)
        self._probing = any(s.remaining for s in settlements)
        if recorder is not None:
            if clean:  # every chunk recorded, or being recorded: read past them
                self._sent_upto = due[-1].seq
                if self.queue.pending_events <= recorder.unrecorded:
                    # Nothing waits behind: let the next requests gather while it records.
                    await recorder.drain()
                return True
            await recorder.drain()  # before the head is read again, and rows rewritten
            if not recorder.failed:
                await self._settle([s for s in settlements if s.remaining or s.dead], True)
            return True
        settled = await self._settled()
        # Overlap only while a backlog waits: when the attempt took all there was, waiting
        # for its settle lets the next requests gather into one attempt instead of many.
        if settled and clean and self.queue.reads_past and self.queue.pending_events > sent:
            self._sent_upto = due[-1].seq
            self._settling = asyncio.ensure_future(self._settle(settlements))
        else:
            await self._settle(settlements)
        return True

    async def _settle(self, settlements: Sequence[Settlement], recorded: bool = False) -> None:
        """Settle; ``recorded``: the delivered events were recorded (and counted) already."""
        if settlements:
            await self.queue.settle(settlements)
            self._count(settlements, recorded)

    async def _settled(self) -> bool:
        """Wait for the recording or the settle under way, if any; False if a settle failed.
        Its batches are then still in the queue: the next look starts from the head again
        and sends them again."""
        if self._recorder is not None:
            await self._recorder.drain()
        task, self._settling = self._settling, None
        if task is None:
            return True
        try:
            await task
        except Exception:
            self.log.exception("settling delivered events failed; they will be sent again")
            self._sent_upto = 0
            return False
        return True

    def _count(self, settlements: Sequence[Settlement], recorded: bool = False) -> None:
        """Update the counters once the outcome is committed."""
        finished = time.time()
        for s in settlements:
            if not recorded:
                self.stats.delivered += s.delivered
                if s.delivered:
                    self.stats.observe_delivery(max(0.0, finished - s.batch.created))
            self.stats.retried += len(s.remaining)
            self.stats.dead_lettered += len(s.dead)

    async def _attempt(self, batches: Sequence[Batch], now: float) -> list[Settlement]:
        events = concat([b.events for b in batches])
        answered = None
        if self._recorder is not None:
            answered = self._marker(batches, self._recorder)
        result = await attempt(self.target, events, self._slots, answered, self.timeout)
        if self._recorder is not None:
            self._recorder.flush()  # every chunk was answered: nothing more to gather
        rejected = result.rejected_at
        retry = result.retry
        status = result.status
        settlements = []
        index = 0
        for b in batches:
            s = Settlement(b)
            settlements.append(s)
            if not rejected and not retry:  # the usual case: no event needs a look
                s.delivered = len(b.events)
                index += s.delivered
                continue
            attempts = b.attempts + 1
            give_up = (self.retry.attempts and attempts >= self.retry.attempts) or (
                now - b.created >= self.retry.max_age
            )
            for event in b.events:
                reason = retry.get(index)
                why = rejected.get(index)
                code = status.get(index)  # the target's, as it gave it
                index += 1
                if why is not None:
                    s.dead.append((event, why, code))
                elif reason is None:
                    s.delivered += 1
                elif give_up:
                    why = f"gave up after {attempts} attempts: {reason}"
                    s.dead.append((event, why, code))
                else:
                    s.remaining.append(event)
                    s.error = reason
            if s.remaining:
                wait = backoff(self.retry, b.attempts, self._rng, result.retry_after)
                s.next_attempt = now + wait
            if s.error:
                self.last_error = s.error
        if any(s.remaining for s in settlements):
            self.log.warning(
                "delivery of %d events failed, retrying: %s",
                sum(len(s.remaining) for s in settlements),
                self.last_error,
            )
        for s in settlements:
            for event, reason, _ in s.dead:
                self.log.warning("event %s dead-lettered: %s", event.id, reason)
        if self.tap is not None:
            dead = [(e, why) for s in settlements for e, why, _ in s.dead]
            self.tap.attempted(events, rejected.keys() | retry.keys(), dead)
        return settlements

    @staticmethod
    def _marker(batches: Sequence[Batch], recorder: Recorder) -> Answered:
        """What an attempt of ``batches`` calls as each chunk is answered: the chunk's
        accepted events go to ``recorder``, as indexes into their batches."""
        firsts = []  # each batch's first index in the attempt
        total = 0
        for b in batches:
            firsts.append(total)
            total += len(b.events)

        def answered(
            start: int, length: int, rejected: Mapping[int, str], retry: Mapping[int, str]
        ) -> asyncio.Future[Any] | None:
            marks: list[Mark] = []
            n = bisect.bisect_right(firsts, start) - 1
            at, end = start, start + length
            while at < end:
                batch, first = batches[n], firsts[n]
                lo, hi = at - first, min(end - first, len(batch.events))
                if rejected or retry:
                    failed = {start + i - first for i in (*rejected, *retry)}
                    indexes: Sequence[int] = [i for i in range(lo, hi) if i not in failed]
                else:
                    indexes = range(lo, hi)
                if indexes:
                    marks.append((batch, indexes))
                at, n = first + hi, n + 1
            return recorder.add(marks) if marks else None

        return answered
