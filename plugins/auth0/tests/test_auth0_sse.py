"""The SSE parser against the WHATWG event stream rules, chunk boundaries anywhere."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector_runtime_auth0.sse import Message, SSEParser

STREAM = (
    b"\xef\xbb\xbf:connected\n"
    b"retry: 250\n"
    b"\n"
    b"id: 1\n"
    b"event: user.created\n"
    b'data: {"a":\n'
    b"data:1}\n"
    b"\n"
    b": a comment between messages\n"
    b"data\n"
    b"data:  two spaces\n"
    b"\n"
    b"id: 2\n"
    b"\n"
    b"id: 3\0x\n"
    b"event: offset-only\n"
    b"unknown: field\n"
    b"data: x\n"
    b"\n"
    b"id: 4\n"
    b"data: left over at the end\n"
)
EXPECTED = [
    Message("user.created", b'{"a":\n1}', "1"),
    Message("message", b"\n two spaces", "1"),
    Message("offset-only", b"x", "2"),
]


def parse(chunks: list[bytes]) -> tuple[list[Message], SSEParser]:
    parser, out = SSEParser(), []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    return out, parser


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"])
def test_every_line_end_gives_the_same_messages(end: bytes):
    got, parser = parse([STREAM.replace(b"\n", end)])
    assert got == EXPECTED
    assert parser.retry == 250
    assert parser.comments == 2
    assert parser.last_event_id == "4"  # set by the unfinished message, which is not sent


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"])
def test_one_byte_at_a_time_gives_the_same_messages(end: bytes):
    stream = STREAM.replace(b"\n", end)
    got, _ = parse([stream[i : i + 1] for i in range(len(stream))])
    assert got == EXPECTED


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_split_gives_the_same_messages(cuts: list[int]):
    for end in (b"\r\n", b"\r"):
        stream = STREAM.replace(b"\n", end)
        bounds = [0, *sorted(cuts), len(stream)]
        chunks = [stream[a:b] for a, b in itertools.pairwise(bounds)]
        assert parse(chunks)[0] == EXPECTED


def test_a_retry_that_is_not_digits_is_ignored_and_a_bom_only_at_the_start():
    got, parser = parse([b"retry: 1s\nretry: -5\ndata: \xef\xbb\xbfx\n\n"])
    assert parser.retry is None
    assert got == [Message("message", b"\xef\xbb\xbfx", "")]


def test_a_cr_at_the_end_of_a_chunk_then_lf_is_one_line_end():
    got, _ = parse([b"data: a\r", b"\ndata: b\r", b"\r"])
    assert got == [Message("message", b"a\nb", "")]
