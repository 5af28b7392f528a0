"""The ack policies that queue events: ``durable`` (spool) and ``received`` (memory).

``delivered`` is :class:`~connector_runtime.ingest.pipeline.DeliveredHandoff`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque

from connector_runtime.config.model import DeliverySpec
from connector_runtime.errors import SpoolError, Unavailable
from connector_runtime.events import Event
from connector_runtime.spool.payloads import event_size, events_size
from connector_runtime.spool.queues import MemoryQueue, SpoolQueue
from connector_runtime.spool.store import Spool

MAX_RETRY_AFTER = 300


class DrainRate:
    """Events delivered per second over the last half minute (for Retry-After)."""

    def __init__(self, window: float = 30.0) -> None:
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()

    def sample(self, delivered_total: int, now: float | None = None) -> None:
        stamp = time.monotonic() if now is None else now
        self._samples.append((stamp, delivered_total))
        while len(self._samples) > 2 and stamp - self._samples[0][0] > self.window:
            self._samples.popleft()

    def per_second(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else 0.0

    def retry_after(self, backlog: int) -> int:
        """Seconds until ``backlog`` events would have drained at the measured rate."""
        rate = self.per_second()
        if rate <= 0:
            return 30
        return max(1, min(MAX_RETRY_AFTER, math.ceil(backlog / rate)))


class Quota:
    """A connector's spool quota (events and/or bytes waiting)."""

    def __init__(self, delivery: DeliverySpec, default_events: int | None = None) -> None:
        self.max_events = delivery.max_events or default_events
        self.max_bytes = delivery.max_bytes

    def over(self, events: int, size: int, full: bool = False) -> str | None:
        """Why ``events``/``size`` waiting would break the quota (``full``: reach it)."""
        slack = 1 if full else 0
        if self.max_events is not None and events + slack > self.max_events:
            return f"spool quota reached ({events} events waiting, quota {self.max_events})"
        if self.max_bytes is not None and size + slack > self.max_bytes:
            return f"spool quota reached ({size} bytes waiting, quota {self.max_bytes})"
        return None


class DurableHandoff:
    """``ack: durable``: 2xx only after the events are committed to the spool."""

    def __init__(
        self,
        spool: Spool,
        queue: SpoolQueue,
        quota: Quota,
        rate: DrainRate,
        wake: asyncio.Event,
        dedupe: bool = True,
    ) -> None:
        self.spool = spool
        self.queue = queue
        self.quota = quota
        self.rate = rate
        self.wake = wake
        self.dedupe = dedupe
        """False when ``dedupe.maxEntries`` is 0: no id is looked up or remembered."""

    def over_quota(self) -> str | None:
        return self.quota.over(self.queue.pending_events, self.queue.pending_bytes, full=True)

    async def take(self, events: list[Event], request_id: str) -> int:
        size = events_size(events)
        why = self.quota.over(
            self.queue.pending_events + len(events), self.queue.pending_bytes + size
        )
        if why is not None:
            excess = self.queue.pending_events - (self.quota.max_events or 0) + len(events)
            raise Unavailable(why, self.rate.retry_after(max(excess, len(events))))
        job = self.spool.append_job(self.queue.connector, events, dedupe=self.dedupe)
        try:
            appended = await self.spool.run(job)
        except SpoolError as exc:
            raise Unavailable(f"spool unavailable: {exc.cause}", 10) from None
        if appended.stored:
            self.queue.added(appended.stored, appended.size)
            self.wake.set()
        return int(appended.duplicates)


class ReceivedHandoff:
    """``ack: received``: 2xx once parsed; events wait in memory (lost on a crash)."""

    def __init__(
        self, queue: MemoryQueue, quota: Quota, rate: DrainRate, wake: asyncio.Event
    ) -> None:
        self.queue = queue
        self.quota = quota
        self.rate = rate
        self.wake = wake

    def over_quota(self) -> str | None:
        return self.quota.over(self.queue.pending_events, self.queue.pending_bytes, full=True)

    async def take(self, events: list[Event], request_id: str) -> int:
        why = self.quota.over(
            self.queue.pending_events + len(events),
            self.queue.pending_bytes + sum(map(event_size, events)),
        )
        if why is not None:
            raise Unavailable(why, self.rate.retry_after(len(events)))
        self.queue.put(events)
        self.wake.set()
        return 0
