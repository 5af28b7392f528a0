"""The event model and its encodings (CloudEvents 1.0, JSON format, HTTP binding).

An :class:`Event` holds the context attributes as a plain dict and the data as bytes,
already encoded for its ``datacontenttype``. For JSON data the bytes are the exact JSON
text that arrived, so values pass through unchanged (``2**53 + 1`` stays exact) and no
event is ever decoded and re-encoded on the hot path.

Encodings are pure functions:

- :func:`to_structured` - one ``application/cloudevents+json`` document;
- :func:`to_binary` - ``ce-`` headers plus the data as the body;
- :func:`to_batch` - an ``application/cloudevents-batch+json`` array.

The ``cloudevents`` SDK is the reference these are tested against; it is kept off the hot
path because it validates and re-serialises every value.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Final

import msgspec
import orjson

AttributeValue = str | int | bool

STRUCTURED_CONTENT_TYPE: Final = "application/cloudevents+json"
BATCH_CONTENT_TYPE: Final = "application/cloudevents-batch+json"

_JSON_TYPE = re.compile(r"^(application|text)/([a-z0-9.+-]+\+)?json(\s*;.*)?$", re.IGNORECASE)
_TEXT_TYPE = re.compile(r"^text/", re.IGNORECASE)
# HTTP binding 3.1.3.2: space, '"', '%' and anything outside printable ASCII are %-encoded.
_HEADER_UNSAFE = re.compile(r'[^\x21-\x7e]|["%]')
_ATTRIBUTE_NAME = re.compile(r"[a-z0-9]{1,20}")


class Event:
    """One CloudEvent.

    ``attributes`` always holds ``specversion``, ``id``, ``source`` and ``type``; optional
    ones (``time``, ``subject``, ``datacontenttype``, ``dataschema``) and extensions are
    present only when set. ``data`` is ``None`` or bytes in the event's content type.

    An event read back from the spool (:meth:`from_structured`) keeps its structured JSON
    document and decodes attributes and data only if something asks for them: a batch
    delivery just joins the documents.
    """

    __slots__ = ("_attributes", "_data", "doc")

    def __init__(
        self, attributes: dict[str, AttributeValue], data: bytes | None, doc: bytes | None = None
    ) -> None:
        self._attributes: dict[str, AttributeValue] | None = attributes
        self._data = data
        self.doc: bytes | None = doc
        """The structured encoding, when it is known to match ``attributes`` and ``data``
        (a source that builds it while parsing passes it in; it must match exactly)."""

    @classmethod
    def from_structured(cls, doc: bytes) -> Event:
        """An event for a structured JSON document (decoded lazily)."""
        event = cls.__new__(cls)
        event._attributes = None
        event._data = None
        event.doc = doc
        return event

    @property
    def attributes(self) -> dict[str, AttributeValue]:
        if self._attributes is None:
            self._decode()
        assert self._attributes is not None
        self.doc = None  # the caller may change them: the document is no longer trusted
        return self._attributes

    @attributes.setter
    def attributes(self, value: dict[str, AttributeValue]) -> None:
        self._attributes = value
        self.doc = None

    @property
    def data(self) -> bytes | None:
        if self._attributes is None:
            self._decode()
        return self._data

    @data.setter
    def data(self, value: bytes | None) -> None:
        if self._attributes is None:
            self._decode()
        self._data = value
        self.doc = None

    def _decode(self) -> None:
        assert self.doc is not None
        self._attributes, self._data = parse_structured(self.doc)

    def peek(self) -> Mapping[str, AttributeValue]:
        """The attributes, to read only: unlike ``attributes`` (which hands out the dict to
        change, and so drops the encoded document), this keeps the document."""
        if self._attributes is None:
            self._decode()
            assert self._attributes is not None
        return self._attributes

    def get(self, name: str) -> AttributeValue | None:
        """The attribute ``name`` or None (read-only, like :meth:`peek`)."""
        return self.peek().get(name)

    @property
    def id(self) -> str:
        return str(self.get("id"))

    @property
    def type(self) -> str:
        return str(self.get("type"))

    def __repr__(self) -> str:
        return f"Event(id={self.id!r}, type={self.type!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Event) and self.peek() == other.peek() and self.data == other.data

    __hash__ = None  # type: ignore[assignment]


def make_event(
    *,
    id: str,
    source: str,
    type: str,
    data: bytes | None = None,
    datacontenttype: str | None = "application/json",
    time: str | None = None,
    subject: str | None = None,
    extensions: Mapping[str, AttributeValue] | None = None,
) -> Event:
    """Build an event, leaving out unset optional attributes."""
    attributes: dict[str, AttributeValue] = {
        "specversion": "1.0",
        "id": id,
        "source": source,
        "type": type,
    }
    if data is not None and datacontenttype:
        attributes["datacontenttype"] = datacontenttype
    if time is not None:
        attributes["time"] = time
    if subject is not None:
        attributes["subject"] = subject
    if extensions:
        attributes.update(extensions)
    return Event(attributes, data)


def is_json_content_type(content_type: str | None) -> bool:
    """True when data of this content type is JSON (absent means JSON, per the JSON format)."""
    return (
        content_type is None
        or content_type == "application/json"
        or _JSON_TYPE.match(content_type) is not None
    )


# The separators at offsets 4, 7, 10, 13, 16 and 19 of an RFC 3339 timestamp (value[4:20:3]).
_SEPARATORS: Final = frozenset(f"--{t}::{after}" for t in "Tt" for after in ".Zz+-")


def is_rfc3339(value: str) -> bool:
    """True when ``value`` is an RFC 3339 timestamp (the form the ``time`` attribute takes)."""
    # The RFC 3339 shape (cheap string checks: this runs for every record), then the
    # calendar via datetime (in C).
    if len(value) < 20 or value[4:20:3] not in _SEPARATORS or not value.isascii():
        return False
    last = value[-1]
    if last == "z":  # RFC 3339 allows a lower-case Z; datetime does not
        value = value[:-1] + "Z"
    elif last != "Z" and (value[-6] not in "+-" or value[-3] != ":"):
        return False
    if value[19] == "." and not value[20:21].isdigit():  # ".Z": a point needs digits
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        # datetime reads at most 6 fractional digits; RFC 3339 allows any number.
        end = 20
        while end < len(value) and value[end].isdigit():
            end += 1
        if value[19] != "." or end - 20 <= 6:
            return False
        try:
            datetime.fromisoformat(value[:26] + value[end:])
        except ValueError:
            return False
    return True


def is_extension_name(name: str) -> bool:
    """True when ``name`` is a valid CloudEvents attribute name (lower-case a-z, 0-9, ≤ 20)."""
    return _ATTRIBUTE_NAME.fullmatch(name) is not None


_members = msgspec.json.Decoder(dict[str, msgspec.Raw])
_value = msgspec.json.Decoder(str | int | bool)


def parse_structured(doc: bytes) -> tuple[dict[str, AttributeValue], bytes | None]:
    """Attributes and data of a structured JSON event, the data byte for byte as written."""
    members = _members.decode(doc)
    attributes: dict[str, AttributeValue] = {}
    data: bytes | None = None
    for name, raw in members.items():
        if name == "data":
            data = bytes(raw)
        elif name == "data_base64":
            data = base64.b64decode(str(_value.decode(raw)))
        else:
            attributes[name] = _value.decode(raw)
    if data is not None and "data" in members:
        ctype = attributes.get("datacontenttype")
        if not is_json_content_type(ctype if isinstance(ctype, str) else None):
            text = _value.decode(members["data"])
            data = str(text).encode("utf-8")
    return attributes, data


def ids_of(events: Iterable[Event]) -> list[str]:
    """The ``id`` of each event (what ``[e.id for e in events]`` gives, without a property
    call per event: this runs for every event the durable path takes)."""
    return [str((a if (a := e._attributes) is not None else e.peek())["id"]) for e in events]


def docs_of(events: Iterable[Event]) -> list[bytes]:
    """:func:`to_structured` of each event; the stored document where there is one."""
    return [d if (d := e.doc) is not None else to_structured(e) for e in events]


def to_structured(event: Event) -> bytes:
    """Encode one event in the JSON event format (structured mode)."""
    if event.doc is not None:
        return event.doc
    attributes = event.peek()
    head = orjson.dumps(attributes)
    data = event.data
    if data is None:
        return head
    content_type = attributes.get("datacontenttype")
    ctype = content_type if isinstance(content_type, str) else None
    if is_json_content_type(ctype):
        member = b',"data":' + data
    elif ctype is not None and _TEXT_TYPE.match(ctype):
        member = b',"data":' + orjson.dumps(data.decode("utf-8", "replace"))
    else:
        member = b',"data_base64":"' + base64.b64encode(data) + b'"'
    if head == b"{}":
        return b"{" + member[1:] + b"}"
    return head[:-1] + member + b"}"


def to_batch(events: Iterable[Event]) -> bytes:
    """Encode events as one JSON batch (``application/cloudevents-batch+json``).

    Events read back from the spool come as a sequence that holds their documents already
    joined with ``,`` (:class:`~connector_runtime.spool.payloads.EncodedEvents`); its
    ``structured_texts()`` gives them, and the body is a join of a few texts, without an
    event object made."""
    texts = getattr(events, "structured_texts", None)
    if texts is not None:
        return join_structured([t for t in texts() if len(t)])
    return join_structured([e.doc if e.doc is not None else to_structured(e) for e in events])


def join_structured(documents: Iterable[bytes | memoryview]) -> bytes:
    """Join already structured-encoded events into one batch body.

    One allocation of the body's size: the brackets go onto the first and last document
    (small copies) instead of around the joined text (``b"[" + joined + b"]"`` makes two
    more body-sized copies; at megabytes each, fresh pages from the kernel)."""
    return b",".join(bracketed(documents))


def bracketed(items: Iterable[bytes | memoryview]) -> list[bytes | memoryview]:
    """``items`` as a list whose ``b",".join`` is a JSON array: ``[`` on the first, ``]`` on
    the last."""
    parts = list(items)
    if not parts:
        return [b"[]"]
    parts[0] = b"".join((b"[", parts[0]))
    parts[-1] = b"".join((parts[-1], b"]"))
    return parts


def _header_value(value: AttributeValue) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    text = str(value)
    if _HEADER_UNSAFE.search(text) is None:
        return text
    return "".join(c if 0x21 <= ord(c) <= 0x7E and c not in '"%' else _percent(c) for c in text)


def _percent(char: str) -> str:
    return "".join(f"%{b:02X}" for b in char.encode("utf-8"))


def to_binary(event: Event) -> tuple[dict[str, str], bytes]:
    """Encode one event in HTTP binary mode: ``ce-`` headers and the data as body."""
    headers: dict[str, str] = {}
    for name, value in event.peek().items():
        if name == "datacontenttype":
            headers["Content-Type"] = str(value)
        else:
            headers["ce-" + name] = _header_value(value)
    return headers, event.data or b""
