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
from connector_runtime.spool import schema, tables
from connector_runtime.spool.payloads import decode_event, encode_events, event_size


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
    """The spool database at ``path`` (SpoolError when it has another format version)."""
    return schema.connect(path)


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
    out = []
    for name in sorted(tables.connectors(conn)):
        if connector is not None and name != connector:
            continue
        depth, _, oldest = tables.depth(conn, name)
        accepted, delivered, retried, dead = tables.counters(conn, name)
        out.append(
            SpoolStats(
                connector=name,
                depth=depth,
                oldest_age=None if oldest is None else now - oldest,
                accepted=accepted,
                delivered=delivered,
                retried=retried,
                dead_lettered=dead,
                dead_letters_now=tables.dead_letters_now(conn, name),
            )
        )
    return out


def list_dead_letters(
    conn: sqlite3.Connection, connector: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
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
        for r in tables.dead_letters(conn, connector, limit)
    ]


def show_dead_letter(conn: sqlite3.Connection, dead_id: int) -> dict[str, Any]:
    row = tables.dead_letter(conn, dead_id)
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
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows = tables.redrivable(conn, connector, ids)
        by_connector: dict[str, list[Any]] = {}
        for _, name, payload in rows:
            by_connector.setdefault(name, []).append(decode_event(payload))
        now = time.time()
        for name, events in by_connector.items():
            for start in range(0, len(events), 500):
                chunk = events[start : start + 500]
                size = sum(map(event_size, chunk))
                tables.put_back(conn, name, now, len(chunk), size, encode_events(chunk))
        tables.delete_dead_letters(conn, [r[0] for r in rows])
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        conn.execute("ROLLBACK")
        raise SpoolError(f"redrive failed: {exc}") from None
    return len(rows)


def purge(
    conn: sqlite3.Connection, connector: str | None = None, ids: list[int] | None = None
) -> int:
    """Delete dead letters for good; return how many."""
    return tables.purge_dead_letters(conn, connector, ids)
