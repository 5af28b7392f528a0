"""``spool: nats``: a JetStream stream as the spool, shared by every runtime replica.

First the manifest part (no server needed), then through a real nats-server and the kit's
recording target: a 2xx means JetStream stored the events; the target gets each event
once, also when Auth0 redelivers a batch to another replica; a replica killed with events
in flight loses nothing (the other one delivers them); rejected events become dead letters
that ``connector-runtime dlq`` lists and can redrive.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import nats
import pytest
import tornado.httpserver
import tornado.web

from connector_runtime.config.manifest import load_manifest
from connector_runtime.config.model import NatsSpoolSpec
from connector_runtime.errors import ManifestError
from connector_runtime.nats.stream import ack_wait, consumer_config, stream_config
from connector_runtime.plugins import build_registry
from connector_runtime.testing import (
    LoopThread,
    connector_doc,
    decode_request,
    free_port,
    post,
    start_runtime,
    write_manifest,
)
from tests.nats.nats_support import (
    NatsServer,
    auth0_lines,
    log_id,
    requires_nats_server,
    stream_count,
)
from tests.procs import RuntimeProcess, cli
from tests.procs import write_manifest as write_manifest_file

STREAM = "SPOOL"


def _delivery(servers, **overrides):
    nats = {"servers": servers, "stream": STREAM, "duplicateWindow": "10m", "timeout": 2}
    nats.update(overrides.pop("nats", {}))
    delivery = {
        "ack": "durable",
        "spool": "nats",
        "timeout": 2,
        "retry": {"initialBackoff": "100ms", "maxBackoff": "500ms"},
        "nats": nats,
    }
    delivery.update(overrides)
    return delivery


def _connector(target_url, delivery, name="tenant"):
    target = {"type": "http", "config": {"url": target_url, "mode": "batch", "timeout": 2}}
    return connector_doc(name, "auth0", {}, target, delivery=delivery)


# -- the manifest ------------------------------------------------------------------------


def _load(tmp_path, *docs):
    return load_manifest([write_manifest(list(docs), tmp_path)], build_registry(), env={})


def _problems(tmp_path, delivery, extra=()):
    with pytest.raises(ManifestError) as info:
        _load(tmp_path, _connector("http://127.0.0.1:9/", delivery), *extra)
    return [f"{p.path}: {p.message}" for p in info.value.problems]


def test_manifest_fills_the_nats_spool_defaults(tmp_path):
    delivery = {
        "spool": "nats",
        "nats": {
            "servers": ["nats://n1:4222"],
            "stream": STREAM,
            "password": "s3cret-pw",
            "user": "cr",
        },
    }
    [spec] = _load(tmp_path, _connector("http://127.0.0.1:9/", delivery, "acme.eu")).connectors
    assert spec.delivery.ack == "durable"
    assert spec.delivery.nats == NatsSpoolSpec(
        servers=("nats://n1:4222",),
        stream=STREAM,
        subject="cr.spool.acme.eu",
        consumer="cr-acme_eu",  # a consumer name cannot hold '.'
        replicas=1,
        retention="workqueue",
        max_age=0.0,
        duplicate_window=120.0,
        timeout=5.0,
        user="cr",
        password="s3cret-pw",
    )
    assert "s3cret-pw" in spec.secrets
    assert "s3cret-pw" not in repr(spec.delivery)
    # what the runtime asks JetStream for
    config = stream_config(spec.delivery.nats)
    assert (config.subjects, config.retention, config.duplicate_window) == (
        ["cr.spool.acme.eu"],
        "workqueue",
        120.0,
    )
    consumer = consumer_config(spec.delivery.nats, spec.delivery.timeout)
    assert consumer.ack_wait == ack_wait(10.0) > 2 * 10.0
    assert (consumer.max_deliver, consumer.filter_subject) == (-1, "cr.spool.acme.eu")


def test_manifest_problems_of_the_nats_spool(tmp_path):
    servers = ["nats://n1:4222"]
    assert _problems(tmp_path, {"spool": "nats"}) == [
        "spec.delivery: missing required key 'nats' (spool is 'nats')"
    ]
    assert _problems(tmp_path, {"nats": {"servers": servers, "stream": STREAM}}) == [
        "spec.delivery.nats: only used with spool 'nats' (spool is 'local')"
    ]
    [ack] = _problems(tmp_path, _delivery(servers, ack="received"))
    assert ack.startswith("spec.delivery.ack: 'received' cannot be used with spool 'nats'")
    assert _problems(tmp_path, _delivery(servers, nats={"maxAge": "1m"})) == [
        "spec.delivery.nats.duplicateWindow: 600s is longer than maxAge (60s)",
        "spec.delivery.nats.maxAge: 60s is shorter than retry.maxAge (604800s): JetStream"
        " would drop undelivered events before they are dead-lettered",
    ]
    assert _problems(tmp_path, _delivery(servers, nats={"retention": "limits"})) == [
        "spec.delivery.nats.maxAge: required with retention 'limits' (delivered events stay"
        " in the stream until then)"
    ]
    [subject] = _problems(tmp_path, _delivery(servers, nats={"subject": "cr..x"}))
    assert subject.startswith("spec.delivery.nats.subject: 'cr..x' does not match")
    [secret] = _problems(tmp_path, _delivery(servers, nats={"token": 12345678}))
    assert secret.startswith("spec.delivery.nats.token:")
    assert "12345678" not in secret
    # two connectors on one subject would take each other's events
    other = _connector(
        "http://127.0.0.1:9/", _delivery(servers, nats={"subject": "cr.spool.tenant"}), "other"
    )
    assert _problems(tmp_path, _delivery(servers), [other]) == [
        "spec.delivery.nats.subject: 'cr.spool.tenant' in stream SPOOL is already used by"
        " connector tenant"
    ]


# -- through a real nats-server ----------------------------------------------------------


@pytest.fixture
def nats_server(tmp_path):
    server = NatsServer("spool", tmp_path / "nats").start()
    yield server
    server.stop()


@pytest.fixture
def replicas(cr_loop, tmp_path):
    """``replicas(documents, name)``: a runtime replica with its own data dir; stopped after."""
    started = []

    def start(documents, name="a"):
        directory = tmp_path / f"replica-{name}"
        directory.mkdir()
        running = start_runtime(cr_loop, documents, directory=directory)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def _wait(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@requires_nats_server
def test_durable_ack_with_jetstream_as_the_spool(nats_server, recording_target, replicas):
    docs = [_connector(recording_target.url, _delivery([nats_server.url]))]
    a = replicas(docs, "a")
    ids = [log_id(n) for n in range(25)]
    body = auth0_lines(ids)
    response = post(a.connector_url("tenant"), body)
    assert response.status == 200, response.body
    assert response.json()["accepted"] == 25
    got = recording_target.wait_for(25)
    assert sorted(e.id for e in got) == sorted(ids)
    _wait(lambda: stream_count([nats_server.url], STREAM) == 0)  # acked: gone (work queue)

    # Auth0 redelivers the batch, to the same replica and to another one: JetStream's
    # duplicate window drops every event, and nothing reaches the target again
    b = replicas(docs, "b")
    for replica in (a, b):
        again = post(replica.connector_url("tenant"), body)
        assert again.status == 200
        assert again.json()["duplicates"] == 25
        assert again.json()["accepted"] == 0
    time.sleep(1.0)
    assert len(recording_target.events) == 25
    assert a.runtime.connectors[0].stats.duplicates == 25
    assert b.runtime.connectors[0].stats.duplicates == 25
    assert stream_count([nats_server.url], STREAM) == 0


@requires_nats_server
def test_target_down_everything_acknowledged_then_delivered(
    nats_server, recording_target, replicas
):
    recording_target.status = 503
    docs = [_connector(recording_target.url, _delivery([nats_server.url], quota={"maxEvents": 55}))]
    running = replicas(docs)
    url = running.connector_url("tenant")
    ids = [log_id(n) for n in range(50)]
    for start in range(0, 50, 10):
        response = post(url, auth0_lines(ids[start : start + 10]))
        assert response.status == 200, response.body  # stored in JetStream while down
    queue = running.runtime.connectors[0].queue
    assert queue is not None
    _wait(lambda: queue.pending_events == 50)  # counted at once, then from the consumer
    # the quota counts what waits in the stream
    full = post(url, auth0_lines([log_id(n) for n in range(50, 60)]))
    assert full.status == 503
    assert "spool quota reached" in full.body.decode()
    time.sleep(1.0)  # the dispatcher keeps trying meanwhile
    assert recording_target.events == []
    assert recording_target.requests > 1
    assert stream_count([nats_server.url], STREAM) == 50

    recording_target.status = 200
    got = recording_target.wait_for(50)
    assert sorted(e.id for e in got) == sorted(ids)
    _wait(lambda: stream_count([nats_server.url], STREAM) == 0)
    _wait(lambda: queue.pending_events == 0)  # from the consumer's counts
    assert running.runtime.connectors[0].stats.retried > 0


@requires_nats_server
def test_stream_messages_are_structured_json_cloudevents_as_labelled(
    nats_server, tmp_path, replicas
):
    """What the spool stream holds, read back from JetStream: the label and the bytes agree
    (and the docs say the same)."""
    down = f"http://127.0.0.1:{free_port()}/"  # nothing delivers: the messages stay
    docs = [_connector(down, _delivery([nats_server.url]))]
    running = replicas(docs)
    assert post(running.connector_url("tenant"), auth0_lines([log_id(7)])).status == 200

    async def first_message():
        nc = await nats.connect(nats_server.url)
        try:
            return await nc.jetstream().get_msg(STREAM, 1)
        finally:
            await nc.close()

    msg = asyncio.run(first_message())
    assert msg.headers["content-type"] == "application/cloudevents+json; charset=utf-8"
    assert msg.headers["Nats-Msg-Id"] == log_id(7)
    document = json.loads(msg.data)
    assert document["specversion"] == "1.0" and document["id"] == log_id(7)
    assert document["type"] == "com.auth0.log.s"
    assert "content-type: application/cloudevents+json" in (
        Path(__file__).parents[2] / "docs" / "nats.md"
    ).read_text().replace("\n", " ")


@requires_nats_server
def test_nats_down_means_503_and_not_ready(tmp_path, recording_target, replicas):
    server = NatsServer("later", tmp_path / "nats-later")
    docs = [_connector(recording_target.url, _delivery([server.url], nats={"timeout": 0.5}))]
    running = replicas(docs)
    response = post(running.connector_url("tenant"), auth0_lines([log_id(1)]))
    assert response.status == 503
    assert response.headers["retry-after"] == "10"
    ready = post(running.url + "/readyz", method="GET")
    assert ready.status == 503
    assert "NATS spool unavailable: not connected to NATS" in ready.body.decode()
    try:
        server.start()
        _wait(lambda: post(running.url + "/readyz", method="GET").status == 200)
        assert post(running.connector_url("tenant"), auth0_lines([log_id(1)])).status == 200
        assert [e.id for e in recording_target.wait_for(1)] == [log_id(1)]
    finally:
        server.stop()


@requires_nats_server
def test_rejected_events_are_dead_letters_dlq_lists_and_redrives(
    nats_server, recording_target, replicas, tmp_path
):
    recording_target.status = 400
    running = replicas([_connector(recording_target.url, _delivery([nats_server.url]))])
    ids = [log_id(n) for n in range(3)]
    assert post(running.connector_url("tenant"), auth0_lines(ids)).status == 200
    _wait(lambda: running.runtime.connectors[0].stats.dead_lettered == 3)
    assert stream_count([nats_server.url], STREAM) == 0  # acked: dead letters live locally

    data_dir = str(tmp_path / "replica-a" / "data")
    listed = cli("dlq", "list", "--data-dir", data_dir, "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert sorted(r["eventId"] for r in rows) == sorted(ids)
    assert {(r["connector"], r["status"], r["attempts"]) for r in rows} == {("tenant", 400, 1)}

    # redriven dead letters go back into the stream (under ids of their own, so the
    # duplicate window does not drop them) and are delivered
    recording_target.status = 200
    redriven = cli("dlq", "redrive", "--data-dir", data_dir, "--connector", "tenant")
    assert redriven.returncode == 0, redriven.stderr
    got = recording_target.wait_for(3)
    assert sorted(e.id for e in got) == sorted(ids)


# -- a replica dies with events in flight ----------------------------------------------


class HoldingTarget:
    """An HTTP target that holds every request until :meth:`release`, then answers the held
    ones 503 (their sender is dead by then) and records what comes after."""

    def __init__(self, loop: LoopThread) -> None:
        self.loop = loop
        self.port = free_port()
        self.held = 0
        self.ids: list[str] = []
        self._released: asyncio.Event | None = None
        self._server: tornado.httpserver.HTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> HoldingTarget:
        target = self

        class Handler(tornado.web.RequestHandler):
            async def post(self) -> None:
                events = decode_request(dict(self.request.headers), self.request.body)
                released = target._released
                assert released is not None
                if not released.is_set():
                    target.held += 1
                    await released.wait()
                    self.set_status(503)
                    return
                target.ids.extend(e.id for e in events)

        async def listen() -> None:
            self._released = asyncio.Event()
            app = tornado.web.Application([(r"/.*", Handler)])
            self._server = tornado.httpserver.HTTPServer(app)
            self._server.listen(self.port, "127.0.0.1")

        self.loop.run(listen())
        return self

    def release(self) -> None:
        assert self._released is not None
        self.loop.loop.call_soon_threadsafe(self._released.set)

    def stop(self) -> None:
        self.release()
        server = self._server
        if server is not None:

            async def close() -> None:
                server.stop()
                await server.close_all_connections()

            self.loop.run(close())


@pytest.mark.slow
@requires_nats_server
def test_a_killed_replica_loses_nothing(cr_loop, nats_server, replicas, tmp_path):
    target = HoldingTarget(cr_loop).start()
    docs = [_connector(target.url, _delivery([nats_server.url]))]
    manifest = write_manifest_file(tmp_path / "replica.yaml", docs)
    doomed = RuntimeProcess(manifest, tmp_path / "doomed" / "data").start()
    try:
        survivor = replicas(docs, "survivor")
        acked = []
        for n in range(4):  # Auth0 batches, spread over both replicas
            ids = [log_id(n * 10 + k) for k in range(10)]
            via = doomed.url + "/tenant" if n % 2 == 0 else survivor.connector_url("tenant")
            response = post(via, auth0_lines(ids))
            assert response.status == 200, response.body
            acked += ids
        _wait(lambda: target.held >= 2)  # both replicas are in the middle of an attempt
        assert _ack_pending(nats_server.url) >= 2  # fetched by each, not settled
        doomed.kill9()
        killed_at = time.monotonic()
        target.release()

        got = _wait_for_ids(target, acked, timeout=ack_wait(2.0) + 10)
        print(
            f"\nall {len(acked)} acknowledged events delivered {time.monotonic() - killed_at:.1f}s after the kill"
        )
        assert Counter(got) == Counter(acked)  # every acknowledged id, each once
        assert survivor.runtime.connectors[0].stats.delivered == len(acked)
        assert stream_count([nats_server.url], STREAM) == 0
    finally:
        doomed.stop()
        target.stop()


def _wait_for_ids(target, ids, timeout):
    deadline = time.monotonic() + timeout
    while set(target.ids) < set(ids) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # room for a copy too many to show up
    return list(target.ids)


def _ack_pending(url):
    """Messages of the spool consumer that are delivered to a replica and not settled."""

    async def ask():
        nc = await nats.connect([url])
        try:
            info = await nc.jetstream().consumer_info(STREAM, "cr-tenant")
            return info.num_ack_pending
        finally:
            await nc.close()

    return asyncio.run(ask())
