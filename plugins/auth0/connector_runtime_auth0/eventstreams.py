"""Auth0 Event Streams deliveries as CloudEvents (pure: bytes in, events out, no I/O).

An Event Streams webhook POSTs CloudEvents 1.0 in structured mode, one per request; a JSON
array of them is taken too, should a sender batch. Each event keeps its attributes as sent
(``id``, ``source``, ``type``, ``time``, ``subject``, ``dataschema`` and every extension
such as ``a0tenant``, ``a0stream`` and ``a0purpose``) and its ``data`` as the exact JSON
text that arrived. One spelling is normalised: ``spec_version`` (as in one of Auth0's own
examples) is read as ``specversion``, which is what the emitted event carries.

Also here: the catalogue of documented Event Streams types, for checking ``events``.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Final

import msgspec
from connector_runtime import AttributeValue, Event, is_extension_name, is_rfc3339

from connector_runtime_auth0.parse import ParseError

__all__ = [
    "EVENT_STREAM_TYPES",
    "OFFSET_ONLY",
    "TEST_PURPOSE",
    "closest_type",
    "is_known_type",
    "parse_cloudevents",
    "parse_message",
    "pass_on",
    "type_matcher",
]

EVENT_STREAM_TYPES: Final = (
    "user.created",
    "user.updated",
    "user.deleted",
    "organization.created",
    "organization.updated",
    "organization.deleted",
    "organization.member.added",
    "organization.member.deleted",
    "organization.member.role.assigned",
    "organization.member.role.deleted",
    "organization.connection.added",
    "organization.connection.updated",
    "organization.connection.removed",
    "organization.group.role.assigned",
    "organization.group.role.deleted",
    "group.created",
    "group.updated",
    "group.deleted",
    "group.member.added",
    "group.member.deleted",
    "group.role.assigned",
    "group.role.deleted",
    "connection.created",
    "connection.updated",
    "connection.deleted",
)
"""The event types Auth0 documents for Event Streams (the Management API's enum)."""

TEST_PURPOSE: Final = "test"
"""``a0purpose`` of a test delivery sent from the dashboard."""
OFFSET_ONLY: Final = "offset-only"
"""The SSE ``event`` of the Events API's heartbeats, which carry an offset and no event."""

_FAMILIES: Final = frozenset(
    name.rsplit(".", n)[0] + ".*"
    for name in EVENT_STREAM_TYPES
    for n in range(1, name.count(".") + 1)
)
_NAMES: Final = tuple(sorted({*EVENT_STREAM_TYPES, *_FAMILIES}))
_REQUIRED: Final = ("specversion", "id", "source", "type")
_STRINGS: Final = frozenset({*_REQUIRED, "time", "subject", "dataschema", "datacontenttype"})
_MEMBERS: Final = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ITEMS: Final = msgspec.json.Decoder(list[msgspec.Raw])
_VALUE: Final = msgspec.json.Decoder()
_FAILURE: Final = (msgspec.DecodeError, msgspec.ValidationError, RecursionError, UnicodeError)


def is_known_type(name: str) -> bool:
    """True for a documented type or a family of them (``organization.member.*``)."""
    return name in _NAMES


def closest_type(name: str, limit: int = 3) -> list[str]:
    """Documented types and families that look like ``name``, best first."""
    return difflib.get_close_matches(name, _NAMES, n=limit, cutoff=0.6)


def type_matcher(names: Sequence[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    """The exact types and the prefixes (from ``family.*``) that ``names`` select."""
    exact = frozenset(n for n in names if not n.endswith("*"))
    prefixes = tuple(n[:-1] for n in names if n.endswith("*"))
    return exact, prefixes


def parse_cloudevents(body: bytes) -> list[Event]:
    """The events of a delivery: one structured CloudEvent, or a JSON array of them.

    Raises :class:`ParseError` (one line, naming the event) for a body that is not that.
    """
    start = body.lstrip()[:1]
    if start == b"[":
        try:
            items = _ITEMS.decode(body)
        except _FAILURE as exc:
            raise ParseError(f"body is not a JSON array of CloudEvents: {_why(exc)}") from None
        return [_event(raw, f"event {index}") for index, raw in enumerate(items)]
    if start != b"{":
        raise ParseError("body is not a CloudEvent (a JSON object) or an array of them")
    return [_event(msgspec.Raw(body), "event")]


def parse_message(data: bytes) -> list[Event]:
    """The event of one Events API message's ``data``: ``{"offset": ..., "event": {...}}``
    (the node SDK's ``EventStreamCloudEvent…`` shape), or the CloudEvent itself (the guide
    says the data field holds the full payload); ``data`` of the CloudEvent byte for byte.

    Raises :class:`ParseError` for anything else.
    """
    try:
        members = _MEMBERS.decode(data)
    except _FAILURE as exc:
        raise ParseError(f"an Events API message is not a JSON object: {_why(exc)}") from None
    inner = members.get("event")
    if inner is not None and "specversion" not in members and "spec_version" not in members:
        if bytes(inner).lstrip()[:1] != b"{":
            raise ParseError("an Events API message's 'event' is not a CloudEvent object")
        return [_event(inner, "event")]
    return [_event(msgspec.Raw(data), "event")]


def pass_on(
    events: Sequence[Event], test_events: str, source: str | None
) -> tuple[list[Event], int]:
    """``testEvents`` and ``source`` of an ``auth0-events`` config applied to ``events``:
    what to hand over, and how many test deliveries (``a0purpose: test``) were among them."""
    tests = sum(1 for e in events if e.get("a0purpose") == TEST_PURPOSE)
    kept = list(events)
    if tests and test_events == "drop":
        kept = [e for e in events if e.get("a0purpose") != TEST_PURPOSE]
    if source:
        for event in kept:
            event.attributes["source"] = source
    return kept, tests


def _event(raw: msgspec.Raw, label: str) -> Event:
    try:
        members = _MEMBERS.decode(raw)
    except msgspec.ValidationError:
        raise ParseError(f"{label} is not a JSON object") from None
    except _FAILURE as exc:
        raise ParseError(f"{label} is not valid JSON: {_why(exc)}") from None
    if "specversion" not in members and "spec_version" in members:
        members["specversion"] = members.pop("spec_version")
    data = members.pop("data", None)
    if members.pop("data_base64", None) is not None:
        raise ParseError(f"{label}: 'data_base64' is not what Auth0 sends (JSON 'data' only)")
    attributes: dict[str, AttributeValue] = {}
    for name, value_raw in members.items():
        if not is_extension_name(name):
            raise ParseError(f"{label}: {name!r} is not a valid CloudEvents attribute name")
        value = _VALUE.decode(value_raw)
        if value is None:
            continue
        if isinstance(value, str) or (
            name not in _STRINGS and isinstance(value, bool | int) and -(2**31) <= value < 2**31
        ):
            attributes[name] = value
            continue
        allowed = "a string" if name in _STRINGS else "a string, boolean or 32-bit integer"
        raise ParseError(f"{label}: attribute {name!r} must be {allowed}")
    missing = [name for name in _REQUIRED if not attributes.get(name)]
    if missing:
        raise ParseError(f"{label}: missing attribute {', '.join(map(repr, missing))}")
    if attributes["specversion"] != "1.0":
        raise ParseError(f"{label}: specversion {attributes['specversion']!r} is not '1.0'")
    time = attributes.get("time")
    if time is not None and not (isinstance(time, str) and is_rfc3339(time)):
        raise ParseError(f"{label}: attribute 'time' is not an RFC 3339 timestamp")
    payload: bytes | None = None
    if data is not None and bytes(data) != b"null":
        payload = bytes(data)
        attributes.setdefault("datacontenttype", "application/json")
    return Event(attributes, payload)


def _why(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).removeprefix("JSON is malformed: ")
