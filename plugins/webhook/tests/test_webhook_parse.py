"""Splitting bodies into JSON objects (``connector_runtime_webhook.parse``)."""

from __future__ import annotations

import json

import pytest

from connector_runtime_webhook.parse import ParseError, split_body

A = b'{"n":1}'
B = b'{"n":2,"s":"x"}'


@pytest.mark.parametrize(
    ("body", "fmt"),
    [
        (b"[" + A + b"," + B + b"]", "array"),
        (b"  [\n " + A + b",\n " + B + b"\n]\n", "array"),
        (A + b"\n" + B + b"\n", "jsonlines"),
        (A + b"\r\n" + B, "jsonlines"),
        (b"\n\n" + A + b"\n   \n" + B + b"\n\n", "jsonlines"),
    ],
)
def test_many_elements_keep_their_exact_text(body, fmt):
    elements, used = split_body(body)
    assert used == fmt
    assert [e.data for e in elements] == [A, B]


def test_labels_name_array_elements_from_0_and_lines_from_1():
    elements, _ = split_body(b"\n" + A + b"\n\n" + B)
    assert [e.label for e in elements] == ["line 2", "line 4"]
    elements, _ = split_body(b"[" + A + b"," + B + b"]")
    assert [e.label for e in elements] == ["element 0", "element 1"]


def test_a_single_object_pretty_printed_or_not():
    pretty = json.dumps({"a": {"b": [1, 2]}}, indent=2).encode()
    for body in (A, b"  " + A + b"\n", pretty):
        elements, fmt = split_body(body)
        assert fmt == "object"
        assert [e.data for e in elements] == [body.strip()]
        assert elements[0].label == "body"


def test_values_pass_through_byte_for_byte():
    body = b'[{"big":9007199254740993,"f":1.50,"u":"\\u00e9","e":"\xc3\xa9"}]'
    [element], _ = split_body(body)
    assert element.data == body[1:-1]


def test_unicode_line_separators_do_not_split_lines():
    line = json.dumps({"t": "a\u2028b\u2029c\x85d"}, ensure_ascii=False).encode()
    body = line + b"\n" + line + b"\n"
    elements, fmt = split_body(body)
    assert fmt == "jsonlines"
    assert [e.data for e in elements] == [line, line]


@pytest.mark.parametrize(
    ("body", "fmt", "message"),
    [
        (b"[" + A + b", 2]", "auto", "element 1 is a JSON number, not an object"),
        (b'[{"a":1},[1]]', "auto", "element 1 is a JSON array, not an object"),
        (b'["x"]', "array", "element 0 is a JSON string, not an object"),
        (A + b"\nnull\n", "auto", "line 2 is a JSON null, not an object"),
        (A + b"\n" + b'{"a":' + b"\n", "auto", "line 2 is not valid JSON: "),
        (A + b"\ntrue", "jsonlines", "line 2 is a JSON boolean, not an object"),
        (b"42", "auto", "body is a JSON number, not an object"),
        (b"oops", "auto", "body is not valid JSON: "),
        (b"[" + A, "auto", "body is not valid JSON: "),
        (A, "array", "body is not a JSON array"),
        (A + b"\n" + B, "object", "body is not valid JSON: trailing characters"),
        (b"", "auto", "empty body"),
        (b" \r\n\t", "jsonlines", "empty body"),
        (b'{"a":"\xff"}', "auto", "body is not valid UTF-8 (byte 6)"),
    ],
)
def test_bad_bodies_name_the_element(body, fmt, message):
    with pytest.raises(ParseError) as caught:
        split_body(body, fmt)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_nesting_too_deep_is_a_parse_error_not_a_crash():
    with pytest.raises(ParseError):
        split_body(b"[" * 100_000)


def test_auto_tells_the_formats_apart():
    assert split_body(b"[]")[1] == "array"
    assert split_body(A)[1] == "object"
    assert split_body(A + b"\n")[1] == "object"
    assert split_body(A + b"\n" + B)[1] == "jsonlines"
    with pytest.raises(ParseError, match="line 2 is a JSON array"):
        split_body(A + b"\n[1]")
