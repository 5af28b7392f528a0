"""What a failed spool write or open says about the data dir, in words an operator acts on.

- :func:`cause_of`: the one-line cause of an ``OSError`` or ``sqlite3.Error`` without
  errno noise (``[Errno 28] No space left on device`` → ``no space left on device``);
- :func:`open_failure`: why a spool cannot be opened, naming a read-only or unwritable
  data dir instead of SQLite's ``unable to open database file``;
- :class:`WriteHealth`: whether the spool can take writes. A commit that failed for want of
  space, a read-only file system or an I/O error marks it unwritable (``/readyz`` then
  says so); :meth:`WriteHealth.probe`, run every second while it is marked, clears the mark
  once the file system has room again and a probe file can be written and synced.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger("connector_runtime")

_SQLITE_CAUSES = {
    13: "no space left on device",  # SQLITE_FULL
    8: "the database is read-only",  # SQLITE_READONLY
    10: "input/output error",  # SQLITE_IOERR
    14: "unable to open database file",  # SQLITE_CANTOPEN
}
_STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})
_STORAGE_SQLITE = frozenset({13, 8, 10})

PROBE_NAME = ".write-probe"
PROBE_BYTES = 64 * 1024
"""Written, synced and removed by each probe."""
FREE_MARGIN = 16 * 1024 * 1024
"""Room the file system must have again (at most a tenth of its size) before the spool
counts as writable: about one large request (16 MiB is the default ``maxBodyBytes``)."""


def cause_of(exc: BaseException) -> str:
    """The cause of a storage error in one line, without ``[Errno N]``."""
    if isinstance(exc, OSError) and exc.errno is not None:
        text = os.strerror(exc.errno)
        return text[:1].lower() + text[1:]
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(exc, sqlite3.Error) and isinstance(code, int):
        known = _SQLITE_CAUSES.get(code & 0xFF)
        if known is not None:
            return known
    return " ".join(str(exc).split()) or type(exc).__name__


def is_storage_failure(exc: BaseException) -> bool:
    """True when ``exc`` says the data dir cannot take writes (full, read-only, I/O)."""
    if isinstance(exc, OSError):
        return exc.errno in _STORAGE_ERRNOS
    code = getattr(exc, "sqlite_errorcode", None)
    return (
        isinstance(exc, sqlite3.Error)
        and isinstance(code, int)
        and code & 0xFF in (_STORAGE_SQLITE)
    )


def open_failure(path: Path, exc: BaseException) -> str:
    """``spool … cannot be opened: <why>``, naming the data dir when it is the reason."""
    data_dir = path.parent
    if not data_dir.is_dir():
        why = f"the data dir {data_dir} cannot be created: {cause_of(exc)}"
    elif _read_only(data_dir):
        why = f"the data dir {data_dir} is on a read-only file system"
    elif not os.access(data_dir, os.W_OK | os.X_OK):
        why = f"the data dir {data_dir} is not writable by this user (uid {os.geteuid()})"
    elif path.exists() and not os.access(path, os.R_OK | os.W_OK):
        why = f"{path} is not readable and writable by this user (uid {os.geteuid()})"
    else:
        why = cause_of(exc)
    return f"spool {path} cannot be opened: {why}"


def _read_only(directory: Path) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return False


class WriteHealth:
    """Whether the spool in ``data_dir`` can take writes (see the module docstring).

    Marked from the spool's writer thread, read by ``/readyz``, probed from the runtime's
    housekeeping (in a worker thread): a plain attribute read on the request path."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.reason: str | None = None
        """Why writes fail, while they do: ``spool cannot be written: … (data dir …)``."""
        self._lock = threading.Lock()

    def failed(self, exc: BaseException) -> None:
        """A commit failed with ``exc``: mark the spool unwritable if the data dir is why."""
        if not is_storage_failure(exc):
            return
        reason = f"spool cannot be written: {cause_of(exc)} (data dir {self.data_dir})"
        with self._lock:
            if self.reason is None:
                log.warning("%s; not ready until it can be written again", reason)
            self.reason = reason

    def probe(self) -> bool:
        """Clear the mark if the data dir can be written again; True when it is clear."""
        if self.reason is None:
            return True
        if not self._room() or not self._write_probe():
            return False
        with self._lock:
            if self.reason is not None:
                log.warning("spool can be written again (data dir %s); ready", self.data_dir)
            self.reason = None
        return True

    def _room(self) -> bool:
        try:
            st = os.statvfs(self.data_dir)
        except OSError:
            return False
        free = st.f_bavail * st.f_frsize
        return free >= min(FREE_MARGIN, st.f_blocks * st.f_frsize // 10)

    def _write_probe(self) -> bool:
        probe = self.data_dir / PROBE_NAME
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                if os.write(fd, bytes(PROBE_BYTES)) != PROBE_BYTES:
                    return False
                os.fsync(fd)
            finally:
                os.close(fd)
            return True
        except OSError:
            return False
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()
