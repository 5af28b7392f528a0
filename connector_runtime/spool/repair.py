"""``spool check`` and ``spool repair``: a spool whose segment files are missing or short.

A spool's rows keep their payloads in segment files (:mod:`connector_runtime.spool.segments`);
if one was deleted or cut short while the runtime was stopped, the runtime refuses to
start on that spool. ``check`` says which segments, which connectors' rows and how many
events are affected, and how many of those can still be read. ``repair`` keeps every event
that can be read (the whole documents at the start of a row cut short; they move into the
row itself) and reports the others as dead letters without an event, one per row, whose
reason says how many events were lost and why (:mod:`connector_runtime.spool.salvage`). Both
hold the spool's lock, so they refuse to run while a runtime uses it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connector_runtime.errors import SpoolError
from connector_runtime.spool import schema, tables
from connector_runtime.spool.payloads import readable_docs
from connector_runtime.spool.salvage import Read, Tally, save_rows
from connector_runtime.spool.segments import segments_dir, take_lock


@dataclass
class Damage:
    """One segment file the spool's rows need more of than there is."""

    segment: Path
    size: int | None
    """Its size; None when it is missing."""
    needed: int
    """The end of the last payload in it."""
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    """The rows whose payload is not all there (:func:`~connector_runtime.spool.tables.
    rows_in_segment`)."""
    tallies: dict[str, Tally] = field(default_factory=dict)
    """By connector: rows, events readable (``kept``) and not (``lost``)."""

    @property
    def state(self) -> str:
        if self.size is None:
            return "is missing"
        return f"holds {self.size} of {self.needed} bytes"

    def as_dict(self) -> dict[str, Any]:
        return {
            "segment": str(self.segment),
            "state": "missing" if self.size is None else "short",
            "size": self.size,
            "needed": self.needed,
            "connectors": [
                {"connector": c, "rows": t.rows, "readable": t.kept, "lost": t.lost}
                for c, t in sorted(self.tallies.items())
            ],
        }


def check(spool_path: Path) -> list[Damage]:
    """What is damaged in the spool at ``spool_path`` (empty when nothing)."""
    with _opened(spool_path) as conn:
        return _scan(conn, segments_dir(spool_path))


def repair(spool_path: Path) -> list[Damage]:
    """Keep what can be read of the damaged rows, report the rest as dead letters; return
    what was damaged (its tallies say what became of it)."""
    with _opened(spool_path) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            damage = _scan(conn, segments_dir(spool_path))
            now = time.time()
            for d in damage:
                with _reader(d) as read:
                    why = f"spool segment {d.segment.parent.name}/{d.segment.name} {d.state}"
                    d.tallies = save_rows(conn, d.rows, read, _inline, why, now)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return damage


def render(label: str, damage: list[Damage], repaired: bool) -> list[str]:
    """Lines for a person: per damaged segment, per connector."""
    if not damage:
        return [f"spool {label}: {'nothing to repair' if repaired else 'healthy'}"]
    lines = [f"spool {label}: {'repaired' if repaired else 'damaged'}"]
    for d in damage:
        lines.append(f"  segment {d.segment} {d.state}")
        for connector, t in sorted(d.tallies.items()):
            done = "kept" if repaired else "readable"
            lines.append(
                f"    connector {connector}: {t.rows} row(s) damaged: {t.kept} event(s) {done},"
                f" {t.lost} lost"
            )
    return lines


def _inline(payload: bytes) -> tables.Placed:
    return payload, None, 0, 0


@contextlib.contextmanager
def _opened(spool_path: Path) -> Iterator[sqlite3.Connection]:
    lock = take_lock(segments_dir(spool_path), "stop the runtime first")
    try:
        conn = schema.connect(spool_path)
        try:
            yield conn
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {spool_path} cannot be read or written: {exc}") from None
        finally:
            conn.close()
    finally:
        os.close(lock)


def _scan(conn: sqlite3.Connection, directory: Path) -> list[Damage]:
    found = []
    for seg, needed in tables.segment_ends(conn).items():
        path = directory / f"{seg:012d}.seg"
        try:
            size: int | None = path.stat().st_size
        except FileNotFoundError:
            size = None
        except OSError as exc:
            raise SpoolError(f"cannot look at spool segment {path}: {exc.strerror}") from None
        if size is not None and size >= needed:
            continue
        d = Damage(path, size, needed)
        d.rows = tables.rows_in_segment(conn, seg, past=size or 0)
        with _reader(d) as read:
            for _, connector, _, _, count, _, _, offset, length in d.rows:
                t = d.tallies.setdefault(connector, Tally())
                readable = len(readable_docs(read(seg, offset, length), count))
                t.rows += 1
                t.kept += readable
                t.lost += count - readable
        found.append(d)
    return found


@contextlib.contextmanager
def _reader(damage: Damage) -> Iterator[Read]:
    """What is left of a damaged segment's bytes: up to its end, nothing when missing."""
    try:
        fd = -1 if damage.size is None else os.open(damage.segment, os.O_RDONLY)
    except OSError as exc:
        raise SpoolError(f"cannot read spool segment {damage.segment}: {exc.strerror}") from None

    def read(seg: int, offset: int, length: int) -> bytes:
        return b"" if fd < 0 else os.pread(fd, length, offset)

    try:
        yield read
    finally:
        if fd >= 0:
            os.close(fd)
