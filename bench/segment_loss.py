"""What a crash loses after a segment file is deleted while the runtime serves.

Starts ``connector-runtime run`` (a target that answers 503, so every accepted event stays
in the spool), posts 20-record Auth0 deliveries from 4 threads, deletes the segment being
written after ``--before`` acknowledged requests, keeps posting for ``--after`` more
seconds, then ``kill -9``. Then it counts the acknowledged events that are lost:

- if the runtime starts again on the data dir, it lets it deliver to a target that
  accepts and counts the acknowledged ids that never arrive;
- if it refuses to start (a segment its rows point into is missing), it counts the
  events of the rows whose segment file is gone: nothing can read them back.

    .venv/bin/python bench/segment_loss.py [--runs 3]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connector_runtime_auth0.testing import batch, jsonl

from connector_runtime.testing import LoopThread, RecordingTarget, connector_doc, post
from tests.procs import RuntimeProcess, write_manifest


def lost_rows(spool: Path) -> int:
    """Events in rows whose segment file is missing."""
    segments = spool.with_name(spool.name + "-segments")
    conn = sqlite3.connect(spool)
    try:
        rows = conn.execute(
            "SELECT seg, sum(count) FROM batches WHERE seg IS NOT NULL GROUP BY seg"
        ).fetchall()
    finally:
        conn.close()
    return sum(n for seg, n in rows if not (segments / f"{seg:012d}.seg").exists())


def one_run(work: Path, before: int, after: float) -> dict[str, int | str]:
    loop = LoopThread()
    target = RecordingTarget(loop, status=503).start()
    manifest = write_manifest(
        work / "m.yaml",
        [
            connector_doc(
                "a0",
                "auth0",
                {},
                {"type": "http", "config": {"url": target.url, "mode": "batch"}},
                delivery={"retry": {"initialBackoff": "50ms", "maxBackoff": "200ms"}},
            )
        ],
    )
    data = work / "data"
    proc = RuntimeProcess(manifest, data).start()
    acked: list[str] = []
    acked_after: list[str] = []
    refused = 0
    deleted = threading.Event()
    stop = threading.Event()
    counter = iter(range(10**9))
    lock = threading.Lock()

    def sender() -> None:
        nonlocal refused
        while not stop.is_set():
            records = batch(20, prefix=f"k{next(counter):06d}-")
            was_deleted = deleted.is_set()
            try:
                status = post(proc.url + "/a0", jsonl(records), timeout=5).status
            except OSError:
                continue
            with lock:
                if status == 200:
                    acked.extend(r["log_id"] for r in records)
                    if was_deleted:
                        acked_after.extend(r["log_id"] for r in records)
                elif was_deleted:
                    refused += 1

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for t in threads:
        t.start()
    while len(acked) < before * 20:
        time.sleep(0.01)
    segments = data / "spool.db-segments"
    current = max(segments.glob("*.seg"))
    current.unlink()
    deleted.set()
    time.sleep(after)
    proc.kill9()
    stop.set()
    for t in threads:
        t.join()
    target.status = 200
    outcome: dict[str, int | str] = {
        "acked": len(acked),
        "acked_after_deletion": len(acked_after),
        "refused_after_deletion": refused,
    }
    again = RuntimeProcess(manifest, data)
    try:
        again.start()
    except RuntimeError as exc:
        outcome["restart"] = str(exc).splitlines()[-1][:120]
        outcome["lost"] = lost_rows(data / "spool.db")
    else:
        missing = target.wait_for_ids(set(acked), timeout=60)
        outcome["restart"] = "ok"
        outcome["lost"] = len(missing)
        again.stop()
    target.stop()
    loop.close()
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--before", type=int, default=50, help="acked requests first")
    parser.add_argument("--after", type=float, default=2.0, help="seconds after deleting")
    args = parser.parse_args()
    for n in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="segloss-") as tmp:
            print(n, one_run(Path(tmp), args.before, args.after), flush=True)


if __name__ == "__main__":
    main()
