"""Where a connector's accepted events wait for the dispatcher.

- :class:`SpoolQueue` (``ack: durable``): rows of the SQLite spool; survives a crash.
- :class:`MemoryQueue` (``ack: received``): a list in memory; lost if the process dies.

Both hand the dispatcher the oldest batches first and take back a :class:`Settlement` per
batch saying what became of its events. The spool also records, as a target accepts them,
which events are delivered (:meth:`SpoolQueue.record`), so that a crash sends again only
what the target had not answered yet. Dead letters always go to the spool, whatever the
queue, so an event given up on is never silently dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from connector_runtime.events import Event
from connector_runtime.spool import tables
from connector_runtime.spool.jobs import Job
from connector_runtime.spool.payloads import (
    EncodedEvents,
    encode_event,
    encode_events,
    event_size,
    events_size,
)
from connector_runtime.spool.progress import Delivered, pending, record
from connector_runtime.spool.store import Batch, Spool


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


Mark = tuple[Batch, Sequence[int]]
"""Events of one batch a target accepted: the batch, and their indexes in its ``events``."""


@dataclass(frozen=True)
class SpoolBatch(Batch):
    """A spool row as :meth:`SpoolQueue.head` reads it: the events still to deliver."""

    positions: tuple[int, ...] | None = None
    """Where ``events`` are among the row's stored events (None: all of them, in order)."""
    sizes: Sequence[int] = ()
    """The length of each event's document."""


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
    records_progress: bool
    """True when :meth:`record` keeps delivered events from being handed out again (after a
    crash too); the dispatcher then records each chunk as the target accepts it, and settles
    only the batches with events left or given up on."""

    async def head(self, max_events: int, after: int = 0) -> list[Batch]: ...

    def record(self, marks: Sequence[Mark]) -> asyncio.Future[None] | None:
        """Record events the target accepted (only when ``records_progress``); returns a
        future done once they are."""
        ...

    async def settle(self, settlements: Sequence[Settlement]) -> None: ...


def dead_letter_rows(
    connector: str, batch: Batch, dead: Sequence[tuple[Event, str, int | None]], now: float
) -> list[tables.DeadLetterRow]:
    """The dead letters of a batch's events given up on: (event, reason, target status)."""
    return [
        tables.DeadLetterRow(
            connector, e.id, batch.created, now, batch.attempts + 1, status, reason, encode_event(e)
        )
        for e, reason, status in dead
    ]


class SpoolQueue:
    """A connector's rows in the durable spool."""

    reads_past = True
    records_progress = True

    def __init__(self, spool: Spool, connector: str) -> None:
        self.spool = spool
        self.connector = connector
        self.pending_events = 0
        self.pending_bytes = 0
        self.oldest: float | None = None
        self._lock = threading.Lock()
        """Guards :attr:`_marks` and :attr:`_recording` (the writer thread takes them)."""
        self._marks = Delivered()
        self._recording: asyncio.Future[None] | None = None
        """What records :attr:`_marks`, until its job took them."""

    def load_depth(self) -> None:
        connector = self.connector
        depth = self.spool.read(lambda c: tables.depth(c, connector))
        self.pending_events, self.pending_bytes, self.oldest = depth

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
            rows = tables.head_rows(conn, connector, after, max_events)
            taken: list[tuple[Any, ...]] = []
            total = size = 0
            for row in rows:
                count, row_bytes = row[4], row[5]
                if taken and (total + count > max_events or size + row_bytes > MAX_BATCH_BYTES):
                    break
                taken.append(row)
                total += count
                size += row_bytes
            payloads = payloads_of([row[7:] for row in taken])
            out: list[Batch] = []
            for (seq, created, attempts, next_attempt, _, _, done, *_), payload in zip(
                taken, payloads, strict=True
            ):
                events, positions = pending(payload, done)
                sizes = events.lengths() if isinstance(events, EncodedEvents) else ()
                out.append(
                    SpoolBatch(
                        seq, connector, created, attempts, next_attempt, events, positions, sizes
                    )
                )
            return out

        return await self.spool.aread(query)

    def record(self, marks: Sequence[Mark]) -> asyncio.Future[None]:
        """Record events a target accepted, in the next group commit
        (:mod:`connector_runtime.spool.progress`); returns a future done once they are.

        Marks wait in :attr:`_marks` until the writer runs the job queued for them: every
        mark made until then goes into that job, so recording costs one job per commit.
        The commit is not fsync'd for their sake (a crash of the process keeps them; a
        power loss may undo the last ones, which are then sent again)."""
        with self._lock:
            for batch, indexes in marks:
                if isinstance(batch, SpoolBatch):
                    positions, sizes = batch.positions, batch.sizes
                else:
                    positions, sizes = None, ()
                self._marks.add(batch.seq, batch.events, indexes, positions, sizes)
            if self._recording is None:
                self._recording = asyncio.ensure_future(self._record())
            return self._recording

    async def _record(self) -> None:
        connector = self.connector
        taken: Delivered | None = None

        def job(conn: sqlite3.Connection) -> Delivered:
            nonlocal taken
            if taken is None:  # a job may run twice (group commits retry in savepoints)
                with self._lock:
                    taken, self._marks, self._recording = self._marks, Delivered(), None
            record(conn, connector, taken)
            return taken

        try:
            done: Delivered = await self.spool.run(job, synced=False)
        except BaseException:
            with self._lock:  # marks its job did not take are dropped: they are sent again
                if taken is None and self._recording is asyncio.current_task():
                    self._marks, self._recording = Delivered(), None
            raise
        self._gone(done.events, done.size)

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        """Store what an attempt came to: dead letters, the retry state of batches with
        events left (their rows keep only those), and the deletion of the others. Events
        :meth:`record` recorded are not counted again."""
        connector = self.connector
        spool = self.spool
        now = time.time()

        def job(conn: sqlite3.Connection) -> tuple[int, int]:
            events = size = dead = retried = 0
            finished = []
            for s in settlements:
                b = s.batch
                if s.dead:
                    dead_letters = dead_letter_rows(connector, b, s.dead, now)
                    tables.insert_dead_letters(conn, connector, dead_letters)
                retried += len(s.remaining)
                if len(s.remaining) == len(b.events):
                    # Nothing left the batch (the usual failed attempt, e.g. a target that
                    # is down): its stored events stand; only the retry state changes.
                    tables.set_retry(conn, b.seq, b.attempts + 1, s.next_attempt, s.error)
                    continue
                stored = tables.stored(conn, b.seq)
                if stored is None:  # every event recorded as delivered
                    continue
                events, size, dead = events + stored[0], size + stored[1], dead + len(s.dead)
                if not s.remaining:
                    finished.append(b.seq)
                    continue
                events -= len(s.remaining)
                size -= events_size(s.remaining)
                tables.keep_only(
                    conn,
                    b.seq,
                    spool.place(encode_events(s.remaining)),
                    len(s.remaining),
                    events_size(s.remaining),
                    b.attempts + 1,
                    s.next_attempt,
                    s.error,
                )
            tables.delete_batches(conn, finished)
            tables.count(conn, connector, "delivered", events - dead)
            tables.count(conn, connector, "retried", retried)
            return events, size

        self._gone(*await self.spool.run(job))

    def _gone(self, events: int, size: int) -> None:
        """Events and bytes that left the queue."""
        self.pending_events -= events
        self.pending_bytes -= size
        if self.pending_events <= 0:
            self.pending_events = self.pending_bytes = 0
            self.oldest = None


class MemoryQueue:
    """A connector's accepted events in process memory (``ack: received``)."""

    reads_past = True
    records_progress = False
    """A crash loses these events anyway; delivered ones leave when the attempt settles."""

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

    def record(self, marks: Sequence[Mark]) -> None:
        """Nothing to record (``records_progress`` is False)."""

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        now = time.time()
        rows: list[tables.DeadLetterRow] = []
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
                tables.insert_dead_letters(conn, connector, rows)

            await self.spool.run(job)


def dead_letter_job(connector: str, dead: Sequence[tuple[Event, str, int | None]]) -> Job:
    """Store events given up on outside any batch (``ack: delivered`` rejections)."""
    now = time.time()
    batch = Batch(0, connector, now, 0, 0.0, [])
    rows = dead_letter_rows(connector, batch, dead, now)

    def job(conn: sqlite3.Connection) -> None:
        tables.insert_dead_letters(conn, connector, rows)

    return job


async def wait_or_timeout(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)
