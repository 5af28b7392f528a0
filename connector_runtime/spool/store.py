"""The durable spool: a SQLite database (WAL) under the data dir.

One writer thread owns the write connection and runs *group commits*: everything that is
waiting when it wakes up (appends of many concurrent requests, acks from the dispatcher,
dead letters) goes into one transaction, committed with ``synchronous=FULL`` (an fsync of
the WAL per commit). A request is answered 2xx only after the commit holding its events
returned, so an acknowledged event is on disk whatever happens to the process.

What the jobs of a commit are, and how their waiters hear back: :mod:`.jobs`. The
database's tables and format version: :mod:`.schema`; every statement on them:
:mod:`.tables`. A row's payload lives in the row when it is small, else in a segment file
(:mod:`.segments`).
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
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from connector_runtime.errors import SpoolError
from connector_runtime.events import Event, docs_of, ids_of
from connector_runtime.spool import schema, seen, tables
from connector_runtime.spool.datadir import WriteHealth, cause_of, open_failure
from connector_runtime.spool.jobs import JOB_ERRORS, Job, Refused, Unsynced, Waiter, apply, resolve
from connector_runtime.spool.payloads import encode_docs
from connector_runtime.spool.salvage import CHECK_EVERY, Watch
from connector_runtime.spool.segments import SEGMENT_BYTES, Segments, segments_dir

T = TypeVar("T")
log = logging.getLogger("connector_runtime")


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


INLINE_BYTES = 8192
"""Payloads up to this size stay in their row (a request of a few records): they fit in a
page, and a commit of only such rows needs no segment write and no second fsync."""

CHECKPOINT_EVERY = 0.25
"""Seconds between background WAL checkpoints."""
WAL_BACKSTOP_PAGES = 16384
"""WAL size in pages (256 MiB at 16 KiB) past which a commit checkpoints by itself."""


class Spool:
    """The spool of one runtime process; all writes go through one group-commit thread."""

    def __init__(self, path: Path, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.path = path
        self._conn = schema.connect(path)
        try:
            self.segments = Segments(segments_dir(path), segment_bytes)
        except SpoolError:
            self._conn.close()
            raise
        try:
            self.segments.open(tables.segment_ends(self._conn))
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
        self._read = schema.connect(path)
        self._read_lock = threading.Lock()
        self._jobs: queue.SimpleQueue[tuple[Job, Waiter] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="spool-writer", daemon=True)
        self._closed = False
        self._stop_checkpoints = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop,
            args=(schema.connect(path),),
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
        synced = not all(isinstance(job, Unsynced) for job, _ in jobs)
        try:
            if synced != self._synced:
                conn.execute(f"PRAGMA synchronous={'FULL' if synced else 'NORMAL'}")
                self._synced = synced
            try:
                results = apply(conn, jobs, isolated=False)
            except JOB_ERRORS:
                # One job failed: undo them all, then give each a savepoint of its own, so
                # that only that job fails and the others still commit.
                self.segments.discard()
                conn.execute("ROLLBACK")
                results = apply(conn, jobs, isolated=True)
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
            resolve([(waiter, None, error) for _, waiter in jobs])
            self._tend(conn, force=bool(self.segments.damaged))
            return
        resolve(results)
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

    def place(self, payload: bytes) -> tables.Placed:
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

    def payloads(self, rows: Sequence[tables.Placed]) -> list[bytes | memoryview]:
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
        self._jobs.put((job if synced else Unsynced(job), (loop, future)))
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
                at = self.place(encode_docs(docs))
                tables.append_batch(conn, connector, stamp, len(fresh), size, at)
            return Appended(len(fresh), len(events) - len(fresh), size)

        return job


def default_data_dir() -> Path:
    return Path(os.getcwd()) / "data"
