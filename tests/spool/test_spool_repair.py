"""Issue 13, point 2: a segment file that disappears is noticed, and a damaged spool is
checked and repaired (real runtime processes, real files)."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import pytest
from connector_runtime_auth0.testing import batch, jsonl

from connector_runtime.testing import RecordingTarget, connector_doc, post
from tests.procs import RuntimeProcess, cli, write_manifest


def manifest(tmp_path: Path, target: RecordingTarget) -> Path:
    return write_manifest(
        tmp_path / "m.yaml",
        [
            connector_doc(
                "a0",
                "auth0",
                {},
                {"type": "http", "config": {"url": target.url, "mode": "batch", "timeout": 2}},
                delivery={"retry": {"initialBackoff": "50ms", "maxBackoff": "200ms"}},
            )
        ],
    )


def records(prefix: str, n: int = 20) -> list[dict]:
    """``n`` records of ~700 bytes: 20 make a row whose payload goes to a segment."""
    return batch(n, prefix=prefix)


def ids(recs: list[dict]) -> list[str]:
    return [r["log_id"] for r in recs]


def segments(data: Path) -> list[Path]:
    return sorted((data / "spool.db-segments").glob("*.seg"))


def test_a_segment_deleted_while_running_fails_its_commit_and_nothing_acknowledged_is_lost(
    tmp_path: Path, recording_target: RecordingTarget
):
    recording_target.status = 503  # everything accepted stays in the spool
    data = tmp_path / "data"
    proc = RuntimeProcess(manifest(tmp_path, recording_target), data).start()
    try:
        first, second, third = records("a"), records("b"), records("c")
        assert post(proc.url + "/a0", jsonl(first)).status == 200
        (segment,) = segments(data)
        segment.unlink()
        refused = post(proc.url + "/a0", jsonl(second))
        assert refused.status == 503 and "retry-after" in refused.headers
        reason = refused.json()["error"]
        assert f"spool segment spool.db-segments/{segment.name} was deleted while in use" in reason
        assert "\n" not in reason
        # A new segment takes later requests, and the rows of the deleted one were copied
        # into it: a crash now loses nothing that was acknowledged.
        assert post(proc.url + "/a0", jsonl(third)).status == 200
        assert post(proc.url + "/a0", jsonl(second)).status == 200  # the client's retry
        assert post(proc.url + "/readyz", method="GET").status == 200
        proc.kill9()
        logged = [json.loads(line) for line in proc.log().splitlines() if line.startswith("{")]
        about = [
            e for e in logged if e["logger"] == "connector_runtime" and segment.name in e["msg"]
        ]
        assert [e["level"] for e in about] == ["error", "warning"]  # once, then what was kept
        assert about[0]["msg"] == (
            f"spool segment {segment} was deleted while in use: requests writing to it got 503;"
            " its rows are copied into a new segment from the file still open. Find what"
            f" deletes or changes files under {data}"
        )
        assert about[1]["msg"].endswith("all 20 event(s) of its 1 row(s) kept")
        assert "Traceback" not in proc.log()
        recording_target.status = 200
        again = RuntimeProcess(proc.manifest, data).start()
        try:
            wanted = set(ids(first) + ids(second) + ids(third))
            assert recording_target.wait_for_ids(wanted, timeout=30) == set()
        finally:
            again.stop()
    finally:
        proc.stop()


def test_a_database_replaced_while_running_refuses_new_events_and_delivers_the_old(
    tmp_path: Path, recording_target: RecordingTarget
):
    recording_target.status = 503
    data = tmp_path / "data"
    proc = RuntimeProcess(manifest(tmp_path, recording_target), data).start()
    try:
        first = records("a", 2)  # small: its payload stays in its row
        assert post(proc.url + "/a0", jsonl(first)).status == 200
        db = data / "spool.db"
        db.rename(data / "moved.db")
        db.write_bytes((data / "moved.db").read_bytes())  # a copy: another file
        for n in range(2):
            refused = post(proc.url + "/a0", jsonl(records(f"b{n}-", 2)))
            assert refused.status == 503
            assert (
                "spool database spool.db was deleted or replaced while in use"
                in (refused.json()["error"])
            )
        ready = post(proc.url + "/readyz", method="GET")
        assert ready.status == 503
        assert (
            "spool database spool.db was deleted or replaced while in use"
            in (ready.json()["reasons"])
        )
        recording_target.status = 200  # what the spool held still goes out
        assert recording_target.wait_for_ids(set(ids(first)), timeout=30) == set()
        assert not any(e.id.startswith("b") for e in recording_target.events)
    finally:
        proc.stop()


def fill_and_stop(tmp_path: Path, target: RecordingTarget) -> tuple[Path, Path, list[list[str]]]:
    """A stopped runtime's spool holding a small row (inline) and three rows in segment 1."""
    target.status = 503
    data = tmp_path / "data"
    proc = RuntimeProcess(manifest(tmp_path, target), data).start()
    sent = [records("s", 2), records("x"), records("y"), records("z")]
    for recs in sent:
        assert post(proc.url + "/a0", jsonl(recs)).status == 200
    assert proc.terminate() == 0
    return proc.manifest, data, [ids(r) for r in sent]


def segment_rows(data: Path) -> list[tuple[int, int]]:
    conn = sqlite3.connect(data / "spool.db")
    try:
        return conn.execute(
            "SELECT seg_offset, seg_length FROM batches WHERE seg IS NOT NULL ORDER BY seq"
        ).fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("damage", ["deleted", "cut short"])
def test_a_spool_damaged_while_stopped_is_checked_repaired_and_starts(
    tmp_path: Path, recording_target: RecordingTarget, damage: str
):
    m, data, (small, x, y, z) = fill_and_stop(tmp_path, recording_target)
    (segment,) = segments(data)
    rows = segment_rows(data)
    needed = rows[-1][0] + rows[-1][1]
    cut = rows[1][0] + rows[1][1] // 2  # in the middle of the second row's payload
    if damage == "deleted":
        segment.unlink()
    else:
        os.truncate(segment, cut)

    started = cli("run", str(m), "--port", "0", "--data-dir", str(data))
    assert started.returncode == 3
    (line,) = started.stderr.strip().splitlines()[-1:]
    assert "Traceback" not in started.stderr and segment.name in line
    assert f"`connector-runtime spool check --data-dir {data}`" in line
    assert f"`connector-runtime spool repair --data-dir {data}`" in line

    checked = cli("spool", "check", "--data-dir", str(data), "--json")
    assert checked.returncode == 1, checked.stderr
    (shard,) = json.loads(checked.stdout)
    (found,) = shard["damaged"]
    assert found["segment"] == str(segment)
    assert found["state"] == ("missing" if damage == "deleted" else "short")
    (affected,) = found["connectors"]
    if damage == "deleted":
        assert affected == {"connector": "a0", "rows": 3, "readable": 0, "lost": 60}
    else:  # x is whole, y partly readable, z gone
        assert affected["connector"] == "a0" and affected["rows"] == 2
        assert 0 < affected["readable"] < 20 and affected["readable"] + affected["lost"] == 40
    text = cli("spool", "check", "--data-dir", str(data))
    assert text.returncode == 1 and f"segment {segment} " in text.stdout
    assert f"connector-runtime spool repair --data-dir {data}" in text.stderr

    repaired = cli("spool", "repair", "--data-dir", str(data))
    assert repaired.returncode == 0, repaired.stderr
    assert "repaired" in repaired.stdout and "Traceback" not in repaired.stderr
    assert cli("spool", "check", "--data-dir", str(data)).returncode == 0
    assert (
        cli("spool", "repair", "--data-dir", str(data)).stdout.strip().endswith("nothing to repair")
    )

    recording_target.status = 200
    proc = RuntimeProcess(m, data).start()
    try:
        kept = set(small) | (set() if damage == "deleted" else set(x))
        assert recording_target.wait_for_ids(kept, timeout=30) == set()
        listed = cli("dlq", "list", "--data-dir", str(data), "--json")
        reports = json.loads(listed.stdout)
        assert all(r["eventId"] is None for r in reports)
        why = f"spool segment spool.db-segments/{segment.name}"
        if damage == "deleted":
            assert [r["reason"] for r in reports] == [f"20 event(s) lost: {why} is missing"] * 3
        else:
            state = f"{why} holds {cut} of {needed} bytes"
            lost_y = int(reports[0]["reason"].split()[0])
            assert [r["reason"] for r in reports] == [
                f"{lost_y} event(s) lost: {state}",
                f"20 event(s) lost: {state}",
            ]
            kept_y = y[: 20 - lost_y]
            assert recording_target.wait_for_ids(set(kept_y), timeout=30) == set()
            delivered = set(recording_target.ids)
            assert not delivered & (set(y[20 - lost_y :]) | set(z))
        shown = cli("dlq", "show", reports[0]["id"], "--data-dir", str(data))
        assert shown.returncode == 0 and json.loads(shown.stdout)["event"] is None
        redriven = cli("dlq", "redrive", "--data-dir", str(data))
        assert redriven.returncode == 0 and "redriven: 0 event(s)" in redriven.stdout
    finally:
        proc.stop()


def test_check_and_repair_refuse_a_spool_in_use(tmp_path: Path, recording_target: RecordingTarget):
    data = tmp_path / "data"
    proc = RuntimeProcess(manifest(tmp_path, recording_target), data).start()
    try:
        for action in ("check", "repair"):
            done = cli("spool", action, "--data-dir", str(data))
            assert done.returncode == 3
            assert done.stderr.strip() == (
                f"error: spool {data} is in use by another process (its segments are locked);"
                " stop the runtime first"
            )
    finally:
        proc.stop()
    assert cli("spool", "check", "--data-dir", str(data)).returncode == 0
    assert cli("spool", "check", "--data-dir", str(data), "--connector", "a0").returncode == 2


def test_check_and_repair_go_through_every_worker_shard(tmp_path: Path, cr_loop):
    from connector_runtime.events import make_event
    from connector_runtime.spool.store import Spool

    data = tmp_path / "data"
    for shard in ("shard-0", "shard-1"):
        spool = Spool(data / shard / "spool.db")
        docs = [
            make_event(id=f"{shard}-{i}", source="/s", type="t", data=b'"' + b"x" * 1000 + b'"')
            for i in range(10)
        ]
        spool.submit(spool.append_job("c", docs, True)).result(5)
        spool.close()
    (segment,) = (data / "shard-1" / "spool.db-segments").glob("*.seg")
    segment.unlink()
    checked = cli("spool", "check", "--data-dir", str(data), "--json")
    assert checked.returncode == 1
    shards = json.loads(checked.stdout)
    assert [(s["shard"], len(s["damaged"])) for s in shards] == [("shard-0", 0), ("shard-1", 1)]
    assert cli("spool", "repair", "--data-dir", str(data)).returncode == 0
    assert cli("spool", "check", "--data-dir", str(data)).returncode == 0
    listed = json.loads(cli("dlq", "list", "--data-dir", str(data), "--json").stdout)
    assert [(r["id"].split(":")[0], r["reason"].split(":")[0]) for r in listed] == [
        ("shard-1", "10 event(s) lost")
    ]
    Spool(data / "shard-1" / "spool.db").close()  # it opens again


# -- in process: the spool's own guard ----------------------------------------------


def spool_events(prefix: str, n: int = 10, size: int = 3000):
    from connector_runtime.events import make_event

    data = b'"' + b"x" * size + b'"'
    return [make_event(id=f"{prefix}{i}", source="/s", type="t", data=data) for i in range(n)]


def append(spool, prefix: str, n: int = 10, size: int = 3000):
    return spool.submit(spool.append_job("c", spool_events(prefix, n, size), True)).result(5)


def wait_until(condition, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the spool never got there"
        time.sleep(0.05)


def seg_of_rows(spool) -> list[int | None]:
    return spool.read(lambda c: [r[0] for r in c.execute("SELECT seg FROM batches ORDER BY seq")])


def head_ids(cr_loop, queue) -> list[str]:
    return [e.id for b in cr_loop.run(queue.head(1000)) for e in b.events]


def test_a_closed_segment_deleted_while_open_for_reading_is_copied_out(tmp_path: Path, cr_loop):
    from connector_runtime.spool.queues import SpoolQueue
    from connector_runtime.spool.store import Spool

    spool = Spool(tmp_path / "spool.db", segment_bytes=65536)  # ~31 KB rows: two a segment
    for n in range(4):
        append(spool, f"r{n}-")
    queue = SpoolQueue(spool, "c")
    queue.load_depth()
    expected = [f"r{n}-{i}" for n in range(4) for i in range(10)]
    assert head_ids(cr_loop, queue) == expected  # the dispatcher's read opens each segment
    first = min(segments(tmp_path))
    first.unlink()  # closed: no commit writes to it any more
    wait_until(lambda: 1 not in seg_of_rows(spool))
    assert spool.problems() == [] and head_ids(cr_loop, queue) == expected
    assert queue.pending_events == 40
    spool.close()
    spool = Spool(tmp_path / "spool.db", segment_bytes=65536)  # starts: nothing is missing
    assert head_ids(cr_loop, SpoolQueue(spool, "c")) == expected
    spool.close()


def test_a_segment_nothing_holds_open_is_reported_as_lost_and_not_read_again(
    tmp_path: Path, cr_loop
):
    from connector_runtime.spool.queues import SpoolQueue
    from connector_runtime.spool.store import Spool

    spool = Spool(tmp_path / "spool.db", segment_bytes=65536)
    for n in range(4):
        append(spool, f"r{n}-")
    queue = SpoolQueue(spool, "c")
    queue.load_depth()
    min(segments(tmp_path)).unlink()  # never read: no descriptor is open on it
    wait_until(lambda: 1 not in seg_of_rows(spool))
    assert head_ids(cr_loop, queue) == [f"r{n}-{i}" for n in (2, 3) for i in range(10)]
    assert queue.pending_events == 20  # the dispatcher's depth follows
    reasons = spool.read(
        lambda c: c.execute("SELECT event_id, reason FROM dead_letters").fetchall()
    )
    why = "10 event(s) lost: spool segment spool.db-segments/000000000001.seg was deleted while in use"
    assert reasons == [("", why), ("", why)]
    spool.close()


def test_a_segment_cut_short_while_written_fails_the_commit_and_keeps_what_is_left(
    tmp_path: Path, cr_loop
):
    from connector_runtime.errors import SpoolError
    from connector_runtime.spool.queues import SpoolQueue
    from connector_runtime.spool.store import Spool

    spool = Spool(tmp_path / "spool.db")
    for n in range(3):
        append(spool, f"r{n}-")
    (segment,) = segments(tmp_path)
    offset, length = spool.read(
        lambda c: c.execute("SELECT seg_offset, seg_length FROM batches WHERE seq = 2").fetchone()
    )
    os.truncate(segment, offset + length // 2)
    with pytest.raises(SpoolError) as caught:
        append(spool, "late-")
    assert str(caught.value).startswith(
        f"spool segment spool.db-segments/{segment.name} was cut short while in use (holds"
    )
    wait_until(lambda: 1 not in seg_of_rows(spool))  # copied right after the answer
    got = head_ids(cr_loop, SpoolQueue(spool, "c"))
    assert got[:10] == [f"r0-{i}" for i in range(10)]
    assert 10 < len(got) < 20 and got[10:] == [f"r1-{i}" for i in range(len(got) - 10)]
    append(spool, "late-")  # a new segment takes it
    spool.close()


def test_a_segments_directory_deleted_while_running_is_made_again_and_locked(
    tmp_path: Path, cr_loop
):
    import shutil
    import subprocess
    import sys

    from connector_runtime.errors import SpoolError
    from connector_runtime.spool.queues import SpoolQueue
    from connector_runtime.spool.store import Spool

    spool = Spool(tmp_path / "spool.db")
    append(spool, "a")
    shutil.rmtree(tmp_path / "spool.db-segments")
    with pytest.raises(SpoolError, match="was deleted while in use"):
        append(spool, "b")
    append(spool, "b")
    assert head_ids(cr_loop, SpoolQueue(spool, "c")) == [f"{p}{i}" for p in "ab" for i in range(10)]
    opener = "import sys; from pathlib import Path; from connector_runtime.spool.store import Spool; Spool(Path(sys.argv[1]))"
    other = subprocess.run(
        [sys.executable, "-c", opener, str(tmp_path / "spool.db")], capture_output=True, text=True
    )
    assert other.returncode != 0 and "is in use by another process" in other.stderr
    spool.close()


def test_readable_docs_are_the_whole_documents_before_the_cut():
    from connector_runtime.spool.payloads import encode_docs, readable_docs

    docs = [b'{"id":"a"}', b'{"id":"bb"}', b'{"id":"ccc"}']
    payload = encode_docs(docs)
    assert readable_docs(payload, 3) == docs
    whole_two = payload.index(b'{"id":"ccc"}')
    assert readable_docs(payload[:whole_two], 3) == docs[:2]
    assert readable_docs(payload[: whole_two - 2], 3) == docs[:1]
    assert readable_docs(payload[:6], 3) == []  # the lengths are cut
    assert readable_docs(payload, 4) == []  # not the row it claims to be
    assert readable_docs(b"", 3) == []


def test_the_readme_gives_the_commands_the_start_up_error_names():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for action in ("check", "repair"):
        assert f"connector-runtime spool {action} --data-dir data " in readme
    assert "spool check|repair [--data-dir D] [--json]" in readme
