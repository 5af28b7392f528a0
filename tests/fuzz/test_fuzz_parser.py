"""Fuzzing ``parse_body`` (the Auth0 body parser, pure) with hypothesis.

The properties, for every input and every content format (``auto`` and the three fixed ones):

- ``parse_body`` returns or raises :class:`ParseError`; nothing else escapes (no
  ``RecursionError``, ``UnicodeDecodeError``, ``IndexError``, ...);
- what it returns is exactly what an independent reading of the body finds (stdlib ``json``,
  see :func:`reference`): the same elements, in order, with the same log id, type code, date
  and user id, and each record's ``data`` is a byte-exact slice of the body that decodes to the
  element's ``data`` (numbers read as ``Decimal``, so ``2**53 + 1`` and ``1e400`` are
  compared exactly);
- a valid body built by :func:`bodies` is accepted whole, in its own format and by ``auto``.

The inputs are arbitrary bytes, JSON-ish text, valid bodies in every format (JSON Lines,
array, ``{"logs": [...]}``, one bare element) and valid bodies put through
:func:`mutate` (bit flips, truncation, duplicated lines, NUL bytes, U+2028/U+2029,
``\\r``/``\\r\\n`` endings, a BOM, invalid UTF-8, lone surrogate escapes), plus hand-picked
extremes: 10k nested brackets, 1e400, a 100k-digit integer, a 1 MB string.

The strategies and the reference reading are used by ``test_fuzz_http.py`` too.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from connector_runtime_auth0.parse import FORMATS, ParseError, Record, parse_body
from hypothesis import event, example, given, note
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

# -- JSON text ---------------------------------------------------------------------------
# Values are generated as JSON *text*, not as Python objects, so that the numbers and the
# spelling of strings that reach the parser are the ones chosen here (1e400, 2**53 + 1,
# "\u2028" raw or escaped, empty and duplicate keys).

SPECIAL_KEYS = frozenset({"log_id", "data", "logs", "type", "date", "user_id"})
KNOWN_CODES = ("s", "f", "fp", "fu", "sapi", "seacft", "fsa", "gd_auth_succeed", "limit_wc")
NUMBER_TEXTS = (
    "0",
    "-0",
    "-0.0e-0",
    "9007199254740993",  # 2**53 + 1: not a float
    "-9007199254740993",
    "123456789012345678901234567890",
    "1e400",  # beyond a double
    "-1E+400",
    "1e-400",
    "1.5e300",
    "0.1",
    "1" + "0" * 1000,  # 10**1000
)
AWKWARD_CHARS = (
    "\u2028",
    "\u2029",
    "\x00",
    "\n",
    "\r",
    "\t",
    "\x7f",
    "\x85",
    "\ufeff",
    "\ufffe",
    '"',
    "\\",
    "/",
    "é",
    "😀",
)
WHITESPACE = " \t\r\n"
LINE_WHITESPACE = " \t\r"  # what may appear inside one JSON Lines line

texts = st.text(
    alphabet=st.one_of(st.characters(codec="utf-8"), st.sampled_from(AWKWARD_CHARS)), max_size=12
)
long_texts = st.sampled_from((0, 1, 4096, 70_000)).map(lambda n: "x" * n)


def string_text(value: str, ascii_only: bool) -> str:
    """``value`` as a JSON string; non-ASCII raw (U+2028 included) unless ``ascii_only``."""
    return json.dumps(value, ensure_ascii=ascii_only)


string_texts = st.builds(string_text, st.one_of(texts, long_texts), st.booleans())
short_string_texts = st.builds(string_text, texts, st.booleans())
short_scalar_texts = st.one_of(
    st.sampled_from(("null", "true", "false")),
    st.integers().map(str),
    st.integers(2**53 - 2, 2**53 + 2).map(str),
    st.sampled_from(NUMBER_TEXTS),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    short_string_texts,
)
scalar_texts = st.one_of(short_scalar_texts, string_texts)
plain_keys = st.one_of(st.just(""), texts).filter(lambda k: k not in SPECIAL_KEYS)


@functools.cache
def value_texts(space: str, depth: int = 3) -> st.SearchStrategy[str]:
    """Any JSON value as text, nested up to ``depth``, whitespace drawn from ``space``."""
    if depth == 0:
        return scalar_texts
    inner = value_texts(space, depth - 1)
    pads = st.text(alphabet=space, max_size=2)

    @st.composite
    def array(draw: st.DrawFn) -> str:
        values = draw(st.lists(inner, max_size=4))
        if not values:
            return "[" + draw(pads) + "]"
        return "[" + ",".join(draw(pads) + v + draw(pads) for v in values) + "]"

    @st.composite
    def obj(draw: st.DrawFn) -> str:
        members = draw(st.lists(st.tuples(st.one_of(plain_keys, texts), inner), max_size=4))
        if members and draw(st.booleans()):  # a duplicate key: the last one counts
            members.append((members[0][0], draw(inner)))
        if not members:
            return "{" + draw(pads) + "}"
        return (
            "{"
            + ",".join(
                draw(pads) + string_text(k, draw(st.booleans())) + draw(pads) + ":" + draw(pads) + v
                for k, v in members
            )
            + draw(pads)
            + "}"
        )

    return st.one_of(scalar_texts, scalar_texts, array(), obj())


# -- elements and bodies -----------------------------------------------------------------

PLACEMENTS = ("top", "inner", "both", "fallback-null", "fallback-empty", "fallback-number")


@dataclass(frozen=True)
class Element:
    """One valid delivery element, rendered by :meth:`render` with a log id prefix."""

    key: str
    """The log id is ``prefix + key``."""
    placement: str
    """Where the log id is: ``log_id`` (top), ``data.log_id`` (inner), both (top wins), or
    ``data.log_id`` after a top ``log_id`` that is null, empty or a number."""
    code: str
    date: str | None
    """JSON text of ``data.date`` (absent when None)."""
    user_id: str | None
    members: tuple[tuple[str, str], ...]
    """Other members of ``data``: (key, JSON text of the value)."""
    outer: tuple[tuple[str, str], ...]
    """Other members of the element."""
    split: int
    """How many of ``members`` come before ``type``, ``date``, ``user_id``."""
    decoys: bool
    """Put an earlier ``data`` member and an earlier ``data.type`` that later ones override."""
    ascii_only: bool
    pads: tuple[str, ...]

    def log_id(self, prefix: str) -> str:
        return prefix + self.key

    def data_text(self, prefix: str) -> str:
        pad = itertools.cycle(self.pads)
        members = list(self.members)
        special: list[tuple[str, str]] = []
        if self.decoys:
            special.append(("type", '""'))
        special.append(("type", string_text(self.code, self.ascii_only)))
        if self.date is not None:
            special.append(("date", self.date))
        if self.user_id is not None:
            special.append(("user_id", self.user_id))
        if self.placement != "top":
            inner = self.log_id(prefix)
            if self.placement == "both":
                inner = "not-" + inner
            special.append(("log_id", string_text(inner, self.ascii_only)))
        cut = self.split % (len(members) + 1)
        ordered = [*members[:cut], *special, *members[cut:]]
        return _object(ordered, pad, self.ascii_only)

    def render(self, prefix: str) -> str:
        pad = itertools.cycle(self.pads)
        members: list[tuple[str, str]] = list(self.outer)
        top = {
            "top": string_text(self.log_id(prefix), self.ascii_only),
            "both": string_text(self.log_id(prefix), self.ascii_only),
            "fallback-null": "null",
            "fallback-empty": '""',
            "fallback-number": "12345",
        }.get(self.placement)
        if top is not None:
            members.insert(0, ("log_id", top))
        if self.decoys:
            members.append(("data", '{"type":"decoy","log_id":"decoy"}'))
        members.append(("data", self.data_text(prefix)))
        return _object(members, pad, self.ascii_only)

    def expected(self, prefix: str) -> tuple[str, str, str | None, str | None, bytes]:
        """(log id, type code, date, user id, data bytes) as ``parse_body`` must return them."""
        return (
            self.log_id(prefix),
            self.code,
            _string_or_none(self.date),
            _string_or_none(self.user_id),
            self.data_text(prefix).encode(),
        )


def _object(members: Sequence[tuple[str, str]], pad: Any, ascii_only: bool) -> str:
    inside = ",".join(
        next(pad) + string_text(k, ascii_only) + next(pad) + ":" + next(pad) + v + next(pad)
        for k, v in members
    )
    return "{" + inside + "}"


def _string_or_none(text: str | None) -> str | None:
    if text is None:
        return None
    value = json.loads(text)
    return value if isinstance(value, str) else None


rfc3339 = st.datetimes().map(lambda d: d.isoformat(timespec="milliseconds") + "Z")


def elements(space: str = WHITESPACE, keys: st.SearchStrategy[str] | None = None) -> Any:
    """Valid elements whose JSON text uses only ``space`` as whitespace."""
    values = value_texts(space)
    return st.builds(
        Element,
        key=keys or st.one_of(st.sampled_from("abc"), texts.filter(bool)),
        placement=st.sampled_from(PLACEMENTS),
        code=st.one_of(st.sampled_from(KNOWN_CODES), texts.filter(bool)),
        date=st.one_of(st.none(), rfc3339.map(json.dumps), string_texts, values),
        # user_id becomes the subject attribute, an HTTP header in binary mode: kept short
        # (test_an_oversized_attribute_does_not_block_binary_delivery has the long one)
        user_id=st.one_of(st.none(), short_scalar_texts),
        members=st.lists(st.tuples(plain_keys, values), max_size=5).map(tuple),
        outer=st.lists(st.tuples(plain_keys, values), max_size=2).map(tuple),
        split=st.integers(0, 10),
        decoys=st.booleans(),
        ascii_only=st.booleans(),
        pads=st.lists(st.text(alphabet=space, max_size=2), min_size=1, max_size=4).map(tuple),
    )


BODY_FORMATS = ("jsonlines", "array", "object", "bare")


@dataclass(frozen=True)
class Body:
    """A valid body: ``elements`` in content format ``fmt`` (``bare``: one element alone)."""

    fmt: str
    elements: tuple[Element, ...]
    ends: tuple[str, ...]
    """JSON Lines: the end of each line, ``\\n`` or ``\\r\\n`` (used in turn)."""
    final: bool
    """JSON Lines: whether the last line has its end too."""
    blanks: tuple[str, ...]
    """JSON Lines: blank or whitespace-only lines put between elements."""
    pads: tuple[str, ...]
    """Array and object formats: whitespace around the elements."""
    extra: tuple[tuple[str, str], ...]
    """Object format: other members of the envelope."""

    @property
    def parse_format(self) -> str:
        return "object" if self.fmt == "bare" else self.fmt

    def render(self, prefix: str = "") -> bytes:
        pad = itertools.cycle(self.pads)
        items = [e.render(prefix) for e in self.elements]
        if self.fmt == "jsonlines":
            lines = []
            for i, item in enumerate(items):
                end = self.ends[i % len(self.ends)] if self.final or i < len(items) - 1 else ""
                lines.append(self.blanks[i % len(self.blanks)] + item + end)
            return "".join(lines).encode()
        if self.fmt == "bare":
            return (next(pad) + items[0] + next(pad)).encode()
        array = "[" + ",".join(next(pad) + i + next(pad) for i in items) + next(pad) + "]"
        if self.fmt == "array":
            return (next(pad) + array + next(pad)).encode()
        members = [*self.extra, ("logs", array)]
        return (next(pad) + _object(members, pad, False) + next(pad)).encode()

    def expected(self, prefix: str = "") -> list[tuple[str, str, str | None, str | None, bytes]]:
        return [e.expected(prefix) for e in self.elements]


@st.composite
def bodies(
    draw: st.DrawFn,
    formats: Sequence[str] = BODY_FORMATS,
    keys: st.SearchStrategy[str] | None = None,
    max_elements: int = 6,
) -> Body:
    """Valid bodies in every content format."""
    fmt = draw(st.sampled_from(formats))
    space = LINE_WHITESPACE if fmt == "jsonlines" else WHITESPACE
    low = 1 if fmt in ("jsonlines", "bare") else 0
    high = 1 if fmt == "bare" else max_elements
    items = draw(st.lists(elements(space, keys), min_size=low, max_size=high))
    return Body(
        fmt=fmt,
        elements=tuple(items),
        ends=tuple(draw(st.lists(st.sampled_from(("\n", "\r\n")), min_size=1, max_size=3))),
        final=draw(st.booleans()),
        blanks=tuple(
            draw(
                st.lists(
                    st.sampled_from(("", "", "\n", "\r\n", " \t\n", "\n\n")),
                    min_size=1,
                    max_size=3,
                )
            )
        ),
        pads=tuple(
            draw(st.lists(st.text(alphabet=WHITESPACE, max_size=3), min_size=1, max_size=4))
        ),
        extra=tuple(draw(st.lists(st.tuples(plain_keys, value_texts(WHITESPACE)), max_size=2))),
    )


# -- mutations ---------------------------------------------------------------------------

INVALID_UTF8 = (
    b"\xff",
    b"\xfe",
    b"\xc3",  # a lead byte alone
    b"\x80",  # a continuation byte alone
    b"\xc0\xaf",  # overlong "/"
    b"\xed\xa0\x80",  # U+D800 encoded
    b"\xf4\x90\x80\x80",  # beyond U+10FFFF
    b"\xe2\x80",  # U+2028 cut short
)
SURROGATE_ESCAPES = (b"\\ud800", b"\\udfff", b"\\ud800\\u0041", b"\\udc00\\ud800", b"\\uD83D")
LINE_SEPARATORS = ("\u2028".encode(), "\u2029".encode())
MUTATIONS = (
    "flip",
    "truncate",
    "duplicate-line",
    "nul",
    "separator",
    "separator-in-string",
    "endings",
    "bom",
    "invalid-utf8",
    "surrogate",
    "delete",
    "insert-byte",
)
mutations = st.lists(
    st.tuples(st.sampled_from(MUTATIONS), st.integers(0, 1 << 20), st.integers(0, 1 << 20)),
    min_size=1,
    max_size=3,
)


def mutate(body: bytes, ops: Sequence[tuple[str, int, int]]) -> bytes:
    """``body`` changed by each of ``ops`` in turn (``a`` and ``b`` pick places and bytes)."""
    out = body
    for op, a, b in ops:
        out = _mutate_once(out, op, a, b)
    return out


def _mutate_once(body: bytes, op: str, a: int, b: int) -> bytes:
    at = a % (len(body) + 1)
    if op == "flip":
        if not body:
            return body
        i = a % len(body)
        return body[:i] + bytes([body[i] ^ (1 << (b % 8))]) + body[i + 1 :]
    if op == "truncate":
        return body[:at]
    if op == "duplicate-line":
        lines = body.splitlines(keepends=True) or [b""]
        line = lines[a % len(lines)]
        where = b % (len(lines) + 1)
        return b"".join([*lines[:where], line, *lines[where:]])
    if op == "nul":
        return body[:at] + b"\x00" + body[at:]
    if op == "separator":
        return body[:at] + LINE_SEPARATORS[b % 2] + body[at:]
    if op == "separator-in-string":
        quotes = [i for i, c in enumerate(body) if c == 0x22]
        if not quotes:
            return body
        i = quotes[a % len(quotes)] + 1
        return body[:i] + LINE_SEPARATORS[b % 2] + body[i:]
    if op == "endings":
        parts = body.split(b"\n")
        out = parts[0]
        for n, part in enumerate(parts[1:]):
            out += (b"\n", b"\r\n", b"\r")[(b >> (n % 16)) % 3] + part
        return out
    if op == "bom":
        return b"\xef\xbb\xbf" + body
    if op == "invalid-utf8":
        return body[:at] + INVALID_UTF8[b % len(INVALID_UTF8)] + body[at:]
    if op == "surrogate":
        quotes = [i for i, c in enumerate(body) if c == 0x22]
        i = quotes[a % len(quotes)] + 1 if quotes else at
        return body[:i] + SURROGATE_ESCAPES[b % len(SURROGATE_ESCAPES)] + body[i:]
    if op == "delete":
        return body[:at] + body[at + 1 + b % 4 :]
    if op == "insert-byte":
        return body[:at] + bytes([b % 256]) + body[at:]
    raise AssertionError(op)


# -- the reference reading ---------------------------------------------------------------


class Refused(Exception):
    """The reference reading finds the body invalid."""


class Undecided(Exception):
    """The reference reading cannot judge (stdlib ``json`` recursed too deeply)."""


@dataclass(frozen=True)
class RefElement:
    log_id: str
    type: str
    date: str | None
    user_id: str | None
    data: Any
    """The element's ``data`` as :func:`ref_loads` reads it."""


def _refuse_constant(name: str) -> Any:
    raise Refused(f"{name} is not JSON")


def ref_loads(text: bytes, exact: bool = True) -> Any:
    """JSON with the stdlib: strict, no NaN/Infinity; numbers as ``Decimal`` when ``exact``
    (no digit limit, 1e400 stays 1e400), else as ``json.loads`` reads them."""
    try:
        if exact:
            return json.loads(
                text.decode("utf-8"),
                parse_int=Decimal,
                parse_float=Decimal,
                parse_constant=_refuse_constant,
            )
        return json.loads(text.decode("utf-8"), parse_constant=_refuse_constant)
    except RecursionError:
        raise Undecided("nested too deeply for the stdlib") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, the int digit limit
        raise Refused(str(exc)) from None


def _ref_element(value: Any) -> RefElement:
    if not isinstance(value, dict):
        raise Refused("element is not an object")
    data = value.get("data")
    if not isinstance(data, dict):
        raise Refused("no data object")
    code = data.get("type")
    if not isinstance(code, str) or not code:
        raise Refused("no type")
    log_id = value.get("log_id")
    if not isinstance(log_id, str) or not log_id:
        log_id = data.get("log_id")
    if not isinstance(log_id, str) or not log_id:
        raise Refused("no log id")
    date = data.get("date")
    user_id = data.get("user_id")
    return RefElement(
        log_id,
        code,
        date if isinstance(date, str) else None,
        user_id if isinstance(user_id, str) else None,
        data,
    )


def reference(body: bytes, fmt: str, exact: bool = True) -> list[RefElement]:
    """The elements of ``body`` read as content format ``fmt`` (one of the fixed three) with
    the stdlib, following the rules in the parser's docstring; raises :class:`Refused`."""
    if fmt == "jsonlines":
        found = []
        for line in body.split(b"\n"):
            line = line.removesuffix(b"\r")
            # Blank like parse_body: bytes.isspace() also counts \x0b and \x0c, which JSON
            # does not; such a line holds no element either way, so it is let through.
            if line.isspace() or not line:
                continue
            found.append(_ref_element(ref_loads(line, exact)))
        return found
    value = ref_loads(body, exact)
    if fmt == "array":
        if not isinstance(value, list):
            raise Refused("not an array")
        return [_ref_element(v) for v in value]
    if not isinstance(value, dict):
        raise Refused("not an object")
    if "data" in value:
        return [_ref_element(value)]
    logs = value.get("logs")
    if not isinstance(logs, list):
        raise Refused("neither logs nor data")
    return [_ref_element(v) for v in logs]


def agrees(body: bytes, records: Sequence[Record], ref: Sequence[RefElement]) -> bool:
    if len(records) != len(ref):
        return False
    for record, element in zip(records, ref, strict=True):
        if (record.log_id, record.type, record.date, record.user_id) != (
            element.log_id,
            element.type,
            element.date,
            element.user_id,
        ):
            return False
        if record.data not in body or ref_loads(record.data) != element.data:
            return False
    return True


def check_against_reference(body: bytes, fmt: str, records: Sequence[Record]) -> None:
    """Every record ``parse_body(body, fmt)`` returned is an element of ``body``, as read by
    :func:`reference` in ``fmt`` (``auto``: in one of the three formats)."""
    for record in records:
        assert record.data in body, record  # byte-exact: a slice of what arrived
    candidates = ("jsonlines", "array", "object") if fmt == "auto" else (fmt,)
    refusals = []
    for candidate in candidates:
        try:
            ref = reference(body, candidate)
        except Refused as exc:
            refusals.append(f"{candidate}: {exc}")
            continue
        except Undecided:
            return  # the stdlib cannot read it; the slice check above still held
        if agrees(body, records, ref):
            return
        refusals.append(f"{candidate}: other elements {ref!r}")
    raise AssertionError(f"parse_body({fmt}) accepted {records!r}, but: {refusals}")


def parse_or_none(body: bytes, fmt: str) -> list[Record] | None:
    """``parse_body``, with ``ParseError`` (and only that) turned into None."""
    try:
        records = parse_body(body, fmt)
    except ParseError as exc:
        message = str(exc)
        assert message and "\n" not in message and "\r" not in message, repr(message)
        return None
    assert isinstance(records, list)
    return records


def check_any_input(body: bytes) -> None:
    for fmt in FORMATS:
        records = parse_or_none(body, fmt)
        if currently_in_test_context():
            event(f"{fmt}: {'rejected' if records is None else 'accepted'}")
        if records is not None:
            check_against_reference(body, fmt, records)


# -- the properties ----------------------------------------------------------------------

DEEP = 10_000
EXTREME_BODIES = [
    b"[" * DEEP,
    b"{" * DEEP,
    b'{"logs":' * DEEP,
    b"[" * DEEP + b"]" * DEEP,
    b'{"log_id":"d","data":{"type":"s","n":' + b"[" * DEEP + b"]" * DEEP + b"}}",
    b'{"log_id":"d","data":{"type":"s","n":' + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"}}",
    b'{"log_id":"n","data":{"type":"s","n":1e400,"m":-1e-400}}',
    b'{"log_id":"n","data":{"type":"s","n":' + b"9" * 100_000 + b"}}",
    b'{"log_id":"s","data":{"type":"s","x":"\\ud800"}}',
    b'{"log_id":"s","data":{"type":"\\udfff"}}',
    b'{"log_id":"\\ud800","data":{"type":"s"}}',
    b'{"log_id":"k","data":{"type":"s","":1,"":2}}',
    b'{"log_id":"k","log_id":"k2","data":{"type":"s","type":"f"}}',
    b'{"log_id":"k","data":{"type":"s"},"data":{"type":"f"}}',
    b"\xef\xbb\xbf" + b'{"log_id":"b","data":{"type":"s"}}',
    b'{"log_id":"r","data":{"type":"s"}}\r{"log_id":"r2","data":{"type":"s"}}\r',
    b'{"log_id":"u","data":{"type":"s"}}\xe2\x80\xa8{"log_id":"u2","data":{"type":"s"}}',
    b'{"log_id":"x","data":{"type":"s","v":"' + b"y" * 1_000_000 + b'"}}',
    b"\x0b\n\x0c",
    b"",
    b"\x00",
]


@given(st.binary(max_size=512))
@example(b"")
def test_arbitrary_bytes(body: bytes) -> None:
    check_any_input(body)


JSONISH = '{}[]":,\\ \t\r\n0123456789.eE+-truefalsnul_idatypgo\u2028é'


@given(st.text(alphabet=JSONISH, max_size=200).map(str.encode))
def test_json_like_text(body: bytes) -> None:
    check_any_input(body)


def test_extreme_bodies() -> None:
    for body in EXTREME_BODIES:
        check_any_input(body)


@given(bodies())
def test_valid_bodies_are_taken_whole(body: Body) -> None:
    raw = body.render()
    note(repr(raw))
    want = body.expected()
    for fmt in ("auto", body.parse_format):
        records = parse_body(raw, fmt)
        got = [(r.log_id, r.type, r.date, r.user_id, r.data) for r in records]
        assert got == want, fmt
        check_against_reference(raw, fmt, records)


@given(bodies(), mutations)
def test_mutated_bodies(body: Body, ops: list[tuple[str, int, int]]) -> None:
    raw = mutate(body.render(), ops)
    note(repr(raw))
    check_any_input(raw)


def test_big_integers_and_huge_numbers_pass_through_byte_exact() -> None:
    data = (
        b'{"type":"s","n":9007199254740993,"huge":123456789012345678901234567890,'
        b'"e":1e400,"digits":1' + b"0" * 1000 + b"}"
    )
    for body in (
        b'{"log_id":"big","data":' + data + b"}\n",
        b'[{"log_id":"big","data":' + data + b"}]",
        b'{"logs":[{"log_id":"big","data":' + data + b"}]}",
    ):
        (record,) = parse_body(body)
        assert record.data == data
        parsed = json.loads(record.data)
        assert parsed["n"] == 2**53 + 1
        assert parsed["huge"] == 123456789012345678901234567890
        assert ref_loads(record.data)["e"] == Decimal("1e400")
        assert ref_loads(record.data)["digits"] == 10**1000
