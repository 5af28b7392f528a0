"""Recording which events a target accepted while delivery goes on.

The dispatcher hands each chunk's accepted events to a :class:`Recorder` as the chunk's
answer arrives. The queue gathers them until the spool's writer runs the job that records
them (:meth:`~connector_runtime.queues.SpoolQueue.record`: one small job in each group
commit, so recording adds no fsync of its own), and each caller gets a future that is
done once its marks are committed. The dispatcher keeps a chunk's slot until then, so
the events sent and not yet recorded never exceed the target's ``max_in_flight`` chunks:
all that a crash can make it send again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from connector_runtime.metrics import ConnectorStats
from connector_runtime.queues import BatchQueue, Mark


@dataclass
class _Waiting:
    events: int = 0
    created: dict[int, float] = field(default_factory=dict)
    """When each batch was accepted, by seq (for the delivery latency)."""


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
        self._waiting: dict[asyncio.Future[Any], _Waiting] = {}
        """What each recording under way records."""

    def add(self, marks: Sequence[Mark]) -> asyncio.Future[Any] | None:
        """Have ``marks`` recorded; the future is done once they are (or failed to be)."""
        future = self.queue.record(marks)
        if future is None:
            return None
        waiting = self._waiting.get(future)
        if waiting is None:
            waiting = self._waiting[future] = _Waiting()
            future.add_done_callback(self._recorded)
        for batch, indexes in marks:
            waiting.events += len(indexes)
            waiting.created[batch.seq] = batch.created
        self.unrecorded += sum(len(indexes) for _, indexes in marks)
        return future

    def _recorded(self, future: asyncio.Future[Any]) -> None:
        waiting = self._waiting.pop(future)
        events = waiting.events
        self.unrecorded -= events
        if future.cancelled() or future.exception() is not None:
            if not self.failed:
                self.log.error(
                    "recording delivered events failed; they will be sent again: %s",
                    "cancelled" if future.cancelled() else future.exception(),
                )
            self.failed = True
            return
        self.stats.delivered += events
        now = time.time()
        for created in waiting.created.values():
            self.stats.observe_delivery(max(0.0, now - created))

    async def drain(self) -> None:
        """Wait until every mark handed in is recorded (or failed to be)."""
        while self._waiting:
            await asyncio.wait(list(self._waiting))
