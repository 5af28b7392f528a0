"""The spool database as a stored format: how it is opened, the DDL of its tables, and its
format version.

The statements on the tables are :mod:`connector_runtime.spool.tables`'s (the dedupe
window's are :mod:`connector_runtime.spool.seen`'s); a new spool's tables, the dedupe ones
included, are all created here, in one transaction that also stamps the version.

**Format version.** A new spool is stamped :data:`FORMAT_VERSION` (``PRAGMA user_version``)
in the transaction that creates its tables. :func:`connect` refuses a spool of any other
version, so a runtime (and every admin command) stops at start-up instead of misreading
it. Change the version with any change to what a spool stores: these tables, the dedupe
tables, the payload layout (:mod:`.payloads`), the ``done`` bitmap (:mod:`.progress`) or
the segment files (:mod:`.segments`).
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Final

from connector_runtime.errors import SpoolError
from connector_runtime.spool import seen
from connector_runtime.spool.datadir import open_failure

FORMAT_VERSION: Final = 1
"""What a spool this runtime creates records in ``PRAGMA user_version``, and the only
version it opens."""

PAGE_SIZE: Final = 16384

_TABLES: Final = (
    """CREATE TABLE batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    connector TEXT NOT NULL,
    created REAL NOT NULL,
    count INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    payload BLOB NOT NULL,
    seg INTEGER,
    seg_offset INTEGER,
    seg_length INTEGER,
    done BLOB
)""",
    "CREATE INDEX batches_by_connector ON batches (connector, seq)",
    # The segments rows still point into (a few look-ups per check); rows that keep their
    # payload inline are not in it.
    "CREATE INDEX batches_in_segments ON batches (seg) WHERE seg IS NOT NULL",
    """CREATE TABLE dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connector TEXT NOT NULL,
    event_id TEXT NOT NULL,
    created REAL NOT NULL,
    failed REAL NOT NULL,
    attempts INTEGER NOT NULL,
    status INTEGER,
    reason TEXT NOT NULL,
    payload BLOB NOT NULL
)""",
    "CREATE INDEX dead_letters_by_connector ON dead_letters (connector, id)",
    """CREATE TABLE counters (
    connector TEXT PRIMARY KEY,
    accepted INTEGER NOT NULL DEFAULT 0,
    delivered INTEGER NOT NULL DEFAULT 0,
    retried INTEGER NOT NULL DEFAULT 0,
    dead_lettered INTEGER NOT NULL DEFAULT 0
)""",
)


def connect(path: Path) -> sqlite3.Connection:
    """Open the spool database with the settings every connection needs; create its tables
    if it is new. Raises SpoolError (one line saying what to do) when it cannot be opened
    or has another format version."""
    conn: sqlite3.Connection | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        # 16 KiB pages for a new spool (an existing one keeps its size): a request's row is
        # ~100 KiB, and fewer, larger pages mean fewer WAL frames, checksums and writes.
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        # Some SQLite builds zero-fill deleted content; every delivered row would be written
        # twice more (WAL and checkpoint). Freed pages are reused, not wiped: protect the
        # data dir itself (docs/security.md).
        conn.execute("PRAGMA secure_delete=OFF")
        conn.execute("PRAGMA busy_timeout=30000")
        version = _version(conn)
        if version == 0:
            version = _create(conn)
    except (OSError, sqlite3.Error) as exc:
        if conn is not None:
            conn.close()
        raise SpoolError(open_failure(path, exc)) from None
    if version != FORMAT_VERSION:
        conn.close()
        raise SpoolError(
            f"spool {path} has format version {version}, this runtime reads version"
            f" {FORMAT_VERSION}: deliver its events with the runtime that wrote it (or move"
            " the data dir away) and start again"
        )
    return conn


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _create(conn: sqlite3.Connection) -> int:
    """Create the tables of a new spool and stamp its format version, in one transaction;
    returns the version the spool has (0 for a database of something else)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _version(conn)  # another process may have just created it
        if version == 0 and conn.execute("SELECT 1 FROM sqlite_master").fetchone() is None:
            for statement in _TABLES:
                conn.execute(statement)
            seen.create(conn)
            conn.execute(f"PRAGMA user_version = {FORMAT_VERSION}")
            version = FORMAT_VERSION
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    return version
