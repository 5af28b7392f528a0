"""The Auth0 source through a real server and a real recording target (issue 2's contract)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from connector_runtime.testing import RecordingTarget, RunningRuntime, post

from connector_runtime_auth0.testing import array, batch, jsonl, logs_object, record

# Real Auth0 deliveries (Elastic-licensed), beside the repository, never copied into it.
SAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "auth0" / "samples"
TOKEN = "s3cr3t-stream-token"
Start = Callable[..., RunningRuntime]


def test_json_lines_become_cloudevents(auth0_runtime: Start, recording_target: RecordingTarget):
    rt = auth0_runtime()
    records = [record("900a", "s"), record("900b", "f", user_id=None)]
    r = post(rt.connector_url("a0"), jsonl(records))
    assert r.status == 200
    assert r.json() == {"accepted": 2, "filtered": 0, "duplicates": 0}
    got = {e.id: e for e in recording_target.events}
    assert set(got) == {"900a", "900b"}
    s = got["900a"].attributes
    assert s["type"] == "com.auth0.log.s"
    assert s["source"] == "urn:connector-runtime:connector:a0"
    assert s["subject"] == "auth0|65a1f0c2d3e4f5a6b7c8d9e0"
    assert s["datacontenttype"] == "application/json"
    assert s["auth0category"] == "auth.login.success"
    assert s["time"].isoformat().startswith("2025-03-14T09:26:53.589")
    assert got["900a"].data == records[0]["data"]
    assert "subject" not in got["900b"].attributes
    assert got["900b"].attributes["auth0category"] == "auth.login.fail"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(jsonl(batch(3)), id="jsonlines"),
        pytest.param(jsonl(batch(3), newline="\r\n"), id="jsonlines-crlf"),
        pytest.param(jsonl(batch(3), final=False), id="jsonlines-no-final-newline"),
        pytest.param(b"\n" + jsonl(batch(3)).replace(b"\n", b"\n\n"), id="blank-lines"),
        pytest.param(array(batch(3)), id="array"),
        pytest.param(logs_object(batch(3)), id="logs-object"),
        pytest.param(json.dumps(batch(3), indent=2).encode(), id="pretty-array"),
    ],
)
def test_every_content_format_is_detected(auth0_runtime: Start, recording_target, body):
    rt = auth0_runtime()
    r = post(rt.connector_url("a0"), body, {"Content-Type": "application/json"})
    assert r.status == 200, r.body
    assert r.json()["accepted"] == 3
    assert sorted(recording_target.ids) == [f"9002025{i:06d}" for i in range(3)]


def test_single_bare_element_and_pretty_object(auth0_runtime: Start, recording_target):
    rt = auth0_runtime()
    assert post(rt.connector_url("a0"), json.dumps(record("one"))).status == 200
    pretty = json.dumps(record("two"), indent=2)
    assert post(rt.connector_url("a0"), pretty).status == 200
    assert sorted(recording_target.ids) == ["one", "two"]


def test_log_id_inside_data_is_enough(auth0_runtime: Start, recording_target):
    rt = auth0_runtime()
    element = record("inner-id")
    del element["log_id"]
    assert post(rt.connector_url("a0"), jsonl([element])).status == 200
    assert recording_target.ids == ["inner-id"]


def test_unicode_line_separator_inside_a_string_is_not_a_line_break(
    auth0_runtime: Start, recording_target
):
    rt = auth0_runtime()
    rec = record("u2028", description="before\u2028after\u2029end")
    body = json.dumps(rec, ensure_ascii=False).encode() + b"\n"
    r = post(rt.connector_url("a0"), body, {"Content-Type": "application/x-ndjson"})
    assert r.status == 200, r.body
    assert recording_target.events[0].data["description"] == "before\u2028after\u2029end"


def test_big_integers_pass_through_exactly(auth0_runtime: Start, recording_target):
    rt = auth0_runtime(mode="structured")
    body = (
        b'{"log_id":"big","data":{"type":"s","n":9007199254740993,'
        b'"huge":123456789012345678901234567890,"f":1.5e300}}\n'
    )
    assert post(rt.connector_url("a0"), body).status == 200
    data = recording_target.events[0].data
    assert data["n"] == 2**53 + 1
    assert data["huge"] == 123456789012345678901234567890


@pytest.mark.parametrize("mode", ["binary", "structured", "batch"])
def test_target_modes_match_the_reference_sdk(auth0_runtime: Start, recording_target, mode):
    rt = auth0_runtime(mode=mode)
    records = batch(5)
    assert post(rt.connector_url("a0"), jsonl(records)).status == 200
    assert {e.mode for e in recording_target.events} == {mode}
    assert sorted(recording_target.ids) == sorted(r["log_id"] for r in records)
    for event in recording_target.events:
        original = next(r for r in records if r["log_id"] == event.id)
        assert event.data == original["data"]
        assert event.attributes["specversion"] == "1.0"
    if mode == "batch":
        assert recording_target.requests == 1
    else:
        assert recording_target.requests == 5


def test_duplicates_within_and_across_requests_are_emitted_once(
    auth0_runtime: Start, recording_target
):
    rt = auth0_runtime()
    url = rt.connector_url("a0")
    first = [record("d1"), record("d2"), record("d1")]
    assert post(url, jsonl(first)).json() == {"accepted": 2, "filtered": 0, "duplicates": 1}
    again = [record("d2"), record("d3")]
    assert post(url, jsonl(again)).json() == {"accepted": 1, "filtered": 0, "duplicates": 1}
    assert sorted(recording_target.ids) == ["d1", "d2", "d3"]


def test_filter_by_codes_and_categories(auth0_runtime: Start, recording_target):
    rt = auth0_runtime({"events": ["s", "auth.signup.fail"]})
    records = [record("a", "s"), record("b", "f"), record("c", "fs"), record("d", "newcode")]
    r = post(rt.connector_url("a0"), jsonl(records))
    assert r.json() == {"accepted": 2, "filtered": 2, "duplicates": 0}
    assert sorted(recording_target.ids) == ["a", "c"]


def test_unknown_codes_are_accepted_and_emitted(auth0_runtime: Start, recording_target):
    rt = auth0_runtime()
    assert post(rt.connector_url("a0"), jsonl([record("n1", "brand_new_code")])).status == 200
    event = recording_target.events[0]
    assert event.attributes["type"] == "com.auth0.log.brand_new_code"
    assert "auth0category" not in event.attributes


def test_configured_source_is_used(auth0_runtime: Start, recording_target):
    rt = auth0_runtime({"source": "https://example-tenant.eu.auth0.com"})
    assert post(rt.connector_url("a0"), jsonl([record("src")])).status == 200
    assert recording_target.events[0].attributes["source"] == "https://example-tenant.eu.auth0.com"


# -- the status table ---------------------------------------------------------------


def test_not_post_is_405(auth0_runtime: Start, recording_target):
    rt = auth0_runtime()
    for method in ("GET", "PUT", "DELETE"):
        r = post(rt.connector_url("a0"), b"", method=method)
        assert r.status == 405
        assert r.headers["allow"] == "POST"
        assert "error" in r.json()
    assert recording_target.events == []


@pytest.mark.parametrize("header", [None, "wrong-token-value", "Bearer " + TOKEN, TOKEN + "x"])
def test_missing_or_wrong_token_is_401(auth0_runtime: Start, recording_target, header):
    rt = auth0_runtime({"token": TOKEN})
    headers = {} if header is None else {"Authorization": header}
    r = post(rt.connector_url("a0"), jsonl(batch(2)), headers)
    assert r.status == 401
    assert r.json() == {"error": "missing or wrong Authorization token"}
    assert TOKEN not in r.body.decode()
    assert recording_target.events == []


def test_token_sent_verbatim_is_accepted(auth0_runtime: Start, recording_target):
    rt = auth0_runtime({"token": TOKEN})
    r = post(rt.connector_url("a0"), jsonl(batch(2)), {"Authorization": TOKEN})
    assert r.status == 200
    assert len(recording_target.events) == 2


def test_body_over_the_limit_is_413(auth0_runtime: Start, recording_target):
    rt = auth0_runtime({"maxBodyBytes": 2048})
    body = jsonl(batch(10))
    assert len(body) > 2048
    r = post(rt.connector_url("a0"), body)
    assert r.status == 413
    assert "2048" in r.json()["error"]
    assert recording_target.events == []
    assert post(rt.connector_url("a0"), jsonl(batch(1))).status == 200


@pytest.mark.parametrize("ctype", ["application/xml", "image/png", "multipart/form-data"])
def test_unsupported_content_type_is_415(auth0_runtime: Start, recording_target, ctype):
    rt = auth0_runtime()
    r = post(rt.connector_url("a0"), jsonl(batch(1)), {"Content-Type": ctype})
    assert r.status == 415
    assert recording_target.events == []


@pytest.mark.parametrize(
    "ctype", ["application/json", "application/x-ndjson", "text/plain; charset=utf-8"]
)
def test_json_and_text_content_types_are_accepted(auth0_runtime: Start, recording_target, ctype):
    rt = auth0_runtime()
    assert post(rt.connector_url("a0"), jsonl(batch(1)), {"Content-Type": ctype}).status == 200


BAD_BODIES = [
    pytest.param(b"", "empty", id="empty"),
    pytest.param(b"   \n  ", "empty", id="blank"),
    pytest.param(b"not json at all", "", id="not-json"),
    pytest.param(jsonl(batch(2)) + b"{broken\n", "line 3", id="bad-third-line"),
    pytest.param(b"[1, 2]", "element 0", id="element-not-object"),
    pytest.param(jsonl([{"log_id": "x"}]), "data", id="lacks-data"),
    pytest.param(jsonl([{"log_id": "x", "data": {"date": "x"}}]), "type", id="lacks-type"),
    pytest.param(jsonl([{"data": {"type": "s"}}]), "log", id="lacks-log-id"),
    pytest.param(jsonl([{"log_id": "x", "data": []}]), "data", id="data-not-object"),
    pytest.param(b'{"log_id":"x","data":{"type":"s"}}\n\xff\xfe\n', "", id="invalid-utf8"),
]


@pytest.mark.parametrize(("body", "mentions"), BAD_BODIES)
def test_bad_bodies_are_400_with_a_reason_and_emit_nothing(
    auth0_runtime: Start, recording_target, body, mentions
):
    rt = auth0_runtime()
    r = post(rt.connector_url("a0"), body)
    assert r.status == 400, r.body
    reason = r.json()["error"]
    assert "\n" not in reason and reason
    assert mentions.lower() in reason.lower()
    assert recording_target.events == []


def test_target_unavailable_is_503_and_nothing_is_acknowledged(
    auth0_runtime: Start, recording_target: RecordingTarget
):
    rt = auth0_runtime()
    recording_target.status = 503
    r = post(rt.connector_url("a0"), jsonl(batch(3)))
    assert r.status == 503
    assert int(r.headers["retry-after"]) >= 1
    assert recording_target.events == []
    recording_target.status = 200
    r = post(rt.connector_url("a0"), jsonl(batch(3)))
    assert r.json() == {"accepted": 3, "filtered": 0, "duplicates": 0}
    assert len(recording_target.events) == 3


def test_target_refusing_connections_is_503(auth0_runtime: Start, recording_target):
    rt = auth0_runtime()
    recording_target.stop()
    r = post(rt.connector_url("a0"), jsonl(batch(2)))
    assert r.status == 503
    assert "retry-after" in r.headers


def test_unknown_path_is_404_and_ops_endpoints_answer(auth0_runtime: Start):
    rt = auth0_runtime()
    assert post(rt.url + "/nope", b"{}").status == 404
    assert post(rt.url + "/healthz", method="GET").json() == {"status": "ok"}
    ready = post(rt.url + "/readyz", method="GET")
    assert ready.status == 200
    assert ready.json()["ready"] is True


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="../shared/auth0/samples not present")
def test_real_auth0_samples_are_all_accepted_with_duplicates_counted(
    auth0_runtime: Start, recording_target
):
    rt = auth0_runtime()
    files = sorted(SAMPLES.glob("*.jsonl"))
    assert files
    total = accepted = duplicates = 0
    ids: set[str] = set()
    for path in files:
        lines = [line for line in path.read_bytes().split(b"\n") if line.strip()]
        for line in lines:
            element = json.loads(line)
            ids.add(element.get("log_id") or element["data"]["log_id"])
        total += len(lines)
        r = post(rt.connector_url("a0"), path.read_bytes())
        assert r.status == 200, (path.name, r.body)
        accepted += r.json()["accepted"]
        duplicates += r.json()["duplicates"]
    assert accepted == len(ids)
    assert accepted + duplicates == total
    assert duplicates >= 4  # the samples' README names four repeated log ids
    assert sorted(recording_target.ids) == sorted(ids)
    # The same files as JSON Arrays are all duplicates now.
    for path in files:
        lines = [json.loads(x) for x in path.read_bytes().split(b"\n") if x.strip()]
        r = post(rt.connector_url("a0"), array(lines))
        assert r.status == 200
        assert r.json()["accepted"] == 0


@pytest.mark.parametrize(
    ("second", "reason"),
    [
        (b'{"log_id":"bad\\u0007","data":{"type":"s"}}', "attribute 'id' holds U+0007"),
        # A raw DEL is ASCII and needs no escape in JSON.
        (
            b'{"log_id":"x","data":{"type":"s","user_id":"u\x7f"}}',
            "attribute 'subject' holds U+007F",
        ),
        ('{"log_id":"x","data":{"type":"s\u0085"}}'.encode(), "attribute 'type' holds U+0085"),
        (
            '{"log_id":"x","data":{"type":"s","user_id":"\ufffe"}}'.encode(),
            "attribute 'subject' holds U+FFFE",
        ),
    ],
)
def test_control_characters_in_attributes_are_400(
    auth0_runtime: Start, recording_target, second: bytes, reason: str
):
    rt = auth0_runtime()
    body = b'{"log_id":"ok-1","data":{"type":"s"}}\n' + second + b"\n"
    r = post(rt.connector_url("a0"), body)
    assert r.status == 400
    assert r.json() == {"error": f"event 1: {reason}, which CloudEvents strings exclude"}
    assert recording_target.events == []


def test_printable_unicode_in_attributes_is_accepted(auth0_runtime: Start, recording_target):
    rt = auth0_runtime()
    body = '{"log_id":"é-1","data":{"type":"s","user_id":"ユーザー \\"q\\""}}\n'.encode()
    r = post(rt.connector_url("a0"), body)
    assert r.status == 200, r.body
    assert recording_target.wait_for(1)[0].attributes["subject"] == 'ユーザー "q"'


def test_non_ascii_token_sent_as_utf8_is_accepted(auth0_runtime: Start, recording_target):
    token = "pässwört-tøken-1"
    rt = auth0_runtime({"token": token})
    conn = http.client.HTTPConnection("127.0.0.1", rt.port, timeout=10)
    conn.putrequest("POST", "/a0")
    conn.putheader("Authorization", token.encode("utf-8"))
    conn.putheader("Content-Type", "application/json")
    body = jsonl(batch(1))
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    assert conn.getresponse().status == 200
    conn.close()
