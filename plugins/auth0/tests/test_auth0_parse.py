"""parse_body: every content format, auto-detection, exact data, and every error."""

from __future__ import annotations

import json
import random

import pytest

from connector_runtime_auth0.parse import ParseError, Record, detect_format, parse_body
from connector_runtime_auth0.testing import (
    DROP,
    as_array,
    as_lines,
    as_object,
    data_text,
    element,
    sample_batch,
)

BATCH = sample_batch()
ONE = element("90020240514aaaa", data_text("s", "90020240514aaaa"))


def expected(batch: list[tuple[str, str, bytes]]) -> list[tuple[str, str, bytes]]:
    return [(log_id, code, data) for log_id, code, data in batch]


def summary(records: list[Record]) -> list[tuple[str, str, bytes]]:
    return [(r.log_id, r.type, r.data) for r in records]


# -- the formats -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["auto", "jsonlines"])
def test_json_lines(fmt):
    records = parse_body(as_lines(BATCH), fmt)
    assert summary(records) == expected(BATCH)
    first = records[0]
    assert first.date == "2024-05-14T09:31:07.412Z"
    assert first.user_id == "auth0|6643a2c1f0e9d87b5c4a3210"
    assert records[2].user_id is None  # the failed login has no user


@pytest.mark.parametrize("fmt", ["auto", "array"])
def test_json_array(fmt):
    assert summary(parse_body(as_array(BATCH), fmt)) == expected(BATCH)


@pytest.mark.parametrize("fmt", ["auto", "object"])
def test_json_object_with_logs(fmt):
    assert summary(parse_body(as_object(BATCH), fmt)) == expected(BATCH)


@pytest.mark.parametrize("fmt", ["auto", "object", "jsonlines"])
def test_one_bare_element(fmt):
    [record] = parse_body(ONE, fmt)
    assert record.log_id == "90020240514aaaa"
    assert record.type == "s"


def test_pretty_printed_array_and_envelope():
    items = [json.loads(element(i, d)) for i, _, d in BATCH]
    for body in (json.dumps(items, indent=2), json.dumps({"logs": items}, indent=4)):
        records = parse_body(body.encode(), "auto")
        assert [(r.log_id, r.type) for r in records] == [(i, c) for i, c, _ in BATCH]


def test_pretty_printed_bare_object_is_not_taken_for_json_lines():
    body = json.dumps(json.loads(ONE), indent=2).encode()
    assert b"\n" in body
    assert detect_format(body) == "object"
    [record] = parse_body(body)
    assert record.log_id == "90020240514aaaa"
    assert json.loads(record.data) == json.loads(data_text("s", "90020240514aaaa"))


def test_json_lines_sent_as_one_line():
    body = ONE + b"\n"
    assert detect_format(body) == "object"
    assert summary(parse_body(body)) == summary(parse_body(ONE, "jsonlines"))


def test_crlf_line_ends():
    assert summary(parse_body(as_lines(BATCH, b"\r\n"))) == expected(BATCH)


def test_no_final_newline():
    body = as_lines(BATCH).rstrip(b"\n")
    assert detect_format(body) == "jsonlines"
    assert summary(parse_body(body)) == expected(BATCH)


def test_blank_lines_are_skipped_and_still_counted():
    lines = [element(i, d) for i, _, d in BATCH[:3]]
    body = b"\n\n" + lines[0] + b"\n   \n\t\r\n" + lines[1] + b"\n\n" + lines[2] + b"\n\n"
    assert summary(parse_body(body)) == expected(BATCH[:3])
    broken = body.replace(lines[2], b"{oops}")
    with pytest.raises(ParseError, match=r"^line 8: not valid JSON"):
        parse_body(broken)


def test_line_separators_inside_strings_do_not_split():
    # U+2028 and U+2029 are line breaks to str.splitlines, but plain characters in JSON.
    text = "Wrong email\u2028or password\u2029(try again) \u0085 \x1c"
    escaped = json.dumps(text, ensure_ascii=False).replace("\x1c", "\\u001c")
    data = data_text("fp", "id-ls", user_name="x").replace(b'"x"', escaped.encode())
    body = element("id-ls", data) + b"\n" + ONE + b"\n"
    records = parse_body(body)
    assert [r.log_id for r in records] == ["id-ls", "90020240514aaaa"]
    assert records[0].data == data
    assert json.loads(records[0].data)["user_name"] == text


def test_empty_batches():
    assert parse_body(b"[]") == []
    assert parse_body(b' {"logs": [ ]} ') == []


def test_leading_whitespace_before_each_format():
    assert summary(parse_body(b" \r\n\t" + as_array(BATCH))) == expected(BATCH)
    assert summary(parse_body(b"\n\n" + as_lines(BATCH))) == expected(BATCH)
    assert summary(parse_body(b"  \n" + ONE)) == summary(parse_body(ONE))


@pytest.mark.parametrize(
    ("body", "fmt"),
    [
        (b"[]", "array"),
        (b" \n[{}]", "array"),
        (b"{}", "object"),
        (b"{}\n", "object"),
        (b"{}\n  \r\n", "object"),
        (b"{}\n{}", "jsonlines"),
        (b'{"log_id": "a",\n "data": {}}\n', "object"),
        (b"{\n}\n", "object"),
        (b'{"a": 1}\r\n{"b": 2}', "jsonlines"),
    ],
)
def test_detect_format(body, fmt):
    assert detect_format(body) == fmt


# -- fields ------------------------------------------------------------------------------


def test_log_id_falls_back_to_data_log_id():
    data = data_text("s", "from-data")
    assert parse_body(element(None, data))[0].log_id == "from-data"
    assert parse_body(element("", data))[0].log_id == "from-data"
    assert parse_body(b'{"log_id":42,"data":' + data + b"}")[0].log_id == "from-data"
    assert parse_body(element("outer", data))[0].log_id == "outer"


@pytest.mark.parametrize("value", [b"null", b"17", b"1e999", b'{"d": 1}', b"[]", b"true"])
def test_date_and_user_id_that_are_not_strings_are_ignored(value):
    data = b'{"type":"s","date":' + value + b',"user_id":' + value + b"}"
    [record] = parse_body(element("id-1", data), "jsonlines")
    assert (record.date, record.user_id) == (None, None)
    assert record.data == data


def test_numbers_pass_through_exactly():
    data = (
        b'{"type":"sapi","n":9007199254740993,"big":123456789012345678901234567890,'
        b'"neg":-123456789012345678901234567890,"f":1.0000000000000000000001e-400,'
        b'"nested":{"list":[9007199254740993,1E+999]}}'
    )
    assert 2**53 + 1 == 9007199254740993
    for body in (element("n", data), element("n", data) + b"\n" + element("m", data)):
        for record in parse_body(body):
            assert record.data == data
    assert parse_body(b"[" + element("n", data) + b"]")[0].data == data
    assert parse_body(b'{"logs":[' + element("n", data) + b"]}")[0].data == data


def test_data_text_is_kept_with_its_inner_whitespace():
    data = b'{ "type" : "s" ,\n  "x" : [ 1 , 2 ] }'
    body = b'{"log_id": "w", "data":  ' + data + b"  }"
    assert parse_body(body)[0].data == data


def test_escaped_nul_and_unicode_pass_through():
    data = b'{"type":"s","note":"a\\u0000b \\u00e9 \xc3\xa9 \\ud83d\\ude00 \xf0\x9f\x98\x80"}'
    assert parse_body(element("nul", data))[0].data == data


def test_unknown_codes_are_accepted():
    [record] = parse_body(element("u", b'{"type":"brand_new_code_2031"}'))
    assert record.type == "brand_new_code_2031"


def test_unknown_format_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown content format 'xml'"):
        parse_body(ONE, "xml")


# -- errors ------------------------------------------------------------------------------

GOOD = ONE
NO_DATA = b'{"log_id":"x"}'
DATA_LIST = b'{"log_id":"x","data":[]}'
NO_TYPE = b'{"log_id":"x","data":{"date":"2024-05-14T09:31:07Z"}}'
NUM_TYPE = b'{"log_id":"x","data":{"type":5}}'
NO_ID = b'{"data":{"type":"s"}}'


@pytest.mark.parametrize(
    ("body", "fmt", "message"),
    [
        (b"", "auto", "empty body"),
        (b" \r\n\t\n", "auto", "empty body"),
        (b"", "jsonlines", "empty body"),
        (b"\n\n", "array", "empty body"),
        (b"", "object", "empty body"),
        (b"hello", "auto", "body is not JSON Lines, a JSON array or a JSON object (byte 0"),
        (b"  42", "auto", "body is not JSON Lines, a JSON array or a JSON object (byte 2"),
        (b"{nope", "auto", "body: not valid JSON (JSON is malformed"),
        (b"[" + GOOD + b",", "auto", "body: not valid JSON"),
        (b"[" + GOOD + b"] trailing", "array", "body: not valid JSON"),
        (GOOD + b"\n{oops\n", "auto", "line 2: not valid JSON"),
        (GOOD + b"\n" + GOOD + b" x\n", "auto", "line 2: not valid JSON"),
        (b'{"log_id":"x",\n"data":{"type":"s"}} junk', "auto", "body: not valid JSON"),
        (b'{"log_id":"a\x00b","data":{"type":"s"}}', "auto", "body: not valid JSON"),
        (GOOD + b'\n{"log_id":"a\x00b","data":{}}', "auto", "line 2: not valid JSON"),
        (GOOD + b"\n[1, 2]\n", "auto", "line 2: not a JSON object"),
        (GOOD + b'\n"text"\n', "jsonlines", "line 2: not a JSON object"),
        (b"[" + GOOD + b", 5]", "auto", "element 1: not a JSON object"),
        (b"[" + GOOD + b", null]", "auto", "element 1: not a JSON object"),
        (b'{"logs":[' + GOOD + b', "x"]}', "auto", "element 1: not a JSON object"),
        (b"[" + GOOD + b"]", "object", "body is not a JSON object"),
        (GOOD, "array", "body is not a JSON array"),
        (b'{"logs": {"a": 1}}', "auto", "'logs' is not a JSON array"),
        (b'{"logs": null}', "object", "'logs' is not a JSON array"),
        (b'{"log_id": "x"}', "object", "body is a JSON object with neither 'logs' nor 'data'"),
        (GOOD + b"\n" + NO_DATA + b"\n", "auto", "line 2: no 'data' member"),
        (b"[" + GOOD + b"," + NO_DATA + b"]", "auto", "element 1: no 'data' member"),
        (NO_DATA, "jsonlines", "line 1: no 'data' member"),
        (DATA_LIST, "auto", "element 0: 'data' is not a JSON object"),
        (b'{"log_id":"x","data":null}', "auto", "element 0: 'data' is not a JSON object"),
        (b'[{"log_id":7,"data":"s"}]', "auto", "element 0: 'data' is not a JSON object"),
        (GOOD + b"\n" + DATA_LIST, "auto", "line 2: 'data' is not a JSON object"),
        (NO_TYPE, "auto", "element 0: 'data.type' is missing or not a non-empty string"),
        (b"[" + NUM_TYPE + b"]", "auto", "element 0: 'data.type' is missing"),
        (b'{"log_id":1,"data":{"type":null}}', "auto", "element 0: 'data.type' is missing"),
        (b'{"log_id":"x","data":{"type":""}}', "auto", "element 0: 'data.type' is missing"),
        (GOOD + b"\n" + NUM_TYPE, "auto", "line 2: 'data.type' is missing"),
        (NO_ID, "auto", "element 0: no log id ('log_id' or 'data.log_id'"),
        (b'{"log_id":"","data":{"type":"s","log_id":""}}', "auto", "element 0: no log id"),
        (b'{"log_id":3,"data":{"type":"s","log_id":4}}', "auto", "element 0: no log id"),
        (b"[" + GOOD + b"," + GOOD + b"," + NO_ID + b"]", "auto", "element 2: no log id"),
        (GOOD + b"\n\n" + NO_ID + b"\n", "auto", "line 3: no log id"),
    ],
)
def test_errors(body, fmt, message):
    with pytest.raises(ParseError) as caught:
        parse_body(body, fmt)
    text = str(caught.value)
    assert text.startswith(message)
    assert "\n" not in text


def test_one_bad_element_rejects_the_whole_body():
    good = as_lines(BATCH)
    with pytest.raises(ParseError, match=r"^line 7: no 'data' member$"):
        parse_body(good + NO_DATA)
    with pytest.raises(ParseError, match=r"^element 6: no 'data' member$"):
        parse_body(as_array(BATCH)[:-1] + b"," + NO_DATA + b"]")


@pytest.mark.parametrize(
    ("bad", "name"),
    [
        (b"\xff", "stray byte"),
        (b"\xc3", "truncated sequence"),
        (b"\xc0\xaf", "overlong encoding"),
        (b"\xed\xa0\x80", "encoded surrogate"),
        (b"\xf4\x90\x80\x80", "beyond U+10FFFF"),
    ],
)
@pytest.mark.parametrize("fmt", ["auto", "jsonlines", "array", "object"])
def test_invalid_utf8(bad, name, fmt):
    data = b'{"type":"s","user_name":"caf' + bad + b'"}'
    body = element("utf", data)
    if fmt == "array":
        body = b"[" + body + b"]"
    position = body.index(bad)
    with pytest.raises(ParseError, match=rf"^body is not valid UTF-8 \(byte {position}\)$"):
        parse_body(body, fmt)


@pytest.mark.parametrize("where", ["data", "outside"])
@pytest.mark.parametrize("fmt", ["auto", "jsonlines", "array", "object"])
def test_deep_nesting_is_a_parse_error(where, fmt):
    deep = b"[" * 100_000 + b"]" * 100_000
    if where == "data":
        one = b'{"log_id":"d","data":{"type":"s","x":' + deep + b"}}"
    else:
        one = b'{"log_id":"d","x":' + deep + b',"data":{"type":"s"}}'
    body = b"[" + one + b"]" if fmt == "array" else one
    try:
        records = parse_body(body, fmt)
    except ParseError as exc:
        assert "nested too deeply" in str(exc)
    else:  # a decoder that copes with the depth must still keep the data exact
        assert records[0].log_id == "d"


def test_lone_surrogate_escapes_are_parse_errors_or_exact():
    for data in (b'{"type":"\\ud800"}', b'{"type":"s","log_id":"\\udfff"}'):
        for body in (element("x", data), element(None, data), b"[" + element(None, data) + b"]"):
            try:
                records = parse_body(body)
            except ParseError:
                continue
            assert records[0].data == data


def test_huge_numbers_outside_data_are_not_a_crash():
    body = b'{"log_id":1e999,"x":123456789012345678901234567890,"data":{"type":"s","log_id":"k"}}'
    assert parse_body(body)[0].log_id == "k"


def test_random_damage_is_either_parsed_or_rejected():
    rng = random.Random(20240514)
    bodies = [as_lines(BATCH), as_array(BATCH), as_object(BATCH), ONE]
    alphabet = b'{}[]",:\n\r \\\x00\xe2\x80\xa8\xff0123456789eE+-.tfnul'
    for _ in range(3000):
        body = bytearray(rng.choice(bodies))
        for _ in range(rng.randint(1, 4)):
            action = rng.randrange(3)
            pos = rng.randrange(len(body))
            if action == 0:
                del body[pos : pos + rng.randint(1, 8)]
            elif action == 1:
                body.insert(pos, rng.choice(alphabet))
            else:
                body[pos] = rng.choice(alphabet)
        fmt = rng.choice(["auto", "jsonlines", "array", "object"])
        try:
            records = parse_body(bytes(body), fmt)
        except ParseError as exc:
            assert str(exc) and "\n" not in str(exc)
            continue
        for record in records:
            assert isinstance(record.log_id, str) and record.log_id
            assert isinstance(record.type, str) and record.type
            assert record.data.startswith(b"{")
            json.loads(record.data)  # the kept text is valid JSON on its own


def test_drop_helper_leaves_fields_out():
    assert b"user_id" not in data_text("f", "x", user_id=DROP)
