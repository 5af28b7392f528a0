"""The ``auth0-events`` source: Auth0 Event Streams CloudEvents through a real runtime,
driven by the kit's fake sender over sockets."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import jsonschema
import pytest
from connector_runtime.conformance import SourceConformance
from connector_runtime.testing import RecordingTarget, connector_doc, free_port, post

from connector_runtime_auth0 import EVENTS_CONFIG_SCHEMA
from connector_runtime_auth0.eventstreams import EVENT_STREAM_TYPES, parse_cloudevents
from connector_runtime_auth0.parse import ParseError
from connector_runtime_auth0.streams import check_events_config as check_config
from connector_runtime_auth0.streams import make_stream_auth
from connector_runtime_auth0.testing import FakeEventStream, stream_event

TOKEN = "es-token-0123456789abcdef0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def events_doc(target: RecordingTarget, config: dict[str, Any] | None = None, **delivery: Any):
    return connector_doc(
        "es",
        "auth0-events",
        config or {"token": TOKEN},
        {"type": "http", "config": {"url": target.url, "mode": "structured"}},
        delivery={"ack": "durable", **delivery},
    )


def as_sent(body: bytes) -> dict[str, Any]:
    """The attributes of an event as the sender wrote them (``data`` apart)."""
    document = json.loads(body)
    document.pop("data")
    document["specversion"] = document.pop("spec_version", document.get("specversion"))
    return document


# -- parsing (pure) ------------------------------------------------------------------------


def test_attributes_stay_as_sent_and_data_byte_for_byte():
    body = stream_event(7, "organization.member.added", purpose="test")
    [event] = parse_cloudevents(body)
    assert {k: v for k, v in event.peek().items() if k != "datacontenttype"} == as_sent(body)
    assert event.data is not None and event.data in body
    assert b"9007199254740993" in event.data


def test_spec_version_is_read_as_specversion_and_arrays_are_taken():
    one, two = stream_event(1, spec_key="spec_version"), stream_event(2)
    events = parse_cloudevents(b"[" + one + b"," + two + b"]")
    assert [e.peek()["specversion"] for e in events] == ["1.0", "1.0"]
    assert "spec_version" not in events[0].peek()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "not a CloudEvent"),
        (b"user.created", "not a CloudEvent"),
        (b'{"id":"evt_1","source":"urn:auth0:x","type":"user.created"}', "'specversion'"),
        (b'{"id":"evt_1","source":"s","type":"t","specversion":"0.3"}', "is not '1.0'"),
        (b'{"id":"evt_1","source":"s","type":"t","specversion":"1.0","time":"x"}', "RFC 3339"),
        (b"[1]", "event 0 is not a JSON object"),
        (b'{"id":', "not valid JSON"),
    ],
)
def test_bodies_that_are_not_cloudevents_are_refused(body, reason):
    with pytest.raises(ParseError, match=reason):
        parse_cloudevents(body)


def test_credentials_are_checked_for_both_methods():
    bearer = make_stream_auth({"token": ["old-token-1234", TOKEN]})
    assert bearer.allows(f"Bearer {TOKEN}") and bearer.allows("bearer old-token-1234")
    assert not bearer.allows(TOKEN) and not bearer.allows("Bearer ") and not bearer.allows("")
    basic = make_stream_auth({"basicAuth": {"username": "auth0", "password": "pa:ss-word"}})
    good = FakeEventStream.basic("http://x/", "auth0", "pa:ss-word").authorization
    wrong = FakeEventStream.basic("http://x/", "auth0", "pa:ss-wordx").authorization
    assert basic.allows(good) and not basic.allows(wrong) and not basic.allows("Basic !!")


@pytest.mark.parametrize(
    ("config", "valid"),
    [
        ({"token": TOKEN}, True),
        ({"token": ["old-token-1234", TOKEN]}, True),  # rotation
        ({"basicAuth": {"username": "u" * 128, "password": "basic-secret"}}, True),
        ({"basicAuth": {"username": "u" * 129, "password": "basic-secret"}}, False),
        ({"basicAuth": {"username": "a:b", "password": "basic-secret"}}, False),
        ({"token": TOKEN, "basicAuth": {"username": "u", "password": "basic-secret"}}, False),
        ({}, False),
        ({"token": []}, False),
    ],
)
def test_credentials_follow_auth0s_rules_for_the_two_methods(config, valid):
    errors = list(jsonschema.Draft202012Validator(EVENTS_CONFIG_SCHEMA).iter_errors(config))
    assert (errors == []) == valid, errors


def test_events_are_checked_against_the_catalogue_with_suggestions():
    assert "organization.connection.added" in EVENT_STREAM_TYPES
    assert check_config({"events": ["user.created", "organization.member.*", "group.*"]}) == []
    [(where, message)] = check_config({"events": ["user.updated", "user.create"]})
    assert where == "events[1]" and "closest: user.created" in message


# -- through a runtime ---------------------------------------------------------------------


def test_the_status_contract_never_drops_a_retryable_event(runtime_factory, recording_target):
    rt = runtime_factory([events_doc(recording_target, {"token": TOKEN, "maxBodyBytes": 600})])
    url = rt.connector_url("es")
    big = post(url, stream_event(1)[:-1] + b',"pad":"' + b"x" * 600 + b'"}', BEARER)
    assert big.status == 503 and big.headers["retry-after"] == "5"
    odd_type = post(url, stream_event(2), {**BEARER, "Content-Type": "text/x-unexpected"})
    assert odd_type.status == 200, odd_type.body
    unauthorized = post(url, stream_event(3), {"Authorization": TOKEN})
    assert unauthorized.status == 401
    assert unauthorized.headers["www-authenticate"].startswith("Bearer")
    assert TOKEN.encode() not in unauthorized.body
    assert post(url, b'{"hello":"world"}', BEARER).status == 400
    assert [e.id for e in recording_target.wait_for(1)] == [f"evt_{2:022d}"]


@pytest.mark.parametrize("mode", ["pass", "drop"])
def test_test_deliveries_are_counted_apart(runtime_factory, recording_target, mode):
    config = {"token": TOKEN, "testEvents": mode, "source": "https://acme.example/auth0"}
    rt = runtime_factory([events_doc(recording_target, config)])
    body = b"[" + stream_event(1, purpose="test") + b"," + stream_event(2) + b"]"
    answer = post(rt.connector_url("es"), body, BEARER).json()
    kept = 2 if mode == "pass" else 1
    assert answer == {"accepted": kept, "filtered": 0, "duplicates": 0, "test": 1}
    got = recording_target.wait_for(kept)
    assert {e.attributes["source"] for e in got} == {"https://acme.example/auth0"}
    assert {e.attributes["a0tenant"] for e in got} == {"acme-test"}


def test_the_fake_sender_through_faults_leaves_each_event_once(
    runtime_factory, recording_target, tmp_path
):
    """Auth failures, duplicates, out-of-order events, a full spool and a restart: the
    target holds each event once, attributes unchanged, and no transient fault got a 4xx."""
    data = tmp_path / "spool"
    bodies = [stream_event(n, EVENT_STREAM_TYPES[n % len(EVENT_STREAM_TYPES)]) for n in range(40)]
    recording_target.status = 503  # the target is down: the spool fills up
    doc = events_doc(recording_target, quota={"maxEvents": 10})
    rt = runtime_factory([doc], data_dir=data)
    url = rt.connector_url("es")

    intruder = FakeEventStream.bearer(url, "not-the-token-000", time_scale=0)
    assert [d.outcome for d in intruder.send(bodies[:2])] == ["dropped", "dropped"]
    assert [d.statuses for d in intruder.deliveries] == [[401], [401]]  # never retried

    sender = FakeEventStream.bearer(url, TOKEN, time_scale=0)
    sender.send(bodies[:20], duplicates=[0, 3, 3, 7], shuffle=1)
    accepted = {d.body for d in sender.deliveries if d.outcome == "delivered"}
    assert accepted and sender.failed  # over the quota: 503 + Retry-After on each attempt
    answers = [pair for d in sender.failed for pair in zip(d.statuses, d.retry_after, strict=True)]
    assert {(status, after is not None) for status, after in answers} == {(503, True)}

    rt.stop()  # a restart, with the spool's 10 events still undelivered
    sender.send(bodies[20:25])  # nobody listens: no answer on any attempt
    assert {s for d in sender.deliveries[-5:] for s in d.statuses} == {0}
    recording_target.status = 200
    rt = runtime_factory([doc], data_dir=data)
    sender.url = rt.connector_url("es")
    recording_target.wait_for(len(accepted))  # the spool, delivered after the restart
    sender.redeliver()  # the Management API's redelivery of what failed
    sender.send(bodies[25:], duplicates=[5, 6, 14], shuffle=2)
    sender.send(bodies[:5])  # repeats of events delivered before the restart

    assert not sender.failed and not sender.dropped
    assert {s for d in sender.deliveries for s in d.statuses if 400 <= s < 500} == set()
    recording_target.wait_for(40)
    got = list(recording_target.events)
    assert sorted(e.id for e in got) == sorted(json.loads(b)["id"] for b in bodies)
    sent = {json.loads(b)["id"]: b for b in bodies}
    for event in got:  # structured mode: each request body is the event's document
        document = json.loads(event.body)
        assert document.pop("datacontenttype") == "application/json"
        assert {k: v for k, v in document.items() if k != "data"} == as_sent(sent[event.id])
        data_text = sent[event.id].partition(b',"data":')[2][:-1]
        assert b'"data":' + data_text in event.body  # byte for byte


def test_a_target_down_under_ack_delivered_is_a_retry_never_a_drop(
    runtime_factory, recording_target
):
    recording_target.status = 503
    rt = runtime_factory([events_doc(recording_target, ack="delivered")])
    waits: list[float] = []
    sender = FakeEventStream.bearer(
        rt.connector_url("es"), TOKEN, time_scale=0.001, sleep=waits.append
    )
    [delivery] = sender.send([stream_event(1, "group.member.added")])
    assert delivery.outcome == "failed" and delivery.statuses == [503] * 4
    assert waits == [0.001, 0.002, 0.004]  # Auth0's 1 s, 2 s, 4 s, time compressed
    assert None not in delivery.retry_after
    recording_target.status = 200
    assert [d.outcome for d in sender.redeliver()] == ["delivered"]
    assert recording_target.ids == [f"evt_{1:022d}"]


def test_the_fake_sender_disables_the_stream_after_failures_in_a_row(
    runtime_factory, recording_target
):
    """As Auth0 does after 500 failed deliveries in a row (3 here): nothing is sent to a
    disabled stream; the Redelivery API still works, then the stream is enabled again."""
    bodies = [stream_event(n) for n in range(6)]
    nobody = f"http://127.0.0.1:{free_port()}/es"
    sender = FakeEventStream.bearer(nobody, TOKEN, time_scale=0, disable_after=(3, 100))
    sender.send(bodies[:5])
    assert not sender.enabled
    assert [len(d.statuses) for d in sender.deliveries] == [4, 4, 4, 0, 0]  # none sent
    assert [d.outcome for d in sender.deliveries] == ["failed"] * 5
    sender.url = runtime_factory([events_doc(recording_target)]).connector_url("es")
    assert [d.outcome for d in sender.redeliver()] == ["delivered"] * 5
    sender.enable()
    assert sender.deliver(bodies[5]).outcome == "delivered"
    recording_target.wait_for(6)
    assert sorted(recording_target.ids) == [f"evt_{n:022d}" for n in range(6)]
    full = FakeEventStream.bearer(nobody, TOKEN, time_scale=0, disable_after=(100, 2))
    full.send(bodies[:2])
    assert not full.enabled
    with pytest.raises(ValueError, match="redeliver them first"):
        full.enable()


class TestConformance(SourceConformance):
    source_type = "auth0-events"
    config: ClassVar[dict[str, Any]] = {"token": TOKEN}
    auth_headers: ClassVar[dict[str, str]] = BEARER
    filter_config: ClassVar[dict[str, Any]] = {"token": TOKEN, "events": ["group.*"]}

    def valid_body(self):
        return b"[" + stream_event(1) + b"," + stream_event(2, "user.deleted") + b"]", {}, 2

    def bad_bodies(self):
        return [(b"", {}), (b'{"log_id":"x"}', {}), (b"[1]", {}), (b"<xml/>", {})]


class TestConformanceBasic(TestConformance):
    config: ClassVar[dict[str, Any]] = {
        "basicAuth": {"username": "auth0-stream", "password": "basic-secret-0123456789"}
    }
    auth_headers: ClassVar[dict[str, str]] = {
        "Authorization": FakeEventStream.basic(
            "http://x/", "auth0-stream", "basic-secret-0123456789"
        ).authorization
    }
    filter_config: ClassVar[dict[str, Any]] = {**config, "events": ["connection.created"]}
