"""to_event: one Auth0 record to one CloudEvent."""

from __future__ import annotations

import json

import pytest
from connector_runtime import make_event, to_binary, to_structured

from connector_runtime_auth0.mapping import Mapper, to_event
from connector_runtime_auth0.parse import Record, parse_body
from connector_runtime_auth0.testing import TENANT, data_text, element, sample_batch


def record(code="fp", *, date="2024-05-14T09:31:07.412Z", user_id="auth0|abc123", data=None):
    return Record("9002024-fp-1", code, date, user_id, data or b'{"type":"' + code.encode() + b'"}')


def test_all_attributes():
    rec = record()
    event = to_event(rec, TENANT)
    assert event.attributes == {
        "specversion": "1.0",
        "id": "9002024-fp-1",
        "source": TENANT,
        "type": "com.auth0.log.fp",
        "datacontenttype": "application/json",
        "time": "2024-05-14T09:31:07.412Z",
        "subject": "auth0|abc123",
        "auth0category": "auth.login.fail",
    }
    assert event.data is rec.data


def test_same_event_as_make_event():
    rec = record("s")
    assert to_event(rec, "/auth0/acme") == make_event(
        id=rec.log_id,
        source="/auth0/acme",
        type="com.auth0.log.s",
        data=rec.data,
        time=rec.date,
        subject=rec.user_id,
        extensions={"auth0category": "auth.login.success"},
    )


@pytest.mark.parametrize(
    "date",
    ["2024-05-14T09:31:07Z", "2024-05-14T09:31:07.123456+02:00", "2024-05-14t09:31:07-05:30"],
)
def test_time_from_rfc3339_dates(date):
    assert to_event(record(date=date), TENANT).attributes["time"] == date


@pytest.mark.parametrize(
    "date", [None, "", "yesterday", "2024-05-14 09:31:07", "2024-05-14", "1715679067412"]
)
def test_no_time_for_other_dates(date):
    assert "time" not in to_event(record(date=date), TENANT).attributes


@pytest.mark.parametrize("user_id", [None, ""])
def test_no_subject_without_a_user(user_id):
    assert "subject" not in to_event(record(user_id=user_id), TENANT).attributes


def test_unknown_code_is_emitted_without_category():
    event = to_event(record("brand_new_code_2031"), TENANT)
    assert event.attributes["type"] == "com.auth0.log.brand_new_code_2031"
    assert "auth0category" not in event.attributes


def test_known_code_without_category():
    # gd_module_switch is in the catalogue, but Auth0 documents no filter category for it.
    event = to_event(record("gd_module_switch"), TENANT)
    assert event.attributes["type"] == "com.auth0.log.gd_module_switch"
    assert "auth0category" not in event.attributes


def test_parsed_batch_maps_in_order():
    batch = sample_batch()
    body = b"\n".join(element(i, d) for i, _, d in batch)
    events = [to_event(r, TENANT) for r in parse_body(body)]
    assert [(e.id, e.type) for e in events] == [(i, "com.auth0.log." + c) for i, c, _ in batch]
    assert [e.attributes.get("auth0category") for e in events] == [
        "auth.login.success",
        "auth.login.fail",
        "auth.login.fail",
        "management.success",
        "auth.token_exchange.success",
        "auth.logout.success",
    ]
    assert "subject" not in events[2].attributes
    assert all(e.attributes["time"] == "2024-05-14T09:31:07.412Z" for e in events)


def test_big_numbers_survive_the_encodings():
    data = data_text("sapi", "big", n=2**53 + 1)[:-1] + b',"w":' + str(10**30 + 7).encode() + b"}"
    event = to_event(parse_body(element("big", data))[0], TENANT)
    structured = to_structured(event)
    assert b'"data":' + data in structured
    assert b"9007199254740993" in structured and b"1000000000000000000000000000007" in structured
    assert json.loads(structured)["data"]["n"] == 2**53 + 1
    headers, body = to_binary(event)
    assert body == data
    assert headers["ce-type"] == "com.auth0.log.sapi"


@pytest.mark.parametrize(
    "rec",
    [
        record(),
        record("brand_new_code_2031", date="not a date", user_id=None),
        record("s", user_id='a "quoted" \\ user é ☃'),
        Record('id with "quotes" and ünïcode', "f", None, "", b'{"n":18446744073709551617}'),
    ],
)
def test_the_document_built_while_mapping_is_the_structured_encoding(rec):
    event = to_event(rec, 'https://tenant.example/"odd" source')
    built = event.doc
    assert built is not None
    assert built == to_structured(make_event(**_fields(event)))
    assert json.loads(built)["data"] == json.loads(rec.data)


def _fields(event):
    attributes = dict(event.peek())
    extensions = {
        k: attributes.pop(k)
        for k in list(attributes)
        if k not in ("specversion", "id", "source", "type", "datacontenttype", "time", "subject")
    }
    del attributes["specversion"]
    return {**attributes, "data": event.data, "extensions": extensions}


def _line(log_id: str, data: dict) -> bytes:
    return json.dumps({"log_id": log_id, "data": data}, ensure_ascii=False).encode()


_PLAIN_LINES = [
    _line("1", {"type": "s", "date": "2024-05-14T09:31:07.412Z", "user_id": "auth0|1"}),
    _line("2", {"type": "fp", "date": "2024-05-14T09:31:07+02:00", "user_id": "auth0|2"}),
    _line("3", {"type": "brand_new_code_2031", "date": "2024-05-14t09:31:07z", "user_id": "u"}),
    _line("4", {"type": "s", "date": "2024-02-30T09:31:07Z", "user_id": "auth0|4"}),
    _line("5", {"type": "s", "user_id": "auth0|5", "n": 18446744073709551617}),
    _line("6", {"type": "s", "date": "2024-05-14T09:31:07Z", "user_id": ""}),
    _line("7", {"type": "sapi", "date": "2024-05-14T09:31:07Z"}),
]


@pytest.mark.parametrize(
    "extra",
    [
        b"",  # every string is its characters in quotes: the quoted fast path
        _line("8", {"type": "s", "date": "2024-05-14T09:31:07Z", "user_id": 'a "q" \\ é'}),
        _line("9", {"type": "s", "date": "2024-05-14T09:31:07Z", "user_id": "é ☃"}),
    ],
    ids=["plain", "escapes", "non-ascii"],
)
def test_documents_of_a_whole_body_are_the_structured_encoding(extra):
    """As the handler maps a body: checked_body first, so a body without escapes takes the
    fast path; its documents must not differ from the general path's by a byte."""
    body = b"\n".join([*_PLAIN_LINES, extra]) if extra else b"\n".join(_PLAIN_LINES)
    mapper = Mapper('https://tenant.example/"odd" source')
    mapper.checked_body(body)
    events = parse_body(body, "jsonlines", mapper)
    assert len(events) == len(_PLAIN_LINES) + (1 if extra else 0)
    for event in events:
        assert event.doc == to_structured(make_event(**_fields(event)))
    by_id = {e.id: e.peek() for e in events}
    assert by_id["3"]["time"] == "2024-05-14t09:31:07z" and "auth0category" not in by_id["3"]
    assert "time" not in by_id["4"] and "time" not in by_id["5"]
    assert "subject" not in by_id["6"] and "subject" not in by_id["7"]
