"""Splitting a webhook body into JSON objects (pure, no I/O).

A body is one JSON object, a JSON array of objects, or JSON Lines (one object per line,
lines split on ``\\n`` only, blank lines skipped). Each element is kept as the exact JSON
text that arrived (a :class:`msgspec.Raw` slice, surrounding whitespace dropped), so no value
is decoded and re-encoded on the way to the target.

A body is taken whole or not at all: the first bad element raises :class:`ParseError` with a
one-line message naming it (``element 2`` of an array, counted from 0; ``line 3`` of JSON
Lines, counted from 1 like an editor does).
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

import msgspec

__all__ = ["FORMATS", "Element", "ParseError", "check_utf8", "split_body"]

FORMATS: Final = ("auto", "object", "array", "jsonlines")

_NON_WS: Final = re.compile(rb"[^ \t\r\n]")
_OPEN_OBJECT: Final = ord("{")
_OPEN_ARRAY: Final = ord("[")
_RAW: Final = msgspec.json.Decoder(msgspec.Raw)
_RAW_LIST: Final = msgspec.json.Decoder(list[msgspec.Raw])
_Failure: Final = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)


class ParseError(ValueError):
    """The body cannot be taken; the message is one line, safe to show the client."""


class Element(NamedTuple):
    """One JSON object of a body: its exact text and how messages name it."""

    data: bytes
    label: str


def split_body(body: bytes, fmt: str = "auto") -> tuple[list[Element], str]:
    """The objects of ``body`` in format ``fmt`` (one of :data:`FORMATS`) and the format used.

    With ``auto``, a body starting with ``[`` is an array; one starting with ``{`` is a single
    object when the whole body is one JSON value, else (if it has several lines) JSON Lines.
    """
    check_utf8(body)
    first = _NON_WS.search(body)
    if first is None:
        raise ParseError("empty body")
    if fmt == "auto":
        lead = body[first.start()]
        if lead == _OPEN_ARRAY:
            fmt = "array"
        elif lead == _OPEN_OBJECT and b"\n" in body:
            # Decode once as one object; only a body that is not one is read as lines.
            try:
                return [_element(_RAW.decode(body), "body")], "object"
            except _Failure:
                fmt = "jsonlines"
    if fmt == "array":
        return _array(body), fmt
    if fmt == "jsonlines":
        return _lines(body), fmt
    return [_object(body)], "object"


def check_utf8(body: bytes) -> None:
    """Raise :class:`ParseError` naming the first byte that is not valid UTF-8."""
    if body.isascii():
        return
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"body is not valid UTF-8 (byte {exc.start})") from None


def _object(body: bytes) -> Element:
    try:
        raw = _RAW.decode(body)
    except _Failure as exc:
        raise ParseError(f"body is not valid JSON: {_why(exc)}") from None
    return _element(raw, "body")


def _element(raw: msgspec.Raw, label: str) -> Element:
    data = bytes(raw)
    if data[:1] != b"{":
        raise ParseError(f"{label} is a JSON {_kind(data)}, not an object")
    return Element(data, label)


def _array(body: bytes) -> list[Element]:
    try:
        items = _RAW_LIST.decode(body)
    except msgspec.ValidationError:
        raise ParseError("body is not a JSON array") from None
    except _Failure as exc:
        raise ParseError(f"body is not valid JSON: {_why(exc)}") from None
    return [_element(raw, f"element {index}") for index, raw in enumerate(items)]


def _lines(body: bytes) -> list[Element]:
    out: list[Element] = []
    for number, line in enumerate(body.split(b"\n"), 1):
        if _NON_WS.search(line) is None:
            continue
        try:
            raw = _RAW.decode(line)
        except _Failure as exc:
            raise ParseError(f"line {number} is not valid JSON: {_why(exc)}") from None
        out.append(_element(raw, f"line {number}"))
    return out


def _kind(data: bytes) -> str:
    lead = data[:1]
    if lead == b"[":
        return "array"
    if lead == b'"':
        return "string"
    if lead in (b"t", b"f"):
        return "boolean"
    if lead == b"n":
        return "null"
    return "number"


def _why(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).removeprefix("JSON is malformed: ")
