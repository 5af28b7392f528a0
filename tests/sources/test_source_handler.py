"""What every source gets from ``SourceHandler`` and the request guard, through a real
runtime: W3C trace context carried into the events, the source-IP allow-list behind trusted
proxies, the cap on bytes in flight, and one answer for a missing or wrong token."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from connector_runtime_auth0.testing import batch, jsonl

from connector_runtime.testing import (
    RecordingTarget,
    RunningRuntime,
    connector_doc,
    post,
)
from tests.scrape import samples, value

TOKEN = "ops-stream-token-1"


Factory = Callable[..., RunningRuntime]


def test_traceparent_is_carried_into_the_events(
    runtime_factory: Factory, recording_target: RecordingTarget
):
    doc = connector_doc(
        "t1",
        "auth0",
        {},
        {"type": "http", "config": {"url": recording_target.url}},
        delivery={"ack": "delivered"},
    )
    rt = runtime_factory([doc])
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    r = post(rt.connector_url("t1"), jsonl(batch(2)), {"traceparent": tp, "tracestate": "v=1"})
    assert r.status == 200
    assert {e.attributes["traceparent"] for e in recording_target.events} == {tp}
    assert {e.attributes["tracestate"] for e in recording_target.events} == {"v=1"}
    recording_target.events.clear()
    post(rt.connector_url("t1"), jsonl(batch(1, prefix="nt")), {"traceparent": "garbage"})
    assert "traceparent" not in recording_target.events[0].attributes


def test_source_ip_allow_list_and_trusted_proxies(
    runtime_factory: Factory, recording_target: RecordingTarget
):
    target = {"type": "http", "config": {"url": recording_target.url}}
    closed = connector_doc("ip1", "auth0", {}, target)
    closed["spec"]["allowedSourceIps"] = ["203.0.113.0/24"]
    opened = connector_doc("ip2", "auth0", {}, target)
    opened["spec"]["allowedSourceIps"] = ["127.0.0.0/8", "::1"]
    runtime_doc = {
        "apiVersion": "connector-runtime/v1",
        "kind": "Runtime",
        "spec": {"trustedProxies": ["127.0.0.1/32"]},
    }
    rt = runtime_factory([closed, opened, runtime_doc])
    r = post(rt.connector_url("ip1"), jsonl(batch(1)))
    assert r.status == 403 and r.json() == {"error": "source address not allowed"}
    # Through a trusted proxy (the loopback peer), the forwarded client address counts.
    ok = post(rt.connector_url("ip1"), jsonl(batch(1)), {"X-Forwarded-For": "203.0.113.9"})
    assert ok.status == 200
    spoofed = post(
        rt.connector_url("ip1"),
        jsonl(batch(1, "x")),
        {"X-Forwarded-For": "203.0.113.9, 198.51.100.7"},
    )
    assert spoofed.status == 403
    assert post(rt.connector_url("ip2"), jsonl(batch(1, "y"))).status == 200


def test_bytes_in_flight_cap_answers_503(runtime_factory: Factory, recording_target):
    doc = connector_doc(
        "b1", "auth0", {}, {"type": "http", "config": {"url": recording_target.url}}
    )
    doc["spec"]["limits"] = {"maxBytesInFlight": 4096}
    rt = runtime_factory([doc])
    body = jsonl(batch(3))
    # A slow sender holds 4000 bytes in flight: it announced them but sends slowly.
    slow = socket.create_connection(("127.0.0.1", rt.port))
    slow.sendall(
        b"POST /b1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 4000\r\n\r\n" + b"["
    )
    time.sleep(0.2)
    r = post(rt.connector_url("b1"), body)
    assert r.status == 503 and r.headers["retry-after"] == "1"
    assert "in flight" in r.json()["error"]
    slow.close()
    time.sleep(0.2)
    assert post(rt.connector_url("b1"), body).status == 200


def test_token_check_takes_the_same_path_for_missing_and_wrong(
    runtime_factory: Factory, recording_target: RecordingTarget
):
    doc = connector_doc(
        "c1", "auth0", {"token": TOKEN}, {"type": "http", "config": {"url": recording_target.url}}
    )
    rt = runtime_factory([doc])
    url = rt.connector_url("c1")
    answers = set()
    for headers in (
        {},
        {"Authorization": ""},
        {"Authorization": "x"},
        {"Authorization": TOKEN[:-1]},
        {"Authorization": TOKEN + TOKEN},
    ):
        r = post(url, jsonl(batch(1)), headers)
        answers.add((r.status, r.body))
    assert answers == {(401, b'{"error":"missing or wrong Authorization token"}')}
    found = samples(rt.url)
    assert value(found, "connector_runtime_auth_failures_total", connector="c1") == 5
