"""What a spool row stores of its events, and how big events count for quotas.

A row's payload is its events' structured JSON documents joined with ``,`` after their
count and lengths: a batch delivery joins whole row texts into its body, and a document is
cut out only when something asks for one event (:class:`~connector_runtime.events.
EncodedEvents`). Rows written before this format hold a msgpack array of the documents,
and still decode.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

import msgspec

from connector_runtime.events import EncodedEvents, Event, docs_of, to_structured

_decoder = msgspec.msgpack.Decoder(list[bytes])
_COUNT: Final = struct.Struct("<I")
_RUN: Final = b"R"
"""First byte of a row payload: the documents joined with ``,``, after their count and
lengths (``R``, then little-endian uint32s). Rows from before it hold a msgpack array of
the documents (which never starts with ``R``)."""


def encode_events(events: Sequence[Event]) -> bytes:
    """A spool row's payload: the events' structured JSON documents joined with ``,`` (a
    batch delivery joins such texts whole), after their lengths (to cut one out)."""
    return encode_docs(docs_of(events))


def encode_docs(docs: list[bytes]) -> bytes:
    """:func:`encode_events` of documents already encoded (one allocation of the payload's
    size: the header goes onto the first document)."""
    if not docs:
        return _RUN + _COUNT.pack(0)
    header = _RUN + struct.pack(f"<I{len(docs)}I", len(docs), *map(len, docs))
    parts = list(docs)
    parts[0] = header + parts[0]
    return b",".join(parts)


def decode_events(payload: bytes | memoryview) -> EncodedEvents:
    if payload[:1] == _RUN:
        (count,) = _COUNT.unpack_from(payload, 1)
        lengths = list(struct.unpack_from(f"<{count}I", payload, 5))
        text = memoryview(payload)[5 + 4 * count :]
        return EncodedEvents.from_runs([(text, lengths)] if count else [])
    return EncodedEvents(_decoder.decode(payload))


def encode_event(event: Event) -> bytes:
    return to_structured(event)


def decode_event(payload: bytes) -> Event:
    return Event.from_structured(payload)


ATTRIBUTE_ALLOWANCE = 256
"""Bytes counted for an event's attributes before it is encoded."""


def event_size(event: Event) -> int:
    """An event's size for quotas: its stored document's length once it has one, else its
    data plus a fixed allowance for the attributes (no encoding or decoding either way)."""
    if event.doc is not None:
        return len(event.doc)
    data = event.data
    return (len(data) if data is not None else 0) + ATTRIBUTE_ALLOWANCE


def events_size(events: Sequence[Event]) -> int:
    """:func:`event_size` summed; for events read back from the spool, without making them."""
    if isinstance(events, EncodedEvents):
        return events.size()
    docs = [e.doc for e in events]
    if None not in docs:
        return sum(map(len, docs))  # type: ignore[arg-type]
    return sum(map(event_size, events))
