"""The durable spool: a SQLite database (WAL) under the data dir.

One writer thread owns the write connection and runs *group commits*: everything that is
waiting when it wakes up (appends of many concurrent requests, acks from the dispatcher,
dead letters) goes into one transaction, committed with ``synchronous=FULL`` (an fsync of
the WAL per commit). A request is answered 2xx only after the commit holding its events
returned, so an acknowledged event is on disk whatever happens to the process.

Tables:
- ``batches``: one row per accepted request (not per event), in arrival order (``seq``),
  with retry state. Its events' documents, joined with ``,`` after their lengths
  (:mod:`connector_runtime.spool.payloads`), are in a segment file (small ones in the row)
  (:mod:`connector_runtime.spool.segments`: ``seg``, ``seg_offset``, ``seg_length``) written and
  synced before the row's COMMIT; rows written before segments existed, and rows the admin
  commands put back, hold them in ``payload``. The dispatcher reads them back in order.
  As a target accepts events, the dispatcher records them (:mod:`connector_runtime.spool.
  progress`): a row whose events are all delivered is deleted; a row delivered in
  part keeps in ``done`` a bitmap of its stored events already delivered, and its
  ``count`` and ``bytes`` are those of the events still to deliver.
- ``seen_new`` / ``seen_old``: the event ids accepted within the dedupe window, so a
  redelivery is recognised after a restart too (:mod:`connector_runtime.spool.seen`).
- ``dead_letters``: events that failed for good, one row each, with status and reason.
- ``counters``: delivered / retried / dead-lettered totals per connector.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from connector_runtime.errors import SpoolError
from connector_runtime.events import Event, docs_of, ids_of
from connector_runtime.spool import seen
from connector_runtime.spool.datadir import WriteHealth, cause_of, open_failure
from connector_runtime.spool.payloads import encode_docs
from connector_runtime.spool.salvage import CHECK_EVERY, Refused, Watch
from connector_runtime.spool.segments import SEGMENT_BYTES, Segments, segments_dir

T = TypeVar("T")
log = logging.getLogger("connector_runtime")

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
    payload BLOB NOT NULL,
    seg INTEGER,
    seg_offset INTEGER,
    seg_length INTEGER,
    done BLOB
);
CREATE INDEX IF NOT EXISTS batches_by_connector ON batches (connector, seq);
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
    events: Sequence[Event]


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
        # 16 KiB pages for a new spool (an existing one keeps its size): a request's row is
        # ~100 KiB, and fewer, larger pages mean fewer WAL frames, checksums and writes.
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        # Some SQLite builds zero-fill deleted content; every delivered row would be written
        # twice more (WAL and checkpoint). Freed pages are reused, not wiped: protect the
        # data dir itself (docs/security.md).
        conn.execute("PRAGMA secure_delete=OFF")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.executescript(SCHEMA)
    except (OSError, sqlite3.Error) as exc:
        raise SpoolError(open_failure(path, exc)) from None
    return conn


Job = Callable[[sqlite3.Connection], Any]

PAGE_SIZE = 16384

Waiter = Future[Any] | tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]"]
"""Who waits for a job: a thread (a concurrent future) or a coroutine (its loop, a future)."""


def _resolve(results: Sequence[tuple[Waiter, Any, BaseException | None]]) -> None:
    """Hand each job's result to its waiter, with one wake-up per event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, Any]]] = {}
    for waiter, value, failure in results:
        if isinstance(waiter, tuple):
            loop, future = waiter
            by_loop.setdefault(loop, []).append((future, value, failure))
            continue
        # A waiter that gave up (cancelled its future) changes nothing: the commit stands.
        with contextlib.suppress(InvalidStateError):
            if failure is not None:
                waiter.set_exception(failure)
            else:
                waiter.set_result(value)
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting
            loop.call_soon_threadsafe(_settle_futures, items)


def _settle_futures(items: Sequence[tuple[asyncio.Future[Any], Any, Any]]) -> None:
    for future, value, failure in items:
        if future.done():  # cancelled by its waiter
            continue
        if failure is not None:
            future.set_exception(failure)
        else:
            future.set_result(value)


INLINE_BYTES = 8192
"""Payloads up to this size stay in their row (a request of a few records): they fit in a
page, and a commit of only such rows needs no segment write and no second fsync."""

_JOB_ERRORS = (sqlite3.IntegrityError, ValueError, Refused)
"""What a job may raise that fails the job alone (anything else fails the commit)."""

CHECKPOINT_EVERY = 0.25
"""Seconds between background WAL checkpoints."""
WAL_BACKSTOP_PAGES = 16384
"""WAL size in pages (256 MiB at 16 KiB) past which a commit checkpoints by itself."""


class Spool:
    """The spool of one runtime process; all writes go through one group-commit thread."""

    def __init__(self, path: Path, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.path = path
        self._conn = connect(path)
        try:
            self.segments = Segments(segments_dir(path), segment_bytes)
        except SpoolError:
            self._conn.close()
            raise
        try:
            seen.create(self._conn)
            _add_segment_columns(self._conn)
            self.segments.open(
                dict(
                    self._conn.execute(
                        "SELECT seg, max(seg_offset + seg_length) FROM batches"
                        " WHERE seg IS NOT NULL GROUP BY seg"
                    ).fetchall()
                )
            )
        except (sqlite3.Error, OSError, SpoolError) as exc:
            self._conn.close()
            self.segments.close()
            if isinstance(exc, SpoolError):
                raise
            raise SpoolError(open_failure(path, exc)) from None
        # Checkpoints (copying the WAL back into the database file, with an fsync) run in a
        # thread of their own, so commits never wait for one; the writer checkpoints only
        # as a backstop if the WAL outgrows WAL_BACKSTOP_PAGES.
        self._conn.execute(f"PRAGMA wal_autocheckpoint={WAL_BACKSTOP_PAGES}")
        self._watch = Watch(path, self.segments, self.place)
        self._read = connect(path)
        self._read_lock = threading.Lock()
        self._jobs: queue.SimpleQueue[tuple[Job, Waiter] | None] = queue.SimpleQueue()
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
        self.health = WriteHealth(path.parent)
        """Whether writes land: marked by a commit that failed for want of space (or a
        read-only or failing disk), cleared by :meth:`probe`."""
        self._synced = True
        """The writer connection's ``synchronous`` is FULL (else NORMAL)."""
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
            try:
                first = self._jobs.get(timeout=CHECK_EVERY)
            except queue.Empty:  # idle: a look at the files all the same
                self._tend(conn)
                continue
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

    def _commit(self, conn: sqlite3.Connection, jobs: list[tuple[Job, Waiter]]) -> None:
        synced = not all(isinstance(job, _Unsynced) for job, _ in jobs)
        try:
            if synced != self._synced:
                conn.execute(f"PRAGMA synchronous={'FULL' if synced else 'NORMAL'}")
                self._synced = synced
            try:
                results = self._apply(conn, jobs, isolated=False)
            except _JOB_ERRORS:
                # One job failed: undo them all, then give each a savepoint of its own, so
                # that only that job fails and the others still commit.
                self.segments.discard()
                conn.execute("ROLLBACK")
                results = self._apply(conn, jobs, isolated=True)
            self.segments.flush()  # the payloads are on disk before a row points to them
            self._watch.check_database()  # and the rows go to the file a restart opens
            conn.execute("COMMIT")
            self.commits += 1
        except (sqlite3.Error, OSError, SpoolError) as exc:
            self.segments.discard()
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self.health.failed(exc)
            if isinstance(exc, SpoolError):
                error = exc
            else:
                cause = cause_of(exc)
                error = SpoolError(f"spool write failed: {cause}", cause)
            _resolve([(waiter, None, error) for _, waiter in jobs])
            self._tend(conn, force=bool(self.segments.damaged))
            return
        _resolve(results)
        with contextlib.suppress(sqlite3.Error, OSError):  # tried again after the next commit
            self.segments.retire(conn)
        self._tend(conn)

    def _tend(self, conn: sqlite3.Connection, force: bool = False) -> None:
        try:
            self._watch.tend(conn, force)
        except Exception:  # never the writer thread's end: tried again in a second
            log.exception("checking the spool's segment files failed")

    def problems(self) -> list[str]:
        """Why the spool is not whole now (a segment file or the database changed under
        it); empty when it is."""
        return list(self._watch.problems)

    def take_lost(self, connector: str) -> tuple[int, int]:
        """Events and bytes of ``connector`` that left the spool as lost (a damaged
        segment file) since the last call."""
        return self._watch.take_lost(connector)

    @staticmethod
    def _apply(
        conn: sqlite3.Connection, jobs: list[tuple[Job, Waiter]], isolated: bool
    ) -> list[tuple[Waiter, Any, BaseException | None]]:
        """Run the jobs in a new transaction (each in a savepoint when ``isolated``, where a
        failing job is rolled back alone and gets its error)."""
        conn.execute("BEGIN IMMEDIATE")
        results: list[tuple[Waiter, Any, BaseException | None]] = []
        for job, waiter in jobs:
            if not isolated:
                results.append((waiter, job(conn), None))
                continue
            conn.execute("SAVEPOINT job")
            try:
                results.append((waiter, job(conn), None))
                conn.execute("RELEASE job")
            except _JOB_ERRORS as exc:
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                why = str(exc) if isinstance(exc, Refused) else f"spool write failed: {exc}"
                results.append((waiter, None, SpoolError(why)))
        return results

    def place(self, payload: bytes) -> tuple[bytes, int | None, int, int]:
        """In a job: put a row's payload in the current segment, or in the row itself when
        it is small (:data:`INLINE_BYTES`); returns the values of the row's ``payload, seg,
        seg_offset, seg_length`` columns."""
        if len(payload) <= INLINE_BYTES:
            return payload, None, 0, 0
        number, offset = self.segments.put(payload)
        return b"", number, offset, len(payload)

    def payload(self, stored: bytes, seg: int | None, offset: int, length: int) -> bytes:
        """A row's payload from its ``payload, seg, seg_offset, seg_length`` columns."""
        return stored if seg is None else self.segments.read(seg, offset, length)

    def payloads(
        self, rows: Sequence[tuple[bytes, int | None, int, int]]
    ) -> list[bytes | memoryview]:
        """:meth:`payload` of each row; rows whose payloads lie one after another in a
        segment (as a run of appends does) are read with one read, and handed out as views
        of it."""
        out: list[bytes | memoryview] = []
        i = 0
        while i < len(rows):
            stored, seg, offset, length = rows[i]
            if seg is None:
                out.append(stored)
                i += 1
                continue
            j, end = i + 1, offset + length
            while j < len(rows) and rows[j][1] == seg and rows[j][2] == end:
                end += rows[j][3]
                j += 1
            data = memoryview(self.segments.read(seg, offset, end - offset))
            start = 0
            for row in rows[i:j]:
                out.append(data[start : start + row[3]])
                start += row[3]
            i = j
        return out

    def submit(self, job: Job) -> Future[Any]:
        """Queue ``job(conn)`` for the next group commit; the future resolves after COMMIT."""
        future: Future[Any] = Future()
        if self._closed:
            future.set_exception(SpoolError("spool is closed"))
            return future
        self._jobs.put((job, future))
        return future

    async def run(self, job: Job, synced: bool = True) -> Any:
        """Run ``job`` in the next group commit and return its result once committed.

        The writer wakes the event loop once per commit for all of its waiters, not once
        per job (a thread-safe call per job is a syscall each). ``synced=False``: a commit
        of only such jobs is not fsync'd (``synchronous=NORMAL``): it survives the process
        dying, and reaches the disk with the next fsync'd commit or checkpoint (within
        :data:`CHECKPOINT_EVERY`); for what a power loss may undo at no harm, such as
        delivery progress."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if self._closed:
            raise SpoolError("spool is closed")
        self._jobs.put((job if synced else _Unsynced(job), (loop, future)))
        return await future

    def readiness(self) -> list[str]:
        """Why the spool should get no requests now (empty when it can take them): the
        data dir cannot be written, or the spool is not whole (:meth:`problems`)."""
        why = self.health.reason
        return ([why] if why is not None else []) + self.problems()

    def probe(self) -> None:
        """While writes fail for want of space (or a read-only or failing disk), look
        whether they would land again (a small write and fsync); clears :meth:`readiness`."""
        self.health.probe()

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
        with contextlib.suppress(sqlite3.Error, OSError):
            self.segments.retire(self._conn, force=True)
        self._conn.close()
        self.segments.close()
        self._stop_checkpoints.set()
        self._checkpointer.join()
        with self._read_lock:
            self._read.close()

    # -- jobs (run inside the writer's transaction) -----------------------------------

    def append_job(
        self,
        connector: str,
        events: Sequence[Event],
        dedupe: bool,
        now: float | None = None,
        dedupe_key: str | None = None,
    ) -> Job:
        """A job that stores the events not seen before; returns :class:`Appended`.
        ``dedupe_key``: the dedupe window's key when it is not the connector's own."""
        seen_key = dedupe_key or connector

        def job(conn: sqlite3.Connection) -> Appended:
            if self._watch.refusal is not None:
                raise Refused(self._watch.refusal)
            stamp = time.time() if now is None else now
            fresh = list(events)
            if dedupe:
                ids = ids_of(fresh)
                new = seen.insert_new(conn, seen_key, ids)
                if len(new) < len(fresh):
                    fresh = seen.first_of_each(fresh, set(ids) - new)
            size = 0
            if fresh:
                docs = docs_of(fresh)
                size = sum(map(len, docs))
                conn.execute(
                    "INSERT INTO batches (connector, created, count, bytes, payload, seg,"
                    " seg_offset, seg_length) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (connector, stamp, len(fresh), size, *self.place(encode_docs(docs))),
                )
                _count(conn, connector, "accepted", len(fresh))
            return Appended(len(fresh), len(events) - len(fresh), size)

        return job


class _Unsynced:
    """A job whose commit needs no fsync (:meth:`Spool.run` with ``synced=False``)."""

    __slots__ = ("job",)

    def __init__(self, job: Job) -> None:
        self.job = job

    def __call__(self, conn: sqlite3.Connection) -> Any:
        return self.job(conn)


def _add_segment_columns(conn: sqlite3.Connection) -> None:
    """Give a spool from before segment files the columns that point into them (and
    ``done``, which came after them), and the index that finds the segments rows still
    point into (a few look-ups per check; rows that keep their payload inline are not in
    it)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(batches)")}
    for name in ("seg", "seg_offset", "seg_length", "done"):
        if name not in columns:
            kind = "BLOB" if name == "done" else "INTEGER"
            conn.execute(f"ALTER TABLE batches ADD COLUMN {name} {kind}")
    conn.execute("DROP INDEX IF EXISTS batches_by_segment")
    conn.execute(
        "CREATE INDEX IF NOT EXISTS batches_in_segments ON batches (seg) WHERE seg IS NOT NULL"
    )


def _count(conn: sqlite3.Connection, connector: str, column: str, n: int) -> None:
    if n:
        conn.execute(
            f"INSERT INTO counters (connector, {column}) VALUES (?, ?)"
            f" ON CONFLICT(connector) DO UPDATE SET {column} = {column} + excluded.{column}",
            (connector, n),
        )


def default_data_dir() -> Path:
    return Path(os.getcwd()) / "data"
