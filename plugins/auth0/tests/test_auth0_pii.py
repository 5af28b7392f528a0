"""The ``pii`` presets of the auth0 source (issue 18); the tests over the real samples, in
a real process, are in the runtime's tests/transforms/test_pii_samples.py."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
from connector_runtime import ComponentSpec, ConnectorSpec, build_registry
from connector_runtime.testing import RecordingTarget, post

import connector_runtime_auth0 as plugin
from connector_runtime_auth0.pii import PRESETS, expand, touched
from connector_runtime_auth0.testing import jsonl, record

KEY = "a-stable-key-of-32-bytes-or-more"
README = Path(__file__).resolve().parents[1] / "README.md"


def mac(text: str) -> str:
    return hmac.new(KEY.encode(), text.encode(), hashlib.sha256).hexdigest()


def test_the_readme_lists_exactly_what_each_preset_touches():
    text = README.read_text(encoding="utf-8")
    table = text.split("<!-- pii-presets:", 1)[1].split("\n\n", 1)[0].splitlines()[3:]
    rows = [tuple(cell.strip().strip("`") for cell in line.strip("|").split("|")) for line in table]
    assert rows == touched()
    assert set(PRESETS) == {"strict", "pseudonymize"}
    with pytest.raises(ValueError, match="unknown pii preset"):
        expand("lenient", KEY)


def test_event_transform_only_for_auth0_connectors_with_pii():
    registry = build_registry()

    def spec(source_type, config):
        return ConnectorSpec(
            name="a1",
            file="m.yaml",
            source=ComponentSpec(source_type, config),
            target=ComponentSpec("stdout", {}),
        )

    with_pii = spec("auth0", {"pii": {"preset": "strict", "key": KEY}})
    assert plugin.event_transform(with_pii, print) is not None
    assert [n for n, _ in registry.named_event_transforms(with_pii)] == ["auth0"]
    assert plugin.event_transform(spec("auth0", {}), print) is None
    assert plugin.event_transform(spec("webhook", {"pii": {}}), print) is None


def test_pseudonymize_through_a_runtime(auth0_runtime, recording_target: RecordingTarget):
    running = auth0_runtime({"pii": {"preset": "pseudonymize", "key": KEY}})
    location = {"country_code": "NZ", "city_name": "Wellington", "latitude": -41.28}
    details = {"to": "ada@example.org", "error": {"message": "no mail to ada@example.org"}}
    body = jsonl(
        [
            record("r1", location_info=location, details=details),
            record("r2", user_id=None, ip="2001:db8:1234:5678::1", description="x@y.example ok"),
        ]
    )
    answer = post(running.connector_url("a0"), body, {"Content-Type": "application/json"})
    assert answer.json() == {"accepted": 2, "filtered": 0, "duplicates": 0}
    first, second = sorted(recording_target.events, key=lambda e: e.id)
    assert first.attributes["subject"] == mac("auth0|65a1f0c2d3e4f5a6b7c8d9e0")
    assert first.data["user_id"] == mac("auth0|65a1f0c2d3e4f5a6b7c8d9e0")
    assert first.data["user_name"] == mac("ada@example.org")
    assert first.data["ip"] == "198.51.100.0"
    assert first.data["user_agent"] == "Firefox 131.0.0 / Linux 0.0.0"  # kept by this preset
    assert first.data["location_info"] == {"country_code": "NZ"}
    assert first.data["details"] == {
        "to": mac("ada@example.org"),
        "error": {"message": f"no mail to {mac('ada@example.org')}"},
    }
    assert second.data["ip"] == "2001:db8:1234::"
    assert second.data["description"] == f"{mac('x@y.example')} ok"
    assert "subject" not in second.attributes


@pytest.mark.parametrize("preset", ["strict", "pseudonymize"])
def test_management_api_paths_carry_no_user_id(
    preset, auth0_runtime, recording_target: RecordingTarget
):
    running = auth0_runtime({"pii": {"preset": preset, "key": KEY}})
    user, other = "auth0|5f7c8ec7c33c6c004bbafe82", "google-oauth2|109934857162"
    details = {
        "request": {
            "method": "patch",
            "path": f"/api/v2/users/{user.replace('|', '%7C')}",
            "query": {"fields": "user_id", "q": f"user_id:{other}"},
            "channel": "api",
            "auth": {"user": {"user_id": other}, "strategy": "jwt"},
        },
        "response": {"statusCode": 200, "body": {"next": f"/api/v2/users/{user}/roles"}},
    }
    body = jsonl([record("m1", code="sapi", user_id=other, details=details)])
    answer = post(running.connector_url("a0"), body, {"Content-Type": "application/json"})
    assert answer.json() == {"accepted": 1, "filtered": 0, "duplicates": 0}
    (got,) = recording_target.events
    received = json.dumps([got.attributes, got.data], ensure_ascii=False, default=str)
    for secret in (user, other, "5f7c8ec7c33c6c004bbafe82", "109934857162"):
        assert secret not in received
    path = got.data["details"]["request"]["path"]
    assert path == "/api/v2/users/" + ("<user_id>" if preset == "strict" else mac(user))
    assert got.data["details"]["request"]["auth"]["user"]["user_id"] == mac(other)
