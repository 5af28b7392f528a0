"""Remembering which event ids a connector already passed on.

:class:`SpoolDedupe` keeps the ids in the spool's ``seen`` table, so a redelivery is
recognised after a restart too (``ack: delivered`` and ``received``; the ``durable`` policy
checks the same table inside its append transaction instead). The table is bounded: the
runtime forgets ids older than the window, and the oldest past ``maxEntries``.
"""

from __future__ import annotations

from collections.abc import Sequence

from connector_runtime.events import Event
from connector_runtime.spool import Spool, mark_seen_job, seen_ids


def first_of_each(events: Sequence[Event], known: set[str]) -> list[Event]:
    """The events whose id is not in ``known``, keeping only the first of each id."""
    here = set(known)
    fresh: list[Event] = []
    for event in events:
        key = str(event.attributes["id"])
        if key not in here:
            here.add(key)
            fresh.append(event)
    return fresh


class SpoolDedupe:
    """The dedupe window in the spool (survives restarts)."""

    def __init__(self, spool: Spool, connector: str, wait: bool = True) -> None:
        self.spool = spool
        self.connector = connector
        self.wait = wait
        """False: record ids without waiting for the commit (``ack: received`` answers
        before anything is on disk anyway)."""

    async def split(self, events: Sequence[Event]) -> tuple[list[Event], int]:
        ids = [str(e.attributes["id"]) for e in events]
        known = await self.spool.aread(lambda c: seen_ids(c, self.connector, ids))
        fresh = first_of_each(events, known)
        return fresh, len(events) - len(fresh)

    async def remember(self, ids: Sequence[str]) -> None:
        if self.wait:
            await self.spool.run(mark_seen_job(self.connector, ids))
        else:
            self.spool.submit(mark_seen_job(self.connector, ids))
