"""Fuzzing the Auth0 webhook endpoint through a real server and a real target (hypothesis).

One runtime serves the whole module (:func:`served`): auth0 connectors in every content
format, one with a token, posting with ``ack: delivered`` to one :class:`RecordingTarget` in
batch mode (one in binary mode), so a 200 means the events have already arrived. Every
example clears the target, posts one body over a socket and checks:

- the status is 200 or 400 (401, 415 where the example is about those): never a 5xx, never a
  dropped connection;
- no partial acceptance: a 400 emitted nothing; a 200 counts every element of the body,
  ``accepted + filtered + duplicates`` = the number of elements, and exactly ``accepted``
  events arrived, one per distinct new log id;
- no invented events: each event that arrived is the first element of the body with its id,
  with the type ``com.auth0.log.<code>``, the subject ``data.user_id`` and data equal to
  ``json.loads`` of the element's ``data`` (2**53 + 1 and 1000-digit integers included).

Log ids get a fresh prefix per example (the spool remembers ids across examples); ids repeated
inside one body are generated on purpose and must come back as ``duplicates``.
"""

from __future__ import annotations

import http.client
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, example, given, note
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from connector_runtime.sources.handler import is_json_like, media_type
from connector_runtime.testing import (
    LoopThread,
    Received,
    RecordingTarget,
    Response,
    RunningRuntime,
    connector_doc,
    post,
    start_runtime,
)

from .test_fuzz_parser import (
    Body,
    RefElement,
    Refused,
    Undecided,
    bodies,
    mutate,
    mutations,
    reference,
)

TOKEN = "Bearer fz-7Hq2+x/Yz==.tok"
UTF8_TOKEN = "pässwört-tøken-1"
TYPE_PREFIX = "com.auth0.log."
CONNECTORS = {
    "auto": "fz",
    "jsonlines": "fz-jsonlines",
    "array": "fz-array",
    "object": "fz-object",
}
BINARY = "fz-binary"


@dataclass
class Served:
    runtime: RunningRuntime
    target: RecordingTarget

    def send(self, connector: str, body: bytes, headers: dict[str, Any] | None = None) -> Response:
        """POST ``body`` to ``connector`` after forgetting what the target got before."""
        self.target.events.clear()
        return post(self.runtime.connector_url(connector), body, headers)


@pytest.fixture(scope="module")
def served(cr_loop: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    target = RecordingTarget(cr_loop).start()

    def doc(name: str, config: dict[str, Any], mode: str = "batch") -> dict[str, Any]:
        return connector_doc(
            name,
            "auth0",
            config,
            {"type": "http", "config": {"url": target.url, "mode": mode}},
            delivery={"ack": "delivered"},
        )

    docs = [doc(name, {"format": fmt}) for fmt, name in CONNECTORS.items()]
    docs += [
        doc(BINARY, {}, mode="binary"),
        doc("fz-token", {"token": TOKEN}),
        doc("fz-utf8-token", {"token": UTF8_TOKEN}),
    ]
    where: Path = tmp_path_factory.mktemp("fuzz-http")
    running = start_runtime(cr_loop, docs, directory=where)
    yield Served(running, target)
    running.stop()
    target.stop()


_prefixes = itertools.count()


def fresh_prefix() -> str:
    """A log id prefix no earlier example used (fixed width: bodies keep their length)."""
    return f"{next(_prefixes):09d}:"


# -- the checks --------------------------------------------------------------------------


def check_rejected(response: Response, events: list[Received]) -> None:
    assert events == [], "a rejected body emitted events"
    error = response.json()["error"]
    assert isinstance(error, str) and error and "\n" not in error


def check_events(
    counts: dict[str, int], events: list[Received], elements: list[RefElement]
) -> None:
    """The 200 answer and what arrived agree with the body's ``elements``."""
    assert set(counts) == {"accepted", "filtered", "duplicates"}, counts
    assert counts["filtered"] == 0
    assert counts["accepted"] + counts["duplicates"] == len(elements), (counts, elements)
    assert len(events) == counts["accepted"], (counts, [e.id for e in events])
    first: dict[str, RefElement] = {}
    for element in elements:
        first.setdefault(element.log_id, element)
    ids = [e.id for e in events]
    assert len(set(ids)) == len(ids), f"an id arrived twice: {ids}"
    for got in events:
        assert got.id in first, f"event {got.id!r} is not in the body"
        element = first[got.id]
        assert got.attributes["type"] == TYPE_PREFIX + element.type
        assert got.attributes.get("subject") == (element.user_id or None)
        assert got.data == element.data


def check_outcome(served: Served, fmt: str, body: bytes, response: Response) -> None:
    """Whatever ``body`` was: 200 with every element accounted for, or 400 and nothing."""
    events = list(served.target.events)
    if currently_in_test_context():
        event(f"{fmt}: {response.status}")
    assert response.status in (200, 400), (response.status, response.body)
    if response.status == 400:
        check_rejected(response, events)
        return
    counts = response.json()
    body = body.removeprefix(b"\xef\xbb\xbf")  # the handler skips one leading BOM
    candidates = ("jsonlines", "array", "object") if fmt == "auto" else (fmt,)
    failures = []
    for candidate in candidates:
        try:
            elements = reference(body, candidate, exact=False)
        except Refused as exc:
            failures.append(f"{candidate}: {exc}")
            continue
        except Undecided:
            return
        try:
            check_events(counts, events, elements)
        except AssertionError as exc:
            failures.append(f"{candidate}: {exc}")
            continue
        return
    raise AssertionError(f"200 {counts} for a body read as {failures}")


def check_valid(served: Served, body: Body, prefix: str, response: Response) -> None:
    """A valid body was taken whole: exact counts, exact events. A body whose log id, type
    or user id holds a character CloudEvents strings exclude is refused whole (400)."""
    expected = body.expected(prefix)
    if any(
        _forbidden(log_id) or _forbidden(code) or (user_id and _forbidden(user_id))
        for log_id, code, _, user_id, _ in expected
    ):
        assert response.status == 400, response.body
        assert "which CloudEvents strings exclude" in response.json()["error"]
        check_rejected(response, list(served.target.events))
        return
    assert response.status == 200, response.body
    events = list(served.target.events)
    distinct = {item[0] for item in expected}
    assert response.json() == {
        "accepted": len(distinct),
        "filtered": 0,
        "duplicates": len(expected) - len(distinct),
    }
    elements = [
        RefElement(log_id, code, date, user_id, json.loads(data))
        for log_id, code, date, user_id, data in expected
    ]
    check_events(response.json(), events, elements)


# -- the properties ----------------------------------------------------------------------


@given(body=bodies(), connector=st.sampled_from(("auto", "same", BINARY)))
def test_valid_bodies_are_delivered_whole(served: Served, body: Body, connector: str) -> None:
    prefix = fresh_prefix()
    raw = body.render(prefix)
    note(repr(raw))
    name = {"auto": "fz", "same": CONNECTORS[body.parse_format]}.get(connector, connector)
    check_valid(served, body, prefix, served.send(name, raw))


@given(body=bodies(), ops=mutations, fmt=st.sampled_from(("auto", "same", *CONNECTORS)))
def test_mutated_bodies_are_taken_whole_or_not_at_all(
    served: Served, body: Body, ops: list[tuple[str, int, int]], fmt: str
) -> None:
    raw = mutate(body.render(fresh_prefix()), ops)
    note(repr(raw))
    if fmt == "same":
        fmt = body.parse_format
    check_outcome(served, fmt, raw, served.send(CONNECTORS[fmt], raw))


JSONISH = '{}[]":,\\ \t\r\n0123456789.eE+-truefalsnul_idatypgo\u2028é'


@given(raw=st.one_of(st.binary(max_size=300), st.text(JSONISH, max_size=200).map(str.encode)))
@example(raw=b"")
@example(raw=b"[" * 10_000)
@example(raw=b"{" * 10_000)
@example(raw=b'{"logs":' * 10_000)
@example(raw=b'{"log_id":"d","data":{"type":"s","n":' + b"[" * 10_000 + b"]" * 10_000 + b"}}")
@example(raw=b'{"log_id":"s","data":{"type":"s","x":"\\ud800"}}')
@example(raw=b'{"log_id":"\\udfff","data":{"type":"s"}}')
@example(raw=b'\xef\xbb\xbf{"log_id":"b","data":{"type":"s"}}')
@example(raw=b'{"log_id":"r","data":{"type":"s"}}\r{"log_id":"r2","data":{"type":"s"}}')
@example(raw=b'{"log_id":"u","data":{"type":"s"}}\xe2\x80\xa8{"log_id":"u2","data":{"type":"s"}}')
@example(raw=b'{"log_id":"i","data":{"type":"s"}}\n\xed\xa0\x80\n')
@example(raw=b'{"log_id":"z","data":{"type":"s"}}\n{"log_id":"z2","data":{"type":"s"}\x00}\n')
def test_arbitrary_bytes_never_5xx(served: Served, raw: bytes) -> None:
    for fmt in ("auto", "jsonlines"):
        check_outcome(served, fmt, raw, served.send(CONNECTORS[fmt], raw))


def test_extreme_but_valid_values_pass_through(served: Served) -> None:
    prefix = fresh_prefix()
    data = (
        b'{"type":"s","n":9007199254740993,"huge":123456789012345678901234567890,'
        b'"e":1e400,"digits":1' + b"0" * 1000 + b',"":1,"":2,"long":"' + b"y" * 1_000_000 + b'"}'
    )
    body = b'{"log_id":"' + prefix.encode() + b'x","data":' + data + b"}"
    r = served.send("fz", body)
    assert r.status == 200, r.body
    (event,) = served.target.events
    assert event.data == json.loads(data)
    assert event.data["n"] == 2**53 + 1
    assert event.data["digits"] == 10**1000
    assert event.data[""] == 2


# -- Content-Type and the token ----------------------------------------------------------

content_types = st.one_of(
    st.sampled_from(
        (
            "",
            "application/json",
            "APPLICATION/JSON; charset=utf-8",
            "application/x-ndjson",
            "text/plain",
            "application/problem+json",
            "application/xml",
            "multipart/form-data; boundary=x",
            "application/octet-stream",
            "json",
        )
    ),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
)


@given(ctype=content_types, body=bodies(max_elements=2))
def test_content_type_is_415_or_taken(served: Served, ctype: str, body: Body) -> None:
    prefix = fresh_prefix()
    r = served.send("fz", body.render(prefix), {"Content-Type": ctype})
    if is_json_like(media_type(ctype)):
        check_valid(served, body, prefix, r)
    else:
        assert r.status == 415, (ctype, r.status, r.body)
        check_rejected(r, list(served.target.events))


@st.composite
def near_misses(draw: st.DrawFn, token: bytes) -> bytes:
    """The token changed a little: one byte, a cut, an addition, a case, a scheme."""
    kind = draw(st.sampled_from(("flip", "cut", "add", "case", "scheme", "twice", "inner")))
    at = draw(st.integers(0, len(token) - 1))
    if kind == "flip":
        bit = 1 << draw(st.integers(0, 6))
        flipped = token[at] ^ bit
        if flipped in (0x0A, 0x0D):
            flipped = 0x21
        return token[:at] + bytes([flipped]) + token[at + 1 :]
    if kind == "cut":
        return token[:at]
    if kind == "add":
        return (
            token
            + draw(st.binary(min_size=1, max_size=4)).replace(b"\r", b"").replace(b"\n", b"")
            + b"x"
        )
    if kind == "case":
        return token.swapcase()
    if kind == "scheme":
        return (
            draw(st.sampled_from((b"Bearer ", b"Basic ", b"Token ", b""))) + token.split(b" ")[-1]
        )
    if kind == "twice":
        return token + b", " + token
    return token[:at] + b" " + token[at:]


authorization_values = st.one_of(
    st.none(),
    st.binary(max_size=80).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    st.text(max_size=40).map(lambda s: s.replace("\r", "").replace("\n", "").encode()),
    near_misses(TOKEN.encode()),
)


@given(value=authorization_values)
@example(value=b"")
@example(value=TOKEN.encode() + b"\x00")
@example(value=TOKEN.lower().encode())
@example(value=TOKEN.encode()[:-1])
def test_wrong_tokens_never_get_in(served: Served, value: bytes | None) -> None:
    headers = {} if value is None else {"Authorization": value}
    try:
        r = served.send(
            "fz-token",
            b'{"log_id":"' + fresh_prefix().encode() + b'","data":{"type":"s"}}',
            headers,
        )
    except (http.client.HTTPException, ConnectionError):
        return  # the server refused the request line or headers outright: not let in
    presented = (value or b"").strip(b" \t")  # optional whitespace is not part of a field
    if presented == TOKEN.encode():
        assert r.status == 200
        return
    assert r.status in (400, 401), (value, r.status, r.body)
    assert served.target.events == []
    if r.status == 401:
        # the same answer whether the header is missing or wrong
        assert r.json() == {"error": "missing or wrong Authorization token"}
        assert TOKEN.encode() not in r.body


@given(
    body=bodies(max_elements=3),
    lead=st.sampled_from(("", " ", "\t ")),
    trail=st.sampled_from(("", " ", " \t")),
)
def test_the_right_token_always_gets_in(served: Served, body: Body, lead: str, trail: str) -> None:
    prefix = fresh_prefix()
    r = served.send("fz-token", body.render(prefix), {"Authorization": lead + TOKEN + trail})
    check_valid(served, body, prefix, r)


# -- bugs found by the properties above, kept as plain tests -----------------------------


def test_a_non_ascii_token_sent_as_utf8_gets_in(served: Served) -> None:
    """Found by fuzzing the token check: a token with non-ASCII characters never matches.

    Tornado hands header values over as latin-1 text (one character per byte), and the
    check encodes that text as UTF-8 again before comparing it with the configured token
    encoded as UTF-8, so each non-ASCII character Auth0 sends for ``pässwört-tøken-1`` is
    encoded twice over (``ä`` arrives as two bytes, is read as two latin-1 characters and
    compared as four bytes) and the token never matches: 401 forever. (The webhook plugin's
    ``token_matches`` encodes the same way.)
    """
    body = b'{"log_id":"' + fresh_prefix().encode() + b'","data":{"type":"s"}}'
    r = served.send("fz-utf8-token", body, {"Authorization": UTF8_TOKEN.encode("utf-8")})
    assert r.status == 200, r.body


# CloudEvents 1.0.2 (Type System, String): U+0000-U+001F and U+007F-U+009F, noncharacters and
# unpaired surrogates are not allowed in a String attribute.
def _forbidden(text: str) -> list[str]:
    return [
        c
        for c in text
        if ord(c) <= 0x1F
        or 0x7F <= ord(c) <= 0x9F
        or 0xFDD0 <= ord(c) <= 0xFDEF
        or (ord(c) & 0xFFFE) == 0xFFFE
        or 0xD800 <= ord(c) <= 0xDFFF
    ]


@pytest.mark.parametrize("mode", ["fz", BINARY])
def test_control_characters_never_reach_cloudevents_attributes(served: Served, mode: str) -> None:
    """Found by fuzzing: escapes such as ``\\u0000`` in ``data.type``, the log id or
    ``data.user_id`` become the CloudEvents ``type``, ``id`` and ``subject`` verbatim, so the
    runtime emits events whose String attributes hold control characters, which CloudEvents
    does not allow (a consumer that validates drops them, and a NUL or a newline in ``type``
    reaches every router that matches on it). The body must be refused (400) or the
    attributes made valid; either passes here."""
    prefix = fresh_prefix()
    body = (
        b'{"log_id":"' + prefix.encode() + b'cc\\u0007","data":{"type":"s\\u0000\\n",'
        b'"user_id":"auth0|\\u0001x\\u009f"}}'
    )
    r = served.send(mode, body)
    assert r.status in (200, 400), r.body
    for got in served.target.events:
        for name in ("id", "type", "subject"):
            value = got.attributes.get(name)
            assert not _forbidden(str(value or "")), (name, value)


@pytest.mark.parametrize(
    "date",
    ["2025-02-30T00:00:00Z", "2025-13-45T99:99:99Z", "2025-01-01T00:00:00+24:00"],
)
def test_an_impossible_date_does_not_block_delivery(served: Served, date: str) -> None:
    """Found by fuzzing, fixed since, kept as a regression test: ``data.date`` became the
    CloudEvents ``time`` when it had the *shape* of an RFC 3339 timestamp, so a day, month,
    hour or offset out of range was passed on. A consumer that parses ``time`` (the
    CloudEvents SDK here) refused the whole request, the target answered 500, and with
    ``ack: delivered`` every retry of the batch got a 503 (with ``durable``, the batch was
    retried until ``maxAge``)."""
    log_id = fresh_prefix() + "date"
    body = json.dumps({"log_id": log_id, "data": {"type": "s", "date": date}}).encode()
    r = served.send("fz", body)
    assert r.status == 200, r.body
    (got,) = served.target.events
    assert got.id == log_id
    assert got.data["date"] == date


def test_an_oversized_attribute_does_not_block_binary_delivery(served: Served) -> None:
    """Found by fuzzing: in binary mode every attribute is an HTTP header, so a record with a
    70,000-character ``data.user_id`` becomes a ~70 kB ``ce-subject`` header. The target
    refuses the request head (here Tornado's 64 KiB limit resets the connection; nginx's
    default is 8 KiB), the runtime takes that for a transient failure, and the batch is
    answered 503 on every retry: one record blocks the stream (with ``durable``, until
    ``maxAge``). Either deliver it (e.g. structured mode for that event) or refuse that
    event for good (dead letter) and answer 200; both pass here."""
    log_id = fresh_prefix() + "long-subject"
    body = json.dumps({"log_id": log_id, "data": {"type": "s", "user_id": "x" * 70_000}})
    r = served.send(BINARY, body.encode())
    assert r.status == 200, r.body
