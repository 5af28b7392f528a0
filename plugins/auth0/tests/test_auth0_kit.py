"""The auth0 source through the runtime's testing kit: a real server, a recording target,
and the conformance suite every source type should pass."""

from __future__ import annotations

from typing import Any, ClassVar

from connector_runtime.conformance import SourceConformance
from connector_runtime.testing import connector_doc, post

TOKEN = "kit-test-token-1234"
LINES = (
    b'{"log_id":"kit-1","data":{"type":"s","date":"2025-01-02T03:04:05.678Z",'
    b'"user_id":"auth0|k1","n":9007199254740993}}\n'
    b'{"log_id":"kit-2","data":{"type":"fp","user_id":"auth0|k2"}}\n'
    b'{"log_id":"kit-1","data":{"type":"s"}}\n'
)


def test_a_delivery_becomes_cloudevents_at_the_target(runtime_factory, recording_target):
    doc = connector_doc(
        "kit",
        "auth0",
        {"token": TOKEN, "events": ["auth.login.success", "fp"]},
        {"type": "http", "config": {"url": recording_target.url, "mode": "structured"}},
        delivery={"ack": "delivered"},
    )
    rt = runtime_factory([doc])
    r = post(rt.connector_url("kit"), LINES, {"Authorization": TOKEN})
    assert r.json() == {"accepted": 2, "filtered": 0, "duplicates": 1}
    by_id = {e.id: e for e in recording_target.events}
    assert by_id["kit-1"].attributes["type"] == "com.auth0.log.s"
    assert by_id["kit-1"].attributes["subject"] == "auth0|k1"
    assert by_id["kit-1"].data["n"] == 2**53 + 1
    assert by_id["kit-2"].attributes["auth0category"] == "auth.login.fail"


class TestConformance(SourceConformance):
    source_type = "auth0"
    config: ClassVar[dict[str, Any]] = {"token": TOKEN}
    auth_headers: ClassVar[dict[str, str]] = {"Authorization": TOKEN}
    filter_config: ClassVar[dict[str, Any]] = {"token": TOKEN, "events": ["sapi"]}

    def valid_body(self):
        distinct = b"".join(LINES.splitlines(keepends=True)[:2])
        return distinct, {"Content-Type": "application/json"}, 2

    def bad_bodies(self):
        return [
            (b"", {}),
            (b'{"log_id":"x"}', {}),
            (b"[1]", {}),
            (LINES, {"Content-Type": "image/gif"}),
        ]
