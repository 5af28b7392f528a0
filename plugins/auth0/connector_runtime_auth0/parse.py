"""Turning an Auth0 log stream request body into records (pure, no I/O).

Auth0's Custom Webhook log stream delivers batches of elements ``{"log_id": …, "data": {…}}``
in one of three content formats, chosen per stream:

- JSON Lines: one element per line (Auth0 still labels it ``application/json``);
- JSON Array: ``[element, element, …]``;
- JSON Object: ``{"logs": [element, …]}``, or one bare element.

:func:`parse_body` decodes only what the runtime needs (the log id, the type code, the date
and the user id) and keeps each element's ``data`` object as the exact JSON text that
arrived, so numbers such as ``2**53 + 1`` or 30-digit integers pass through untouched. A body
is taken whole or not at all: the first bad element raises :class:`ParseError` with a
one-line message naming the line (JSON Lines, from 1) or the element (from 0).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final, TypeVar

import msgspec
from connector_runtime import bracketed

__all__ = ["FORMATS", "Make", "ParseError", "Record", "detect_format", "parse_body"]

T = TypeVar("T")
Make = Callable[[str, str, "str | None", "str | None", bytes], T]
"""What :func:`parse_body` builds of each element: ``make(log_id, type, date, user_id,
data)`` (:class:`Record` by default; the handler builds its events directly)."""

FORMATS: Final = ("auto", "jsonlines", "array", "object")

_NO_RAW: Final = msgspec.Raw()
_NON_WS: Final = re.compile(rb"[^ \t\r\n]")
_OPEN_OBJECT: Final = ord("{")
_OPEN_ARRAY: Final = ord("[")
_QUOTE: Final = ord('"')


class ParseError(ValueError):
    """The body is not a valid Auth0 log batch; the message is one line, safe to show."""


class Record(msgspec.Struct, frozen=True, gc=False):
    """One Auth0 log record, as much of it as the mapping needs.

    ``data`` is the exact JSON text of the element's ``data`` object. ``date`` and
    ``user_id`` are ``None`` when absent or not strings.
    """

    log_id: str
    type: str
    date: str | None
    user_id: str | None
    data: bytes


# -- the decoders, built once ------------------------------------------------------------
# The fast path types every field strictly; anything unusual (a log id that is a number, a
# date that is an object, an element that is not an object) fails validation there and is
# looked at again by the lenient path, which finds the exact problem for the message.
# None of these structs can be part of a reference cycle (they hold strings and raw JSON),
# so the garbage collector need not track them: two of every record's few tracked objects.


class _Element(msgspec.Struct, gc=False):
    log_id: str | None = None
    data: msgspec.Raw = _NO_RAW


class _Fields(msgspec.Struct, gc=False):
    type: str = ""
    date: str | None = None
    user_id: str | None = None
    log_id: str | None = None


class _LooseElement(msgspec.Struct, gc=False):
    log_id: msgspec.Raw = _NO_RAW
    data: msgspec.Raw = _NO_RAW


class _LooseFields(msgspec.Struct, gc=False):
    type: msgspec.Raw = _NO_RAW
    date: msgspec.Raw = _NO_RAW
    user_id: msgspec.Raw = _NO_RAW
    log_id: msgspec.Raw = _NO_RAW


class _Envelope(msgspec.Struct, gc=False):
    logs: msgspec.Raw = _NO_RAW
    data: msgspec.Raw = _NO_RAW


_ELEMENT: Final = msgspec.json.Decoder(_Element)
_ELEMENTS: Final = msgspec.json.Decoder(list[_Element])
_FIELDS: Final = msgspec.json.Decoder(_Fields)
_FIELDS_LIST: Final = msgspec.json.Decoder(list[_Fields])
_LOOSE_ELEMENT: Final = msgspec.json.Decoder(_LooseElement)
_LOOSE_FIELDS: Final = msgspec.json.Decoder(_LooseFields)
_RAW_LIST: Final = msgspec.json.Decoder(list[msgspec.Raw])
_ENVELOPE: Final = msgspec.json.Decoder(_Envelope)
_VALUE: Final = msgspec.json.Decoder(msgspec.Raw)
_STRING: Final = msgspec.json.Decoder(str)

_DecodeFailure = (msgspec.DecodeError, RecursionError)


# -- public ------------------------------------------------------------------------------


def parse_body(body: bytes, fmt: str = "auto", make: Make[T] = Record) -> list[T]:  # type: ignore[assignment]
    """Parse a request body in content format ``fmt`` (one of :data:`FORMATS`).

    Raises :class:`ParseError` for an empty body, invalid UTF-8, text that is not JSON, and
    any element that is not an object, lacks ``data`` (an object) with a string
    ``data.type``, or has no log id (``log_id``, else ``data.log_id``).
    """
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"body is not valid UTF-8 (byte {exc.start})") from None
    if fmt == "auto":
        fmt = detect_format(body)
    elif _NON_WS.search(body) is None:
        raise ParseError("empty body")
    if fmt == "jsonlines":
        return _parse_lines(body, make)
    if fmt == "array":
        return _parse_array(body, "body", make)
    if fmt == "object":
        return _parse_object(body, make)
    raise ValueError(f"unknown content format {fmt!r}; expected one of {', '.join(FORMATS)}")


def detect_format(body: bytes) -> str:
    """Guess the content format of ``body`` from its first bytes: never the whole body.

    ``[`` starts an array. ``{`` starts JSON Lines when more follows the first line and that
    line is a complete JSON value on its own; otherwise the body is one object (one element
    or an envelope, possibly pretty-printed).
    """
    first = _NON_WS.search(body)
    if first is None:
        raise ParseError("empty body")
    start = first.start()
    opener = body[start]
    if opener == _OPEN_ARRAY:
        return "array"
    if opener != _OPEN_OBJECT:
        raise ParseError(
            f"body is not JSON Lines, a JSON array or a JSON object (byte {start} is not"
            " '{' or '[')"
        )
    newline = body.find(b"\n", start)
    if newline < 0 or _NON_WS.search(body, newline + 1) is None:
        return "object"
    line = body[start:newline]
    if line.endswith(b"\r"):
        line = line[:-1]
    try:
        _VALUE.decode(line)
    except _DecodeFailure:
        return "object"
    return "jsonlines"


# -- the formats -------------------------------------------------------------------------


def _parse_lines(body: bytes, make: Make[T]) -> list[T]:
    # Lines are cut on b"\n" alone: U+2028 and U+2029 are line breaks to str.splitlines but
    # ordinary characters inside JSON strings.
    decode = _ELEMENT.decode
    try:
        elements = [decode(line) for line in body.split(b"\n") if line and not line.isspace()]
    except _DecodeFailure:
        return _parse_lines_one_by_one(body, make)
    records = _at_once(elements, make)
    return records if records is not None else _parse_lines_one_by_one(body, make)


def _at_once(elements: list[_Element], make: Make[T]) -> list[T] | None:
    """The records of well-formed elements, their ``data`` members decoded in one call (as
    one JSON array); None when any element needs a closer look (the caller's element-by-
    element path then finds the exact problem, or the lenient reading)."""
    raws = [e.data for e in elements]
    try:
        fields = _FIELDS_LIST.decode(b",".join(bracketed(raws)))
    except _DecodeFailure:  # a missing or non-object data, a field of an odd type
        return None
    if len(fields) != len(elements):  # one element, without data: "[]"
        return None
    records: list[T] = []
    append = records.append
    for element, field, raw in zip(elements, fields, raws, strict=True):
        log_id = element.log_id or field.log_id
        if not (log_id and field.type):
            return None
        append(make(log_id, field.type, field.date, field.user_id, bytes(raw)))
    return records


def _parse_lines_one_by_one(body: bytes, make: Make[T]) -> list[T]:
    records: list[T] = []
    append = records.append
    for number, text in enumerate(body.split(b"\n"), 1):
        line = text[:-1] if text.endswith(b"\r") else text
        if not line or line.isspace():
            continue
        try:
            element = _ELEMENT.decode(line)
        except msgspec.ValidationError:
            append(_loose_record(line, "line", number, make))
            continue
        except _DecodeFailure as exc:
            raise _not_json("line", number, exc) from None
        append(_record(element, "line", number, make))
    return records


def _parse_array(text: bytes, place: str, make: Make[T]) -> list[T]:
    try:
        elements = _ELEMENTS.decode(text)
    except msgspec.ValidationError:
        return _parse_array_slowly(text, place, make)
    except _DecodeFailure as exc:
        raise _not_json(place, None, exc) from None
    records = _at_once(elements, make)
    if records is not None:
        return records
    return [_record(element, "element", index, make) for index, element in enumerate(elements)]


def _parse_array_slowly(text: bytes, place: str, make: Make[T]) -> list[T]:
    try:
        raws = _RAW_LIST.decode(text)
    except msgspec.ValidationError:
        raise ParseError(f"{place} is not a JSON array") from None
    except _DecodeFailure as exc:  # the strict decoder stopped at a bad element before this
        raise _not_json(place, None, exc) from None
    return [_loose_record(bytes(raw), "element", index, make) for index, raw in enumerate(raws)]


def _parse_object(body: bytes, make: Make[T]) -> list[T]:
    try:
        envelope = _ENVELOPE.decode(body)
    except msgspec.ValidationError:
        raise ParseError("body is not a JSON object") from None
    except _DecodeFailure as exc:
        raise _not_json("body", None, exc) from None
    if len(envelope.logs) and not len(envelope.data):
        return _parse_array(bytes(envelope.logs), "'logs'", make)
    if not len(envelope.data):
        raise ParseError("body is a JSON object with neither 'logs' nor 'data'")
    try:
        element = _ELEMENT.decode(body)
    except msgspec.ValidationError:
        return [_loose_record(body, "element", 0, make)]
    except _DecodeFailure as exc:
        raise _not_json("element", 0, exc) from None
    return [_record(element, "element", 0, make)]


# -- one element -------------------------------------------------------------------------


def _record(element: _Element, kind: str, index: int, make: Make[T]) -> T:
    data_raw = element.data
    if not len(data_raw):
        raise _bad(kind, index, "no 'data' member")
    data = bytes(data_raw)
    if data[0] != _OPEN_OBJECT:
        raise _bad(kind, index, "'data' is not a JSON object")
    try:
        fields = _FIELDS.decode(data)
    except msgspec.ValidationError:
        return _loose_fields(element.log_id, data, kind, index, make)
    except _DecodeFailure as exc:
        # msgspec skips unknown members without decoding them, so a string it refuses (a
        # lone surrogate escape such as "\ud800") may first be met here.
        raise _not_json(kind, index, exc) from None
    if not fields.type:
        raise _bad(kind, index, "'data.type' is missing or not a non-empty string")
    log_id = element.log_id or fields.log_id
    if not log_id:
        raise _bad(kind, index, _NO_LOG_ID)
    return make(log_id, fields.type, fields.date, fields.user_id, data)


def _loose_record(text: bytes, kind: str, index: int, make: Make[T]) -> T:
    """The lenient path for an element the strict decoder refused."""
    try:
        element = _LOOSE_ELEMENT.decode(text)
    except msgspec.ValidationError:
        raise _bad(kind, index, "not a JSON object") from None
    except _DecodeFailure as exc:
        raise _not_json(kind, index, exc) from None
    if not len(element.data):
        raise _bad(kind, index, "no 'data' member")
    data = bytes(element.data)
    if data[0] != _OPEN_OBJECT:
        raise _bad(kind, index, "'data' is not a JSON object")
    try:
        log_id = _string(element.log_id)
    except msgspec.DecodeError as exc:
        raise _not_json(kind, index, exc) from None
    return _loose_fields(log_id, data, kind, index, make)


def _loose_fields(log_id: str | None, data: bytes, kind: str, index: int, make: Make[T]) -> T:
    try:
        fields = _LOOSE_FIELDS.decode(data)
        code = _string(fields.type)
        date = _string(fields.date)
        user_id = _string(fields.user_id)
        data_log_id = _string(fields.log_id)
    except _DecodeFailure as exc:
        raise _not_json(kind, index, exc) from None
    if not code:
        raise _bad(kind, index, "'data.type' is missing or not a non-empty string")
    log_id = log_id or data_log_id
    if not log_id:
        raise _bad(kind, index, _NO_LOG_ID)
    return make(log_id, code, date, user_id, data)


def _string(raw: msgspec.Raw) -> str | None:
    """The value of ``raw`` when it is a JSON string, else ``None`` (``DecodeError`` when
    the string holds an escape msgspec refuses, such as a lone surrogate)."""
    if not len(raw) or memoryview(raw)[0] != _QUOTE:
        return None
    return _STRING.decode(raw)


# -- messages ----------------------------------------------------------------------------

_NO_LOG_ID: Final = "no log id ('log_id' or 'data.log_id' must be a non-empty string)"


def _bad(kind: str, index: int, what: str) -> ParseError:
    return ParseError(f"{kind} {index}: {what}")


def _not_json(kind: str, index: int | None, exc: BaseException) -> ParseError:
    place = kind if index is None else f"{kind} {index}"
    if isinstance(exc, RecursionError):
        return ParseError(f"{place}: JSON nested too deeply")
    return ParseError(f"{place}: not valid JSON ({exc})")
