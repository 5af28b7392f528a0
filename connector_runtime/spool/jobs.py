"""Jobs of a group commit: what one is, how the writer runs a batch of them in one
transaction, and how each waiter hears back.

A job is a function of the write connection, run inside the writer's transaction
(:class:`~connector_runtime.spool.store.Spool`). Its waiter is a thread (a concurrent
future) or a coroutine (its loop and an asyncio future); the results of one commit reach
each event loop with one wake-up, not one per job.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from typing import Any

from connector_runtime.errors import SpoolError

Job = Callable[[sqlite3.Connection], Any]

Waiter = Future[Any] | tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]"]
"""Who waits for a job: a thread (a concurrent future) or a coroutine (its loop, a future)."""

Result = tuple[Waiter, Any, BaseException | None]


class Refused(Exception):
    """An append while the spool cannot keep what it acknowledges (fails that job only)."""


JOB_ERRORS = (sqlite3.IntegrityError, ValueError, Refused)
"""What a job may raise that fails the job alone (anything else fails the commit)."""


class Unsynced:
    """A job whose commit needs no fsync (:meth:`Spool.run` with ``synced=False``)."""

    __slots__ = ("job",)

    def __init__(self, job: Job) -> None:
        self.job = job

    def __call__(self, conn: sqlite3.Connection) -> Any:
        return self.job(conn)


def apply(conn: sqlite3.Connection, jobs: list[tuple[Job, Waiter]], isolated: bool) -> list[Result]:
    """Run the jobs in a new transaction (each in a savepoint when ``isolated``, where a
    failing job is rolled back alone and gets its error)."""
    conn.execute("BEGIN IMMEDIATE")
    results: list[Result] = []
    for job, waiter in jobs:
        if not isolated:
            results.append((waiter, job(conn), None))
            continue
        conn.execute("SAVEPOINT job")
        try:
            results.append((waiter, job(conn), None))
            conn.execute("RELEASE job")
        except JOB_ERRORS as exc:
            conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
            why = str(exc) if isinstance(exc, Refused) else f"spool write failed: {exc}"
            results.append((waiter, None, SpoolError(why)))
    return results


def resolve(results: Sequence[Result]) -> None:
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
