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


def test_events_read_back_from_the_spool_stay_encoded_until_an_item_is_asked_for():
    from connector_runtime.events import EncodedEvents, concat
    from connector_runtime.spool.payloads import decode_events, encode_events, events_size

    made = [
        make_event(id=f"e{i}", source="/s", type="t", data=b'{"n":%d}' % i, subject=f"s{i}")
        for i in range(5)
    ]
    encoded = decode_events(encode_events(made))
    assert isinstance(encoded, EncodedEvents)
    assert list(encoded) == made and encoded[3] == made[3]
    assert isinstance(encoded[1:3], EncodedEvents) and list(encoded[1:3]) == made[1:3]
    assert to_batch(encoded) == to_batch(made)
    joined = concat([encoded[:2], encoded[2:]])
    assert isinstance(joined, EncodedEvents) and to_batch(joined) == to_batch(made)
    assert concat([encoded[:2], made[2:]]) == made  # mixed parts: a plain list
    assert events_size(encoded) == sum(len(to_structured(e)) for e in made)


def test_spool_payloads_keep_documents_joined_and_cut_them_out_only_when_asked():
    import msgspec

    from connector_runtime.events import EncodedEvents, concat
    from connector_runtime.spool.payloads import decode_events, encode_events, events_size

    def made(prefix: str, n: int):
        return [
            make_event(id=f"{prefix}{i}", source="/s", type="t", data=b'{"s":"%s"}' % (b"x," * i))
            for i in range(n)
        ]

    first, second = made("a", 4), made("b", 3)
    payload = encode_events(first)
    # the documents joined with commas, after their count and lengths
    assert payload.endswith(b",".join(to_structured(e) for e in first))
    rows = [decode_events(payload), decode_events(encode_events(second))]
    joined = concat(rows)
    assert isinstance(joined, EncodedEvents) and len(joined) == 7
    assert to_batch(joined) == to_batch(first + second)
    assert json.loads(to_batch(joined))[6]["id"] == "b2"
    assert events_size(joined) == sum(len(to_structured(e)) for e in first + second)
    assert list(joined) == first + second and joined[5] == second[1]
    assert list(joined[2:5]) == (first + second)[2:5]
    # a target's chunks of a read-back attempt stay runs, cut without copies
    everything = first + second
    for size in (1, 2, 3, 4, 5, 7, 8):
        chunks = [joined[i : i + size] for i in range(0, 7, size)]
        assert [to_batch(c) for c in chunks] == [
            to_batch(everything[i : i + size]) for i in range(0, 7, size)
        ]
        assert [events_size(c) for c in chunks] == [
            sum(len(to_structured(e)) for e in everything[i : i + size]) for i in range(0, 7, size)
        ]
        assert [len(c) for c in chunks] == [
            len(everything[i : i + size]) for i in range(0, 7, size)
        ]
    assert list(joined[::2]) == everything[::2] and len(joined[5:2]) == 0
    empty = decode_events(encode_events([]))
    assert len(empty) == 0 and list(empty) == [] and events_size(empty) == 0
    # a row written before this format: a msgpack array of the documents
    old = msgspec.msgpack.encode([to_structured(e) for e in second])
    assert list(decode_events(old)) == second
    assert to_batch(concat([rows[0], decode_events(old)])) == to_batch(first + second)


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
