"""The ``webhook`` source through a real runtime, real HTTP and a recording CloudEvents target.

Every test starts a runtime on a loopback port with one ``webhook`` connector posting to the
kit's recording target in binary mode, sends real requests, and checks both the HTTP answer
and the CloudEvents the target received.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable

import pytest
from connector_runtime.testing import RecordingTarget, RunningRuntime, post

from connector_runtime_webhook.auth import basic_header, sign

Start = Callable[..., RunningRuntime]
CONNECTOR = "hooks"  # the name the webhook_runtime fixture gives its connector

GITHUB_SECRET = "gh-s3cret-for-tests"
STRIPE_SECRET = "whsec_test_secret"
GITHUB = {
    "auth": {
        "type": "hmac",
        "header": "X-Hub-Signature-256",
        "prefix": "sha256=",
        "secret": GITHUB_SECRET,
    },
    "attributes": {
        "id": {"header": "X-GitHub-Delivery"},
        "type": {"header": "X-GitHub-Event", "prefix": "com.github."},
        "subject": {"pointer": "/repository/full_name"},
    },
    "extensions": {"githubaction": {"pointer": "/action", "optional": True}},
}
STRIPE = {
    "auth": {
        "type": "hmac",
        "format": "stripe",
        "header": "Stripe-Signature",
        "secret": STRIPE_SECRET,
        "timestamp": {"tolerance": 300},
    },
    "attributes": {
        "id": {"pointer": "/id"},
        "type": {"pointer": "/type", "prefix": "com.stripe."},
        "time": {"pointer": "/created"},
        "subject": {"pointer": "/data/object/id"},
    },
    "extensions": {"stripelivemode": {"pointer": "/livemode"}},
}
PUSH = {
    "ref": "refs/heads/main",
    "repository": {"full_name": "octo/widgets"},
    "size": 9007199254740993,
}
INVOICE = {
    "id": "evt_1Abc",
    "type": "invoice.paid",
    "created": 1_700_000_000,
    "livemode": False,
    "data": {"object": {"id": "in_42", "amount_paid": 1999}},
}


def url(rt: RunningRuntime) -> str:
    return rt.connector_url(CONNECTOR)


def github_headers(body: bytes, secret: str = GITHUB_SECRET, **extra: str) -> dict[str, str]:
    return {
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-GitHub-Event": "push",
        "X-Hub-Signature-256": "sha256=" + sign(secret.encode(), body),
        **extra,
    }


def stripe_header(body: bytes, at: float, secret: str = STRIPE_SECRET) -> str:
    stamp = str(int(at))
    return f"t={stamp},v1={sign(secret.encode(), stamp.encode() + b'.' + body)}"


# -- auth --------------------------------------------------------------------------------


def test_github_signature_valid(webhook_runtime: Start, recording_target: RecordingTarget):
    rt = webhook_runtime(GITHUB)
    body = json.dumps(PUSH).encode()
    r = post(url(rt), body, github_headers(body))
    assert r.status == 200, r.body
    assert r.json() == {"accepted": 1, "filtered": 0, "duplicates": 0}
    [event] = recording_target.events
    assert event.mode == "binary"
    attributes = event.attributes
    assert attributes["id"] == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert attributes["type"] == "com.github.push"
    assert attributes["source"] == f"urn:connector-runtime:connector:{CONNECTOR}"
    assert attributes["subject"] == "octo/widgets"
    assert attributes["datacontenttype"] == "application/json"
    assert "githubaction" not in attributes
    assert event.data == PUSH  # the 2**53 + 1 size survives exactly


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda h: h.pop("X-Hub-Signature-256"), id="missing"),
        pytest.param(lambda h: h.update({"X-Hub-Signature-256": "sha256=" + "0" * 64}), id="wrong"),
        pytest.param(
            lambda h: h.update({"X-Hub-Signature-256": h["X-Hub-Signature-256"][7:]}),
            id="no-prefix",
        ),
        pytest.param(
            lambda h: h.update(github_headers(json.dumps(PUSH).encode(), "other-secret")),
            id="other-secret",
        ),
    ],
)
def test_github_signature_invalid_or_missing(
    webhook_runtime: Start, recording_target: RecordingTarget, spoil
):
    rt = webhook_runtime(GITHUB)
    body = json.dumps(PUSH).encode()
    headers = github_headers(body)
    spoil(headers)
    r = post(url(rt), body, headers)
    assert r.status == 401
    assert r.json() == {"error": "missing or invalid signature"}
    assert recording_target.events == []
    assert recording_target.requests == 0


def test_a_tampered_body_fails_the_signature(webhook_runtime: Start, recording_target):
    rt = webhook_runtime(GITHUB)
    body = json.dumps(PUSH).encode()
    r = post(url(rt), body.replace(b"main", b"evil"), github_headers(body))
    assert r.status == 401
    assert recording_target.events == []


def test_stripe_signature_within_tolerance(webhook_runtime: Start, recording_target):
    rt = webhook_runtime(STRIPE)
    body = json.dumps(INVOICE).encode()
    r = post(url(rt), body, {"Stripe-Signature": stripe_header(body, time.time() - 200)})
    assert r.status == 200, r.body
    [event] = recording_target.events
    assert event.id == "evt_1Abc"
    assert event.attributes["type"] == "com.stripe.invoice.paid"
    assert event.attributes["time"].isoformat() == "2023-11-14T22:13:20+00:00"
    assert event.attributes["subject"] == "in_42"
    assert event.attributes["stripelivemode"] in (False, "false")
    assert event.data == INVOICE


@pytest.mark.parametrize("offset", [-301, 400], ids=["too-old", "in-the-future"])
def test_stripe_timestamp_outside_tolerance(webhook_runtime: Start, recording_target, offset):
    rt = webhook_runtime(STRIPE)
    body = json.dumps(INVOICE).encode()
    r = post(url(rt), body, {"Stripe-Signature": stripe_header(body, time.time() + offset)})
    assert r.status == 401
    assert r.json() == {"error": "timestamp outside tolerance"}
    assert recording_target.events == []


def test_stripe_replayed_signature_with_a_fresh_timestamp_fails(webhook_runtime: Start):
    rt = webhook_runtime(STRIPE)
    body = json.dumps(INVOICE).encode()
    old = stripe_header(body, time.time() - 3600)
    fresh = old.replace(old[2:12], str(int(time.time())))
    r = post(url(rt), body, {"Stripe-Signature": fresh})
    assert r.status == 401
    assert r.json() == {"error": "missing or invalid signature"}


def test_token_auth(webhook_runtime: Start, recording_target):
    rt = webhook_runtime({"auth": {"type": "token", "header": "X-Api-Key", "value": "k3y-value"}})
    assert post(url(rt), b"{}", {"X-Api-Key": "k3y-value"}).status == 200
    for headers in ({"X-Api-Key": "k3y-valuE"}, {}, {"Authorization": "k3y-value"}):
        r = post(url(rt), b"{}", headers)
        assert r.status == 401
        assert r.json() == {"error": "missing or invalid token"}
    assert len(recording_target.events) == 1


def test_basic_auth(webhook_runtime: Start, recording_target):
    rt = webhook_runtime({"auth": {"type": "basic", "username": "ops", "password": "pa:ss w0rd"}})
    good = {"Authorization": basic_header("ops", "pa:ss w0rd")}
    assert post(url(rt), b"{}", good).status == 200
    for headers in ({"Authorization": basic_header("ops", "nope")}, {}):
        r = post(url(rt), b"{}", headers)
        assert r.status == 401
        assert r.json() == {"error": "missing or invalid credentials"}
        assert r.headers["www-authenticate"].startswith("Basic realm=")
    assert len(recording_target.events) == 1


def test_auth_is_checked_before_the_body_size(webhook_runtime: Start, recording_target):
    rt = webhook_runtime({**GITHUB, "maxBodyBytes": 64})
    big = json.dumps({"pad": "x" * 200}).encode()
    assert post(url(rt), big).status == 401
    assert post(url(rt), big, github_headers(big)).status == 413


# -- bodies and attributes ---------------------------------------------------------------

ELEMENTS = [{"n": 1, "kind": "a"}, {"n": 2, "kind": "b"}, {"n": 3, "kind": "c"}]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(json.dumps(ELEMENTS).encode(), "application/json", id="array"),
        pytest.param(
            b"".join(json.dumps(e).encode() + b"\n" for e in ELEMENTS),
            "application/x-ndjson",
            id="jsonlines",
        ),
        pytest.param(
            b"\r\n".join(json.dumps(e).encode() for e in ELEMENTS), "text/plain", id="crlf-lines"
        ),
    ],
)
def test_many_element_bodies_give_one_event_each(
    webhook_runtime: Start, recording_target, body, content_type
):
    rt = webhook_runtime()
    r = post(url(rt), body, {"Content-Type": content_type})
    assert r.status == 200, r.body
    assert r.json() == {"accepted": 3, "filtered": 0, "duplicates": 0}
    assert sorted(e.data["n"] for e in recording_target.events) == [1, 2, 3]
    ids = recording_target.ids
    assert len(set(ids)) == 3
    assert all(uuid.UUID(i).version == 4 for i in ids)
    assert {e.attributes["type"] for e in recording_target.events} == {"com.example.webhook"}


def test_a_single_object_body(webhook_runtime: Start, recording_target):
    rt = webhook_runtime({"format": "object"})
    assert post(url(rt), json.dumps(ELEMENTS[0], indent=2)).status == 200
    [event] = recording_target.events
    assert event.data == ELEMENTS[0]
    r = post(url(rt), json.dumps(ELEMENTS))
    assert r.status == 400
    assert r.json() == {"error": "body is a JSON array, not an object"}


def test_attributes_from_pointer_header_and_constant(webhook_runtime: Start, recording_target):
    rt = webhook_runtime(
        {
            "attributes": {
                "id": {"pointer": "/order/id"},
                "type": {"value": "com.acme.order"},
                "source": {"header": "X-Shop"},
                "subject": {"pointer": "/order/customer"},
                "time": {"pointer": "/at"},
            },
            "extensions": {"tenant": {"header": "X-Tenant"}, "rank": {"pointer": "/rank"}},
        }
    )
    elements = [
        {"order": {"id": 1001, "customer": "c-7"}, "at": "2024-05-01T10:00:00Z", "rank": 2},
        {"order": {"id": "1002"}, "at": 1_700_000_000, "rank": 3},
    ]
    body = json.dumps(elements)
    r = post(url(rt), body, {"X-Shop": "https://shop.example/eu", "X-Tenant": "acme"})
    assert r.status == 200, r.body
    got = {e.id: e.attributes for e in recording_target.events}
    assert set(got) == {"1001", "1002"}
    first, second = got["1001"], got["1002"]
    assert first["type"] == second["type"] == "com.acme.order"
    assert first["source"] == "https://shop.example/eu"
    assert first["subject"] == "c-7"
    assert "subject" not in second
    assert first["time"].isoformat() == "2024-05-01T10:00:00+00:00"
    assert second["time"].isoformat() == "2023-11-14T22:13:20+00:00"
    assert first["tenant"] == "acme"
    assert str(first["rank"]) == "2"


def test_a_header_id_is_suffixed_per_element(webhook_runtime: Start, recording_target):
    rt = webhook_runtime({"attributes": {"id": {"header": "X-Delivery"}}})
    r = post(url(rt), json.dumps(ELEMENTS), {"X-Delivery": "d-9"})
    assert r.status == 200
    assert sorted(recording_target.ids) == ["d-9", "d-9-1", "d-9-2"]
    by_id = {e.id: e.data["n"] for e in recording_target.events}
    assert by_id == {"d-9": 1, "d-9-1": 2, "d-9-2": 3}


def test_a_redelivery_is_a_duplicate(webhook_runtime: Start, recording_target):
    rt = webhook_runtime(GITHUB)
    body = json.dumps(PUSH).encode()
    assert post(url(rt), body, github_headers(body)).json()["accepted"] == 1
    again = post(url(rt), body, github_headers(body))
    assert again.json() == {"accepted": 0, "filtered": 0, "duplicates": 1}
    assert len(recording_target.events) == 1


@pytest.mark.parametrize(
    ("config", "body", "headers", "error"),
    [
        pytest.param(
            {}, b'[{"a":1},{"b":2},7]', {}, "element 2 is a JSON number, not an object", id="array"
        ),
        pytest.param(
            {}, b'{"a":1}\n["x"]\n', {}, "line 2 is a JSON array, not an object", id="lines"
        ),
        pytest.param({}, b"oops", {}, "body is not valid JSON: invalid character (byte 0)"),
        pytest.param(
            {"attributes": {"id": {"pointer": "/id"}}},
            b'[{"id":"a"},{"name":"b"}]',
            {},
            "element 1: attribute 'id' (pointer /id) is missing",
            id="missing-pointer",
        ),
        pytest.param(
            {"attributes": {"type": {"header": "X-Kind"}}},
            b"{}",
            {},
            "request: attribute 'type' (header X-Kind) is missing",
            id="missing-header",
        ),
        pytest.param(
            {"attributes": {"time": {"pointer": "/t"}}},
            b'{"t":"last tuesday"}',
            {},
            "body: attribute 'time' (pointer /t) is not an RFC 3339 timestamp or integer epoch"
            " seconds",
            id="bad-time",
        ),
    ],
)
def test_bad_bodies_are_400_and_nothing_is_emitted(
    webhook_runtime: Start, recording_target, config, body, headers, error
):
    rt = webhook_runtime(config)
    r = post(url(rt), body, headers)
    assert r.status == 400
    assert r.json() == {"error": error}
    assert recording_target.events == []


# -- CloudEvents in ----------------------------------------------------------------------


def test_binary_mode_passes_through(webhook_runtime: Start, recording_target):
    rt = webhook_runtime({"types": ["com.acme.*"]})
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "ce-1",
        "ce-source": "https://acme.example/orders",
        "ce-type": "com.acme.order.created",
        "ce-subject": "order%2042",
        "ce-traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "Content-Type": "application/xml",
    }
    r = post(url(rt), b"<order id='42'/>", headers)
    assert r.status == 200, r.body
    [event] = recording_target.events
    assert event.attributes["id"] == "ce-1"
    assert event.attributes["source"] == "https://acme.example/orders"
    assert event.attributes["subject"] == "order 42"
    assert event.attributes["traceparent"].startswith("00-4bf92f35")
    assert event.attributes["datacontenttype"] == "application/xml"
    # The kit's SDK decoder hands XML data back as text.
    assert event.data in (b"<order id='42'/>", "<order id='42'/>")


def test_structured_mode_passes_through(webhook_runtime: Start, recording_target):
    rt = webhook_runtime()
    document = {
        "specversion": "1.0",
        "id": "ce-2",
        "source": "urn:acme:billing",
        "type": "com.acme.invoice.sent",
        "time": "2024-02-29T12:00:00.5Z",
        "datacontenttype": "application/json",
        "data": {"total": 12.5, "big": 9007199254740993},
        "region": "eu",
    }
    r = post(url(rt), json.dumps(document), {"Content-Type": "application/cloudevents+json"})
    assert r.status == 200, r.body
    [event] = recording_target.events
    assert event.attributes["id"] == "ce-2"
    assert event.attributes["source"] == "urn:acme:billing"
    assert event.attributes["region"] == "eu"
    assert event.data == {"total": 12.5, "big": 9007199254740993}


def test_batch_mode_passes_through(webhook_runtime: Start, recording_target):
    rt = webhook_runtime()
    batch = [
        {"specversion": "1.0", "id": f"b-{i}", "source": "urn:acme", "type": "com.acme.tick"}
        for i in range(3)
    ]
    batch[1]["datacontenttype"] = "application/octet-stream"
    batch[1]["data_base64"] = base64.b64encode(b"\x00\x01\xfe").decode()
    r = post(url(rt), json.dumps(batch), {"Content-Type": "application/cloudevents-batch+json"})
    assert r.status == 200, r.body
    assert r.json()["accepted"] == 3
    assert sorted(recording_target.ids) == ["b-0", "b-1", "b-2"]
    by_id = {e.id: e for e in recording_target.events}
    assert by_id["b-1"].data == b"\x00\x01\xfe"


@pytest.mark.parametrize(
    ("body", "headers", "error"),
    [
        pytest.param(
            b"{}",
            {"ce-specversion": "1.0", "ce-id": "x", "ce-type": "t"},
            "event: missing required attribute 'source'",
            id="binary",
        ),
        pytest.param(
            json.dumps({"specversion": "0.3", "id": "x", "source": "s", "type": "t"}),
            {"Content-Type": "application/cloudevents+json"},
            "event: specversion '0.3' is not supported (only '1.0')",
            id="structured",
        ),
        pytest.param(
            json.dumps([{"specversion": "1.0", "id": "x", "source": "s"}]),
            {"Content-Type": "application/cloudevents-batch+json"},
            "event 0: missing required attribute 'type'",
            id="batch",
        ),
    ],
)
def test_invalid_cloudevents_are_400(
    webhook_runtime: Start, recording_target, body, headers, error
):
    rt = webhook_runtime()
    r = post(url(rt), body, headers)
    assert r.status == 400
    assert r.json() == {"error": error}
    assert recording_target.events == []


def test_cloudevents_can_be_treated_as_plain_webhooks(webhook_runtime: Start, recording_target):
    rt = webhook_runtime({"acceptCloudEvents": False})
    headers = {"ce-specversion": "1.0", "ce-id": "x"}
    assert post(url(rt), b'{"a":1}', headers).status == 200
    [event] = recording_target.events
    assert event.id != "x"
    assert event.data == {"a": 1}


def test_cloudevents_still_need_the_signature(webhook_runtime: Start, recording_target):
    rt = webhook_runtime(GITHUB)
    headers = {"ce-specversion": "1.0", "ce-id": "x", "ce-source": "s", "ce-type": "t"}
    assert post(url(rt), b"{}", headers).status == 401
    headers["X-Hub-Signature-256"] = "sha256=" + sign(GITHUB_SECRET.encode(), b"{}")
    assert post(url(rt), b"{}", headers).status == 200
    assert recording_target.ids == ["x"]


# -- filter, status contract, durable delivery -------------------------------------------


def test_types_filter_keeps_listed_types_and_prefixes(webhook_runtime: Start, recording_target):
    rt = webhook_runtime(
        {
            "attributes": {"type": {"pointer": "/t"}},
            "types": ["com.acme.order.*", "com.acme.refund"],
        }
    )
    kinds = ["com.acme.order.paid", "com.acme.refund", "com.acme.refund.partial", "org.other"]
    body = "\n".join(json.dumps({"t": t}) for t in [*kinds, "com.acme.order.shipped"])
    r = post(url(rt), body)
    assert r.status == 200, r.body
    assert r.json() == {"accepted": 3, "filtered": 2, "duplicates": 0}
    assert sorted(e.attributes["type"] for e in recording_target.events) == [
        "com.acme.order.paid",
        "com.acme.order.shipped",
        "com.acme.refund",
    ]


def test_unsupported_content_type_is_415(webhook_runtime: Start, recording_target):
    rt = webhook_runtime()
    r = post(url(rt), b"<a/>", {"Content-Type": "application/xml"})
    assert r.status == 415
    assert r.json() == {"error": "unsupported Content-Type 'application/xml'"}
    assert recording_target.events == []


def test_too_large_body_is_413(webhook_runtime: Start, recording_target):
    rt = webhook_runtime({"maxBodyBytes": 100})
    r = post(url(rt), json.dumps([{"pad": "x" * 50}] * 3))
    assert r.status == 413
    assert r.json() == {"error": "body larger than 100 bytes"}
    assert post(url(rt), json.dumps({"pad": "x" * 50})).status == 200
    assert len(recording_target.events) == 1


def test_only_post_is_allowed(webhook_runtime: Start):
    rt = webhook_runtime()
    r = post(url(rt), method="GET")
    assert r.status == 405
    assert r.headers["allow"] == "POST"


def test_target_down_is_503_and_nothing_is_acknowledged(webhook_runtime: Start, recording_target):
    recording_target.status = 503
    rt = webhook_runtime()
    r = post(url(rt), b'{"a":1}')
    assert r.status == 503
    assert "retry-after" in r.headers


def test_durable_delivery_reaches_the_target(webhook_runtime: Start, recording_target):
    rt = webhook_runtime(GITHUB, ack="durable")
    body = json.dumps(PUSH).encode()
    r = post(url(rt), body, github_headers(body))
    assert r.status == 200
    [event] = recording_target.wait_for(1)
    assert event.attributes["type"] == "com.github.push"
    assert event.data == PUSH
