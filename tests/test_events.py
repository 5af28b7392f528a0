"""Our encodings against the ``cloudevents`` SDK (the reference), and the spool round trip."""

from __future__ import annotations

import json

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_binary, from_structured
from cloudevents.core.formats.json import JSONFormat

from connector_runtime.events import (
    Event,
    is_rfc3339,
    make_event,
    parse_structured,
    to_batch,
    to_binary,
    to_structured,
)
from connector_runtime.spool.payloads import decode_events, encode_events

FMT = JSONFormat()
BIG = b'{"n":9007199254740993,"huge":123456789012345678901234567890,"s":"caf\\u00e9 \xe2\x80\xa8"}'


def sample(**extra) -> Event:
    return make_event(
        id="id-1",
        source="https://example.eu.auth0.com/",
        type="com.auth0.log.s",
        data=BIG,
        time="2025-03-14T09:26:53.589Z",
        subject='auth0|x y%z"q',
        extensions=extra,
    )


def test_structured_is_read_by_the_sdk():
    event = sample(auth0category="auth.login.success", flag=True, count=3)
    got = from_structured(
        HTTPMessage({"content-type": "application/cloudevents+json"}, to_structured(event)), FMT
    )
    attrs = got.get_attributes()
    assert attrs["id"] == "id-1" and attrs["subject"] == 'auth0|x y%z"q'
    assert attrs["flag"] is True and attrs["count"] == 3
    assert got.get_data() == json.loads(BIG)


def test_binary_headers_are_percent_encoded_and_read_by_the_sdk():
    headers, body = to_binary(sample())
    assert headers["ce-subject"] == "auth0|x%20y%25z%22q"
    assert headers["Content-Type"] == "application/json"
    got = from_binary(HTTPMessage({k.lower(): v for k, v in headers.items()}, body), FMT)
    assert got.get_attributes()["subject"] == 'auth0|x y%z"q'
    assert body == BIG  # data passes through byte for byte


def test_batch_is_a_json_array_of_structured_events():
    events = [sample(), make_event(id="id-2", source="/s", type="t", data=b"[1,2]")]
    items = json.loads(to_batch(events))
    assert [i["id"] for i in items] == ["id-1", "id-2"]
    for item in items:
        assert FMT.read(None, json.dumps(item).encode()).get_id() == item["id"]


@pytest.mark.parametrize(
    ("data", "ctype"),
    [
        (BIG, "application/json"),
        (b"plain text \xe2\x9c\x93", "text/plain"),
        (b"\x00\x01\xffbinary", "application/octet-stream"),
        (None, None),
    ],
)
def test_spool_round_trip_is_exact(data, ctype):
    event = make_event(
        id="r",
        source="/s",
        type="t",
        data=data,
        datacontenttype=ctype,
        extensions={"flag": False, "n": 7},
    )
    (back,) = decode_events(encode_events([event]))
    assert back.doc is not None  # read lazily
    assert back.data == data
    assert back.attributes == event.attributes
    assert to_structured(back) == to_structured(event)
    assert parse_structured(to_structured(event)) == (event.attributes, data)


def test_a_stored_event_changed_after_reading_is_re_encoded():
    (back,) = decode_events(encode_events([sample()]))
    back.attributes["traceparent"] = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    assert b"traceparent" in to_structured(back)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("2024-05-14T09:31:07Z", True),
        ("2024-05-14T09:31:07.123456+02:00", True),
        ("2024-05-14T09:31:07Z\n", False),
        ("2024-13-45T25:61:61Z", False),
        ("\u0662\u0660\u0662\u0664-05-14T09:31:07Z", False),
        ("2024-05-14", False),
    ],
)
def test_rfc3339(text, ok):
    assert is_rfc3339(text) is ok


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("2025-02-30T00:00:00Z", False),
        ("2025-03-14T09:26:53.123456789Z", True),
        ("2025-03-14T09:26:53.123456789+01:00", True),
        ("2025-03-14 09:26:53Z", False),
        ("2025-03-14T09:26:53", False),
        ("2025-03-14T24:00:00Z", False),
    ],
)
def test_rfc3339_calendar_and_precision(text, ok):
    assert is_rfc3339(text) is ok


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("2024-02-29T00:00:00Z", True),
        ("2023-02-29T00:00:00Z", False),
        ("1900-02-29T00:00:00Z", False),
        ("2000-02-29T23:59:59.5-23:59", True),
        ("2024-04-31T00:00:00Z", False),
        ("2024-12-31t23:59:59z", True),
        ("0000-01-01T00:00:00Z", False),
        ("0001-01-01T00:00:00Z", True),
        ("2024-06-01T12:00:60Z", False),
        ("2024-06-01T12:00:00+24:00", False),
        ("2024-06-01T12:00:00.Z", False),
        ("2024-06-01T12:00:00,5Z", False),
        ("2024-06-01T12:00:00+0100", False),
    ],
)
def test_rfc3339_month_lengths_and_edges(text, ok):
    assert is_rfc3339(text) is ok
