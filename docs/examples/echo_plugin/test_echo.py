"""Tests of the example plugin, as a plugin author writes them (run by tests/test_docs.py).

The plugin is not installed here, so each test builds a registry that holds it explicitly
(``build_registry(extra=...)``); once installed, ``build_registry()`` finds it by itself.
"""

from __future__ import annotations

import json

from connector_runtime import build_registry
from connector_runtime.conformance import SourceConformance
from connector_runtime.testing import connector_doc, post

import echo

TOKEN = "Bearer example-token-0123"


# snippet: kit-test
def test_lines_become_cloudevents(runtime_factory, recording_target):
    document = connector_doc(
        "notes",
        "echo",
        {"token": TOKEN},
        {"type": "http", "config": {"url": recording_target.url}},
        delivery={"ack": "delivered"},  # the answer waits until the target has the events
    )
    runtime = runtime_factory([document], registry=build_registry(extra=[("echo", echo)]))
    headers = {"Authorization": TOKEN, "Content-Type": "text/plain"}

    answer = post(runtime.connector_url("notes"), "first\n\nsecond\n", headers)

    assert answer.status == 200
    assert answer.json() == {"accepted": 2, "filtered": 0, "duplicates": 0}
    assert [e.data for e in recording_target.events] == ["first", "second"]
    assert {e.attributes["type"] for e in recording_target.events} == {"com.example.echo.line"}


# end snippet: kit-test


# snippet: conformance
class TestEchoConformance(SourceConformance):
    source_type = "echo"
    config = {"token": TOKEN}
    auth_headers = {"Authorization": TOKEN}
    filter_config = {"token": TOKEN, "contains": "no line has this"}

    def valid_body(self):
        return b"one\ntwo\nthree\n", {"Content-Type": "text/plain"}, 3

    def bad_bodies(self):
        return [
            (b"\n \n", {"Content-Type": "text/plain"}),  # no lines
            (b"caf\xe9\n", {"Content-Type": "text/plain"}),  # not UTF-8
            (b'{"json": true}', {"Content-Type": "application/json"}),  # 415
        ]

    def registry(self):
        return build_registry(extra=[("echo", echo)])


# end snippet: conformance


def test_the_target_dead_letters_events_that_are_too_large(runtime_factory, tmp_path):
    out = tmp_path / "events.jsonl"
    document = connector_doc(
        "big",
        "echo",
        {},
        {"type": "echo-file", "config": {"path": str(out), "maxEventBytes": 300}},
        delivery={"ack": "delivered"},
    )
    runtime = runtime_factory([document], registry=build_registry(extra=[("echo", echo)]))
    body = "short\n" + "x" * 400 + "\n"
    answer = post(runtime.connector_url("big"), body, {"Content-Type": "text/plain"})
    assert answer.status == 200
    [line] = out.read_text().splitlines()
    assert json.loads(line)["data"] == "short"


def test_event_transform_hides_e_mail_addresses(runtime_factory, recording_target):
    document = connector_doc(
        "notes",
        "echo",
        {"token": TOKEN},
        {"type": "http", "config": {"url": recording_target.url}},
        delivery={"ack": "delivered"},
    )
    runtime = runtime_factory([document], registry=build_registry(extra=[("echo", echo)]))
    headers = {"Authorization": TOKEN, "Content-Type": "text/plain"}

    answer = post(runtime.connector_url("notes"), "mail ann@example.com\nno address\n", headers)

    assert answer.json() == {"accepted": 2, "filtered": 0, "duplicates": 0}
    assert [e.data for e in recording_target.events] == ["mail <e-mail>", "no address"]
