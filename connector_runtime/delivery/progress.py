"""Recording which events a target accepted while delivery goes on.

The dispatcher hands each chunk's accepted events to a :class:`Recorder` as the chunk's
answer arrives, and keeps the chunk's slot until they are recorded: the events sent and
not yet recorded never exceed the target's ``max_in_flight`` chunks, all that a crash can
make it send again. The recorder hands marks to the queue in rounds
(:meth:`~connector_runtime.spool.queues.SpoolQueue.record`: one small job in a group commit, so
recording adds no fsync of its own): once every slot waits for one, when the attempt's
last chunk was answered, or :data:`ROUND_WAIT` after a round's first mark. A commit costs
far more CPU than a mark (~150 µs), so a round per answer would cost binary mode (one
event per POST) half again its CPU; a slot waits at most :data:`ROUND_WAIT` longer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

from connector_runtime.observe.stats import ConnectorStats
from connector_runtime.spool.queues import BatchQueue, Mark

ROUND_WAIT = 0.002
"""Seconds a round gathers marks at most before it goes to the queue."""


class Recorder:
    """A dispatcher's recording of the chunks its target accepted, in rounds."""

    def __init__(
        self, queue: BatchQueue, stats: ConnectorStats, log: logging.Logger, slots: int
    ) -> None:
        self.queue = queue
        self.stats = stats
        self.log = log
        self.failed = False
        """A recording failed since this was last reset: its events are still in the queue
        and will be sent again (the dispatcher then reads the queue from its head)."""
        self.unrecorded = 0
        """Events handed in and not recorded yet."""
        self._full = slots
        """Chunks whose marks make a round go at once: every slot waits for it."""
        self._marks: list[Mark] = []
        self._chunks = 0
        self._round: asyncio.Future[None] | None = None
        """Done when the marks of this round are recorded."""
        self._timer: asyncio.TimerHandle | None = None
        self._waiting: set[asyncio.Future[None]] = set()

    def add(self, marks: Sequence[Mark]) -> asyncio.Future[None]:
        """Have the marks of one chunk recorded; the future is done once they are (or
        failed to be: it never fails, :attr:`failed` tells)."""
        if self._round is None:
            loop = asyncio.get_running_loop()
            self._round = loop.create_future()
            self._waiting.add(self._round)
            self._timer = loop.call_later(ROUND_WAIT, self.flush)
        self._marks.extend(marks)
        self.unrecorded += sum(len(indexes) for _, indexes in marks)
        self._chunks += 1
        round_ = self._round
        if self._chunks >= self._full:
            self.flush()
        return round_

    def flush(self) -> None:
        """Hand the round's marks to the queue now."""
        marks, done = self._marks, self._round
        if done is None:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._marks, self._chunks, self._round, self._timer = [], 0, None, None
        events = sum(len(indexes) for _, indexes in marks)
        future = self.queue.record(marks)
        if future is None:
            self._recorded(marks, events, done, None)
        else:
            future.add_done_callback(partial(self._recorded, marks, events, done))

    def _recorded(
        self,
        marks: list[Mark],
        events: int,
        done: asyncio.Future[None],
        future: asyncio.Future[Any] | None,
    ) -> None:
        self.unrecorded -= events
        self._waiting.discard(done)
        done.set_result(None)
        if future is not None and (future.cancelled() or future.exception() is not None):
            if not self.failed:
                self.log.error(
                    "recording delivered events failed; they will be sent again: %s",
                    "cancelled" if future.cancelled() else future.exception(),
                )
            self.failed = True
            return
        self.stats.delivered += events
        now = time.time()
        for created in {b.seq: b.created for b, _ in marks}.values():
            self.stats.observe_delivery(max(0.0, now - created))

    async def drain(self) -> None:
        """Wait until every mark handed in is recorded (or failed to be)."""
        self.flush()
        while self._waiting:
            await asyncio.wait(list(self._waiting))
