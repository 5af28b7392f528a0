"""The dedupe window in the spool: which event ids each connector already accepted.

Ids live in two *generations*, two tables keyed on (id, connector) with no other index:

- ``seen_new`` takes every id accepted now;
- ``seen_old`` holds the previous generation, still looked up, never written.

When the new generation has been open for the window, or holds ``maxEntries`` ids, it
*rotates*: the old table is dropped whole (no per-row delete) and the new one becomes old.
So an id is remembered for at least the window (and at least until ``maxEntries`` newer ids
came), and at most for twice that; the tables never hold more than twice ``maxEntries``.

Compared with one table pruned row by row, an accepted id costs one B-tree insert instead of
two (there is no index on time to keep), and the durable append looks up and inserts a
whole request's ids in one statement (:func:`insert_new`).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence

import orjson

from connector_runtime.events import Event

# Keyed on (id, connector), not (connector, id): the id nearly always decides a comparison,
# so SQLite compares on its first field alone (about a tenth less per insert than with a
# connector name every key shares up front).
_GENERATION = (
    "CREATE TABLE {} (connector TEXT NOT NULL, id TEXT NOT NULL,"
    " PRIMARY KEY (id, connector)) WITHOUT ROWID"
)

_INSERT = (
    "INSERT INTO seen_new (connector, id) SELECT ?1, value FROM json_each(?2)"
    " WHERE NOT EXISTS (SELECT 1 FROM seen_old WHERE connector = ?1 AND id = value)"
    " ON CONFLICT DO NOTHING"
)
_INSERT_NEW = _INSERT + " RETURNING id"
_CHUNK = 500
_FEW = 8
"""Up to this many ids, reading the new ones back costs less than a savepoint's two more
statements."""


def create(conn: sqlite3.Connection) -> None:
    """Create the tables of a new spool, inside the caller's transaction (the spool's
    :func:`~connector_runtime.spool.schema.connect` does, with its own)."""
    conn.execute(_GENERATION.format("seen_new"))
    conn.execute(_GENERATION.format("seen_old"))
    conn.execute(
        "CREATE TABLE seen_generation (one INTEGER PRIMARY KEY CHECK (one = 1), started REAL"
        " NOT NULL)"
    )
    conn.execute("INSERT INTO seen_generation (one, started) VALUES (1, ?)", (time.time(),))


def insert_new(conn: sqlite3.Connection, connector: str, ids: Sequence[str]) -> set[str]:
    """Remember ``ids`` and return those not remembered before: one statement does the
    look-up in both generations and the insert, inside the caller's transaction."""
    fresh: set[str] = set()
    for start in range(0, len(ids), _CHUNK):
        part = ids[start : start + _CHUNK]
        chunk = orjson.dumps(part).decode()
        if len(part) > _FEW:
            # Usually every id is new: the insert's row count says so, and no row comes
            # back (each fetched row would be a step of its own, each letting go of the
            # GIL). Otherwise it is undone, and the ids go in reading the new ones back.
            conn.execute("SAVEPOINT seen")
            all_new = conn.execute(_INSERT, (connector, chunk)).rowcount == len(part)
            conn.execute("RELEASE seen" if all_new else "ROLLBACK TO seen")
            if all_new:
                fresh.update(part)
                continue
            conn.execute("RELEASE seen")
        fresh.update(row[0] for row in conn.execute(_INSERT_NEW, (connector, chunk)))
    return fresh


def first_of_each(events: Sequence[Event], known: set[str]) -> list[Event]:
    """The events whose id is not in ``known``, keeping only the first of each id."""
    here = set(known)
    fresh: list[Event] = []
    for event in events:
        key = event.id
        if key not in here:
            here.add(key)
            fresh.append(event)
    return fresh


def seen_ids(conn: sqlite3.Connection, connector: str, ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` are in the window already (either generation)."""
    wanted = list(ids)
    out: set[str] = set()
    for table in ("seen_new", "seen_old"):
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            out.update(
                r[0]
                for r in conn.execute(
                    f"SELECT id FROM {table} WHERE connector = ? AND id IN ({marks})",
                    (connector, *chunk),
                )
            )
    return out


def mark_seen(conn: sqlite3.Connection, connector: str, ids: Sequence[str]) -> None:
    """Remember ``ids`` (those known already stay remembered)."""
    conn.executemany(
        "INSERT OR IGNORE INTO seen_new (connector, id) VALUES (?, ?)",
        [(connector, i) for i in ids],
    )


def count_new(conn: sqlite3.Connection) -> int:
    """Ids in the new generation."""
    return int(conn.execute("SELECT count(*) FROM seen_new").fetchone()[0])


def started(conn: sqlite3.Connection) -> float:
    """When the new generation began (seconds since the epoch)."""
    row = conn.execute("SELECT started FROM seen_generation").fetchone()
    return float(row[0]) if row is not None else time.time()


def due(started_at: float, new_ids: int, window: float, max_entries: int, now: float) -> bool:
    """Whether the new generation is old enough, or full enough, to rotate."""
    return now - started_at >= window or 0 < max_entries <= new_ids


def rotate(conn: sqlite3.Connection, now: float) -> None:
    """Forget the old generation and start a new one (inside the caller's transaction)."""
    conn.execute("DROP TABLE seen_old")
    conn.execute("ALTER TABLE seen_new RENAME TO seen_old")
    conn.execute(_GENERATION.format("seen_new"))
    conn.execute("UPDATE seen_generation SET started = ?", (now,))
