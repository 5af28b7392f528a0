"""Which of a spool row's events are delivered: the ``done`` column, read and written.

A row delivered in part keeps in ``done`` a bitmap of its stored events already delivered:
bit ``i`` of the little-endian integer is the ``i``-th document of its payload; NULL means
none. Its ``count`` and ``bytes`` are those of the events still to deliver; a row with none
left is deleted. :func:`pending` reads a row back without its delivered events;
:class:`Delivered` gathers what a target accepted and :func:`record` writes it in one job
of a group commit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

from connector_runtime.events import Event
from connector_runtime.spool import tables
from connector_runtime.spool.payloads import (
    EncodedEvents,
    concat,
    decode_events,
    event_size,
    events_size,
)


def pending(
    payload: bytes | memoryview, done: bytes | None
) -> tuple[Sequence[Event], tuple[int, ...] | None]:
    """A row's events still to deliver, and their positions among its stored events (None:
    all of them)."""
    events = decode_events(payload)
    if not done:
        return events, None
    bits = int.from_bytes(done, "little")
    positions = tuple(i for i in range(len(events)) if not bits >> i & 1)
    parts: list[EncodedEvents] = []
    start = 0
    for n, position in enumerate(positions):  # runs of consecutive positions, as slices
        if n + 1 == len(positions) or positions[n + 1] != position + 1:
            parts.append(events[positions[start] : position + 1])
            start = n + 1
    return (concat(parts) if parts else EncodedEvents([])), positions


@dataclass
class Delivered:
    """Events a target accepted, by row, waiting to be recorded."""

    whole: list[tuple[int, int]] = field(default_factory=list)
    """Rows delivered whole: (seq, bytes)."""
    parts: dict[int, list[int]] = field(default_factory=dict)
    """Rows delivered in part: seq → [bitmap of the positions delivered, their bytes]."""
    events: int = 0

    @property
    def size(self) -> int:
        return sum(size for _, size in self.whole) + sum(size for _, size in self.parts.values())

    def add(
        self,
        seq: int,
        events: Sequence[Event],
        indexes: Sequence[int],
        positions: tuple[int, ...] | None,
        sizes: Sequence[int],
    ) -> None:
        """The events at ``indexes`` of a row read as ``events`` (at ``positions`` among its
        stored ones, None: all in order; ``sizes``: their documents' lengths, if known)."""
        self.events += len(indexes)
        if positions is None and len(indexes) == len(events):
            self.whole.append((seq, events_size(events)))
            return
        contiguous = isinstance(indexes, range) and indexes.step == 1
        if not sizes:
            size = sum(event_size(events[i]) for i in indexes)
        elif contiguous:
            size = sum(sizes[indexes[0] : indexes[-1] + 1])
        else:
            size = sum(sizes[i] for i in indexes)
        if positions is None and contiguous:
            bits = (1 << (indexes[-1] + 1)) - (1 << indexes[0])
        else:
            bits = 0
            for i in indexes:
                bits |= 1 << (i if positions is None else positions[i])
        row = self.parts.setdefault(seq, [0, 0])
        row[0] |= bits
        row[1] += size


def record(conn: sqlite3.Connection, connector: str, delivered: Delivered) -> None:
    """In a job: record ``delivered`` (rows already gone are skipped, positions already
    marked are not counted again)."""
    gone = [seq for seq, _ in delivered.whole]
    for seq, (bits, size) in delivered.parts.items():
        found = tables.done_of(conn, seq)
        if found is None:
            continue
        before = int.from_bytes(found[0] or b"", "little")
        done = before | bits
        left = found[1] - (done ^ before).bit_count()
        if left <= 0:
            gone.append(seq)
            continue
        tables.set_done(
            conn, seq, done.to_bytes((done.bit_length() + 7) // 8, "little"), left, size
        )
    tables.delete_batches(conn, gone)
    tables.count(conn, connector, "delivered", delivered.events)
