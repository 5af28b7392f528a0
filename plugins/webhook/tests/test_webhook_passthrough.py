"""CloudEvents requests taken as they are (``connector_runtime_webhook.passthrough``)."""

from __future__ import annotations

import base64
import json

import pytest
from connector_runtime import to_structured

from connector_runtime_webhook.parse import ParseError
from connector_runtime_webhook.passthrough import from_batch, from_binary, from_structured

ATTRS = {"specversion": "1.0", "id": "e-1", "source": "urn:x", "type": "com.acme.thing"}


def binary_headers(**extra):
    headers = {f"Ce-{k.capitalize()}": v for k, v in ATTRS.items()}
    headers.update({f"Ce-{k}": v for k, v in extra.items()})
    return list(headers.items())


def test_binary_mode_headers_become_attributes_and_the_body_the_data():
    headers = [*binary_headers(Subject="a%20b%C3%A9", Traceparent="00-x"), ("X-Other", "y")]
    event = from_binary(headers, "application/xml; charset=utf-8", b"<a/>")
    assert event.attributes == {
        **ATTRS,
        "subject": "a bé",
        "traceparent": "00-x",
        "datacontenttype": "application/xml; charset=utf-8",
    }
    assert event.data == b"<a/>"
    assert from_binary(binary_headers(), None, b"").data is None


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ([("Ce-Specversion", "1.0"), ("Ce-Id", "1"), ("Ce-Type", "t")], "missing required"),
        (binary_headers(Specversion="0.3"), "specversion '0.3' is not supported"),
        (binary_headers(Time="yesterday"), "attribute 'time' is not an RFC 3339"),
        (binary_headers(**{"Not_valid": "x"}), "does not name a valid CloudEvents attribute"),
        (binary_headers(Subject="%FF"), "is not percent-encoded UTF-8"),
    ],
)
def test_binary_mode_rejects(headers, message):
    with pytest.raises(ParseError, match=message):
        from_binary(headers, "application/json", b"{}")


def test_structured_json_data_is_kept_byte_for_byte():
    body = (
        b'{"specversion":"1.0","id":"e-1","source":"urn:x","type":"t",'
        b'"data":{"n":9007199254740993}}'
    )
    event = from_structured(body)
    assert event.data == b'{"n":9007199254740993}'
    assert event.attributes["datacontenttype"] == "application/json"
    assert to_structured(event).endswith(b'"data":{"n":9007199254740993}}')


def test_structured_text_and_base64_data():
    text = from_structured(
        json.dumps({**ATTRS, "datacontenttype": "text/plain", "data": "héllo"}).encode()
    )
    assert text.data == "héllo".encode()
    raw = bytes(range(256))
    binary = from_structured(
        json.dumps(
            {**ATTRS, "datacontenttype": "image/png", "data_base64": base64.b64encode(raw).decode()}
        ).encode()
    )
    assert binary.data == raw
    assert binary.attributes["datacontenttype"] == "image/png"
    none = from_structured(json.dumps({**ATTRS, "data": None, "flag": True, "n": 3}).encode())
    assert none.data is None
    assert none.attributes == {**ATTRS, "flag": True, "n": 3}


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({**ATTRS, "source": ""}, "event: missing required attribute 'source'"),
        ({"specversion": "1.0"}, "missing required attribute 'id', 'source', 'type'"),
        ({**ATTRS, "id": 5}, "attribute 'id' must be a string"),
        ({**ATTRS, "ext": 2**40}, "'ext' must be a string, boolean or 32-bit integer"),
        ({**ATTRS, "Bad-Name": "x"}, "'Bad-Name' is not a valid CloudEvents attribute name"),
        ({**ATTRS, "data": 1, "data_base64": "AA=="}, "both 'data' and 'data_base64'"),
        ({**ATTRS, "data_base64": "***"}, "'data_base64' is not valid base64"),
        ({**ATTRS, "datacontenttype": "text/csv", "data": {"a": 1}}, "must be a JSON string"),
    ],
)
def test_structured_rejects(event, message):
    with pytest.raises(ParseError, match=message.replace("(", r"\(")):
        from_structured(json.dumps(event).encode())


def test_structured_body_must_be_one_object():
    with pytest.raises(ParseError, match="event is not a JSON object"):
        from_structured(b"[]")
    with pytest.raises(ParseError, match="event is not valid JSON"):
        from_structured(b"{")


def test_batches_name_the_bad_event():
    good = json.dumps(ATTRS)
    events = from_batch(f"[{good},{json.dumps({**ATTRS, 'id': 'e-2'})}]".encode())
    assert [e.id for e in events] == ["e-1", "e-2"]
    assert from_batch(b"[]") == []
    with pytest.raises(ParseError, match="event 1 is not a JSON object"):
        from_batch(f"[{good},3]".encode())
    with pytest.raises(ParseError, match="event 2: missing required attribute 'type'"):
        bad = json.dumps({k: v for k, v in ATTRS.items() if k != "type"})
        from_batch(f"[{good},{good},{bad}]".encode())
    with pytest.raises(ParseError, match="batch is not a JSON array"):
        from_batch(good.encode())
