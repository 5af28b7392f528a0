"""Spool payloads in segment files: written before their rows commit, read back, dropped
once no row points into them, reused as spares, and checked at start-up."""

from __future__ import annotations

import contextlib
import resource
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector_runtime.errors import SpoolError
from connector_runtime.events import make_event
from connector_runtime.spool.payloads import encode_events
from connector_runtime.spool.queues import Settlement, SpoolQueue
from connector_runtime.spool.segments import SPARES, segments_dir
from connector_runtime.spool.store import Spool


def events(prefix: str, n: int, size: int = 1000):
    data = b'"' + b"x" * size + b'"'
    return [make_event(id=f"{prefix}{i}", source="/s", type="t", data=data) for i in range(n)]


def append(spool: Spool, prefix: str, n: int = 10, size: int = 1000) -> int:
    """Append ``n`` events of ``size`` bytes of data (by default a ~12 KB row: past
    INLINE_BYTES, so its payload goes to a segment)."""
    return int(spool.submit(spool.append_job("c", events(prefix, n, size), True)).result(5)[0])


def segment_files(spool_path: Path) -> list[str]:
    return sorted(p.name for p in segments_dir(spool_path).glob("*.seg"))


def spare_files(spool_path: Path) -> list[str]:
    return sorted(p.name for p in segments_dir(spool_path).glob("spare-*"))


def ids(batches) -> list[str]:
    return [e.id for b in batches for e in b.events]


def test_payloads_live_in_segment_files_and_read_back(tmp_path: Path, cr_loop):
    path = tmp_path / "spool.db"
    spool = Spool(path)
    assert append(spool, "a") == 10
    row = sqlite3.connect(path).execute("SELECT payload, seg, seg_length FROM batches").fetchone()
    assert row[0] == b"" and row[1] is not None and row[2] > 1000
    assert segment_files(path) == [f"{row[1]:012d}.seg"]
    batches = cr_loop.run(SpoolQueue(spool, "c").head(100))
    assert ids(batches) == [f"a{i}" for i in range(10)]
    assert batches[0].events[3] == events("a", 10)[3]
    spool.close()


def test_emptied_segments_become_spares_and_are_reused(tmp_path: Path, cr_loop):
    path = tmp_path / "spool.db"
    spool = Spool(path, segment_bytes=65536)  # ~31 KB rows: two to a segment
    for n in range(8):
        append(spool, f"r{n}-", n=10, size=3000)
    assert len(segment_files(path)) >= 4
    queue = SpoolQueue(spool, "c")

    async def deliver_all() -> None:
        while batches := await queue.head(1000):
            await queue.settle([Settlement(b, delivered=len(b.events)) for b in batches])

    cr_loop.run(deliver_all())
    spool.submit(lambda c: spool.segments.retire(c, force=True)).result(5)
    # Only the segment being written is left; emptied ones wait as spares (a few at most).
    assert len(segment_files(path)) == 1
    assert len(spare_files(path)) == SPARES
    for n in range(2):
        append(spool, f"s{n}-", n=10, size=3000)
    assert len(spare_files(path)) < SPARES  # a new segment took a spare's file
    assert ids(cr_loop.run(queue.head(1000))) == [f"s{n}-{i}" for n in range(2) for i in range(10)]
    spool.close()


def test_a_retried_remainder_is_written_anew_and_read_back(tmp_path: Path, cr_loop):
    path = tmp_path / "spool.db"
    spool = Spool(path, segment_bytes=65536)
    append(spool, "a", n=6, size=3000)
    queue = SpoolQueue(spool, "c")
    (batch,) = cr_loop.run(queue.head(100))
    rest = list(batch.events[4:])
    settled = Settlement(batch, delivered=4, remaining=rest, next_attempt=0.0, error="503")
    cr_loop.run(queue.settle([settled]))
    (again,) = cr_loop.run(queue.head(100))
    assert ids([again]) == ["a4", "a5"] and again.attempts == 1
    spool.close()
    # and after a restart, from the file
    spool = Spool(path, segment_bytes=65536)
    assert ids(cr_loop.run(SpoolQueue(spool, "c").head(100))) == ["a4", "a5"]
    spool.close()


def test_rows_survive_a_restart_and_stray_segments_are_dropped(tmp_path: Path, cr_loop):
    path = tmp_path / "spool.db"
    spool = Spool(path)
    append(spool, "a")
    spool.close()
    stray = segments_dir(path) / "000000000099.seg"
    stray.write_bytes(b"left by a crash between the write and the commit")
    spool = Spool(path)
    assert ids(cr_loop.run(SpoolQueue(spool, "c").head(100))) == [f"a{i}" for i in range(10)]
    assert stray.name not in segment_files(path)
    append(spool, "b")  # numbering goes on past the stray one
    assert segment_files(path)[-1] > stray.name
    spool.close()


def test_rows_with_the_payload_in_the_database_still_read(tmp_path: Path, cr_loop):
    """Rows `dlq redrive` puts back."""
    path = tmp_path / "spool.db"
    Spool(path).close()
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO batches (connector, created, count, bytes, payload) VALUES (?, 0, 3, 0, ?)",
        ("c", encode_events(events("old", 3))),
    )
    conn.commit()
    conn.close()
    spool = Spool(path)
    append(spool, "new", n=2)
    expected = ["old0", "old1", "old2", "new0", "new1"]
    assert ids(cr_loop.run(SpoolQueue(spool, "c").head(100))) == expected
    spool.close()


@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_a_missing_or_short_segment_stops_the_spool_from_opening(tmp_path: Path, damage):
    path = tmp_path / "spool.db"
    spool = Spool(path)
    append(spool, "a")
    spool.close()
    (segment,) = segments_dir(path).glob("*.seg")
    if damage == "delete":
        segment.unlink()
        expected = "is missing"
    else:
        segment.write_bytes(segment.read_bytes()[:100])
        expected = "holds 100 of"
    with pytest.raises(SpoolError) as caught:
        Spool(path)
    message = str(caught.value)
    assert message.startswith("spool damaged: segment ") and segment.name in message
    assert expected in message and "\n" not in message


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Writes past ``limit`` bytes of any file fail with EFBIG (a full disk, for one
    process): a real write error from the kernel."""
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, old_limit[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)


def test_a_failed_segment_write_fails_its_commit_and_loses_nothing(tmp_path: Path, cr_loop):
    path = tmp_path / "spool.db"
    spool = Spool(path)
    outcomes = []
    with file_size_limit(1_000_000):  # the segment reaches it long before the database
        for n in range(8):
            try:
                outcomes.append(append(spool, f"b{n}-", n=10, size=20_000))
            except SpoolError as exc:
                outcomes.append(str(exc))
    spool.close()
    failed = [o for o in outcomes if isinstance(o, str)]
    assert failed and all(f.startswith("spool write failed: ") for f in failed)
    assert failed[0] == "spool write failed: file too large"
    stored = [f"b{n}-{i}" for n, o in enumerate(outcomes) if o == 10 for i in range(10)]
    assert 0 < len(stored) < 80
    # Every acknowledged event reads back; a failed commit left no row behind.
    spool = Spool(path)
    assert ids(cr_loop.run(SpoolQueue(spool, "c").head(1000))) == stored
    spool.close()


def test_an_attempt_that_delivered_nothing_leaves_the_stored_events_alone(tmp_path: Path, cr_loop):
    """A target that is down fails every attempt: only the retry state changes, so an
    outage does not rewrite the backlog's payloads into new segment space every retry."""
    path = tmp_path / "spool.db"
    spool = Spool(path)
    append(spool, "a", n=10)
    where = "SELECT seg, seg_offset, seg_length, attempts, last_error FROM batches"
    before = spool.read(lambda c: c.execute(where).fetchone())
    size = sum(p.stat().st_size for p in segments_dir(path).glob("*.seg"))
    queue = SpoolQueue(spool, "c")
    queue.load_depth()
    for _ in range(3):
        (batch,) = cr_loop.run(queue.head(100))
        failed = Settlement(batch, remaining=list(batch.events), next_attempt=0.0, error="down")
        cr_loop.run(queue.settle([failed]))
    after = spool.read(lambda c: c.execute(where).fetchone())
    assert after[:3] == before[:3] and after[3:] == (3, "down")
    assert sum(p.stat().st_size for p in segments_dir(path).glob("*.seg")) == size
    assert queue.pending_events == 10
    assert before[0] is not None and ids(cr_loop.run(queue.head(100))) == [
        f"a{i}" for i in range(10)
    ]
    spool.close()


def test_payloads_of_rows_in_a_row_come_from_one_read_and_keep_their_order(tmp_path: Path):
    path = tmp_path / "spool.db"
    spool = Spool(path, segment_bytes=20000)
    for n in range(5):
        append(spool, f"p{n}-", n=3, size=3000)  # ~9.3 KB rows: two to a segment
    rows = spool.read(
        lambda c: c.execute("SELECT payload, seg, seg_offset, seg_length FROM batches").fetchall()
    )
    assert len({r[1] for r in rows}) >= 2  # they span segments
    stored = (encode_events(events("db", 2)), None, 0, 0)
    mixed = [stored, *rows[:3], stored, rows[4], rows[3]]  # out of order at the end
    got = spool.payloads(mixed)
    assert [bytes(p) for p in got] == [spool.payload(*r) for r in mixed]
    spool.close()


def test_small_payloads_stay_in_their_row_and_need_no_segment(tmp_path: Path, cr_loop):
    """A request of a few records: its payload fits a page, and a commit of such rows
    writes (and syncs) no segment at all."""
    path = tmp_path / "spool.db"
    spool = Spool(path)
    for n in range(3):
        append(spool, f"s{n}-", n=2, size=100)
    rows = spool.read(lambda c: c.execute("SELECT payload, seg FROM batches").fetchall())
    assert all(seg is None and len(payload) > 200 for payload, seg in rows)
    assert segment_files(path) == []
    append(spool, "big", n=10)
    expected = [f"s{n}-{i}" for n in range(3) for i in range(2)] + [f"big{i}" for i in range(10)]
    assert ids(cr_loop.run(SpoolQueue(spool, "c").head(100))) == expected
    assert len(segment_files(path)) == 1
    spool.close()


def test_a_spool_is_written_by_one_process_at_a_time(tmp_path: Path):
    import subprocess
    import sys

    path = tmp_path / "spool.db"
    spool = Spool(path)
    opener = (
        "import sys; from pathlib import Path; from connector_runtime.spool.store import Spool;"
        " from connector_runtime.errors import SpoolError\n"
        "try:\n    Spool(Path(sys.argv[1])).close()\n"
        "except SpoolError as exc:\n    print(exc); sys.exit(3)\n"
    )
    other = subprocess.run(
        [sys.executable, "-c", opener, str(path)], capture_output=True, text=True, timeout=60
    )
    assert other.returncode == 3
    assert other.stdout.strip() == (
        f"spool {segments_dir(path).parent} is in use by another process (its segments are"
        " locked); give each runtime its own data dir"
    )
    spool.close()
    again = subprocess.run(
        [sys.executable, "-c", opener, str(path)], capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0, again.stdout + again.stderr


def test_after_a_restart_with_only_spares_left_new_segments_do_not_reuse_their_names(
    tmp_path: Path, cr_loop
):
    path = tmp_path / "spool.db"

    def cycle(spool: Spool, tag: str, rows: int) -> None:
        """Append ``rows`` (~31 KB each, two to a segment), deliver them, drop segments."""
        for n in range(rows):
            append(spool, f"{tag}{n}-", n=10, size=3000)
        queue = SpoolQueue(spool, "c")

        async def deliver_all() -> None:
            while batches := await queue.head(1000):
                await queue.settle([Settlement(b, delivered=len(b.events)) for b in batches])

        cr_loop.run(deliver_all())
        spool.submit(lambda c: spool.segments.retire(c, force=True)).result(5)

    spool = Spool(path, segment_bytes=65536)
    cycle(spool, "a", rows=10)  # segments 1-5; three of them end as spares
    spool.close()
    Spool(path, segment_bytes=65536).close()  # drops the last segment: spares only
    spool = Spool(path, segment_bytes=65536)
    assert segment_files(path) == [] and len(spare_files(path)) == SPARES
    for k in range(8):  # a segment at a time: numbering passes the spares' old numbers
        cycle(spool, f"b{k}-", rows=2)
        assert len(segment_files(path)) == 1 and len(spare_files(path)) <= SPARES
    cycle(spool, "c", rows=8)  # four segments at once: every spare is taken
    append(spool, "e", n=10, size=3000)
    assert ids(cr_loop.run(SpoolQueue(spool, "c").head(100))) == [f"e{i}" for i in range(10)]
    spool.close()
