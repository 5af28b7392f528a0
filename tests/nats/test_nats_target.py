"""The ``nats`` target: subject rendering and error sorting (pure), then through a real
nats-server: Auth0 logs posted to a runtime land in a JetStream stream exactly once, also
when they are redelivered and when the server is down for a while."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.js.api import StreamConfig

from connector_runtime.config.manifest import load_manifest
from connector_runtime.delivery.attempt import attempt
from connector_runtime.errors import DeliveryError, ManifestError
from connector_runtime.events import make_event, to_structured
from connector_runtime.nats import target as nats_target
from connector_runtime.nats.binding import (
    encode,
    parse_subject,
    render_subject,
    subject_pattern_of,
)
from connector_runtime.nats.connection import MSG_ID_HEADER, classify, subject_matches
from connector_runtime.nats.target import CONFIG_SCHEMA, NATSTarget, check_config
from connector_runtime.plugins import build_registry
from connector_runtime.records import TargetContext
from connector_runtime.testing import connector_doc, post, start_runtime, write_manifest
from tests.nats.nats_support import (
    NatsServer,
    auth0_data,
    auth0_lines,
    delete_stream,
    log_id,
    requires_nats_server,
    stream_count,
    stream_messages,
    wait_for_count,
)

TEMPLATE = "auth0.{connector}.{code}"
STREAM = "AUTH0"


# -- subjects ------------------------------------------------------------------------------


def test_render_subject_fills_connector_code_and_attributes():
    attributes = {"type": "com.auth0.log.fp", "source": "urn:acme", "id": "1", "flag": True}
    assert render_subject(TEMPLATE, attributes, "tenant-eu") == "auth0.tenant-eu.fp"
    assert render_subject("x.{type}.{flag}", attributes, "c") == "x.com_auth0_log_fp.true"
    assert render_subject("pre-{code}-post.{id}", attributes, "c") == "pre-fp-post.1"


def test_render_subject_replaces_what_a_token_cannot_hold():
    attributes = {"type": "t", "subject": "auth0|u 1.*>\tx", "source": ""}
    assert render_subject("a.{subject}", attributes, "c") == "a.auth0|u_1____x"
    # missing and empty values still make a token
    assert render_subject("a.{subject}.{source}.{time}", {"subject": ""}, "c") == "a._._._"
    assert render_subject("a.{code}", {"type": "plain"}, "c") == "a.plain"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("a.{Type}", "unknown placeholder {Type}"),
        ("a.{}", "unknown placeholder {}"),
        ("a.*.{code}", "'*' is not allowed"),
        ("a.>", "'>' is not allowed"),
        ("a b.{code}", "' ' is not allowed"),
        ("a.{code", "'{' is not allowed"),
        ("a..{code}", "empty token"),
        (".a", "empty token"),
        ("a.{code}.", "empty token"),
    ],
)
def test_bad_subject_templates(template, message):
    with pytest.raises(ValueError, match=message.replace("*", r"\*").replace("{", r"\{")):
        parse_subject(template)


def test_subject_pattern_and_matching():
    assert subject_pattern_of(TEMPLATE) == "auth0.*.*"
    assert subject_pattern_of("x-{code}.y") == "*.y"
    assert subject_matches("auth0.>", "auth0.a.b")
    assert subject_matches("auth0.*.*", "auth0.*.*")
    assert subject_matches("auth0.*.s", "auth0.t.s")
    assert not subject_matches("auth0.*.s", "auth0.*.*")
    assert not subject_matches("auth0.>", "auth0")
    assert not subject_matches("auth0.*", "auth0.a.b")
    assert not subject_matches("other.>", "auth0.a.b")


# -- encoding and errors ---------------------------------------------------------------------


def _event(n=0, code="s", **kwargs):
    i = log_id(n)
    return make_event(
        id=i, source="urn:acme", type=f"com.auth0.log.{code}", data=auth0_data(i, code), **kwargs
    )


def test_encode_binary_and_structured():
    event = _event(1, subject="auth0|abc", extensions={"auth0category": "user.success"})
    payload, headers = encode(event, "binary")
    assert payload == event.data
    assert headers == {
        "ce-specversion": "1.0",
        "ce-id": event.id,
        "ce-source": "urn:acme",
        "ce-type": "com.auth0.log.s",
        "content-type": "application/json",
        "ce-subject": "auth0|abc",
        "ce-auth0category": "user.success",
        MSG_ID_HEADER: event.id,
    }
    payload, headers = encode(event, "structured")
    assert payload == to_structured(event)
    assert headers == {"content-type": "application/cloudevents+json", MSG_ID_HEADER: event.id}


def test_classify_sorts_transient_from_permanent():
    api = nats.js.errors
    assert classify(api.ServiceUnavailableError(code=503, description="no leader"), 2) == (
        False,
        "JetStream 503: no leader",
    )
    assert classify(api.APIError(code=400, err_code=10054, description="too big"), 2) == (
        True,
        "JetStream 400: too big (err_code 10054)",
    )
    assert classify(api.NoStreamResponseError(), 2)[0] is False
    assert classify(nats.errors.TimeoutError(), 2.5) == (False, "no PubAck within 2.5s")
    assert classify(nats.errors.ConnectionClosedError(), 2)[0] is False
    assert classify(nats.errors.NoRespondersError(), 2)[0] is False
    assert classify(ConnectionResetError("reset by peer"), 2) == (
        False,
        "ConnectionResetError: reset by peer",
    )
    assert classify(nats.errors.MaxPayloadError(), 2)[0] is True


# -- config ------------------------------------------------------------------------------------


def test_register_target_types_offers_nats():
    registry = build_registry()
    assert registry.broken == []
    nats_type = registry.target_types["nats"]
    assert nats_type.config_schema is CONFIG_SCHEMA
    assert nats_type.check_config is check_config
    assert CONFIG_SCHEMA["additionalProperties"] is False
    for name, prop in CONFIG_SCHEMA["properties"].items():
        assert prop.get("description"), name
    for name in ("credentials", "token", "password"):
        assert CONFIG_SCHEMA["properties"][name]["x-secret"] is True


def _manifest(tmp_path, target_config):
    doc = connector_doc("tenant", "auth0", {}, {"type": "nats", "config": target_config})
    return load_manifest([write_manifest([doc], tmp_path)], build_registry(), env={})


def test_manifest_fills_defaults(tmp_path):
    manifest = _manifest(
        tmp_path, {"servers": ["nats://n1:4222"], "subject": TEMPLATE, "stream": {"name": STREAM}}
    )
    config = manifest.connectors[0].target.config
    assert config["mode"] == "binary"
    assert config["maxInFlight"] == 256
    assert config["stream"] == {
        "name": STREAM,
        "replicas": 1,
        "retention": "limits",
        "duplicateWindow": 120,
        "create": True,
    }


def _problems(tmp_path, **config):
    base = {"servers": ["nats://n1:4222"], "subject": TEMPLATE, "stream": {"name": STREAM}}
    with pytest.raises(ManifestError) as info:
        _manifest(tmp_path, {**base, **config})
    return str(info.value)


def test_manifest_problems_name_the_place_and_hide_secrets(tmp_path):
    text = _problems(tmp_path, subject="auth0.{Code}")
    assert "spec.target.config.subject: 'auth0.{Code}': unknown placeholder {Code}" in text

    stream = {"name": STREAM, "subjects": ["other.>"], "maxAge": "1m", "duplicateWindow": "2m"}
    text = _problems(tmp_path, stream=stream)
    assert "spec.target.config.stream.subjects: no subject covers auth0.*.*" in text
    assert "spec.target.config.stream.duplicateWindow: 120s is longer than maxAge (60s)" in text

    assert "'password' is a dependency of 'user'" in _problems(tmp_path, user="app")
    text = _problems(tmp_path, token=12345678)
    assert "spec.target.config.token" in text
    assert "12345678" not in text


# -- through a real nats-server --------------------------------------------------------------


@pytest.fixture
def nats_server(tmp_path):
    """A single nats-server, not started yet (tests start and stop it themselves)."""
    server = NatsServer("single", tmp_path / "nats")
    yield server
    server.stop()


def _target_config(url, **overrides):
    config = {
        "servers": [url],
        "subject": TEMPLATE,
        "stream": {"name": STREAM},
        "timeout": 2,
        "maxInFlight": 64,
    }
    config.update(overrides)
    return config


def _documents(tmp_path, target_config, name="tenant"):
    data_dir = tmp_path / f"data-{name}"
    return [
        {
            "apiVersion": "connector-runtime/v1",
            "kind": "Runtime",
            "spec": {"dataDir": str(data_dir)},
        },
        connector_doc(
            name,
            "auth0",
            {},
            {"type": "nats", "config": target_config},
            delivery={"ack": "durable", "retry": {"initialBackoff": "100ms", "maxBackoff": "1s"}},
        ),
    ]


@pytest.fixture
def make_target(cr_loop):
    targets = []

    def make(config):
        target = NATSTarget(config, TargetContext("tenant", logging.getLogger("test.nats")))
        targets.append(target)
        return target

    yield make
    for target in targets:
        cr_loop.run(target.close())


@requires_nats_server
def test_runtime_delivers_auth0_logs_into_the_stream(cr_loop, nats_server, tmp_path):
    nats_server.start()
    running = start_runtime(
        cr_loop, _documents(tmp_path, _target_config(nats_server.url)), directory=tmp_path
    )
    try:
        ids = [log_id(n) for n in range(20)]
        fails = [log_id(n) for n in range(20, 25)]
        body = auth0_lines(ids) + auth0_lines(fails, code="fp")
        response = post(running.connector_url("tenant"), body)
        assert response.status == 200, response.body
        assert response.json()["accepted"] == 25

        assert wait_for_count([nats_server.url], STREAM, 25) == 25
        messages = stream_messages([nats_server.url], STREAM)
        by_id = {m.headers["ce-id"]: m for m in messages}
        assert sorted(by_id) == sorted(ids + fails)
        for i in ids + fails:
            code = "fp" if i in fails else "s"
            m = by_id[i]
            assert m.subject == f"auth0.tenant.{code}"
            assert m.headers["ce-type"] == f"com.auth0.log.{code}"
            assert m.headers[MSG_ID_HEADER] == i
            assert m.headers["content-type"] == "application/json"
            assert m.headers["ce-specversion"] == "1.0"
            assert m.data == auth0_data(i, code)

        # Auth0 retries the same batch: the runtime drops it, nothing new is published
        again = post(running.connector_url("tenant"), body)
        assert again.status == 200
        assert again.json()["duplicates"] == 25
        assert wait_for_count([nats_server.url], STREAM, 26, timeout=1.5) == 25
    finally:
        running.stop()


@requires_nats_server
def test_the_same_event_id_is_stored_once(cr_loop, nats_server, make_target):
    nats_server.start()
    target = make_target(_target_config(nats_server.url))
    cr_loop.run(target.start())
    event = _event(7)
    assert cr_loop.run(target.send([event])).retry == {}
    result = cr_loop.run(target.send([event, _event(7)]))
    assert (result.rejected, result.retry) == ({}, {})
    assert target.duplicates == 2
    [stored] = stream_messages([nats_server.url], STREAM)
    assert stored.headers[MSG_ID_HEADER] == event.id


@requires_nats_server
def test_structured_mode(cr_loop, nats_server, make_target):
    nats_server.start()
    target = make_target(_target_config(nats_server.url, mode="structured", subject="ce.{code}"))
    cr_loop.run(target.start())
    event = _event(3, code="fp", subject="auth0|abc")
    assert cr_loop.run(target.send([event])).retry == {}
    [stored] = stream_messages([nats_server.url], STREAM)
    assert stored.subject == "ce.fp"
    assert stored.headers["content-type"] == "application/cloudevents+json"
    assert stored.headers[MSG_ID_HEADER] == event.id
    document = json.loads(stored.data)
    assert document["id"] == event.id
    assert document["subject"] == "auth0|abc"
    assert document["data"] == json.loads(event.data)


@requires_nats_server
def test_permanent_failures_are_rejected_with_a_reason(cr_loop, nats_server, make_target):
    nats_server.start()
    other = make_target(
        _target_config(nats_server.url, subject="other.{code}", stream={"name": "OTHER"})
    )
    cr_loop.run(other.start())

    too_big = make_event(id="big", source="urn:acme", type="t.s", data=b"x" * (2 << 20))
    ok = _event(1)
    target = make_target(_target_config(nats_server.url))
    cr_loop.run(target.start())
    outcome = cr_loop.run(attempt(target, [ok, too_big]))
    assert outcome.retry == {}
    assert outcome.rejected == [
        (too_big, "message exceeds the server's maximum payload (max_payload)", None)
    ]

    # a subject the (existing, not ours to change) stream does not take
    outside = make_target(
        _target_config(nats_server.url, stream={"name": "OTHER", "create": False})
    )
    cr_loop.run(outside.start())
    outcome = cr_loop.run(attempt(outside, [ok]))
    assert outcome.rejected == [
        (ok, "subject auth0.tenant.s is not in stream OTHER (other.*)", None)
    ]

    # a stream that does not exist and may not be created
    missing = make_target(
        _target_config(nats_server.url, stream={"name": "MISSING", "create": False})
    )
    cr_loop.run(missing.start())
    outcome = cr_loop.run(attempt(missing, [ok]))
    assert outcome.rejected == [
        (ok, "stream MISSING does not exist (and stream.create is false)", None)
    ]
    assert stream_count([nats_server.url], STREAM) == 1
    assert stream_count([nats_server.url], "OTHER") == 0


@requires_nats_server
def test_a_jetstream_error_answer_gives_its_code_as_the_status(cr_loop, nats_server, make_target):
    """A publish JetStream answers with an error (here a message over the stream's
    ``max_msg_size``: 400, err_code 10054) carries the code as the event's status."""
    nats_server.start()

    async def small_stream() -> None:
        nc = await nats.connect(nats_server.url)
        try:
            config = StreamConfig(name="SMALL", subjects=["auth0.>"], max_msg_size=64)
            await nc.jetstream(timeout=5).add_stream(config)
        finally:
            await nc.close()

    asyncio.run(small_stream())
    target = make_target(_target_config(nats_server.url, stream={"name": "SMALL", "create": False}))
    cr_loop.run(target.start())
    event = _event(1)
    outcome = cr_loop.run(attempt(target, [event]))
    assert outcome.retry == {}
    assert outcome.rejected == [
        (event, "JetStream 400: message size exceeds maximum allowed (err_code 10054)", 400)
    ]
    assert outcome.status == {0: 400}


@requires_nats_server
def test_a_server_down_at_start_delays_delivery_only(cr_loop, nats_server, make_target):
    target = make_target(_target_config(nats_server.url, timeout=0.5))
    started = time.monotonic()
    cr_loop.run(target.start())
    assert time.monotonic() - started < 2
    with pytest.raises(DeliveryError) as info:
        cr_loop.run(target.send([_event(1)]))
    assert not info.value.permanent
    assert info.value.reason.startswith("not connected to NATS: ConnectionRefusedError")

    nats_server.start()
    deadline = time.monotonic() + 10
    while True:
        outcome = cr_loop.run(attempt(target, [_event(1)]))
        if not outcome.retry or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert (outcome.rejected, outcome.retry) == ([], {})
    assert stream_count([nats_server.url], STREAM) == 1


@requires_nats_server
def test_target_down_then_up_delivers_everything_once(cr_loop, nats_server, tmp_path):
    nats_server.start()
    running = start_runtime(
        cr_loop, _documents(tmp_path, _target_config(nats_server.url)), directory=tmp_path
    )
    url = running.connector_url("tenant")
    try:
        first = [log_id(n) for n in range(10)]
        assert post(url, auth0_lines(first)).status == 200
        assert wait_for_count([nats_server.url], STREAM, 10) == 10

        nats_server.stop()
        while_down = [log_id(n) for n in range(10, 60)]
        for start in range(0, 50, 10):
            response = post(url, auth0_lines(while_down[start : start + 10]))
            assert response.status == 200, response.body  # durable: acknowledged while down
        time.sleep(1.5)  # the dispatcher keeps trying meanwhile
        assert post(url, auth0_lines(first[:5] + while_down[:5])).json()["duplicates"] == 10

        nats_server.start()
        assert wait_for_count([nats_server.url], STREAM, 60, timeout=20, settle=1.0) == 60
        ids = [m.headers["ce-id"] for m in stream_messages([nats_server.url], STREAM)]
        assert sorted(ids) == sorted(first + while_down)
    finally:
        running.stop()


@requires_nats_server
def test_a_deleted_stream_is_looked_up_again(cr_loop, nats_server, make_target, monkeypatch):
    monkeypatch.setattr(nats_target, "STREAM_RECHECK", 0.2)
    nats_server.start()
    target = make_target(_target_config(nats_server.url))
    watcher = make_target(_target_config(nats_server.url, stream={"name": STREAM, "create": False}))
    cr_loop.run(target.start())
    cr_loop.run(watcher.start())
    assert cr_loop.run(attempt(target, [_event(1)])).retry == {}

    delete_stream([nats_server.url], STREAM)
    outcome = cr_loop.run(attempt(watcher, [_event(2)]))
    assert outcome.retry == {0: "no JetStream stream answered (no leader yet, or JetStream is off)"}
    time.sleep(0.3)
    outcome = cr_loop.run(attempt(watcher, [_event(2)]))  # create: false -> dead letter
    assert outcome.rejected == [
        (_event(2), f"stream {STREAM} does not exist (and stream.create is false)", None)
    ]

    assert cr_loop.run(attempt(target, [_event(3)])).retry != {}
    time.sleep(0.3)
    assert cr_loop.run(attempt(target, [_event(3)])).retry == {}  # create: true -> made again
    assert [m.headers["ce-id"] for m in stream_messages([nats_server.url], STREAM)] == [log_id(3)]
