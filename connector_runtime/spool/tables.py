"""Every statement on the spool's tables ``batches``, ``dead_letters`` and ``counters``.

The rest of the spool calls these functions and writes no SQL of its own against these
tables; their DDL and the spool's format version are :mod:`connector_runtime.spool.schema`'s
(the dedupe window's tables are :mod:`connector_runtime.spool.seen`'s). Each function runs
on the connection it is given, inside the caller's transaction.

- ``batches``: one row per accepted request (not per event), in arrival order (``seq``),
  with retry state. Its events' documents, joined with ``,`` after their lengths
  (:mod:`connector_runtime.spool.payloads`), are in a segment file (``seg``,
  ``seg_offset``, ``seg_length``; :mod:`connector_runtime.spool.segments`) written and
  synced before the row's COMMIT, or in ``payload`` when they are small, and in the rows
  ``dlq redrive`` and ``spool repair`` put back. A row delivered in part keeps in ``done``
  a bitmap of its stored events already delivered (:mod:`connector_runtime.spool.
  progress`); its ``count`` and ``bytes`` are those of the events still to deliver.
- ``dead_letters``: events that failed for good, one row each, with status and reason; a
  row without an event (``event_id`` and ``payload`` empty) reports events lost with a
  damaged segment (:mod:`connector_runtime.spool.salvage`).
- ``counters``: accepted / delivered / retried / dead-lettered totals per connector.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, Final, Literal, NamedTuple

import orjson

Counter = Literal["accepted", "delivered", "retried", "dead_lettered"]
_COUNT: Final[dict[str, str]] = {
    column: f"INSERT INTO counters (connector, {column}) VALUES (?, ?)"
    f" ON CONFLICT(connector) DO UPDATE SET {column} = {column} + excluded.{column}"
    for column in ("accepted", "delivered", "retried", "dead_lettered")
}

Placed = tuple[bytes, int | None, int, int]
"""Where a row's payload is: its ``payload, seg, seg_offset, seg_length`` columns (the
payload itself and no segment, or an empty payload and the place in a segment)."""

HEAD_COLUMNS: Final = (
    "seq, created, attempts, next_attempt, count, bytes, done, payload, seg, seg_offset, seg_length"
)
"""The columns of the rows :func:`head_rows` gives, in this order (the last four are the
row's :data:`Placed`)."""

SEGMENT_ROW_COLUMNS: Final = (
    "seq, connector, created, attempts, count, bytes, seg, seg_offset, seg_length"
)
"""The columns of the rows :func:`rows_in_segment` gives, in this order."""


class DeadLetterRow(NamedTuple):
    """A row of ``dead_letters`` to insert."""

    connector: str
    event_id: str
    created: float
    failed: float
    attempts: int
    status: int | None
    reason: str
    payload: bytes
    """The event's structured document (:func:`~connector_runtime.spool.payloads.
    encode_event`)."""


# -- batches ------------------------------------------------------------------------------


def append_batch(
    conn: sqlite3.Connection, connector: str, created: float, count: int, size: int, at: Placed
) -> None:
    """A new row of ``count`` events (``size`` bytes of documents) an append accepted."""
    conn.execute(
        "INSERT INTO batches (connector, created, count, bytes, payload, seg, seg_offset,"
        " seg_length) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (connector, created, count, size, *at),
    )
    conn.execute(_COUNT["accepted"], (connector, count))


def put_back(
    conn: sqlite3.Connection, connector: str, created: float, count: int, size: int, payload: bytes
) -> None:
    """A new row holding its payload (``dlq redrive``: not counted as accepted again)."""
    conn.execute(
        "INSERT INTO batches (connector, created, count, bytes, payload) VALUES (?, ?, ?, ?, ?)",
        (connector, created, count, size, payload),
    )


def head_rows(conn: sqlite3.Connection, connector: str, after: int, limit: int) -> sqlite3.Cursor:
    """The first ``limit`` rows of ``connector`` after ``seq`` ``after``, oldest first
    (:data:`HEAD_COLUMNS`)."""
    return conn.execute(
        f"SELECT {HEAD_COLUMNS} FROM batches WHERE connector = ? AND seq > ? ORDER BY seq LIMIT ?",
        (connector, after, limit),
    )


def depth(conn: sqlite3.Connection, connector: str) -> tuple[int, int, float | None]:
    """Events and bytes still to deliver for ``connector``, and when its oldest row came."""
    events, size, oldest = conn.execute(
        "SELECT coalesce(sum(count), 0), coalesce(sum(bytes), 0), min(created)"
        " FROM batches WHERE connector = ?",
        (connector,),
    ).fetchone()
    return int(events), int(size), oldest


def stored(conn: sqlite3.Connection, seq: int) -> tuple[int, int] | None:
    """A row's ``count`` and ``bytes`` (None when it is gone)."""
    found = conn.execute("SELECT count, bytes FROM batches WHERE seq = ?", (seq,)).fetchone()
    return None if found is None else (found[0], found[1])


def set_retry(
    conn: sqlite3.Connection, seq: int, attempts: int, next_attempt: float, error: str | None
) -> None:
    """A row's retry state after an attempt that delivered none of it."""
    conn.execute(
        "UPDATE batches SET attempts = ?, next_attempt = ?, last_error = ? WHERE seq = ?",
        (attempts, next_attempt, error, seq),
    )


def keep_only(
    conn: sqlite3.Connection,
    seq: int,
    at: Placed,
    count: int,
    size: int,
    attempts: int,
    next_attempt: float,
    error: str | None,
) -> None:
    """Make a row hold only the events still to deliver (their new payload ``at``), with its
    retry state."""
    conn.execute(
        "UPDATE batches SET payload = ?, seg = ?, seg_offset = ?, seg_length = ?, done = NULL,"
        " count = ?, bytes = ?, attempts = ?, next_attempt = ?, last_error = ? WHERE seq = ?",
        (*at, count, size, attempts, next_attempt, error, seq),
    )


def done_of(conn: sqlite3.Connection, seq: int) -> tuple[bytes | None, int] | None:
    """A row's ``done`` bitmap and ``count`` (None when it is gone)."""
    found = conn.execute("SELECT done, count FROM batches WHERE seq = ?", (seq,)).fetchone()
    return None if found is None else (found[0], found[1])


def set_done(conn: sqlite3.Connection, seq: int, done: bytes, count: int, delivered: int) -> None:
    """Record a row's ``done`` bitmap; ``count`` events are left, ``delivered`` bytes went."""
    conn.execute(
        "UPDATE batches SET done = ?, count = ?, bytes = bytes - ? WHERE seq = ?",
        (done, count, delivered, seq),
    )


def delete_batches(conn: sqlite3.Connection, seqs: Sequence[int]) -> None:
    if seqs:  # one statement: executemany would step (and let go of the GIL) per row
        conn.execute(
            "DELETE FROM batches WHERE seq IN (SELECT value FROM json_each(?))",
            (orjson.dumps(seqs).decode(),),
        )


def segment_ends(conn: sqlite3.Connection) -> dict[int, int]:
    """Each segment rows point into → the end of the last payload there, by number."""
    return dict(
        conn.execute(
            "SELECT seg, max(seg_offset + seg_length) FROM batches WHERE seg IS NOT NULL"
            " GROUP BY seg ORDER BY seg"
        ).fetchall()
    )


def segments_in_use(conn: sqlite3.Connection, numbers: Iterable[int]) -> set[int]:
    """Which of the segments ``numbers`` rows point into."""
    return {
        row[0]
        for row in conn.execute(
            "SELECT DISTINCT seg FROM batches WHERE seg IN (SELECT value FROM json_each(?))",
            (orjson.dumps(sorted(numbers)).decode(),),
        )
    }


def rows_in_segment(conn: sqlite3.Connection, seg: int, past: int = 0) -> list[Any]:
    """The rows whose payload is in segment ``seg`` and ends after byte ``past``, oldest
    first (:data:`SEGMENT_ROW_COLUMNS`)."""
    return conn.execute(
        f"SELECT {SEGMENT_ROW_COLUMNS} FROM batches WHERE seg = ? AND seg_offset + seg_length > ?"
        " ORDER BY seq",
        (seg, past),
    ).fetchall()


def replace_payload(conn: sqlite3.Connection, seq: int, at: Placed, count: int, size: int) -> None:
    """A row's payload saved elsewhere (``at``), holding ``count`` events of ``size`` bytes."""
    conn.execute(
        "UPDATE batches SET payload = ?, seg = ?, seg_offset = ?, seg_length = ?, count = ?,"
        " bytes = ? WHERE seq = ?",
        (*at, count, size, seq),
    )


# -- dead letters -------------------------------------------------------------------------


def insert_dead_letters(
    conn: sqlite3.Connection, connector: str, rows: Sequence[DeadLetterRow]
) -> None:
    """Store dead letters of ``connector`` and count them."""
    conn.executemany(
        "INSERT INTO dead_letters (connector, event_id, created, failed, attempts, status,"
        " reason, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    count(conn, connector, "dead_lettered", len(rows))


def count_dead_letters(conn: sqlite3.Connection) -> dict[str, int]:
    """Dead letters stored now, per connector (a scan of the table's connector index:
    tens of milliseconds per million rows, so callers cache it)."""
    rows = conn.execute("SELECT connector, count(*) FROM dead_letters GROUP BY connector")
    return {str(connector): int(n) for connector, n in rows}


def report_lost(
    conn: sqlite3.Connection,
    connector: str,
    created: float,
    failed: float,
    attempts: int,
    reason: str,
    lost: int,
) -> None:
    """One dead letter without an event for ``lost`` events of a row nothing is left of,
    counted as ``lost`` dead letters."""
    conn.execute(
        "INSERT INTO dead_letters (connector, event_id, created, failed, attempts, status,"
        " reason, payload) VALUES (?, '', ?, ?, ?, NULL, ?, x'')",
        (connector, created, failed, attempts, reason),
    )
    count(conn, connector, "dead_lettered", lost)


def _where(connector: str | None, ids: Sequence[int] | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if connector is not None:
        clauses.append("connector = ?")
        params.append(connector)
    if ids:
        clauses.append(f"id IN ({','.join('?' * len(ids))})")
        params.extend(ids)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def dead_letters(conn: sqlite3.Connection, connector: str | None, limit: int) -> list[Any]:
    """The first ``limit`` dead letters (of ``connector``, or all): ``id, connector,
    event_id, failed, attempts, status, reason``."""
    where, params = _where(connector, None)
    return conn.execute(
        "SELECT id, connector, event_id, failed, attempts, status, reason FROM dead_letters"
        + where
        + " ORDER BY id LIMIT ?",
        (*params, limit),
    ).fetchall()


def dead_letter(conn: sqlite3.Connection, dead_id: int) -> Any:
    """Dead letter ``dead_id`` (``id, connector, event_id, created, failed, attempts, status,
    reason, payload``), or None."""
    return conn.execute(
        "SELECT id, connector, event_id, created, failed, attempts, status, reason, payload"
        " FROM dead_letters WHERE id = ?",
        (dead_id,),
    ).fetchone()


def redrivable(
    conn: sqlite3.Connection, connector: str | None, ids: Sequence[int] | None
) -> list[Any]:
    """The dead letters that hold an event (of ``connector`` and among ``ids`` when given),
    oldest first: ``id, connector, payload``."""
    where, params = _where(connector, ids)
    where += " AND " if where else " WHERE "
    return conn.execute(
        "SELECT id, connector, payload FROM dead_letters" + where + "length(payload) > 0"
        " ORDER BY id",
        params,
    ).fetchall()


def delete_dead_letters(conn: sqlite3.Connection, ids: Sequence[int]) -> None:
    conn.executemany("DELETE FROM dead_letters WHERE id = ?", [(i,) for i in ids])


def purge_dead_letters(
    conn: sqlite3.Connection, connector: str | None, ids: Sequence[int] | None
) -> int:
    """Delete dead letters (of ``connector``, among ``ids`` when given); returns how many."""
    where, params = _where(connector, ids)
    return int(conn.execute("DELETE FROM dead_letters" + where, params).rowcount)


def dead_letters_now(conn: sqlite3.Connection, connector: str) -> int:
    (n,) = conn.execute(
        "SELECT count(*) FROM dead_letters WHERE connector = ?", (connector,)
    ).fetchone()
    return int(n)


# -- counters -----------------------------------------------------------------------------


def count(conn: sqlite3.Connection, connector: str, counter: Counter, n: int) -> None:
    """Add ``n`` to a counter of ``connector``."""
    if n:
        conn.execute(_COUNT[counter], (connector, n))


def counters(conn: sqlite3.Connection, connector: str) -> tuple[int, int, int, int]:
    """``connector``'s accepted, delivered, retried and dead-lettered totals."""
    row = conn.execute(
        "SELECT accepted, delivered, retried, dead_lettered FROM counters WHERE connector = ?",
        (connector,),
    ).fetchone() or (0, 0, 0, 0)
    accepted, delivered, retried, dead = (int(x) for x in row)
    return accepted, delivered, retried, dead


def connectors(conn: sqlite3.Connection) -> set[str]:
    """Every connector with a counter, a row or a dead letter."""
    return {
        r[0]
        for r in conn.execute(
            "SELECT connector FROM counters UNION SELECT connector FROM batches"
            " UNION SELECT connector FROM dead_letters"
        )
    }
