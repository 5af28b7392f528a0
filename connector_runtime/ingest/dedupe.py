"""Remembering which event ids a connector already passed on.

:class:`SpoolDedupe` keeps the ids in the spool's dedupe window
(:mod:`connector_runtime.spool.seen`), so a redelivery is recognised after a restart too
(``ack: delivered`` and ``received``; the ``durable`` policy looks up and inserts inside its
append transaction instead).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from connector_runtime.events import Event
from connector_runtime.spool import seen
from connector_runtime.spool.store import Spool


class SpoolDedupe:
    """The dedupe window in the spool (survives restarts)."""

    def __init__(self, spool: Spool, connector: str, wait: bool = True) -> None:
        self.spool = spool
        self.connector = connector
        self.wait = wait
        """False: record ids without waiting for the commit (``ack: received`` answers
        before anything is on disk anyway)."""

    async def split(self, events: Sequence[Event]) -> tuple[list[Event], int]:
        ids = [e.id for e in events]
        known = await self.spool.aread(lambda c: seen.seen_ids(c, self.connector, ids))
        fresh = seen.first_of_each(events, known)
        return fresh, len(events) - len(fresh)

    async def remember(self, ids: Sequence[str]) -> None:
        connector = self.connector

        def job(conn: sqlite3.Connection) -> None:
            seen.mark_seen(conn, connector, ids)

        if self.wait:
            await self.spool.run(job)
        else:
            self.spool.submit(job)
