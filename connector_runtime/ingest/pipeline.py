"""The path of a request's events after the source parsed them.

``Pipeline.submit`` is the :class:`~connector_runtime.records.Ingest` a source's handlers
call: filter (every plugin's predicate, ANDed) → transform (every plugin's
``event_transform``, chained; an event a transform fails on is filtered out) → dedupe →
hand over per the connector's ack policy. A hand-over either makes the events as safe as
the policy promises or raises :class:`~connector_runtime.errors.Unavailable`; in that case
nothing of the request counts as acknowledged, and the source answers 503.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from connector_runtime.events import Event
from connector_runtime.observe.stats import ConnectorStats
from connector_runtime.records import EventPredicate, Outcome

if TYPE_CHECKING:
    from connector_runtime.observe.tap import Tap


class Dedupe(Protocol):
    """Remembers which event ids a connector passed on (:mod:`connector_runtime.ingest.dedupe`)."""

    async def split(self, events: Sequence[Event]) -> tuple[list[Event], int]:
        """The events whose id was not seen before, and how many were dropped as seen."""
        ...

    async def remember(self, ids: Sequence[str]) -> None: ...


class Handoff(Protocol):
    """Takes a request's filtered, deduplicated events per an ack policy
    (:mod:`connector_runtime.ingest.handoffs` has one per policy)."""

    async def take(self, events: list[Event], request_id: str) -> int:
        """Make ``events`` safe; return how many more turned out to be duplicates. Raise
        ``Unavailable`` when they cannot be made safe (the request gets 503)."""
        ...

    def refusing(self) -> str | None:
        """Why :meth:`take` would refuse events now (a full quota, a store that cannot be
        reached), or None; readiness reports it."""
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
        transform: Callable[[list[Event]], list[Event]] | None = None,
    ) -> None:
        self.name = name
        self.predicate = predicate
        self.dedupe = dedupe
        self.handoff = handoff
        self.stats = stats
        self.transform = transform
        self.tap: Tap | None = None
        """Set while a tap client watches this connector (:mod:`connector_runtime.observe.tap`)."""

    async def submit(
        self, events: Sequence[Event], *, request_id: str = "", checkpoint: str | None = None
    ) -> Outcome:
        stats = self.stats
        stats.requests += 1
        stats.received += len(events)
        predicate = self.predicate
        passed = [e for e in events if predicate(e)] if predicate else list(events)
        if self.transform is not None and passed:
            passed = self.transform(passed)
        filtered = len(events) - len(passed)
        duplicates = 0
        try:
            if self.dedupe is not None:
                passed, duplicates = await self.dedupe.split(passed)
            if checkpoint is not None:  # a pull source's batch: committed even when empty
                take = getattr(self.handoff, "take_checkpointed", None)
                if take is None:
                    raise TypeError(f"connector {self.name}: its ack policy keeps no checkpoint")
                duplicates += await take(passed, checkpoint)
            elif passed:
                duplicates += await self.handoff.take(passed, request_id)
            if passed and self.dedupe is not None:
                await self.dedupe.remember([e.id for e in passed])
        except BaseException:  # Unavailable (503), or the request failed: nothing acknowledged
            stats.refused += len(events)
            raise
        accepted = len(events) - filtered - duplicates
        if self.tap is not None and passed:
            self.tap.accepted(passed)
        stats.accepted += accepted
        stats.filtered += filtered
        stats.duplicates += duplicates
        return Outcome(accepted, filtered, duplicates)
