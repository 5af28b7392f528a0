"""Pull sources' checkpoints: the ``checkpoints`` table, one row per connector.

A pull source hands events over together with a checkpoint (an opaque string, e.g. the
last Auth0 ``log_id`` of a page). :func:`with_checkpoint` wraps the spool's append job so
that the checkpoint row is written in the same group-commit transaction as the events: a
restart reads back exactly the checkpoint whose events are committed, never a later one.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (
    connector TEXT PRIMARY KEY,
    checkpoint TEXT NOT NULL,
    updated REAL NOT NULL
)
"""


def create(conn: sqlite3.Connection) -> None:
    """Create the table (a job; idempotent)."""
    conn.execute(SCHEMA)


def read(conn: sqlite3.Connection, connector: str) -> str | None:
    """The connector's last committed checkpoint, or None."""
    try:
        row = conn.execute(
            "SELECT checkpoint FROM checkpoints WHERE connector = ?", (connector,)
        ).fetchone()
    except sqlite3.OperationalError:  # no table yet: nothing committed
        return None
    return None if row is None else str(row[0])


def write(conn: sqlite3.Connection, connector: str, checkpoint: str) -> None:
    conn.execute(
        "INSERT INTO checkpoints (connector, checkpoint, updated) VALUES (?, ?, ?)"
        " ON CONFLICT(connector) DO UPDATE SET checkpoint = excluded.checkpoint,"
        " updated = excluded.updated",
        (connector, checkpoint, time.time()),
    )


def with_checkpoint(
    job: Callable[[sqlite3.Connection], Any], connector: str, checkpoint: str
) -> Callable[[sqlite3.Connection], Any]:
    """``job`` followed by writing ``checkpoint``, in the same transaction (the writer
    runs a failing job in a savepoint of its own, so neither lands without the other)."""

    def both(conn: sqlite3.Connection) -> Any:
        result = job(conn)
        write(conn, connector, checkpoint)
        return result

    return both
