"""Requests that already are CloudEvents, taken as they are (pure, no I/O).

The HTTP binding has three shapes, told apart by the handler:

- structured mode: ``Content-Type: application/cloudevents+json``, one event as JSON;
- batch: ``Content-Type: application/cloudevents-batch+json``, a JSON array of them;
- binary mode: a ``ce-specversion`` header; the attributes are the ``ce-`` headers
  (percent-decoded), ``Content-Type`` is ``datacontenttype`` and the body is the data.

Every event must carry ``specversion`` 1.0 and non-empty ``id``, ``source`` and ``type``;
``time``, when present, must be RFC 3339, and every attribute name must be a valid one
(lower-case letters and digits, at most 20). Data is kept as bytes: JSON data as the exact
text that arrived, ``data_base64`` decoded, a string of a non-JSON content type as its UTF-8
bytes. Structured events with ``data`` and no ``datacontenttype`` are JSON by the JSON
format's rule, and say so explicitly once passed on. Problems raise
:class:`~connector_runtime_webhook.parse.ParseError` naming the event.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import unquote

import msgspec
from connector_runtime import (
    AttributeValue,
    Event,
    is_extension_name,
    is_json_content_type,
    is_rfc3339,
)

from connector_runtime_webhook.parse import ParseError, check_utf8

__all__ = [
    "BATCH",
    "HEADER_PREFIX",
    "STRUCTURED",
    "from_batch",
    "from_binary",
    "from_structured",
]

STRUCTURED: Final = "application/cloudevents+json"
BATCH: Final = "application/cloudevents-batch+json"
HEADER_PREFIX: Final = "ce-"
REQUIRED: Final = ("specversion", "id", "source", "type")
_STRING_ONLY: Final = frozenset({*REQUIRED, "time", "subject", "dataschema", "datacontenttype"})

_MEMBERS: Final = msgspec.json.Decoder(dict[str, msgspec.Raw])
_RAW_LIST: Final = msgspec.json.Decoder(list[msgspec.Raw])
_VALUE: Final = msgspec.json.Decoder()
_Failure: Final = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)


def from_binary(headers: Iterable[tuple[str, str]], content_type: str | None, body: bytes) -> Event:
    """The event of a binary-mode request (``ce-`` headers, ``Content-Type``, body)."""
    attributes: dict[str, AttributeValue] = {}
    for header, value in headers:
        lower = header.lower()
        if not lower.startswith(HEADER_PREFIX):
            continue
        name = lower[len(HEADER_PREFIX) :]
        if name == "datacontenttype" or name in attributes:
            continue  # the binding carries it as Content-Type; a repeated header: first wins
        if not is_extension_name(name):
            raise ParseError(f"header {header!r} does not name a valid CloudEvents attribute")
        try:
            attributes[name] = unquote(value, errors="strict")
        except UnicodeDecodeError:
            raise ParseError(f"header {header!r} is not percent-encoded UTF-8") from None
    if content_type:
        attributes["datacontenttype"] = content_type
    _validate(attributes, "event")
    return Event(attributes, body or None)


def from_structured(body: bytes) -> Event:
    """The event of a structured-mode request body."""
    check_utf8(body)
    try:
        members = _MEMBERS.decode(body)
    except msgspec.ValidationError:
        raise ParseError("event is not a JSON object") from None
    except _Failure as exc:
        raise ParseError(f"event is not valid JSON: {_why(exc)}") from None
    return _event(members, "event")


def from_batch(body: bytes) -> list[Event]:
    """The events of a batch request body (an empty array is allowed)."""
    check_utf8(body)
    try:
        items = _RAW_LIST.decode(body)
    except msgspec.ValidationError:
        raise ParseError("batch is not a JSON array") from None
    except _Failure as exc:
        raise ParseError(f"batch is not valid JSON: {_why(exc)}") from None
    events: list[Event] = []
    for index, raw in enumerate(items):
        label = f"event {index}"
        try:
            members = _MEMBERS.decode(raw)
        except _Failure:
            raise ParseError(f"{label} is not a JSON object") from None
        events.append(_event(members, label))
    return events


def _event(members: dict[str, msgspec.Raw], label: str) -> Event:
    attributes: dict[str, AttributeValue] = {}
    data_raw = members.pop("data", None)
    if data_raw is not None and bytes(data_raw) == b"null":
        data_raw = None
    data_b64 = members.pop("data_base64", None)
    for name, raw in members.items():
        if not is_extension_name(name):
            raise ParseError(f"{label}: {name!r} is not a valid CloudEvents attribute name")
        value = _VALUE.decode(raw)
        if value is None:
            continue
        if isinstance(value, str) or (
            name not in _STRING_ONLY and isinstance(value, bool | int) and not _big(value)
        ):
            attributes[name] = value
            continue
        allowed = "a string" if name in _STRING_ONLY else "a string, boolean or 32-bit integer"
        raise ParseError(f"{label}: attribute {name!r} must be {allowed}")
    _validate(attributes, label)
    content_type = attributes.get("datacontenttype")
    ctype = content_type if isinstance(content_type, str) else None
    data: bytes | None = None
    if data_raw is not None and data_b64 is not None:
        raise ParseError(f"{label}: has both 'data' and 'data_base64'")
    if data_b64 is not None:
        data = _base64(data_b64, label)
    elif data_raw is not None:
        data = bytes(data_raw)
        if ctype is None:
            attributes["datacontenttype"] = "application/json"
        elif not is_json_content_type(ctype):
            text = _VALUE.decode(data_raw)
            if not isinstance(text, str):
                raise ParseError(
                    f"{label}: 'data' of content type {ctype!r} must be a JSON string"
                    " (or use 'data_base64')"
                )
            data = text.encode("utf-8")
    return Event(attributes, data)


def _validate(attributes: dict[str, AttributeValue], label: str) -> None:
    missing = [name for name in REQUIRED if not attributes.get(name)]
    if missing:
        names = ", ".join(repr(name) for name in missing)
        raise ParseError(f"{label}: missing required attribute {names}")
    if attributes["specversion"] != "1.0":
        raise ParseError(
            f"{label}: specversion {attributes['specversion']!r} is not supported (only '1.0')"
        )
    time = attributes.get("time")
    if time is not None and not (isinstance(time, str) and is_rfc3339(time)):
        raise ParseError(f"{label}: attribute 'time' is not an RFC 3339 timestamp")


def _base64(raw: msgspec.Raw, label: str) -> bytes:
    text = _VALUE.decode(raw)
    if not isinstance(text, str):
        raise ParseError(f"{label}: 'data_base64' must be a string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ParseError(f"{label}: 'data_base64' is not valid base64") from None


def _big(value: Any) -> bool:
    return isinstance(value, int) and not -(2**31) <= value < 2**31


def _why(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).removeprefix("JSON is malformed: ")
