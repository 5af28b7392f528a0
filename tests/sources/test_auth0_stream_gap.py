"""No gaps when a log stream and the Management API both run (issue 16's end-to-end test).

A fake tenant's Custom Webhook log stream delivers to an ``auth0`` connector of a real
runtime process; the runtime stops (SIGTERM) long enough for the stream to be suspended;
records written meanwhile never come by the stream, and the restarted runtime, watching
the stream, sets it active again (``resumeSuspended``). An ``auth0-logs`` connector of the same
tenant, sharing the dedupe scope, pulls them: the target holds every record of the tenant
exactly once, some brought by the stream (without the API's ``_id``), the rest by the pull.
Real subprocesses, real sockets."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connector_runtime_auth0.fake_sender import LogStreamSender
from connector_runtime_auth0.fake_tenant import WRITE_DELAY, FakeTenant

from connector_runtime.testing import LoopThread, RecordingTarget, connector_doc, free_port, post
from tests.procs import RuntimeProcess, write_manifest

TOKEN = "stream-token-7f3c9a1e5b2d4086a9c1e7f3b5d20468"


def metric(url: str, line_start: str) -> float:
    text = post(url + "/metrics", method="GET").body.decode()
    found = [ln for ln in text.splitlines() if ln.startswith(line_start)]
    return float(found[0].rsplit(" ", 1)[1]) if found else -1.0


def test_the_pull_fills_a_suspended_streams_gap_and_nothing_arrives_twice(
    cr_loop: LoopThread, recording_target: RecordingTarget, tmp_path: Path
):
    tenant = FakeTenant(cr_loop, rate=50, burst=50).start()
    port = free_port()
    stream = tenant.add_log_stream(f"http://127.0.0.1:{port}/hook", TOKEN)
    sink = {"type": "http", "config": {"url": recording_target.url, "mode": "batch"}}
    shared = {"dedupe": {"scope": "tenant-a"}}
    pull = {
        "domain": tenant.url,
        "clientId": tenant.client_id,
        "clientSecret": tenant.client_secret,
        "startFrom": "now",
        "requestsPerSecond": 20,
        "pollInterval": "200ms",
        "settle": "1s",  # the stream delivers first; the pull takes what it missed
        "watchStream": stream.id,  # and the runtime resumes the stream Auth0 suspended
        "watchInterval": "1s",
        "resumeSuspended": True,
    }
    manifest = write_manifest(
        tmp_path / "m.yaml",
        [
            connector_doc("hook", "auth0", {"token": TOKEN}, sink, delivery=shared),
            connector_doc("logs", "auth0-logs", pull, sink, delivery=shared),
        ],
    )
    data = tmp_path / "data"

    async def write() -> None:
        # written now: the log_id carries the time of writing, a few seconds after the date
        tenant.add_records(3, start=datetime.now(UTC) - timedelta(seconds=WRITE_DELAY))

    def write_until(done: Callable[[], bool], timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, (stream.history, sender.health[-3:])
            cr_loop.run(write())
            time.sleep(0.02)

    proc = RuntimeProcess(manifest, data, port=port).start()
    sender = LogStreamSender(
        tenant,
        stream,
        pause_after=1.5,  # 7 days, compressed
        retry_delay=0.05,
        restart_delay=0.1,
        duplicate_every=4,
        shuffle=16,
    ).start()
    try:
        write_until(lambda: sender.delivered >= 60)
        assert proc.terminate() == 0
        write_until(lambda: stream.status == "suspended")
        suspended = len(tenant.records)
        write_until(lambda: len(tenant.records) >= suspended + 30)
        proc = RuntimeProcess(manifest, data, port=port).start()
        write_until(lambda: stream.status == "active")  # the watcher's PATCH
        resumed = len(sender.delivered_ids)
        write_until(lambda: len(sender.delivered_ids) >= resumed + 60)
        ids = [lid for lid, _, _ in tenant.records]
        last = ids[-1]

        assert not recording_target.wait_for_ids(set(ids), timeout=30), proc.log()
        # both paths are done: the stream sent everything it ever will, the pull asked
        # past the last record, and the spool holds nothing undelivered
        deadline = time.monotonic() + 30
        while not (
            sender.idle
            and any(f"from={last}" in r.query and r.records == 0 for r in tenant.requests)
            and metric(proc.url, 'connector_runtime_spool_depth_events{connector="hook"}') == 0
            and metric(proc.url, 'connector_runtime_spool_depth_events{connector="logs"}') == 0
        ):
            assert time.monotonic() < deadline, proc.log()
            time.sleep(0.05)
        assert proc.terminate() == 0
    finally:
        sender.stop()
        proc.stop()
        tenant.stop()

    got = Counter(recording_target.ids)
    assert got == Counter(ids)  # every record of the tenant, each exactly once
    assert [(s, by) for _, s, by in stream.history] == [("suspended", "auth0"), ("active", "api")]
    by_stream = {e.id for e in recording_target.events if "_id" not in e.data}
    by_pull = {e.id for e in recording_target.events if "_id" in e.data}
    # the stream delivered part of them, before the stop and after it was resumed ...
    assert by_stream and by_stream <= set(sender.delivered_ids)
    assert by_stream & set(sender.delivered_ids[resumed:])
    assert sender.repeats > 0  # ... at least once: the connector dropped its repeats
    # ... and what it never sent (written while it failed or was suspended) came by the pull
    assert set(sender.dropped_ids) <= by_pull
    assert len(sender.dropped_ids) >= 60
    assert tenant.client_secret not in proc.log()
    assert f"log stream {stream.id}" in proc.log() and "resum" in proc.log()
    print(
        f"records={len(ids)} by stream={len(by_stream)} by pull={len(by_pull)}"
        f" stream dropped={len(sender.dropped_ids)} stream repeats={sender.repeats}"
        f" stream failures={sender.failures}"
    )
