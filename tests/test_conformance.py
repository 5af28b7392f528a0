"""The conformance suite (``connector_runtime.conformance``) run against installed sources.

One subclass per source type; pytest collects every check of the base class for each.
To add another source type, subclass ``SourceConformance`` here the same way (for the
``webhook`` type, a signed one overrides ``authorize()`` to add its signature header).
"""

from __future__ import annotations

import json
import uuid
from typing import Any, ClassVar

import pytest
from connector_runtime_auth0.testing import batch, jsonl, record

from connector_runtime import RequestRejected, SourceHandler, SourceType, hookimpl, make_event
from connector_runtime.conformance import SourceConformance, marks_secret
from connector_runtime.plugins import build_registry

AUTH0_TOKEN = "Bearer conformance-0123456789"


class TestAuth0Conformance(SourceConformance):
    source_type = "auth0"
    config: ClassVar[dict[str, Any]] = {
        "token": AUTH0_TOKEN,
        "source": "https://acme-test.eu.auth0.com/",
    }
    auth_headers: ClassVar[dict[str, str]] = {"Authorization": AUTH0_TOKEN}
    # the valid body holds successful logins ("s") only; "fp" keeps none of them
    filter_config: ClassVar[dict[str, Any]] = {"token": AUTH0_TOKEN, "events": ["fp"]}

    def valid_body(self):
        return jsonl(batch(3, prefix="conf")), {"Content-Type": "application/json"}, 3

    def bad_bodies(self):
        without_id = record("x1")
        del without_id["log_id"], without_id["data"]["log_id"]
        return [
            (b"{not json", {}),
            (b"[1, 2, 3]", {}),
            (json.dumps(without_id).encode(), {}),
            (jsonl(batch(2)), {"Content-Type": "application/xml"}),
        ]


# -- the suite's own behaviour -------------------------------------------------------------


def test_marks_secret_finds_nested_marks():
    assert marks_secret({"properties": {"a": {"properties": {"b": {"x-secret": True}}}}})
    assert marks_secret({"anyOf": [{"type": "string"}, {"writeOnly": True}]})
    assert not marks_secret({"properties": {"a": {"type": "string"}}})


class _Unregistered(SourceConformance):
    source_type = "no-such-source"


def test_an_unregistered_source_type_fails_with_the_installed_ones():
    with pytest.raises(pytest.fail.Exception, match="'no-such-source' is not registered"):
        _Unregistered().schema(build_registry())


def test_a_subclass_must_describe_its_bodies():
    with pytest.raises(NotImplementedError, match="valid_body"):
        _Unregistered().valid_body()
    with pytest.raises(NotImplementedError, match="bad_bodies"):
        _Unregistered().bad_bodies()


def test_wrong_credentials_only_change_the_credentials():
    suite = TestAuth0Conformance()
    authorized = suite.authorize(b"", {"Content-Type": "application/json"})
    assert authorized == {"Authorization": AUTH0_TOKEN, "Content-Type": "application/json"}
    assert suite.requires_auth
    assert suite.wrong_config()["xConformanceUnknownKey"] is True


# -- the suite catches a source that breaks the rules ----------------------------------------

SLOPPY_TOKEN = "Bearer sloppy-0123456789"


class _SloppyHandler(SourceHandler):
    """Leaks its token, takes any body, and makes up a new id for every event."""

    def authorize(self):
        if self.request.headers.get("Authorization") != self.token:
            raise RequestRejected(401, f"expected {self.token}")

    def events(self, body):
        return [
            make_event(id=uuid.uuid4().hex, source="/sloppy", type="sloppy.line")
            for line in body.splitlines()
            if line
        ]


class _SloppyPlugin:
    @hookimpl
    def register_source_types(self, register):
        schema = {
            "type": "object",
            "properties": {"token": {"type": "string", "x-secret": True}, "note": {}},
        }
        register(SourceType("sloppy", schema, lambda ctx: [("", _SloppyHandler, {"ctx": ctx})]))


class _Sloppy(SourceConformance):
    source_type = "sloppy"
    config: ClassVar[dict[str, Any]] = {"token": SLOPPY_TOKEN}
    auth_headers: ClassVar[dict[str, str]] = {"Authorization": SLOPPY_TOKEN}
    filter_config: ClassVar[dict[str, Any]] = {"token": SLOPPY_TOKEN, "note": "filter me"}

    def valid_body(self):
        return b"a\nb\n", {"Content-Type": "text/plain"}, 2

    def bad_bodies(self):
        return [(b"\xff not even text", {})]

    def registry(self):
        return build_registry(extra=[("sloppy", _SloppyPlugin())])


class _SloppyAuthOnly(_Sloppy):
    def bad_bodies(self):
        return []


def test_the_suite_catches_ids_that_change_on_redelivery(cr_loop, recording_target, tmp_path):
    with pytest.raises(AssertionError, match="the same body again must be all duplicates"):
        _Sloppy().test_ids_are_stable_across_redelivery(cr_loop, recording_target, tmp_path)


def test_the_suite_catches_accepted_garbage(runtime_factory, recording_target):
    with pytest.raises(AssertionError, match=r"bad_bodies\(\)\[0\]: 200"):
        _Sloppy().test_bad_input_is_rejected_and_emits_nothing(runtime_factory, recording_target)


def test_the_suite_catches_a_secret_in_an_answer(runtime_factory, recording_target):
    with pytest.raises(AssertionError, match="without credentials: answer shows a secret"):
        _SloppyAuthOnly().test_bad_input_is_rejected_and_emits_nothing(
            runtime_factory, recording_target
        )


def test_the_suite_catches_an_ignored_filter(runtime_factory, recording_target):
    with pytest.raises(AssertionError, match="filtered"):
        _Sloppy().test_event_filter_is_honoured(runtime_factory, recording_target)


WEBHOOK_TOKEN = "conformance-webhook-token-42"
WEBHOOK_CONFIG: dict[str, Any] = {
    "auth": {"type": "token", "header": "X-Hook-Token", "value": WEBHOOK_TOKEN},
    "format": "jsonlines",
    "attributes": {"id": {"pointer": "/id"}, "type": {"value": "com.example.order"}},
}


class TestWebhookConformance(SourceConformance):
    source_type = "webhook"
    config: ClassVar[dict[str, Any]] = WEBHOOK_CONFIG
    auth_headers: ClassVar[dict[str, str]] = {"X-Hook-Token": WEBHOOK_TOKEN}
    filter_config: ClassVar[dict[str, Any]] = {**WEBHOOK_CONFIG, "types": ["com.example.none"]}

    def valid_body(self):
        lines = b"".join(
            json.dumps({"id": f"order-{i}", "total": 2**53 + i}).encode() + b"\n" for i in range(4)
        )
        return lines, {"Content-Type": "application/x-ndjson"}, 4

    def bad_bodies(self):
        return [
            (b"{not json", {}),
            (b"[1, 2]\n", {}),
            (b'{"no_id": 1}\n', {}),
            (b'{"id": "x"}\n', {"Content-Type": "image/png"}),
        ]
