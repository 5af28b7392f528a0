"""Where a connector's accepted events wait for the dispatcher.

- :class:`SpoolQueue` (``ack: durable``): rows of the SQLite spool; survives a crash.
- :class:`MemoryQueue` (``ack: received``): a list in memory; lost if the process dies.

Both hand the dispatcher the oldest batches first and take back a :class:`Settlement` per
batch saying what became of its events. Dead letters always go to the spool, whatever the
queue, so an event given up on is never silently dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from connector_runtime.events import Event
from connector_runtime.spool.payloads import (
    decode_events,
    encode_event,
    encode_events,
    event_size,
    events_size,
)
from connector_runtime.spool.store import Batch, Job, Spool, _count


@dataclass
class Settlement:
    """What became of one batch after a delivery attempt."""

    batch: Batch
    delivered: int = 0
    dead: list[tuple[Event, str, int | None]] = field(default_factory=list)
    """Events given up on: (event, reason, target status)."""
    remaining: list[Event] = field(default_factory=list)
    """Events to try again at ``next_attempt``."""
    next_attempt: float = 0.0
    error: str | None = None


MAX_BATCH_BYTES = 3_800_000
"""At most this many bytes of documents in one delivery attempt (besides the dispatcher's
event limit), unless a single spool row holds more: a batch body then stays under the
4 MiB that glibc is told to serve from its heap (:func:`~connector_runtime.serve.process.
tune_malloc`), instead of fresh pages from the kernel for every POST."""


class BatchQueue(Protocol):
    pending_events: int
    pending_bytes: int
    reads_past: bool
    """True when ``head(after=seq)`` leaves out the batches up to ``seq``: the dispatcher
    then settles an attempt while the next one is under way."""

    async def head(self, max_events: int, after: int = 0) -> list[Batch]: ...

    async def settle(self, settlements: Sequence[Settlement]) -> None: ...


def dead_letter_rows(
    connector: str, batch: Batch, dead: Sequence[tuple[Event, str, int | None]], now: float
) -> list[tuple[object, ...]]:
    return [
        (connector, e.id, batch.created, now, batch.attempts + 1, status, reason, encode_event(e))
        for e, reason, status in dead
    ]


def store_dead_letters(
    conn: sqlite3.Connection, connector: str, rows: Sequence[tuple[object, ...]]
) -> None:
    conn.executemany(
        "INSERT INTO dead_letters (connector, event_id, created, failed, attempts, status,"
        " reason, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    _count(conn, connector, "dead_lettered", len(rows))


def count_dead_letters(conn: sqlite3.Connection) -> dict[str, int]:
    """Dead letters stored now, per connector (a scan of the table's connector index:
    tens of milliseconds per million rows, so callers cache it)."""
    rows = conn.execute("SELECT connector, count(*) FROM dead_letters GROUP BY connector")
    return {str(connector): int(n) for connector, n in rows}


class SpoolQueue:
    """A connector's rows in the durable spool."""

    reads_past = True

    def __init__(self, spool: Spool, connector: str) -> None:
        self.spool = spool
        self.connector = connector
        self.pending_events = 0
        self.pending_bytes = 0
        self.oldest: float | None = None

    def load_depth(self) -> None:
        events, size, oldest = self.spool.read(
            lambda c: c.execute(
                "SELECT coalesce(sum(count), 0), coalesce(sum(bytes), 0), min(created)"
                " FROM batches WHERE connector = ?",
                (self.connector,),
            ).fetchone()
        )
        self.pending_events, self.pending_bytes, self.oldest = int(events), int(size), oldest

    def added(self, events: int, size: int) -> None:
        self.pending_events += events
        self.pending_bytes += size
        if self.oldest is None:
            self.oldest = time.time()

    async def head(self, max_events: int, after: int = 0) -> list[Batch]:
        connector = self.connector
        payloads_of = self.spool.payloads
        lost, lost_bytes = self.spool.take_lost(connector)  # rows of a damaged segment
        self.pending_events -= lost
        self.pending_bytes -= lost_bytes

        def query(conn: sqlite3.Connection) -> list[Batch]:
            rows = conn.execute(
                "SELECT seq, created, attempts, next_attempt, count, bytes, payload, seg,"
                " seg_offset, seg_length FROM batches WHERE connector = ? AND seq > ? ORDER BY seq"
                " LIMIT ?",
                (connector, after, max_events),
            )
            taken: list[tuple[Any, ...]] = []
            total = size = 0
            for row in rows:
                count, row_bytes = row[4], row[5]
                if taken and (total + count > max_events or size + row_bytes > MAX_BATCH_BYTES):
                    break
                taken.append(row)
                total += count
                size += row_bytes
            payloads = payloads_of([row[6:] for row in taken])
            return [
                Batch(seq, connector, created, attempts, next_attempt, decode_events(payload))
                for (seq, created, attempts, next_attempt, *_), payload in zip(
                    taken, payloads, strict=True
                )
            ]

        return await self.spool.aread(query)

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        connector = self.connector
        spool = self.spool
        now = time.time()

        def job(conn: sqlite3.Connection) -> None:
            delivered = retried = 0
            finished = []
            for s in settlements:
                b = s.batch
                delivered += s.delivered
                if s.dead:
                    store_dead_letters(conn, connector, dead_letter_rows(connector, b, s.dead, now))
                if len(s.remaining) == len(b.events):
                    # Nothing left the batch (the usual failed attempt, e.g. a target that
                    # is down): its stored events stand; only the retry state changes.
                    retried += len(s.remaining)
                    conn.execute(
                        "UPDATE batches SET attempts = ?, next_attempt = ?, last_error = ?"
                        " WHERE seq = ?",
                        (b.attempts + 1, s.next_attempt, s.error, b.seq),
                    )
                elif s.remaining:
                    retried += len(s.remaining)
                    conn.execute(
                        "UPDATE batches SET payload = ?, seg = ?, seg_offset = ?,"
                        " seg_length = ?, count = ?, bytes = ?, attempts = ?, next_attempt = ?,"
                        " last_error = ? WHERE seq = ?",
                        (
                            *spool.place(encode_events(s.remaining)),
                            len(s.remaining),
                            events_size(s.remaining),
                            b.attempts + 1,
                            s.next_attempt,
                            s.error,
                            b.seq,
                        ),
                    )
                else:
                    finished.append(b.seq)
            if finished:  # one statement: executemany would step (and let go of the GIL) per row
                conn.execute(
                    "DELETE FROM batches WHERE seq IN (SELECT value FROM json_each(?))",
                    (orjson.dumps(finished).decode(),),
                )
            _count(conn, connector, "delivered", delivered)
            _count(conn, connector, "retried", retried)

        await self.spool.run(job)
        for s in settlements:
            if len(s.remaining) == len(s.batch.events):
                continue
            self.pending_events -= len(s.batch.events) - len(s.remaining)
            self.pending_bytes -= events_size(s.batch.events) - events_size(s.remaining)
        if self.pending_events <= 0:
            self.pending_events = self.pending_bytes = 0
            self.oldest = None


class MemoryQueue:
    """A connector's accepted events in process memory (``ack: received``)."""

    reads_past = True

    _seq = itertools.count(1)

    def __init__(self, spool: Spool, connector: str) -> None:
        self.spool = spool
        self.connector = connector
        self.pending_events = 0
        self.pending_bytes = 0
        self.oldest: float | None = None
        self._batches: deque[Batch] = deque()

    def put(self, events: list[Event]) -> None:
        now = time.time()
        self._batches.append(Batch(next(self._seq), self.connector, now, 0, 0.0, events))
        self.pending_events += len(events)
        self.pending_bytes += sum(map(event_size, events))
        if self.oldest is None:
            self.oldest = now

    async def head(self, max_events: int, after: int = 0) -> list[Batch]:
        out: list[Batch] = []
        total = size = 0
        for batch in self._batches:
            if batch.seq <= after:
                continue
            batch_bytes = events_size(batch.events)
            if out and (
                total + len(batch.events) > max_events or size + batch_bytes > MAX_BATCH_BYTES
            ):
                break
            out.append(batch)
            total += len(batch.events)
            size += batch_bytes
        return out

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        now = time.time()
        rows: list[tuple[object, ...]] = []
        for s in settlements:
            rows.extend(dead_letter_rows(self.connector, s.batch, s.dead, now))
            index = self._batches.index(s.batch)
            gone = len(s.batch.events) - len(s.remaining)
            self.pending_events -= gone
            if s.remaining:
                self._batches[index] = Batch(
                    s.batch.seq,
                    self.connector,
                    s.batch.created,
                    s.batch.attempts + 1,
                    s.next_attempt,
                    s.remaining,
                )
            else:
                del self._batches[index]
        self.pending_bytes = sum(events_size(b.events) for b in self._batches)
        if not self._batches:
            self.oldest = None
        if rows:
            connector = self.connector

            def job(conn: sqlite3.Connection) -> None:
                store_dead_letters(conn, connector, rows)

            await self.spool.run(job)


def dead_letter_job(connector: str, dead: Sequence[tuple[Event, str, int | None]]) -> Job:
    """Store events given up on outside any batch (``ack: delivered`` rejections)."""
    now = time.time()
    batch = Batch(0, connector, now, 0, 0.0, [])
    rows = dead_letter_rows(connector, batch, dead, now)

    def job(conn: sqlite3.Connection) -> None:
        store_dead_letters(conn, connector, rows)

    return job


async def wait_or_timeout(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)
