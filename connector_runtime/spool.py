"""The durable spool: a SQLite database (WAL) under the data dir.

One writer thread owns the write connection and runs *group commits*: everything that is
waiting when it wakes up (appends of many concurrent requests, acks from the dispatcher,
dead letters) goes into one transaction, committed with ``synchronous=FULL`` (an fsync of
the WAL per commit). A request is answered 2xx only after the commit holding its events
returned, so an acknowledged event is on disk whatever happens to the process.

Tables:
- ``batches``: one row per accepted request (not per event): its events, msgpack-encoded,
  in arrival order (``seq``), with retry state. The dispatcher reads them back in order.
- ``seen``: (connector, event id, time) of every event id accepted within the dedupe
  window, so a redelivery is recognised after a restart too; pruned by age and count.
- ``dead_letters``: events that failed for good, one row each, with status and reason.
- ``counters``: delivered / retried / dead-lettered totals per connector.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import msgspec

from connector_runtime.errors import SpoolError
from connector_runtime.events import Event, to_structured

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    connector TEXT NOT NULL,
    created REAL NOT NULL,
    count INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS batches_by_connector ON batches (connector, seq);
CREATE TABLE IF NOT EXISTS seen (
    connector TEXT NOT NULL,
    id TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (connector, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_by_age ON seen (at);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connector TEXT NOT NULL,
    event_id TEXT NOT NULL,
    created REAL NOT NULL,
    failed REAL NOT NULL,
    attempts INTEGER NOT NULL,
    status INTEGER,
    reason TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_by_connector ON dead_letters (connector, id);
CREATE TABLE IF NOT EXISTS counters (
    connector TEXT PRIMARY KEY,
    accepted INTEGER NOT NULL DEFAULT 0,
    delivered INTEGER NOT NULL DEFAULT 0,
    retried INTEGER NOT NULL DEFAULT 0,
    dead_lettered INTEGER NOT NULL DEFAULT 0
);
"""

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[bytes])


def encode_events(events: Sequence[Event]) -> bytes:
    """A spool row's payload: the events' structured JSON documents, msgpack-framed, so a
    batch delivery reads them back without decoding a single attribute."""
    return _encoder.encode([to_structured(e) for e in events])


def decode_events(payload: bytes) -> list[Event]:
    return [Event.from_structured(doc) for doc in _decoder.decode(payload)]


def encode_event(event: Event) -> bytes:
    return to_structured(event)


def decode_event(payload: bytes) -> Event:
    return Event.from_structured(payload)


ATTRIBUTE_ALLOWANCE = 256
"""Bytes counted for an event's attributes before it is encoded."""


def event_size(event: Event) -> int:
    """An event's size for quotas: its stored document's length once it has one, else its
    data plus a fixed allowance for the attributes (no encoding or decoding either way)."""
    if event.doc is not None:
        return len(event.doc)
    data = event.data
    return (len(data) if data is not None else 0) + ATTRIBUTE_ALLOWANCE


class Appended(NamedTuple):
    """What an append stored: events, duplicates dropped, bytes (of the documents)."""

    stored: int
    duplicates: int
    size: int


@dataclass(frozen=True)
class Batch:
    """A spool row: the pending events of one request."""

    seq: int
    connector: str
    created: float
    attempts: int
    next_attempt: float
    events: list[Event]


@dataclass(frozen=True)
class DeadLetter:
    id: int
    connector: str
    event_id: str
    created: float
    failed: float
    attempts: int
    status: int | None
    reason: str
    event: Event


@dataclass(frozen=True)
class ConnectorDepth:
    connector: str
    events: int
    bytes: int
    oldest: float | None


def connect(path: Path) -> sqlite3.Connection:
    """Open the spool database with the settings every connection needs."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        # Some SQLite builds zero-fill deleted content; every delivered row would be written
        # twice more (WAL and checkpoint). Freed pages are reused, not wiped: protect the
        # data dir itself (docs/security.md).
        conn.execute("PRAGMA secure_delete=OFF")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.executescript(SCHEMA)
    except (OSError, sqlite3.Error) as exc:
        raise SpoolError(f"cannot open spool {path}: {exc}") from None
    return conn


Job = Callable[[sqlite3.Connection], Any]

CHECKPOINT_EVERY = 0.25
"""Seconds between background WAL checkpoints."""
WAL_BACKSTOP_PAGES = 65536
"""WAL size (pages of 4 KiB, 256 MiB) past which a commit checkpoints by itself."""


class Spool:
    """The spool of one runtime process; all writes go through one group-commit thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path)
        # Checkpoints (copying the WAL back into the database file, with an fsync) run in a
        # thread of their own, so commits never wait for one; the writer checkpoints only
        # as a backstop if the WAL outgrows WAL_BACKSTOP_PAGES.
        self._conn.execute(f"PRAGMA wal_autocheckpoint={WAL_BACKSTOP_PAGES}")
        self._read = connect(path)
        self._read_lock = threading.Lock()
        self._jobs: queue.SimpleQueue[tuple[Job, Future[Any]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="spool-writer", daemon=True)
        self._closed = False
        self._stop_checkpoints = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop,
            args=(connect(path),),
            name="spool-checkpoint",
            daemon=True,
        )
        self.commits = 0
        self._thread.start()
        self._checkpointer.start()

    def _checkpoint_loop(self, conn: sqlite3.Connection) -> None:
        try:
            while not self._stop_checkpoints.wait(CHECKPOINT_EVERY):
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()

    # -- the writer thread ----------------------------------------------------------

    def _run(self) -> None:
        conn = self._conn
        while True:
            first = self._jobs.get()
            if first is None:
                break
            jobs = [first]
            stop = False
            while True:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                jobs.append(more)
            self._commit(conn, jobs)
            if stop:
                break
        conn.close()

    def _commit(self, conn: sqlite3.Connection, jobs: list[tuple[Job, Future[Any]]]) -> None:
        results: list[tuple[Future[Any], Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job, future in jobs:
                conn.execute("SAVEPOINT job")
                try:
                    results.append((future, job(conn), None))
                    conn.execute("RELEASE job")
                except (sqlite3.IntegrityError, ValueError) as exc:
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    results.append((future, None, exc))
            conn.execute("COMMIT")
            self.commits += 1
        except (sqlite3.Error, OSError) as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            error = SpoolError(f"spool write failed: {exc}")
            for _, future in jobs:
                with contextlib.suppress(InvalidStateError):
                    future.set_exception(error)
            return
        for future, value, failure in results:
            # A waiter that gave up (cancelled its future) changes nothing: the commit stands.
            with contextlib.suppress(InvalidStateError):
                if failure is not None:
                    future.set_exception(SpoolError(f"spool write failed: {failure}"))
                else:
                    future.set_result(value)

    def submit(self, job: Job) -> Future[Any]:
        """Queue ``job(conn)`` for the next group commit; the future resolves after COMMIT."""
        future: Future[Any] = Future()
        if self._closed:
            future.set_exception(SpoolError("spool is closed"))
            return future
        self._jobs.put((job, future))
        return future

    async def run(self, job: Job) -> Any:
        return await asyncio.wrap_future(self.submit(job))

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read-only query on the reader connection (sees committed data only)."""
        with self._read_lock:
            try:
                return fn(self._read)
            except sqlite3.Error as exc:
                raise SpoolError(f"spool read failed: {exc}") from None

    async def aread(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.to_thread(self.read, fn)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        self._thread.join()
        self._stop_checkpoints.set()
        self._checkpointer.join()
        with self._read_lock:
            self._read.close()

    # -- jobs (run inside the writer's transaction) -----------------------------------

    @staticmethod
    def append_job(
        connector: str, events: Sequence[Event], dedupe: bool, now: float | None = None
    ) -> Job:
        """A job that stores the events not seen before; returns :class:`Appended`."""

        def job(conn: sqlite3.Connection) -> Appended:
            stamp = time.time() if now is None else now
            fresh = list(events)
            if dedupe:
                fresh = _unseen(conn, connector, fresh)
                conn.executemany(
                    "INSERT INTO seen (connector, id, at) VALUES (?, ?, ?)",
                    [(connector, e.attributes["id"], int(stamp)) for e in fresh],
                )
            size = 0
            if fresh:
                docs = [to_structured(e) for e in fresh]
                size = sum(map(len, docs))
                conn.execute(
                    "INSERT INTO batches (connector, created, count, bytes, payload)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (connector, stamp, len(fresh), size, _encoder.encode(docs)),
                )
                _count(conn, connector, "accepted", len(fresh))
            return Appended(len(fresh), len(events) - len(fresh), size)

        return job


def _unseen(conn: sqlite3.Connection, connector: str, events: Sequence[Event]) -> list[Event]:
    ids = [str(e.attributes["id"]) for e in events]
    known: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT id FROM seen WHERE connector = ? AND id IN ({marks})",
            (connector, *chunk),
        )
        known.update(r[0] for r in rows)
    fresh: list[Event] = []
    for event, key in zip(events, ids, strict=True):
        if key in known:
            continue
        known.add(key)
        fresh.append(event)
    return fresh


def _count(conn: sqlite3.Connection, connector: str, column: str, n: int) -> None:
    if n:
        conn.execute(
            f"INSERT INTO counters (connector, {column}) VALUES (?, ?)"
            f" ON CONFLICT(connector) DO UPDATE SET {column} = {column} + excluded.{column}",
            (connector, n),
        )


def seen_ids(conn: sqlite3.Connection, connector: str, ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` are in the dedupe window already."""
    wanted = list(ids)
    out: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ",".join("?" * len(chunk))
        out.update(
            r[0]
            for r in conn.execute(
                f"SELECT id FROM seen WHERE connector = ? AND id IN ({marks})",
                (connector, *chunk),
            )
        )
    return out


def mark_seen_job(connector: str, ids: Sequence[str]) -> Job:
    def job(conn: sqlite3.Connection) -> None:
        stamp = int(time.time())
        conn.executemany(
            "INSERT INTO seen (connector, id, at) VALUES (?, ?, ?)"
            " ON CONFLICT(connector, id) DO UPDATE SET at = excluded.at",
            [(connector, i, stamp) for i in ids],
        )

    return job


def prune_job(window: float, max_entries: int, total: int, limit: int = 20000) -> Job:
    """Forget ids older than ``window``, and the oldest past ``max_entries``, a slice at a
    time (so one prune never holds the writer for long). ``total`` is the current count of
    remembered ids. Returns how many were forgotten."""

    def job(conn: sqlite3.Connection) -> int:
        horizon = int(time.time() - window)
        removed = conn.execute(
            "DELETE FROM seen WHERE (connector, id) IN"
            " (SELECT connector, id FROM seen WHERE at < ? ORDER BY at LIMIT ?)",
            (horizon, limit),
        ).rowcount
        excess = min(total - removed - max_entries, limit) if max_entries > 0 else 0
        if excess > 0:
            removed += conn.execute(
                "DELETE FROM seen WHERE (connector, id) IN"
                " (SELECT connector, id FROM seen ORDER BY at LIMIT ?)",
                (excess,),
            ).rowcount
        return int(removed)

    return job


def default_data_dir() -> Path:
    return Path(os.getcwd()) / "data"
