"""Two runtime replicas behind a (simulated) load balancer deliver into a 3-node JetStream
cluster with an R3 stream; the stream leader is killed mid-run and started again.

Afterwards the stream holds exactly the acknowledged log ids: none lost (every 2xx was a
spool commit, and the dispatchers retry until a PubAck), none twice (the replicas dedupe
their own repeats; JetStream drops the copies that reached the other replica, by
``Nats-Msg-Id``, also across the leader change).
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from connector_runtime.testing import connector_doc, post, start_runtime
from tests.nats.nats_support import (
    NatsCluster,
    auth0_lines,
    log_id,
    requires_nats_server,
    stream_leader,
    stream_messages,
    wait_for_count,
    wait_for_stream_leader,
)

STREAM = "AUTH0"
PER_BATCH = 20
MAX_BATCHES = 800
RATE = 40.0
"""Batches per second the sender aims at (Auth0 sends at most a few per second per tenant;
this is many tenants' worth)."""
KILL_AT, RESTART_AT, STOP_AT = 3.0, 15.0, 18.0
"""Seconds into the load: SIGKILL the stream leader, start it again, stop sending. The node
stays down long enough for the other two to elect a new leader (election timeouts are 4 to
9 s in nats-server 2.9) and take messages on their own."""


def _replica(cr_loop, tmp_path, name, urls):
    """A runtime replica with its own data directory (and manifest copy)."""
    directory = tmp_path / f"replica-{name}"
    directory.mkdir()
    documents = [
        {
            "apiVersion": "connector-runtime/v1",
            "kind": "Runtime",
            "spec": {"dataDir": str(directory / "data")},
        },
        connector_doc(
            "tenant",
            "auth0",
            {},
            {
                "type": "nats",
                "config": {
                    "servers": urls,
                    "subject": "auth0.{connector}.{code}",
                    "stream": {"name": STREAM, "replicas": 3, "duplicateWindow": "10m"},
                    "timeout": 2,
                },
            },
            delivery={"ack": "durable", "retry": {"initialBackoff": "100ms", "maxBackoff": "1s"}},
        ),
    ]
    return start_runtime(cr_loop, documents, directory=directory)


def _deliver(urls, first, body):
    """Post ``body`` like Auth0 does: on anything but 2xx, try again (the load balancer then
    picks the other replica). True once a replica acknowledged it."""
    for n in range(6):
        try:
            response = post(urls[(first + n) % len(urls)], body, timeout=10)
        except OSError:
            continue
        if 200 <= response.status < 300:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
@requires_nats_server
def test_two_replicas_into_an_r3_stream_survive_a_node_kill(cr_loop, tmp_path):
    cluster = NatsCluster.create(tmp_path / "nats").start()
    replicas = []
    try:
        replicas = [_replica(cr_loop, tmp_path, name, cluster.urls) for name in ("a", "b")]
        urls = [r.connector_url("tenant") for r in replicas]
        leader = wait_for_stream_leader(cluster.urls, STREAM)
        victim = next(n for n in cluster.nodes if n.name == leader)

        acked: set[str] = set()
        unacked = redelivered = batches = 0
        killed_at = restarted_at = None
        stats = [r.runtime.connectors[0].stats for r in replicas]
        delivered, progress_at, longest_stall = 0, 0.0, 0.0
        delivered_by = {}  # "down" (1 s after the kill), "restart" -> events delivered by then
        began = time.monotonic()
        while batches < MAX_BATCHES:
            now = time.monotonic() - began
            if sum(st.delivered for st in stats) != delivered:
                delivered = sum(st.delivered for st in stats)
                longest_stall = max(longest_stall, now - progress_at)
                progress_at = now
            if now >= STOP_AT:
                break
            if killed_at is None and now >= KILL_AT:
                victim.kill()
                killed_at = now
            if killed_at is not None and "down" not in delivered_by and now >= KILL_AT + 1:
                delivered_by["down"] = delivered  # PubAcks in flight at the kill are in
            if restarted_at is None and now >= RESTART_AT:
                delivered_by["restart"] = delivered
                victim.start()
                restarted_at = time.monotonic() - began
            ids = [log_id(batches * PER_BATCH + k) for k in range(PER_BATCH)]
            body = auth0_lines(ids, code=("s", "fp", "seacft")[batches % 3])
            if _deliver(urls, batches % 2, body):
                acked.update(ids)
            else:
                unacked += 1
            if batches % 4 == 3:  # Auth0 missed the answer and retries; it lands elsewhere
                redelivered += 1
                if _deliver(urls, (batches + 1) % 2, body):
                    acked.update(ids)
            batches += 1
            pause = batches / RATE - (time.monotonic() - began)
            if pause > 0:
                time.sleep(pause)
        sent_for = time.monotonic() - began

        count = wait_for_count(cluster.urls, STREAM, len(acked), timeout=30, settle=2.0)
        drained_at = time.monotonic() - began
        ids = Counter(m.headers["ce-id"] for m in stream_messages(cluster.urls, STREAM))
        [a, b] = [r.runtime.connectors[0] for r in replicas]
        delivered_while_down = delivered_by["restart"] - delivered_by["down"]
        dropped = a.target.duplicates + b.target.duplicates  # PubAcks saying "duplicate"
        retried = sum(st.retried for st in stats)
        print(
            f"\nbatches={batches} ({PER_BATCH} each, {redelivered} redelivered to the other"
            f" replica, {unacked} never acknowledged) acked_ids={len(acked)}"
            f" stream_messages={count} distinct={len(ids)} killed={victim.name}"
            f" (leader) at {killed_at:.1f}s restarted at {restarted_at:.1f}s"
            f" delivered_by_two_nodes={delivered_while_down}"
            f" load for {sent_for:.1f}s all stored at {drained_at:.1f}s"
            f" new_leader={stream_leader(cluster.urls, STREAM)}"
            f" longest_delivery_stall={longest_stall:.1f}s retried_event_attempts={retried}"
            f" duplicates_dropped_by_jetstream={dropped}"
        )
        assert killed_at is not None and restarted_at is not None
        assert delivered_while_down > 0  # the R3 stream went on with 2 of 3 nodes
        assert [i for i, n in ids.items() if n > 1] == []
        assert set(ids) == acked
        assert count == len(acked)
        assert dropped >= redelivered * PER_BATCH
    finally:
        for running in replicas:
            running.stop()
        cluster.stop()
