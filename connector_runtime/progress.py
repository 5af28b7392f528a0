"""Recording which events a target accepted while delivery goes on.

The dispatcher hands each chunk's accepted events to a :class:`Recorder` as the chunk's
answer arrives. The marks handed in during one turn of the event loop go to the queue
together (:meth:`~connector_runtime.queues.SpoolQueue.record`: one small job of the next
group commit, so recording adds no fsync of its own), and each caller gets a future that
is done once its marks are committed. The dispatcher keeps a chunk's slot until then, so
the events sent and not yet recorded never exceed the target's ``max_in_flight`` chunks:
all that a crash can make it send again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

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
        self._next: asyncio.Future[None] | None = None
        """Done when the marks gathering now are recorded."""
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, marks: Sequence[Mark]) -> asyncio.Future[None]:
        """Record ``marks`` soon; the future is done once they are (or failed to be)."""
        if self._next is None:
            loop = asyncio.get_running_loop()
            self._next = loop.create_future()
            loop.call_soon(self._flush)
        self._marks.extend(marks)
        self.unrecorded += sum(len(indexes) for _, indexes in marks)
        return self._next

    def _flush(self) -> None:
        marks, done = self._marks, self._next
        assert done is not None
        self._marks, self._next = [], None
        task = asyncio.ensure_future(self._record(marks, done))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record(self, marks: list[Mark], done: asyncio.Future[None]) -> None:
        events = sum(len(indexes) for _, indexes in marks)
        try:
            await self.queue.record(marks)
        except Exception:
            self.failed = True
            self.log.exception("recording delivered events failed; they will be sent again")
        else:
            self.stats.delivered += events
            now = time.time()
            for batch in {b.seq: b for b, _ in marks}.values():
                self.stats.observe_delivery(max(0.0, now - batch.created))
        finally:
            self.unrecorded -= events
            done.set_result(None)

    async def drain(self) -> None:
        """Wait until every mark handed in is recorded (or failed to be)."""
        while self._tasks or self._next is not None:
            waiting: list[asyncio.Future[None]] = [*self._tasks]
            if self._next is not None:
                waiting.append(self._next)
            await asyncio.wait(waiting)
