"""Where each CloudEvents attribute of a webhook element comes from (pure, no I/O).

A *place* is one of ``{"pointer": "/json/pointer"}`` (RFC 6901, into the element),
``{"header": "X-GitHub-Delivery"}`` (a request header) or ``{"value": "constant"}``; it may
add ``"optional": true`` and a ``"prefix"`` put before a string value (``X-GitHub-Event:
push`` with prefix ``com.github.`` gives the type ``com.github.push``).

:func:`compile_attributes` turns the ``attributes`` and ``extensions`` config into an
:class:`AttributeMap` once per connector; per request, :meth:`AttributeMap.for_request`
resolves the header and constant places once, and :meth:`RequestAttributes.event` builds one
event per element, decoding the element only when a pointer is configured.

Rules:

- ``id``: generated (UUID 4) when not configured. An id taken from a header or a constant is
  the same for every element, so in array and JSON Lines bodies the elements after the
  first get ``-<index>`` appended (``abc``, ``abc-1``, ``abc-2``, …).
- ``type`` defaults to :data:`DEFAULT_TYPE`, ``source`` to the connector's default source.
- ``time`` must be an RFC 3339 string; integer epoch seconds (a JSON integer, or a header of
  digits) are converted to UTC.
- A configured place that is missing (or ``null``) is an error naming the element and the
  attribute, except for ``subject`` and for places marked optional, which fall back to the
  default (or are left out).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from connector_runtime import AttributeValue, Event, is_rfc3339

__all__ = [
    "ATTRIBUTES",
    "DEFAULT_TYPE",
    "AttributeMap",
    "AttributeProblem",
    "Place",
    "RequestAttributes",
    "compile_attributes",
    "epoch_to_rfc3339",
    "parse_pointer",
    "resolve_pointer",
]

DEFAULT_TYPE: Final = "com.example.webhook"
ATTRIBUTES: Final = ("id", "type", "source", "subject", "time")
RESERVED: Final = frozenset(
    {*ATTRIBUTES, "specversion", "datacontenttype", "dataschema", "data", "data_base64"}
)
INT32: Final = range(-(2**31), 2**31)

_INDEX: Final = re.compile(r"^(0|[1-9][0-9]*)$")
_BAD_ESCAPE: Final = re.compile(r"~(?![01])")
_EPOCH: Final = re.compile(r"^\d{1,12}$")
_DOCUMENT: Final = msgspec.json.Decoder()


class AttributeProblem(ValueError):
    """An element's attribute cannot be taken; the message is one line, safe to show."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


# -- JSON pointers -----------------------------------------------------------------------


def parse_pointer(text: str) -> tuple[str, ...]:
    """RFC 6901: ``"/a~1b/0"`` → ``("a/b", "0")``; ``""`` is the whole document.

    Raises :class:`ValueError` for text that is not a pointer.
    """
    if text == "":
        return ()
    if not text.startswith("/"):
        raise ValueError(f"JSON pointer {text!r} must start with '/'")
    if _BAD_ESCAPE.search(text):
        raise ValueError(f"JSON pointer {text!r} has a '~' not followed by 0 or 1")
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in text[1:].split("/"))


def resolve_pointer(document: Any, tokens: tuple[str, ...]) -> Any:
    """The value at ``tokens`` in a decoded document, or :data:`MISSING`."""
    node = document
    for token in tokens:
        if isinstance(node, dict):
            if token not in node:
                return MISSING
            node = node[token]
        elif isinstance(node, list):
            if _INDEX.match(token) is None or int(token) >= len(node):
                return MISSING
            node = node[int(token)]
        else:
            return MISSING
    return node


def epoch_to_rfc3339(seconds: int) -> str:
    """``1700000000`` → ``"2023-11-14T22:13:20Z"``; :class:`ValueError` when out of range."""
    try:
        moment = datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"epoch seconds {seconds} out of range") from None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- places ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """Where one attribute comes from (see the module docstring)."""

    kind: str
    where: str
    tokens: tuple[str, ...] = ()
    optional: bool = False
    prefix: str = ""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Place:
        optional = bool(config.get("optional", False))
        prefix = str(config.get("prefix", ""))
        if "pointer" in config:
            text = str(config["pointer"])
            return cls("pointer", text, parse_pointer(text), optional, prefix)
        if "header" in config:
            return cls("header", str(config["header"]), (), optional, prefix)
        return cls("value", str(config["value"]), (), optional, prefix)

    def describe(self) -> str:
        return f"{self.kind} {self.where}" if self.kind != "value" else "value"


@dataclass(frozen=True)
class AttributeMap:
    """The compiled ``attributes`` and ``extensions`` config of one connector."""

    places: tuple[tuple[str, Place], ...]
    """``(name, place)`` for every configured attribute and extension, attributes first."""
    default_source: str
    default_type: str = DEFAULT_TYPE
    new_id: Callable[[], str] = lambda: str(uuid.uuid4())

    def for_request(self, headers: Mapping[str, str]) -> RequestAttributes:
        """Resolve the header and constant places of one request.

        Raises :class:`AttributeProblem` when a required header is missing.
        """
        fixed: dict[str, Any] = {}
        pointers: list[tuple[str, Place]] = []
        for name, place in self.places:
            if place.kind == "pointer":
                pointers.append((name, place))
                continue
            value: Any = place.where
            if place.kind == "header":
                value = headers.get(place.where) or MISSING
                if value is not MISSING and name == "time" and _EPOCH.match(value):
                    value = int(value)
            taken = _take(name, place, value, "request")
            if taken is not MISSING:
                fixed[name] = taken
        return RequestAttributes(self, fixed, tuple(pointers))


@dataclass(frozen=True)
class RequestAttributes:
    """An :class:`AttributeMap` with one request's headers filled in."""

    map: AttributeMap
    fixed: Mapping[str, AttributeValue]
    pointers: tuple[tuple[str, Place], ...]

    def event(self, data: bytes, label: str, index: int = 0) -> Event:
        """The event of one element (its exact JSON text ``data``, named ``label``)."""
        attributes: dict[str, AttributeValue] = {"specversion": "1.0"}
        found = dict(self.fixed)
        if self.pointers:
            try:
                document = _DOCUMENT.decode(data)
            except (msgspec.DecodeError, RecursionError):
                raise AttributeProblem(f"{label}: not valid JSON") from None
            for name, place in self.pointers:
                taken = _take(name, place, resolve_pointer(document, place.tokens), label)
                if taken is not MISSING:
                    found[name] = taken
        event_id = found.pop("id", None)
        if event_id is None:
            event_id = self.map.new_id()
        elif index and "id" in self.fixed:  # from a header or a constant: same for all
            event_id = f"{event_id}-{index}"
        attributes["id"] = event_id
        attributes["source"] = found.pop("source", self.map.default_source)
        attributes["type"] = found.pop("type", self.map.default_type)
        attributes["datacontenttype"] = "application/json"
        attributes.update(found)
        return Event(attributes, data)


def compile_attributes(
    attributes: Mapping[str, Any] | None,
    extensions: Mapping[str, Any] | None,
    default_source: str,
    new_id: Callable[[], str] | None = None,
) -> AttributeMap:
    """Compile validated config; :class:`ValueError` for a bad pointer (checked earlier)."""
    configured = attributes or {}
    places = [
        (name, Place.from_config(configured[name])) for name in ATTRIBUTES if name in configured
    ]
    places += [(name, Place.from_config(place)) for name, place in (extensions or {}).items()]
    if new_id is None:
        return AttributeMap(tuple(places), default_source)
    return AttributeMap(tuple(places), default_source, new_id=new_id)


# -- values ------------------------------------------------------------------------------


def _take(name: str, place: Place, value: Any, label: str) -> Any:
    """Check one attribute's raw value; :data:`MISSING` when it may be left out."""
    if value is None or value is MISSING or value == "":
        if place.optional or name == "subject":
            return MISSING
        state = "empty" if value == "" else "missing"
        raise AttributeProblem(f"{label}: attribute {name!r} ({place.describe()}) is {state}")
    if name == "time":
        return _time(place, value, label)
    if isinstance(value, int) and not isinstance(value, bool):
        if name in ATTRIBUTES or place.prefix or value not in INT32:
            value = str(value)
        else:
            return value
    if isinstance(value, str):
        return place.prefix + value
    if isinstance(value, bool) and name not in ATTRIBUTES:
        return value
    wanted = "a string" if name in ATTRIBUTES else "a string, boolean or integer"
    raise AttributeProblem(
        f"{label}: attribute {name!r} ({place.describe()}) is a JSON {_json_kind(value)},"
        f" not {wanted}"
    )


def _time(place: Place, value: Any, label: str) -> str:
    where = f"{label}: attribute 'time' ({place.describe()})"
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return epoch_to_rfc3339(value)
        except ValueError as exc:
            raise AttributeProblem(f"{where}: {exc}") from None
    if isinstance(value, str) and is_rfc3339(value):
        return value
    raise AttributeProblem(f"{where} is not an RFC 3339 timestamp or integer epoch seconds")


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "number"
