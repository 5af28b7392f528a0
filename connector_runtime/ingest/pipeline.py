"""The path of a request's events after the source parsed them.

``Pipeline.submit`` is the :class:`~connector_runtime.records.Ingest` a source's handlers
call: filter (every plugin's predicate, ANDed) → dedupe → hand over per the connector's ack
policy. A hand-over either makes the events as safe as the policy promises or raises
:class:`~connector_runtime.errors.Unavailable`; in that case nothing of the request counts as
acknowledged, and the source answers 503.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Protocol

from connector_runtime.delivery.attempt import attempt
from connector_runtime.errors import Unavailable
from connector_runtime.events import Event
from connector_runtime.observe.stats import ConnectorStats
from connector_runtime.records import EventPredicate, Outcome, Target


class Dedupe(Protocol):
    """Remembers which event ids a connector passed on (:mod:`connector_runtime.ingest.dedupe`)."""

    async def split(self, events: Sequence[Event]) -> tuple[list[Event], int]:
        """The events whose id was not seen before, and how many were dropped as seen."""
        ...

    async def remember(self, ids: Sequence[str]) -> None: ...


class Handoff(Protocol):
    """Takes a request's filtered, deduplicated events per an ack policy."""

    async def take(self, events: list[Event], request_id: str) -> int:
        """Make ``events`` safe; return how many more turned out to be duplicates."""
        ...


def combine(predicates: Sequence[EventPredicate]) -> EventPredicate | None:
    """One predicate that passes an event only when every one of ``predicates`` does."""
    if not predicates:
        return None
    if len(predicates) == 1:
        return predicates[0]
    chain = tuple(predicates)
    return lambda event: all(p(event) for p in chain)


class Pipeline:
    """The runtime's :class:`~connector_runtime.records.Ingest` for one connector."""

    def __init__(
        self,
        name: str,
        predicate: EventPredicate | None,
        dedupe: Dedupe | None,
        handoff: Handoff,
        stats: ConnectorStats,
    ) -> None:
        self.name = name
        self.predicate = predicate
        self.dedupe = dedupe
        self.handoff = handoff
        self.stats = stats

    async def submit(self, events: Sequence[Event], *, request_id: str = "") -> Outcome:
        stats = self.stats
        stats.requests += 1
        stats.received += len(events)
        predicate = self.predicate
        passed = [e for e in events if predicate(e)] if predicate else list(events)
        filtered = len(events) - len(passed)
        duplicates = 0
        if self.dedupe is not None:
            passed, duplicates = await self.dedupe.split(passed)
        if passed:
            duplicates += await self.handoff.take(passed, request_id)
            if self.dedupe is not None:
                await self.dedupe.remember([e.id for e in passed])
        accepted = len(events) - filtered - duplicates
        stats.accepted += accepted
        stats.filtered += filtered
        stats.duplicates += duplicates
        return Outcome(accepted, filtered, duplicates)


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

    async def take(self, events: list[Event], request_id: str) -> int:
        started = time.monotonic()
        try:
            result = await asyncio.wait_for(attempt(self.target, events), self.timeout)
        except TimeoutError:
            raise Unavailable(f"target did not answer within {self.timeout:g}s") from None
        if result.retry:
            self.stats.retried += len(result.retry)
            reason = next(iter(result.retry.values()))
            raise Unavailable(f"target unavailable: {reason}")
        if result.rejected:
            self.stats.dead_lettered += len(result.rejected)
            if self.dead_letter is not None:
                await self.dead_letter.store(result.rejected)
                for event, reason in result.rejected:
                    self.log.warning("event %s dead-lettered: %s", event.id, reason)
            else:
                for event, reason in result.rejected:
                    self.log.warning("event %s rejected by the target: %s", event.id, reason)
        self.stats.delivered += len(events) - len(result.rejected)
        self.stats.observe_delivery(time.monotonic() - started)
        return 0


class DeadLetter(Protocol):
    async def store(self, rejected: Sequence[tuple[Event, str]]) -> None: ...
