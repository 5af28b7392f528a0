"""The auth0 source through the runtime's testing kit: a real server, a recording target,
and the conformance suite every source type should pass."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from connector_runtime.conformance import PullConformance, SourceConformance
from connector_runtime.testing import connector_doc, post

from connector_runtime_auth0.fake_tenant import FakeTenant

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


class TestLogsConformance(PullConformance):
    """The auth0-logs pull source against the kit's fake tenant."""

    source_type = "auth0-logs"

    def start_source(self, loop):
        self.tenant = FakeTenant(loop, rate=20, burst=20).start()
        self.tenant.add_records(120)

    def stop_source(self):
        self.tenant.stop()

    def config(self):
        return {
            "domain": self.tenant.url,
            "clientId": self.tenant.client_id,
            "clientSecret": self.tenant.client_secret,
            "startFrom": "earliest",
            "requestsPerSecond": 20,
            "take": 50,
            "pollInterval": "100ms",
        }

    def expected_events(self):
        return len(self.tenant.records)

    def add_more(self):
        return len(self.tenant.add_records(7, start=datetime.now(UTC) - timedelta(minutes=1)))
