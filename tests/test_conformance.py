"""The conformance suite (``connector_runtime.conformance``) run against installed sources.

One subclass per source type; pytest collects every check of the base class for each.
To add another source type, subclass ``SourceConformance`` here the same way (for the
``webhook`` type, a signed one overrides ``authorize()`` to add its signature header).
"""

from __future__ import annotations

import json

import pytest

from connector_runtime.conformance import SourceConformance, marks_secret
from connector_runtime.plugins import build_registry
from tests.auth0_fixtures import batch, jsonl, record

AUTH0_TOKEN = "Bearer conformance-0123456789"


class TestAuth0Conformance(SourceConformance):
    source_type = "auth0"
    config = {"token": AUTH0_TOKEN, "source": "https://acme-test.eu.auth0.com/"}
    auth_headers = {"Authorization": AUTH0_TOKEN}
    # the valid body holds successful logins ("s") only; "fp" keeps none of them
    filter_config = {"token": AUTH0_TOKEN, "events": ["fp"]}

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
