"""Looking into and acting on a spool from the command line (``dlq …``, ``spool stats``).

These functions open the spool database directly, so they work whether or not a runtime
is serving from it (SQLite WAL lets readers and one writer share the file). A redriven
dead letter becomes a new spool row; a running dispatcher picks it up within a second.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connector_runtime.errors import SpoolError
from connector_runtime.events import to_structured
from connector_runtime.spool.payloads import decode_event, encode_events, event_size
from connector_runtime.spool.store import connect


def spools(data_dir: Path) -> list[tuple[str, Path]]:
    """The spool files under a data dir: ``("", D/spool.db)``, or one per worker shard
    (``("shard-0", D/shard-0/spool.db)``, …) for ``run --workers N``."""
    single = data_dir / "spool.db"
    if single.is_file():
        return [("", single)]
    shards = sorted(data_dir.glob("shard-*/spool.db"), key=lambda p: p.parent.name)
    if not shards:
        raise SpoolError(f"no spool under {data_dir}")
    return [(p.parent.name, p) for p in shards]


def open_spool(path: Path) -> sqlite3.Connection:
    return connect(path)


def merge_stats(groups: list[list[SpoolStats]]) -> list[SpoolStats]:
    """Add up the per-connector statistics of several shards."""
    merged: dict[str, SpoolStats] = {}
    for rows in groups:
        for r in rows:
            m = merged.get(r.connector)
            if m is None:
                merged[r.connector] = r
                continue
            ages = [a for a in (m.oldest_age, r.oldest_age) if a is not None]
            merged[r.connector] = SpoolStats(
                connector=r.connector,
                depth=m.depth + r.depth,
                oldest_age=max(ages) if ages else None,
                accepted=m.accepted + r.accepted,
                delivered=m.delivered + r.delivered,
                retried=m.retried + r.retried,
                dead_lettered=m.dead_lettered + r.dead_lettered,
                dead_letters_now=m.dead_letters_now + r.dead_letters_now,
            )
    return [merged[k] for k in sorted(merged)]


@dataclass(frozen=True)
class SpoolStats:
    connector: str
    depth: int
    oldest_age: float | None
    accepted: int
    delivered: int
    retried: int
    dead_lettered: int
    dead_letters_now: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "connector": self.connector,
            "depth": self.depth,
            "oldestAgeSeconds": None if self.oldest_age is None else round(self.oldest_age, 3),
            "accepted": self.accepted,
            "delivered": self.delivered,
            "retried": self.retried,
            "deadLettered": self.dead_lettered,
            "deadLettersNow": self.dead_letters_now,
        }


def stats(conn: sqlite3.Connection, connector: str | None = None) -> list[SpoolStats]:
    now = time.time()
    names = {
        r[0]
        for r in conn.execute(
            "SELECT connector FROM counters UNION SELECT connector FROM batches"
            " UNION SELECT connector FROM dead_letters"
        )
    }
    out = []
    for name in sorted(names):
        if connector is not None and name != connector:
            continue
        depth, oldest = conn.execute(
            "SELECT coalesce(sum(count), 0), min(created) FROM batches WHERE connector = ?",
            (name,),
        ).fetchone()
        row = conn.execute(
            "SELECT accepted, delivered, retried, dead_lettered FROM counters WHERE connector = ?",
            (name,),
        ).fetchone() or (0, 0, 0, 0)
        (dead_now,) = conn.execute(
            "SELECT count(*) FROM dead_letters WHERE connector = ?", (name,)
        ).fetchone()
        accepted, delivered, retried, dead = (int(x) for x in row)
        out.append(
            SpoolStats(
                connector=name,
                depth=int(depth),
                oldest_age=None if oldest is None else now - oldest,
                accepted=accepted,
                delivered=delivered,
                retried=retried,
                dead_lettered=dead,
                dead_letters_now=int(dead_now),
            )
        )
    return out


def _where(connector: str | None, ids: list[int] | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if connector is not None:
        clauses.append("connector = ?")
        params.append(connector)
    if ids:
        clauses.append(f"id IN ({','.join('?' * len(ids))})")
        params.extend(ids)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def list_dead_letters(
    conn: sqlite3.Connection, connector: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    where, params = _where(connector, None)
    rows = conn.execute(
        "SELECT id, connector, event_id, failed, attempts, status, reason FROM dead_letters"
        + where
        + " ORDER BY id LIMIT ?",
        (*params, limit),
    )
    return [
        {
            "id": r[0],
            "connector": r[1],
            "eventId": r[2] or None,  # none: the events of a row whose payload was lost
            "failed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r[3])),
            "attempts": r[4],
            "status": r[5],
            "reason": r[6],
        }
        for r in rows
    ]


def show_dead_letter(conn: sqlite3.Connection, dead_id: int) -> dict[str, Any]:
    row = conn.execute(
        "SELECT id, connector, event_id, created, failed, attempts, status, reason, payload"
        " FROM dead_letters WHERE id = ?",
        (dead_id,),
    ).fetchone()
    if row is None:
        raise SpoolError(f"no dead letter with id {dead_id}")
    event = decode_event(row[8]) if row[8] else None
    return {
        "id": row[0],
        "connector": row[1],
        "eventId": row[2] or None,
        "accepted": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(row[3])),
        "failed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(row[4])),
        "attempts": row[5],
        "status": row[6],
        "reason": row[7],
        "event": None if event is None else to_structured(event).decode("utf-8", "replace"),
    }


def redrive(
    conn: sqlite3.Connection, connector: str | None = None, ids: list[int] | None = None
) -> int:
    """Move dead letters back into the spool, oldest first; return how many. Those
    without an event (reports of events lost with a damaged segment) stay."""
    where, params = _where(connector, ids)
    where += " AND " if where else " WHERE "
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows = conn.execute(
            "SELECT id, connector, payload FROM dead_letters" + where + "length(payload) > 0"
            " ORDER BY id",
            params,
        ).fetchall()
        by_connector: dict[str, list[Any]] = {}
        for _, name, payload in rows:
            by_connector.setdefault(name, []).append(decode_event(payload))
        now = time.time()
        for name, events in by_connector.items():
            for start in range(0, len(events), 500):
                chunk = events[start : start + 500]
                conn.execute(
                    "INSERT INTO batches (connector, created, count, bytes, payload)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (name, now, len(chunk), sum(map(event_size, chunk)), encode_events(chunk)),
                )
        conn.executemany("DELETE FROM dead_letters WHERE id = ?", [(r[0],) for r in rows])
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        conn.execute("ROLLBACK")
        raise SpoolError(f"redrive failed: {exc}") from None
    return len(rows)


def purge(
    conn: sqlite3.Connection, connector: str | None = None, ids: list[int] | None = None
) -> int:
    """Delete dead letters for good; return how many."""
    where, params = _where(connector, ids)
    cur = conn.execute("DELETE FROM dead_letters" + where, params)
    return int(cur.rowcount)
