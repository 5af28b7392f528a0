"""Recording which events a target accepted while delivery goes on.

The dispatcher hands each chunk's accepted events to a :class:`Recorder` as the chunk's
answer arrives. The marks of one turn of the event loop go to the queue together, and the
queue gathers them until the spool's writer runs the job that records them
(:meth:`~connector_runtime.queues.SpoolQueue.record`: one small job in each group commit,
so recording adds no fsync of its own). Each caller gets a future that is done once its
marks are committed. The dispatcher keeps a chunk's slot until then, so the events sent
and not yet recorded never exceed the target's ``max_in_flight`` chunks: all that a crash
can make it send again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

from connector_runtime.metrics import ConnectorStats
from connector_runtime.queues import BatchQueue, Mark


class Recorder:
    def __init__(self, queue: BatchQueue, stats: ConnectorStats, log: logging.Logger) -> None:
        self.queue = queue
        self.stats = stats
        self.log = log
        self.failed = False
        """A recording failed since this was last reset: its events are still in the queue
        and will be sent again (the dispatcher then reads the queue from its head)."""
        self.unrecorded = 0
        """Events handed in and not recorded yet."""
        self._marks: list[Mark] = []
        self._round: asyncio.Future[None] | None = None
        """Done when the marks handed in during this turn of the loop are recorded."""
        self._waiting: set[asyncio.Future[None]] = set()

    def add(self, marks: Sequence[Mark]) -> asyncio.Future[None]:
        """Have ``marks`` recorded; the future is done once they are (or failed to be: it
        never fails, :attr:`failed` tells)."""
        if self._round is None:
            loop = asyncio.get_running_loop()
            self._round = loop.create_future()
            self._waiting.add(self._round)
            loop.call_soon(self._flush)
        self._marks.extend(marks)
        return self._round

    def _flush(self) -> None:
        marks, done = self._marks, self._round
        assert done is not None
        self._marks, self._round = [], None
        events = sum(len(indexes) for _, indexes in marks)
        self.unrecorded += events
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
        while self._waiting:
            await asyncio.wait(list(self._waiting))
