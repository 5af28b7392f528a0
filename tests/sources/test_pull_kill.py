"""kill -9 (10 times, at random points) of a runtime while its auth0-logs connector backfills from the fake tenant:
every record arrives (0 lost), the pull never fetches a committed page again (the
checkpoint is committed with the page's events), and a record arrives twice only as the
README's "Ack policies" says one can: sent again after a kill, at most ``maxConnections *
maxBatch`` of them per kill (the POSTs in flight). Real subprocesses, real sockets."""

from __future__ import annotations

import bisect
import random
import time
from collections import Counter, defaultdict
from itertools import pairwise
from pathlib import Path

import pytest
from connector_runtime_auth0.fake_tenant import FakeTenant

from connector_runtime.testing import LoopThread, RecordingTarget, connector_doc
from tests.procs import RuntimeProcess, kill_9_once_delivered, write_manifest

KILLS = 10
RECORDS = 3000
MAX_CONNECTIONS, MAX_BATCH = 4, 25
"""The target's: what may be in flight at a kill, and so sent again, is their product."""


@pytest.mark.slow
def test_kill_9_during_a_backfill_loses_nothing(
    cr_loop: LoopThread, recording_target: RecordingTarget, tmp_path: Path
):
    tenant = FakeTenant(cr_loop, rate=50, burst=50).start()
    try:
        ids = set(tenant.add_records(RECORDS))
        config = {
            "domain": tenant.url,
            "clientId": tenant.client_id,
            "clientSecret": tenant.client_secret,
            "startFrom": "earliest",
            "take": 20,
            "requestsPerSecond": 25,
            "pollInterval": "200ms",
        }
        target = {
            "type": "http",
            "config": {
                "url": recording_target.url,
                "mode": "batch",
                "maxConnections": MAX_CONNECTIONS,
                "maxBatch": MAX_BATCH,
            },
        }
        manifest = write_manifest(
            tmp_path / "m.yaml", [connector_doc("logs", "auth0-logs", config, target)]
        )
        data = tmp_path / "data"
        rng = random.Random(16)
        points = sorted(rng.sample(range(100, RECORDS - 100), KILLS))
        marks: list[int] = []  # how many events the target held after each kill
        for point in points:
            kill_9_once_delivered(manifest, data, lambda: len(recording_target.events), point)
            time.sleep(0.2)  # a POST the dead process had sent whole is still recorded
            marks.append(len(recording_target.events))
        proc = RuntimeProcess(manifest, data).start()
        try:
            assert not recording_target.wait_for_ids(ids, timeout=120), "records were lost"
        finally:
            code = proc.terminate()
        assert code == 0  # SIGTERM cancels the pull task within the drain
        assert tenant.client_secret not in proc.log()
        got = Counter(e.id for e in recording_target.events)
        assert set(got) == ids
        twice = sum(n - 1 for n in got.values())
        # each repeat crosses a kill (never two copies from one process's life), and the
        # copies sent again after one kill are at most what was in flight at it
        positions: defaultdict[str, list[int]] = defaultdict(list)
        for index, event in enumerate(recording_target.events):
            positions[event.id].append(index)
        again: Counter[int] = Counter()
        for where in positions.values():
            for first, second in pairwise(where):
                life = bisect.bisect_right(marks, first)
                assert life < bisect.bisect_right(marks, second), "a repeat without a kill"
                again[life] += 1
        assert max(again.values(), default=0) <= MAX_CONNECTIONS * MAX_BATCH, again
        # Only delivery can repeat (what was in flight to the target at a kill); the pull
        # never fetched a committed page twice: each page's "from" was asked for once
        # between kills, and every record's page lies after the committed checkpoint.
        froms = Counter(r.query for r in tenant.requests if r.records)
        refetched = sum(n - 1 for n in froms.values())
        assert refetched <= KILLS  # at most the page in flight at each kill
        print(f"kills={KILLS} delivered twice={twice} pages fetched again={refetched}")
    finally:
        tenant.stop()
