"""Attribute places and event building (``connector_runtime_webhook.attributes``)."""

from __future__ import annotations

import itertools
import uuid

import pytest

from connector_runtime_webhook.attributes import (
    DEFAULT_TYPE,
    MISSING,
    AttributeProblem,
    compile_attributes,
    epoch_to_rfc3339,
    parse_pointer,
    resolve_pointer,
)

SOURCE = "urn:test:hooks"
DOC = {"a/b": {"m~n": [10, {"x": "deep"}]}, "": "empty key", "z": None}


def build(attributes=None, extensions=None, headers=None, data=b'{"k":"v"}', index=0):
    counter = itertools.count()
    amap = compile_attributes(attributes, extensions, SOURCE, new_id=lambda: f"gen-{next(counter)}")
    return amap.for_request(headers or {}).event(data, "element 3", index)


def test_pointers_follow_rfc_6901():
    assert parse_pointer("") == ()
    assert parse_pointer("/a~1b/m~0n/1/x") == ("a/b", "m~n", "1", "x")
    assert parse_pointer("/") == ("",)
    assert resolve_pointer(DOC, parse_pointer("/a~1b/m~0n/1/x")) == "deep"
    assert resolve_pointer(DOC, parse_pointer("/a~1b/m~0n/0")) == 10
    assert resolve_pointer(DOC, parse_pointer("/")) == "empty key"
    assert resolve_pointer(DOC, ()) is DOC
    assert resolve_pointer(DOC, parse_pointer("/z")) is None
    for missing in ("/nope", "/a~1b/m~0n/2", "/a~1b/m~0n/-", "/a~1b/m~0n/01", "/z/deeper"):
        assert resolve_pointer(DOC, parse_pointer(missing)) is MISSING
    for bad in ("a/b", "/a~2", "/a~"):
        with pytest.raises(ValueError, match="JSON pointer"):
            parse_pointer(bad)


def test_epoch_seconds_become_utc_rfc3339():
    assert epoch_to_rfc3339(0) == "1970-01-01T00:00:00Z"
    assert epoch_to_rfc3339(1_700_000_000) == "2023-11-14T22:13:20Z"
    with pytest.raises(ValueError, match="out of range"):
        epoch_to_rfc3339(10**15)


def test_defaults_generated_id_default_type_and_source():
    amap = compile_attributes(None, None, SOURCE)
    request = amap.for_request({})
    first, second = (request.event(b"{}", "element 0", i) for i in range(2))
    assert uuid.UUID(first.id).version == 4
    assert first.id != second.id
    assert first.attributes == {
        "specversion": "1.0",
        "id": first.id,
        "source": SOURCE,
        "type": DEFAULT_TYPE,
        "datacontenttype": "application/json",
    }
    assert first.data == b"{}"


def test_pointer_header_and_constant_places():
    event = build(
        {
            "id": {"pointer": "/order/id"},
            "type": {"header": "X-Event", "prefix": "com.acme."},
            "source": {"value": "https://shop.example/"},
            "subject": {"pointer": "/order/customer"},
            "time": {"pointer": "/order/at"},
        },
        {"tenant": {"header": "X-Tenant"}, "priority": {"pointer": "/order/priority"}},
        headers={"X-Event": "order.paid", "X-Tenant": "t-1"},
        data=b'{"order":{"id":77,"customer":"c-9","at":"2024-05-01T10:00:00+02:00","priority":3}}',
    )
    assert event.attributes == {
        "specversion": "1.0",
        "id": "77",
        "source": "https://shop.example/",
        "type": "com.acme.order.paid",
        "datacontenttype": "application/json",
        "subject": "c-9",
        "time": "2024-05-01T10:00:00+02:00",
        "tenant": "t-1",
        "priority": 3,
    }


def test_an_id_from_a_header_gets_the_index_after_the_first_element():
    amap = compile_attributes({"id": {"header": "X-Delivery"}}, None, SOURCE)
    request = amap.for_request({"X-Delivery": "d-1"})
    assert [request.event(b"{}", "", i).id for i in range(3)] == ["d-1", "d-1-1", "d-1-2"]
    pointer = compile_attributes({"id": {"pointer": "/id"}}, None, SOURCE).for_request({})
    assert pointer.event(b'{"id":"x"}', "", 2).id == "x"


def test_time_from_epoch_integers_and_digit_headers():
    assert build({"time": {"pointer": "/t"}}, data=b'{"t":1700000000}').attributes["time"] == (
        "2023-11-14T22:13:20Z"
    )
    by_header = build({"time": {"header": "X-Ts"}}, headers={"X-Ts": "0"})
    assert by_header.attributes["time"] == "1970-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("attributes", "data", "message"),
    [
        ({"id": {"pointer": "/id"}}, b"{}", "element 3: attribute 'id' (pointer /id) is missing"),
        ({"id": {"pointer": "/id"}}, b'{"id":null}', "element 3: attribute 'id' (pointer /id)"),
        (
            {"id": {"pointer": "/id"}},
            b'{"id":""}',
            "element 3: attribute 'id' (pointer /id) is empty",
        ),
        (
            {"type": {"pointer": "/t"}},
            b'{"t":{"a":1}}',
            "element 3: attribute 'type' (pointer /t) is a JSON object, not a string",
        ),
        ({"id": {"pointer": "/id"}}, b'{"id":true}', "is a JSON boolean, not a string"),
        ({"id": {"pointer": "/id"}}, b'{"id":1.5}', "is a JSON number, not a string"),
        (
            {"time": {"pointer": "/t"}},
            b'{"t":"yesterday"}',
            "element 3: attribute 'time' (pointer /t) is not an RFC 3339 timestamp",
        ),
        ({"time": {"pointer": "/t"}}, b'{"t":1.5}', "is not an RFC 3339 timestamp"),
        ({"time": {"pointer": "/t"}}, b'{"t":99999999999999}', "out of range"),
    ],
)
def test_bad_or_missing_places_name_element_and_attribute(attributes, data, message):
    with pytest.raises(AttributeProblem) as caught:
        build(attributes, data=data)
    assert str(caught.value).startswith("element 3: attribute ")
    assert message in str(caught.value)


def test_a_missing_header_is_a_problem_of_the_request():
    with pytest.raises(AttributeProblem, match=r"^request: attribute 'id' \(header X-Id\) is"):
        build({"id": {"header": "X-Id"}})


def test_subject_and_optional_places_may_be_missing():
    event = build(
        {
            "id": {"pointer": "/id", "optional": True},
            "type": {"pointer": "/type", "optional": True},
            "source": {"header": "X-Source", "optional": True},
            "subject": {"pointer": "/who"},
            "time": {"pointer": "/when", "optional": True},
        },
        {"action": {"pointer": "/action", "optional": True}},
    )
    assert event.attributes == {
        "specversion": "1.0",
        "id": "gen-0",
        "source": SOURCE,
        "type": DEFAULT_TYPE,
        "datacontenttype": "application/json",
    }


def test_extension_values_keep_their_json_type_when_the_spec_allows_it():
    data = b'{"b":true,"i":-5,"big":9007199254740993,"s":"x"}'
    event = build(
        None,
        {
            "flag": {"pointer": "/b"},
            "small": {"pointer": "/i"},
            "large": {"pointer": "/big"},
            "text": {"pointer": "/s", "prefix": "p-"},
            "num": {"pointer": "/i", "prefix": "n"},
        },
        data=data,
    )
    attributes = event.attributes
    assert attributes["flag"] is True
    assert attributes["small"] == -5
    assert attributes["large"] == "9007199254740993"
    assert attributes["text"] == "p-x"
    assert attributes["num"] == "n-5"
    with pytest.raises(AttributeProblem, match="not a string, boolean or integer"):
        build(None, {"list": {"pointer": "/l"}}, data=b'{"l":[1]}')


def test_data_is_never_rewritten():
    data = b'{ "id" : "a",  "n": 1.10 }'
    assert build({"id": {"pointer": "/id"}}, data=data).data is data
