"""kill -9 (10 times, at random points) of a runtime while its auth0-events-pull connector
reads the fake Events API's stream (3,000 events, every 25th sent twice): every event
arrives (0 lost); each restart resumes at or after the last event the target already had
(the offset is committed with the events); nothing arrives twice but what was in flight
to the target at a kill. Real subprocesses, real sockets."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
from connector_runtime_auth0.fake_events_api import FakeEventsAPI

from connector_runtime.testing import LoopThread, RecordingTarget, connector_doc
from tests.procs import RuntimeProcess, kill_9_once_delivered, write_manifest

KILLS = 10
EVENTS = 3000
MAX_CONNECTIONS = 32
"""The http target's default: at most this many events in flight in binary mode."""


@pytest.mark.slow
def test_kill_9_during_a_pull_loses_and_repeats_nothing_beyond_what_was_in_flight(
    cr_loop: LoopThread, recording_target: RecordingTarget, tmp_path: Path
):
    api = FakeEventsAPI(cr_loop).start()
    try:
        ids = set(api.add(EVENTS, duplicate_every=25))
        first_at = {}
        for index, stored in enumerate(api.events):
            first_at.setdefault(stored.body, index)
        index_of = {f"evt_{k:022d}": i for k, i in enumerate(sorted(set(first_at.values())))}
        offsets = {stored.offset: i for i, stored in enumerate(api.events)}
        config = {
            "domain": api.url,
            "clientId": api.tenant.client_id,
            "clientSecret": api.tenant.client_secret,
            "startFrom": "earliest",
        }
        target = {"type": "http", "config": {"url": recording_target.url, "mode": "binary"}}
        manifest = write_manifest(
            tmp_path / "m.yaml", [connector_doc("evpull", "auth0-events-pull", config, target)]
        )
        data = tmp_path / "data"
        rng = random.Random(17)
        points = sorted(rng.sample(range(100, EVENTS - 100), KILLS))
        kills: list[tuple[int, int]] = []
        """Per kill: connections opened so far, the last event index the target had."""
        for point in points:
            kill_9_once_delivered(manifest, data, lambda: len(recording_target.events), point)
            had = max(index_of[e.id] for e in list(recording_target.events))
            kills.append((api.connections(), had))
        proc = RuntimeProcess(manifest, data).start()
        try:
            assert not recording_target.wait_for_ids(ids, timeout=120), "events were lost"
        finally:
            code = proc.terminate()
        assert code == 0
        assert api.tenant.client_secret not in proc.log()
        opened = [r for r in api.requests if r.status == 200]
        checked = 0
        for number, request in enumerate(opened):
            before = [had for count, had in kills if count <= number]
            if not before:
                continue
            # a connection opened after a kill resumes at or after every event the target
            # already had (a run may have been killed while it delivered its spool's backlog
            # only, before it connected)
            assert request.last_event_id is not None
            assert offsets[request.last_event_id] >= max(before)
            checked += 1
        assert checked >= KILLS // 2
        got = Counter(e.id for e in recording_target.events)
        assert set(got) == ids
        twice = sum(n - 1 for n in got.values())
        assert twice <= KILLS * MAX_CONNECTIONS
        print(f"kills={KILLS} delivered twice={twice}")
    finally:
        api.stop()
