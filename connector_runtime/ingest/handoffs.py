"""The ack policies, one hand-off each: ``durable`` (the spool), ``received`` (memory) and
``delivered`` (straight to the target). ``delivery.spool: nats`` has its own, in
:mod:`connector_runtime.nats.spool`. Each implements
:class:`~connector_runtime.ingest.pipeline.Handoff`."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Sequence
from typing import Protocol

from connector_runtime.config.model import DeliverySpec
from connector_runtime.delivery.attempt import Attempt, attempt
from connector_runtime.errors import SpoolError, Unavailable
from connector_runtime.events import Event
from connector_runtime.observe.stats import ConnectorStats
from connector_runtime.records import Target
from connector_runtime.spool import checkpoints
from connector_runtime.spool.payloads import event_size, events_size
from connector_runtime.spool.queues import MemoryQueue, SpoolQueue
from connector_runtime.spool.store import Spool

MAX_RETRY_AFTER = 300
DEFAULT_RETRY_AFTER = 5
"""Retry-After when ``ack: delivered`` fails and the target named no wait."""


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
        dedupe_key: str | None = None,
    ) -> None:
        self.spool = spool
        self.dedupe_key = dedupe_key
        self.queue = queue
        self.quota = quota
        self.rate = rate
        self.wake = wake
        self.dedupe = dedupe
        """False when ``dedupe.maxEntries`` is 0: no id is looked up or remembered."""

    def refusing(self) -> str | None:
        return self.quota.over(self.queue.pending_events, self.queue.pending_bytes, full=True)

    async def take(self, events: list[Event], request_id: str) -> int:
        return await self._append(events, None)

    async def take_checkpointed(self, events: list[Event], checkpoint: str) -> int:
        """:meth:`take` for a pull source: ``checkpoint`` is committed in the same
        transaction as ``events`` (also when there are none)."""
        return await self._append(events, checkpoint)

    async def _append(self, events: list[Event], checkpoint: str | None) -> int:
        size = events_size(events)
        why = self.quota.over(
            self.queue.pending_events + len(events), self.queue.pending_bytes + size
        )
        if why is not None:
            excess = self.queue.pending_events - (self.quota.max_events or 0) + len(events)
            raise Unavailable(why, self.rate.retry_after(max(excess, len(events))))
        job = self.spool.append_job(
            self.queue.connector, events, dedupe=self.dedupe, dedupe_key=self.dedupe_key
        )
        if checkpoint is not None:
            job = checkpoints.with_checkpoint(job, self.queue.connector, checkpoint)
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

    def refusing(self) -> str | None:
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


class DeliveredHandoff:
    """``ack: delivered``: answer only after the target accepted every event.

    A transient failure or a timeout raises ``Unavailable`` (Auth0 sends the batch again).
    Events the target rejected for good go to ``dead_letter`` when there is one, else are
    logged and counted; retrying them could never succeed.
    """

    def __init__(
        self,
        target: Target,
        timeout: float,
        stats: ConnectorStats,
        log: logging.Logger,
        dead_letter: DeadLetter | None = None,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.stats = stats
        self.log = log
        self.dead_letter = dead_letter

    def refusing(self) -> str | None:
        return None  # nothing waits here; a target that is down shows in each answer

    @staticmethod
    def _retry_after(result: Attempt) -> int:
        """The wait the target asked for (its ``Retry-After``), passed on to the sender
        (between 1 s and ``MAX_RETRY_AFTER``); else ``DEFAULT_RETRY_AFTER``."""
        wait = result.retry_after
        if wait is None or not math.isfinite(wait) or wait <= 0:
            return DEFAULT_RETRY_AFTER
        return max(1, min(MAX_RETRY_AFTER, math.ceil(wait)))

    async def take(self, events: list[Event], request_id: str) -> int:
        started = time.monotonic()
        try:
            result = await asyncio.wait_for(attempt(self.target, events), self.timeout)
        except TimeoutError:
            raise Unavailable(f"target did not answer within {self.timeout:g}s") from None
        if result.retry:
            self.stats.retried += len(result.retry)
            reason = next(iter(result.retry.values()))
            raise Unavailable(f"target unavailable: {reason}", self._retry_after(result))
        if result.rejected:
            self.stats.dead_lettered += len(result.rejected)
            if self.dead_letter is not None:
                await self.dead_letter.store(result.rejected)
                for event, reason, _ in result.rejected:
                    self.log.warning("event %s dead-lettered: %s", event.id, reason)
            else:
                for event, reason, _ in result.rejected:
                    self.log.warning("event %s rejected by the target: %s", event.id, reason)
        self.stats.delivered += len(events) - len(result.rejected)
        self.stats.observe_delivery(time.monotonic() - started)
        return 0


class DeadLetter(Protocol):
    async def store(self, rejected: Sequence[tuple[Event, str, int | None]]) -> None:
        """Store events rejected for good: (event, reason, the target's status) each."""
        ...
