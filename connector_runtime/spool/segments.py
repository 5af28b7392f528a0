"""Segment files: where the payloads of spool rows live, beside the SQLite database.

A spool row (one accepted request) keeps its metadata and the dedupe ids in SQLite and its
payload, the events' encoded documents, in a segment file: ``<spool>-segments/<n>.seg``,
written at the end, never changed. Why not a BLOB column: every byte of a BLOB passes
through SQLite's pages several times (WAL frames with checksums, overflow chains read back
to free them, a checkpoint copy), which cost more of the runtime's core than writing the
bytes once (``bench/RESULTS.md``).

The rules that keep acknowledged events safe:

- The writer thread buffers a commit's payloads (:meth:`Segments.put`), and before SQLite's
  COMMIT writes them and ``fdatasync``\\ s each segment they went to (:meth:`Segments.flush`).
  A row is thus never committed before its payload is on disk; a crash in between leaves
  bytes no row points to, which nothing reads.
- A segment is dropped only when no committed row points into it (:meth:`Segments.retire`
  asks the database after a commit), and never while it is the one being written.
- A new segment is created (or a spare renamed to it) with its directory synced before a
  row can point into it.
- One process at a time: the directory's ``lock`` file is held (``flock``) while a spool
  is open (and by ``spool check``/``repair``).
- A write that did not land is never acknowledged: before the write and after the
  ``fdatasync`` of a segment, its path must lead to the file this process made, at least as
  long as it wrote it (:meth:`Segments.flush` raises :class:`SegmentDamaged` otherwise,
  before the COMMIT); a segment whose sync failed is written no more.
  :meth:`Segments.check` looks at every segment the same way (about once a second). A
  damaged segment is marked: its rows are then copied out of the file still open, where
  it is (:mod:`connector_runtime.spool.salvage`), and nothing opens its path again.
- Emptied segments are kept as spares (a few) and overwritten later: writing over a file's
  existing blocks makes a cheaper ``fdatasync`` than growing one, and reuses warm pages.

Reading (:meth:`Segments.read`) is safe from any thread: a row's bytes never change while
the row exists.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sqlite3
import threading
import time
from pathlib import Path

from connector_runtime.errors import SpoolError
from connector_runtime.spool import tables

SEGMENT_BYTES = 32 * 1024 * 1024
"""A segment is closed for writing once it holds this much (a larger payload gets one to
itself)."""
SPARES = 3
"""Emptied segments kept for reuse; more are deleted."""
RETIRE_EVERY = 0.5
"""Seconds between checks for segments no row points into any more."""

_IOV_MAX = 1024
_SUFFIX = ".seg"
_SPARE = "spare-"


def segments_dir(spool_path: Path) -> Path:
    """Where the segments of the spool database at ``spool_path`` live."""
    return spool_path.with_name(spool_path.name + "-segments")


class Segments:
    """The segment files of one spool. Writing (:meth:`put`, :meth:`flush`,
    :meth:`discard`, :meth:`retire`) belongs to the spool's writer thread."""

    def __init__(self, directory: Path, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self._lock = take_lock(directory, "give each runtime its own data dir")
        self._spares: list[Path] = []
        self._numbers: set[int] = set()  # segment files that exist and are not spares
        self._current: int | None = None
        self._fd = -1
        self._position = 0
        self._pending: dict[int, tuple[int, int, list[bytes]]] = {}  # n -> (fd, start, parts)
        self._closing: list[int] = []  # fds of full segments, closed after their flush
        self._readers: dict[int, int] = {}  # segment -> descriptor for reading
        self._readers_lock = threading.Lock()
        self._next = 1
        self._retired_at = 0.0
        self._identity: dict[int, tuple[int, int]] = {}  # segment -> (st_dev, st_ino)
        self._ends: dict[int, int] = {}  # segment -> bytes its rows may need (synced)
        self._lost: set[int] = set()  # segments found damaged: never opened by path again
        self.damaged: dict[int, str] = {}
        """Segments found damaged whose rows are not saved yet: number -> what happened."""

    # -- start-up ----------------------------------------------------------------------

    def open(self, needed: dict[int, int]) -> None:
        """Take stock at start-up. ``needed`` maps each segment the database's rows point
        into to the end of the last payload there; a missing or short file is damage
        (raise). Files no row needs become spares, or are deleted."""
        found: dict[int, Path] = {}
        spent = [0]  # numbers spares had: new segments are numbered past them too
        for entry in self.directory.iterdir():
            if entry.suffix == _SUFFIX and entry.stem.isdigit():
                found[int(entry.stem)] = entry
            elif entry.name.startswith(_SPARE):
                self._spares.append(entry)
                was = entry.name.removeprefix(_SPARE)
                spent.append(int(was) if was.isdigit() else 0)
        for number, end in sorted(needed.items()):
            path = found.get(number)
            stat = path.stat() if path is not None else None
            if stat is None or stat.st_size < end:
                state = "is missing" if stat is None else f"holds {stat.st_size} of {end} bytes"
                data = self.directory.parent
                raise SpoolError(
                    f"spool damaged: segment {self.directory / _name(number)} {state};"
                    " the spool's rows point into it. See what is damaged with"
                    f" `connector-runtime spool check --data-dir {data}`, then keep what can"
                    f" be read with `connector-runtime spool repair --data-dir {data}`"
                )
            self._identity[number] = (stat.st_dev, stat.st_ino)
            self._ends[number] = end
        self._next = max([*spent, *found, *needed]) + 1
        self._numbers = set(found)
        for number in sorted(set(found) - set(needed)):
            self._drop(number)

    # -- the writer thread ---------------------------------------------------------------

    def put(self, payload: bytes) -> tuple[int, int]:
        """Place ``payload`` in the current segment; returns (segment, offset). It is
        written by the next :meth:`flush`."""
        if self._current is None or (
            self._position > 0 and self._position + len(payload) > self.segment_bytes
        ):
            self._start_segment()
        assert self._current is not None
        number, offset = self._current, self._position
        pending = self._pending.get(number)
        if pending is None:
            self._pending[number] = (self._fd, offset, [payload])
        else:
            pending[2].append(payload)
        self._position += len(payload)
        return number, offset

    def flush(self) -> None:
        """Write what :meth:`put` placed and ``fdatasync`` each segment it went to, then
        make sure the file synced is still the segment (raises OSError, or
        :class:`SegmentDamaged`). Run before the COMMIT of the rows that point to it."""
        pending, self._pending = self._pending, {}
        for number, (fd, start, parts) in pending.items():
            why = self._fault(number)  # before: writing past a cut would leave a hole
            if why is None:
                _write_all(fd, parts, start)
                try:
                    os.fdatasync(fd)
                except OSError:  # what reached the disk is unknown now: write elsewhere
                    if fd == self._fd:
                        self._current = None
                    raise
                end = start + sum(map(len, parts))
                self._ends[number] = max(self._ends.get(number, 0), end)
                why = self._fault(number)  # after: the file synced is the one a restart opens
            if why is not None:
                self._mark(number, why, fd)
                raise SegmentDamaged(f"spool segment {self.label(number)} {why}")
        self._close_full()

    def discard(self) -> None:
        """Forget unflushed payloads (their commit failed). The space stays unused."""
        self._pending = {}
        self._close_full()

    def check(self) -> list[int]:
        """Look at every segment (one ``stat`` each): mark those deleted, replaced or cut
        short (in :attr:`damaged`); return the ones found now."""
        found = []
        for number in sorted(self._numbers - self._lost):
            why = self._fault(number)
            if why is not None:
                self._mark(number, why)
                found.append(number)
        return found

    def saved(self, number: int) -> None:
        """The rows of damaged segment ``number`` point elsewhere now."""
        self.damaged.pop(number, None)

    def retire(self, conn: sqlite3.Connection, force: bool = False) -> None:
        """After a commit: drop the closed segments no committed row points into (at most
        every :data:`RETIRE_EVERY` seconds unless ``force``)."""
        closed = self._numbers - {self._current}
        now = time.monotonic()
        if not closed or (not force and now - self._retired_at < RETIRE_EVERY):
            return
        self._retired_at = now
        for number in sorted(closed - tables.segments_in_use(conn, closed)):
            self._drop(number)

    def close(self) -> None:
        """Close every descriptor and let the spool go (another process may open it)."""
        self._close_full()
        with self._readers_lock:
            readers, self._readers = self._readers, {}
        for fd in readers.values():
            os.close(fd)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._lock >= 0:
            os.close(self._lock)  # releases the lock
            self._lock = -1

    # -- any thread ------------------------------------------------------------------

    def read(self, number: int, offset: int, length: int) -> bytes:
        """The payload at ``offset`` in segment ``number``. Descriptors stay open for the
        next read until the segment is dropped (never while a row points into it, so never
        under a reader)."""
        with self._readers_lock:
            fd = self._readers.get(number)
            if fd is None:
                if number in self._lost:
                    raise SpoolError(f"spool segment {self.label(number)} was lost")
                fd = self._readers[number] = self._open_to_read(number)
        data = os.pread(fd, length, offset)
        if len(data) != length:
            path = self.directory / _name(number)
            raise SpoolError(f"spool segment {path} is shorter than its rows need")
        return data

    def salvage_read(self, number: int, offset: int, length: int) -> bytes:
        """What the open descriptor of damaged segment ``number`` still gives of
        ``length`` bytes at ``offset`` (less at its end; nothing without a descriptor)."""
        with self._readers_lock:
            fd = self._readers.get(number)
        if fd is None:
            return b""
        parts = []
        while length > 0:
            part = os.pread(fd, length, offset)
            if not part:
                break
            parts.append(part)
            offset += len(part)
            length -= len(part)
        return b"".join(parts)

    def label(self, number: int, full: bool = False) -> str:
        """A segment as messages name it: relative to the data dir (or its full path)."""
        return (
            str(self.directory / _name(number))
            if full
            else f"{self.directory.name}/{_name(number)}"
        )

    # -- inside ----------------------------------------------------------------------

    def _open_to_read(self, number: int) -> int:
        path = self.directory / _name(number)
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise SpoolError(f"spool segment {path} cannot be read: {exc.strerror}") from None
        stat = os.fstat(fd)
        if self._identity.get(number, (stat.st_dev, stat.st_ino)) != (stat.st_dev, stat.st_ino):
            os.close(fd)
            raise SpoolError(f"spool segment {path} was replaced")
        return fd

    def _fault(self, number: int) -> str | None:
        """What is wrong with segment ``number``'s file, or None."""
        try:
            stat = os.stat(self.directory / _name(number))
        except (FileNotFoundError, NotADirectoryError):
            return "was deleted while in use"
        if (stat.st_dev, stat.st_ino) != self._identity.get(number):
            return "was replaced while in use"
        end = self._ends.get(number, 0)
        if stat.st_size < end:
            return f"was cut short while in use (holds {stat.st_size} of {end} bytes)"
        return None

    def _mark(self, number: int, why: str, fd: int = -1) -> None:
        """Take segment ``number`` out of use. A descriptor on it stays open to copy its
        rows out of: the writer's (``fd``, when it is a full segment's), a reader's, or
        one opened now if its path still leads to it (a file cut short)."""
        self._lost.add(number)
        self.damaged[number] = why
        if number == self._current:
            fd, self._fd, self._current = self._fd, -1, None
        elif fd in self._closing:
            self._closing.remove(fd)
        else:
            fd = -1
        with self._readers_lock:
            if number not in self._readers and fd < 0:
                with contextlib.suppress(SpoolError):
                    fd = self._open_to_read(number)
            if number not in self._readers and fd >= 0:
                self._readers[number], fd = fd, -1
        if fd >= 0:
            os.close(fd)

    def _start_segment(self) -> None:
        number = self._next
        self._next += 1
        path = self.directory / _name(number)
        if not self.directory.is_dir():  # deleted under us: make it again, and lock it
            old, self._lock = self._lock, take_lock(self.directory, "stop the other one")
            os.close(old)
        if self._spares:
            with contextlib.suppress(FileNotFoundError):  # a spare removed by hand: a new file
                os.rename(self._spares.pop(), path)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # readable: to save its rows
        _sync_dir(self.directory)  # the name must last before a row points to it
        stat = os.fstat(fd)
        self._identity[number] = (stat.st_dev, stat.st_ino)
        self._ends[number] = 0
        if self._fd >= 0:
            self._closing.append(self._fd)  # it may still have payloads to flush
        self._fd, self._current, self._position = fd, number, 0
        self._numbers.add(number)

    def _close_full(self) -> None:
        while self._closing:
            os.close(self._closing.pop())

    def _drop(self, number: int) -> None:
        path = self.directory / _name(number)
        self._numbers.discard(number)
        self._identity.pop(number, None)
        self._ends.pop(number, None)
        if number in self._lost:  # its path is not ours; a reader may still use its fd
            return
        with self._readers_lock:
            fd = self._readers.pop(number, None)
        if fd is not None:
            os.close(fd)
        try:
            if len(self._spares) < SPARES:
                spare = self.directory / f"{_SPARE}{number}"
                os.rename(path, spare)
                self._spares.append(spare)
            else:
                path.unlink()
        except FileNotFoundError:
            pass


class SegmentDamaged(SpoolError):
    """A segment file was deleted, replaced or cut short under the running spool."""


def take_lock(directory: Path, hint: str) -> int:
    """Create ``directory`` if needed and hold its ``lock`` file (``flock``); raise
    SpoolError naming ``hint`` when another process holds it. Closing the descriptor
    returned lets it go."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise SpoolError(f"cannot create spool segments {directory}: {exc}") from None
    try:  # two processes writing one spool's segments would overwrite each other
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise SpoolError(
            f"spool {directory.parent} is in use by another process (its segments are"
            f" locked); {hint}"
        ) from None
    return fd


def _name(number: int) -> str:
    return f"{number:012d}{_SUFFIX}"


def _write_all(fd: int, parts: list[bytes], offset: int) -> None:
    for first in range(0, len(parts), _IOV_MAX):
        chunk = parts[first : first + _IOV_MAX]
        total = sum(map(len, chunk))
        written = os.pwritev(fd, chunk, offset)
        if written < total:  # rare for a regular file: write the rest in one piece
            rest = b"".join(chunk)[written:]
            while rest:
                n = os.pwrite(fd, rest, offset + written)
                if n <= 0:
                    raise OSError(errno.EIO, "a segment write wrote nothing")
                written += n
                rest = rest[n:]
        offset += total


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
