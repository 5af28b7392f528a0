"""What a spool row stores of its events, the events it hands back, and how big events
count for quotas.

A row's payload is its events' structured JSON documents joined with ``,`` after their
count and lengths (:func:`encode_docs`). Read back, a payload becomes :class:`EncodedEvents`:
events known only by their documents, so a batch delivery joins whole row texts into its
body, and a document is cut out only when something asks for one event.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from typing import Final, overload

from connector_runtime.events import Event, docs_of, to_structured

_COUNT: Final = struct.Struct("<I")
_RUN: Final = b"R"
"""First byte of a row payload: the documents joined with ``,``, after their count and
lengths (``R``, then little-endian uint32s)."""

Run = tuple["bytes | memoryview", list[int]]
"""Documents stored joined with ``,`` (``text``), and the length of each."""


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
    """The events of a row's payload (:func:`encode_docs`), still encoded."""
    (count,) = _COUNT.unpack_from(payload, 1)
    lengths = list(struct.unpack_from(f"<{count}I", payload, 5))
    text = memoryview(payload)[5 + 4 * count :]
    return EncodedEvents.from_runs([(text, lengths)] if count else [])


def readable_docs(partial: bytes, count: int) -> list[bytes]:
    """The documents still whole in the first bytes of a row's payload of ``count``
    events whose end is lost."""
    if partial[:1] != _RUN or len(partial) < _COUNT.size + 1:
        return []
    (held,) = _COUNT.unpack_from(partial, 1)
    start = 1 + _COUNT.size * (held + 1)
    if held != count or len(partial) < start:
        return []
    docs = []
    for length in struct.unpack_from(f"<{held}I", partial, 1 + _COUNT.size):
        end = start + length
        if end > len(partial):
            break
        docs.append(partial[start:end])
        start = end + 1  # the comma between documents
    return docs


def encode_event(event: Event) -> bytes:
    """One event as a dead letter (or a NATS spool message) stores it: its document."""
    return to_structured(event)


def decode_event(payload: bytes) -> Event:
    return Event.from_structured(payload)


class EncodedEvents(Sequence[Event]):
    """Events known only by their structured JSON documents, as the spool hands them back.

    An item is made (and decoded, lazily) only when asked for; a slice stays encoded, and
    :func:`~connector_runtime.events.to_batch` joins the documents without making a single
    event (:meth:`structured_texts`). The dispatcher's usual round - read a spool batch,
    send it whole, settle it - touches no event object.

    The documents may come as *runs* (:meth:`from_runs`): each a text of documents joined
    with ``,`` and their lengths, as a spool row stores them. A batch body is then a join
    of a few runs, and single documents are cut out only if something asks for them.
    """

    __slots__ = ("_count", "_docs", "_runs")

    def __init__(self, docs: list[bytes]) -> None:
        self._docs: list[bytes] | None = docs
        self._runs: list[Run] | None = None
        self._count = len(docs)

    @classmethod
    def from_runs(cls, runs: list[Run]) -> EncodedEvents:
        encoded = cls.__new__(cls)
        encoded._docs = None
        encoded._runs = runs
        encoded._count = sum(len(lengths) for _, lengths in runs)
        return encoded

    @property
    def docs(self) -> list[bytes]:
        """The documents, one bytes object each."""
        if self._docs is None:
            docs: list[bytes] = []
            for text, lengths in self._runs or ():
                start = 0
                for length in lengths:
                    docs.append(bytes(text[start : start + length]))
                    start += length + 1
            self._docs = docs
        return self._docs

    def structured_texts(self) -> list[bytes | memoryview]:
        """The documents as texts whose ``b",".join`` is every document joined with ``,``
        (what :func:`~connector_runtime.events.to_batch` asks for)."""
        if self._runs is not None:
            return [text for text, _ in self._runs]
        return list(self._docs or ())

    def lengths(self) -> list[int]:
        """Each document's length in bytes (none is cut out)."""
        if self._runs is not None:
            return [n for _, lengths in self._runs for n in lengths]
        return [len(d) for d in self._docs or ()]

    def size(self) -> int:
        """The documents' bytes, summed."""
        if self._runs is not None:
            return sum(len(text) - len(lengths) + 1 for text, lengths in self._runs if lengths)
        return sum(map(len, self._docs or ()))

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> Event: ...

    @overload
    def __getitem__(self, index: slice) -> EncodedEvents: ...

    def __getitem__(self, index: int | slice) -> Event | EncodedEvents:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._count)
            if self._runs is not None and step == 1:  # a target's chunk: still runs
                return EncodedEvents.from_runs(_cut(self._runs, start, stop))
            return EncodedEvents(self.docs[index])
        return Event.from_structured(self.docs[index])

    def __iter__(self) -> Iterator[Event]:
        return map(Event.from_structured, self.docs)

    def __repr__(self) -> str:
        return f"EncodedEvents({self._count} events)"


def _cut(runs: list[Run], start: int, stop: int) -> list[Run]:
    """The documents ``start`` to ``stop`` of ``runs``, as runs (views, no copies)."""
    out: list[Run] = []
    first = 0
    for text, lengths in runs:
        n = len(lengths)
        lo, hi = max(start - first, 0), min(stop - first, n)
        if lo < hi:
            if lo == 0 and hi == n:
                out.append((text, lengths))
            else:
                begin = sum(lengths[:lo]) + lo
                end = begin + sum(lengths[lo:hi]) + hi - lo - 1
                out.append((memoryview(text)[begin:end], lengths[lo:hi]))
        first += n
        if first >= stop:
            break
    return out


def concat(parts: Sequence[Sequence[Event]]) -> Sequence[Event]:
    """The events of ``parts`` in order, still encoded when every part is."""
    if len(parts) == 1:
        return parts[0]
    if all(isinstance(p, EncodedEvents) for p in parts):
        encoded: list[EncodedEvents] = parts  # type: ignore[assignment]
        if all(p._runs is not None for p in encoded):
            return EncodedEvents.from_runs([r for p in encoded for r in p._runs or ()])
        return EncodedEvents([d for p in encoded for d in p.docs])
    return [e for p in parts for e in p]


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
