"""Spool rows whose payload's segment file is damaged: what is kept, what is reported.

Used by the running spool (:class:`Watch`: a segment file deleted, replaced or cut short
under it) and by ``spool repair`` (:mod:`connector_runtime.spool.repair`: the same found
while the runtime was stopped). The rule is the same: every event whose document can still
be read stays in the spool, in its row; for the events of a row that cannot be read
(nothing of them is left, not even their ids) the row leaves one dead letter without an
event (``event_id`` empty, ``payload`` empty), whose reason says how many events were lost
and why; a row left with no event is deleted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connector_runtime.errors import SpoolError
from connector_runtime.spool import tables
from connector_runtime.spool.payloads import encode_docs, readable_docs
from connector_runtime.spool.segments import Segments

log = logging.getLogger("connector_runtime")

CHECK_EVERY = 1.0
"""Seconds between looks at every segment file (a deletion that no commit notices: a
closed segment, or an idle spool)."""

Read = Callable[[int, int, int], bytes]
"""(segment, offset, length) -> what can still be read of those bytes (maybe fewer)."""
Place = Callable[[bytes], tables.Placed]
"""A payload -> the row's new ``payload, seg, seg_offset, seg_length``."""


@dataclass
class Tally:
    """What became of one connector's damaged rows."""

    rows: int = 0
    kept: int = 0
    """Events still in the spool."""
    lost: int = 0
    """Events nothing is left of (reported as dead letters)."""
    lost_bytes: int = 0
    """Their stored bytes (what the spool's depth goes down by)."""


def save_rows(
    conn: sqlite3.Connection,
    rows: Sequence[Sequence[Any]],
    read: Read,
    place: Place,
    why: str,
    now: float,
) -> dict[str, Tally]:
    """Inside a transaction: give each row (:func:`~connector_runtime.spool.tables.
    rows_in_segment`) what ``read`` still gives
    of its payload, stored by ``place``; report the events lost. Returns tallies by
    connector."""
    tallies: dict[str, Tally] = {}
    for seq, connector, created, attempts, count, size, seg, offset, length in rows:
        tally = tallies.setdefault(connector, Tally())
        tally.rows += 1
        data = read(seg, offset, length)
        docs = None
        if len(data) != length:
            docs = readable_docs(data, count)
            data = encode_docs(docs)
        kept = count if docs is None else len(docs)
        kept_bytes = size if docs is None else sum(map(len, docs))
        tally.kept += kept
        if kept:
            tables.replace_payload(conn, seq, place(data), kept, kept_bytes)
        else:
            tables.delete_batches(conn, [seq])
        if kept == count:
            continue
        lost = count - kept
        tally.lost += lost
        tally.lost_bytes += size - kept_bytes
        reason = f"{lost} event(s) lost: {why}"
        tables.report_lost(conn, connector, created, now, attempts, reason, lost)
    return tallies


def identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


class Watch:
    """A running spool's guard against files changed under it (the writer thread's).

    - :meth:`check_database` (each commit, before COMMIT): the database file must still be
      the one opened. If it was deleted or replaced, that commit fails and appends are
      refused from then on (:attr:`refusal`); other commits go on, so the dispatcher
      still delivers what the spool holds.
    - :meth:`tend` (after a failed commit, and about once a second): segments found
      damaged have their rows saved: each row's payload is copied out of the descriptor
      still open on the file into the segment being written; what cannot be read is
      reported as dead letters.
    """

    def __init__(self, path: Path, segments: Segments, place: Place) -> None:
        self.path = path
        self.segments = segments
        self.place = place
        self.refusal: str | None = None
        self.problems: tuple[str, ...] = ()
        """Why the spool is not whole now (readiness reasons)."""
        self._database = identity(path)
        self._checked = time.monotonic()
        self._logged: set[int] = set()
        self._lost: dict[str, tuple[int, int]] = {}
        self._lost_lock = threading.Lock()

    def check_database(self) -> None:
        if self.refusal is not None or identity(self.path) == self._database:
            return
        self.refusal = f"spool database {self.path.name} was deleted or replaced while in use"
        log.error(
            "spool database %s was deleted or replaced while in use: nothing more is"
            " acknowledged (503), what it holds is still delivered; restart the runtime"
            " once its spool depth is 0 (it then starts from the file at that path)",
            self.path,
        )
        self.problems = (self.refusal, *self.problems)
        raise SpoolError(self.refusal)

    def take_lost(self, connector: str) -> tuple[int, int]:
        """Events and bytes of ``connector`` that left the spool as lost since last asked."""
        with self._lost_lock:
            return self._lost.pop(connector, (0, 0))

    def tend(self, conn: sqlite3.Connection, force: bool = False) -> None:
        """Check the segment files (about once a second, or now when ``force``) and save
        the rows of the damaged ones."""
        now = time.monotonic()
        if not force and now - self._checked < CHECK_EVERY:
            return
        self._checked = now
        self.segments.check()
        problems = [self.refusal] if self.refusal else []
        for number, why in list(self.segments.damaged.items()):
            label = f"spool segment {self.segments.label(number)} {why}"
            if number not in self._logged:
                self._logged.add(number)
                log.error(
                    "spool segment %s %s: requests writing to it got 503; its rows are copied"
                    " into a new segment from the file still open. Find what deletes or"
                    " changes files under %s",
                    self.segments.label(number, full=True),
                    why,
                    self.segments.directory.parent,
                )
            try:
                self._save(conn, number, label)
            except (sqlite3.Error, OSError, SpoolError) as exc:
                problems.append(f"{label}; saving its rows failed: {exc}")
                continue
            self.segments.saved(number)
        self.problems = tuple(problems)

    def _save(self, conn: sqlite3.Connection, number: int, label: str) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows = tables.rows_in_segment(conn, number)
            tallies = save_rows(
                conn, rows, self.segments.salvage_read, self.place, label, time.time()
            )
            self.segments.flush()
            conn.execute("COMMIT")
        except BaseException:
            self.segments.discard()
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        with self._lost_lock:
            for connector, t in tallies.items():
                events, size = self._lost.get(connector, (0, 0))
                self._lost[connector] = (events + t.lost, size + t.lost_bytes)
        kept = sum(t.kept for t in tallies.values())
        lost = sum(t.lost for t in tallies.values())
        if lost:
            log.error(
                "%s: %d event(s) of its %d row(s) kept, %d lost (in the dead-letter store:"
                " `connector-runtime dlq list`)",
                label,
                kept,
                len(rows),
                lost,
            )
        else:
            log.warning("%s: all %d event(s) of its %d row(s) kept", label, kept, len(rows))
