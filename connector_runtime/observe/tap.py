"""Taps: copies of one connector's events, as they are accepted, delivered or dead-lettered,
for the clients of the admin listener's ``/tap`` (:mod:`connector_runtime.serve.tap`).

A leaf like :mod:`~connector_runtime.observe.stats`: the pipeline and the dispatcher hold a
:class:`Tap` in an attribute that is None while no client is attached, so with no tap the
request path pays one attribute check per request and nothing per event. While clients are
attached, each event is offered to every client: its filter and sample rate are applied,
and it is appended to the client's bounded queue, or dropped and counted when the queue is
full. Nothing waits for a client: a slow or stuck one loses events, ingestion loses nothing.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Collection, Sequence

from connector_runtime.events import Event

STAGES = ("accepted", "delivered", "dead")
QUEUE_EVENTS = 1000
"""Events a client's queue holds; more are dropped (and counted) until it reads again."""

Predicate = Callable[[Event], bool]


class TapClient:
    """One attached client: which stages it wants, its filter and sample rate, its queue."""

    def __init__(
        self,
        stages: frozenset[str],
        predicate: Predicate | None = None,
        sample: int = 1,
        limit: int = QUEUE_EVENTS,
    ) -> None:
        self.stages = stages
        self.predicate = predicate
        self.sample = max(1, sample)
        self.limit = limit
        self.queue: deque[tuple[str, Event, str | None]] = deque()
        self.seen = 0
        """Events that passed the filter (one in every ``sample`` of them is kept)."""
        self.dropped = 0
        """Events kept by the sample that did not fit in the queue."""
        self.ready = asyncio.Event()

    def offer(self, stage: str, events: Sequence[Event], reasons: Sequence[str] | None) -> None:
        if stage not in self.stages:
            return
        predicate, queue = self.predicate, self.queue
        for n, event in enumerate(events):
            if predicate is not None and not predicate(event):
                continue
            self.seen += 1
            if self.sample > 1 and self.seen % self.sample != 1:
                continue
            if len(queue) >= self.limit:
                self.dropped += 1
                continue
            queue.append((stage, event, reasons[n] if reasons is not None else None))
        if queue:
            self.ready.set()


class Tap:
    """The clients attached to one connector; offered every event of the stages they want."""

    def __init__(self, connector: str, attach: Callable[[Tap | None], None]) -> None:
        self.connector = connector
        self._attach = attach
        """Called with this tap when its first client comes, with None when its last goes:
        it sets (clears) the attribute the pipeline and the dispatcher look at."""
        self.clients: list[TapClient] = []
        self.dropped = 0
        """Events dropped for clients of this connector since the process started."""

    def add(self, client: TapClient) -> None:
        self.clients.append(client)
        if len(self.clients) == 1:
            self._attach(self)

    def remove(self, client: TapClient) -> None:
        if client in self.clients:
            self.clients.remove(client)
            self.dropped += client.dropped
            if not self.clients:
                self._attach(None)

    def accepted(self, events: Sequence[Event]) -> None:
        for client in self.clients:
            client.offer("accepted", events, None)

    def attempted(
        self,
        events: Sequence[Event],
        failed: Collection[int],
        dead: Sequence[tuple[Event, str]],
    ) -> None:
        """A delivery attempt of ``events`` was answered: those whose index is not in
        ``failed`` were delivered; ``dead`` were dead-lettered, with the reason."""
        if failed:
            events = [e for i, e in enumerate(events) if i not in failed]
        dead_events, reasons = [e for e, _ in dead], [r for _, r in dead]
        for client in self.clients:
            if events:
                client.offer("delivered", events, None)
            if dead:
                client.offer("dead", dead_events, reasons)


class Taps:
    """Every connector's :class:`Tap`, and how many clients may be attached at once."""

    def __init__(self, max_clients: int) -> None:
        self.max_clients = max_clients
        self.by_connector: dict[str, Tap] = {}

    def register(self, connector: str, attach: Callable[[Tap | None], None]) -> None:
        self.by_connector[connector] = Tap(connector, attach)

    @property
    def attached(self) -> int:
        return sum(len(t.clients) for t in self.by_connector.values())

    def dropped(self) -> dict[str, int]:
        """Events dropped for tap clients per connector (those attached now included)."""
        return {
            name: tap.dropped + sum(c.dropped for c in tap.clients)
            for name, tap in self.by_connector.items()
        }
