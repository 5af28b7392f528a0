"""Mapping an Auth0 log record to a CloudEvent (pure).

=================  ==========================================================================
CloudEvent         from the record
=================  ==========================================================================
``id``             the log id (Auth0's ``log_id``): unique per log entry, and the same on
                   every retry of a batch, so the runtime can drop repeats
``source``         the connector's configured ``source`` (else the runtime's default)
``type``           ``com.auth0.log.<code>``, e.g. ``com.auth0.log.fp`` for a wrong password
``time``           ``data.date`` when it is an RFC 3339 timestamp (left out otherwise)
``subject``        ``data.user_id`` when it is a non-empty string
``datacontenttype`` ``application/json``
``auth0category``  the code's log stream filter category (left out when not known)
data               the ``data`` object exactly as it arrived
=================  ==========================================================================

Unknown codes are mapped like known ones, without ``auth0category``: Auth0 adds codes over
time and a new one must not be dropped.
"""

from __future__ import annotations

from typing import Final

import orjson
from connector_runtime import AttributeValue, Event, is_rfc3339

from connector_runtime_auth0.catalogue import EVENT_TYPES
from connector_runtime_auth0.parse import Record

__all__ = ["CATEGORY_ATTRIBUTE", "TYPE_PREFIX", "Mapper", "to_event", "type_of"]

TYPE_PREFIX: Final = "com.auth0.log."
CATEGORY_ATTRIBUTE: Final = "auth0category"

# The event's structured JSON document is built here, beside its attributes, from pieces
# encoded once per code: what the spool stores and a batch delivery sends, with no second
# encoding of attributes or data. It equals ``to_structured`` of the same event byte for
# byte (a test holds it to that).
_HEAD: Final = b'{"specversion":"1.0","id":'
_JSON_DATA: Final = b',"datacontenttype":"application/json"'
# For a body without a backslash, a string's JSON text is its characters in quotes (JSON
# escapes nothing else, and raw control characters are not valid JSON): the pieces around
# the strings then carry the quotes.
_ID_OPEN: Final = b'{"specversion":"1.0","id":"'
_SUBJECT_OPEN: Final = b'","subject":"'

Parts = tuple[str, str | None, bytes, bytes, bytes, bytes]
"""CloudEvents type, category or None, encoded type part, encoded category part, and the
two joins of the quoted fast path: the type part up to the time's opening quote, and from
the subject's closing quote to the data."""


def _parts(ce_type: str, category: str | None) -> Parts:
    cat = b"" if category is None else b',"auth0category":' + orjson.dumps(category)
    type_part = b',"type":' + orjson.dumps(ce_type) + _JSON_DATA
    return ce_type, category, type_part, cat, type_part + b',"time":"', b'"' + cat + b',"data":'


# code -> its Parts, so that mapping a known code looks up once and concatenates nothing.
_KNOWN: Final[dict[str, Parts]] = {
    code: _parts(TYPE_PREFIX + code, t.category) for code, t in EVENT_TYPES.items()
}


def type_of(code: str) -> str:
    """The CloudEvents ``type`` for an Auth0 event type code."""
    return TYPE_PREFIX + code


class Mapper:
    """Maps the records of one request to events with ``source``; a
    :data:`~connector_runtime_auth0.parse.Make` for ``parse_body``, so that no record
    object stands between the decoder and the event.

    ``plain`` stays True while every string that becomes an attribute is printable: then no
    attribute can hold a character CloudEvents strings exclude (the date is checked as a
    timestamp)."""

    __slots__ = ("_after_id", "_checking", "_source_part", "plain", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self._source_part = b',"source":' + orjson.dumps(source)
        self._after_id = b'"' + self._source_part
        self.plain = source.isprintable()
        self._checking = self.plain

    def checked_body(self, body: bytes) -> None:
        """Skip the per-record check for a body that cannot hold such a character: ASCII
        without escapes (raw control characters are not valid JSON) and without DEL."""
        if self.plain and body.isascii() and b"\\" not in body and b"\x7f" not in body:
            self._checking = False

    def __call__(
        self, log_id: str, code: str, date: str | None, user_id: str | None, data: bytes
    ) -> Event:
        known = _KNOWN.get(code)
        ce_type, category, type_part, category_part, type_time, close_data = (
            known if known is not None else _parts(TYPE_PREFIX + code, None)
        )
        if not self._checking and user_id and date is not None and is_rfc3339(date):
            # The usual record, from a body checked_body found plain: no escapes anywhere.
            attributes: dict[str, AttributeValue] = {
                "specversion": "1.0",
                "id": log_id,
                "source": self.source,
                "type": ce_type,
                "datacontenttype": "application/json",
                "time": date,
                "subject": user_id,
            }
            if category is not None:
                attributes[CATEGORY_ATTRIBUTE] = category
            return Event(
                attributes,
                data,
                b"".join(
                    (
                        _ID_OPEN,
                        log_id.encode(),
                        self._after_id,
                        type_time,
                        date.encode(),
                        _SUBJECT_OPEN,
                        user_id.encode(),
                        close_data,
                        data,
                        b"}",
                    )
                ),
            )
        attributes = {
            "specversion": "1.0",
            "id": log_id,
            "source": self.source,
            "type": ce_type,
            "datacontenttype": "application/json",
        }
        parts = [_HEAD, orjson.dumps(log_id), self._source_part, type_part]
        if date is not None and is_rfc3339(date):
            attributes["time"] = date
            parts.append(b',"time":' + orjson.dumps(date))
        if user_id:
            attributes["subject"] = user_id
            parts.append(b',"subject":' + orjson.dumps(user_id))
        if category is not None:
            attributes[CATEGORY_ATTRIBUTE] = category
            parts.append(category_part)
        parts += (b',"data":', data, b"}")
        if self._checking and not (
            log_id.isprintable() and code.isprintable() and (user_id or "").isprintable()
        ):
            self.plain = self._checking = False
        return Event(attributes, data, b"".join(parts))


def to_event(record: Record, source: str) -> Event:
    """The CloudEvent for ``record``, with ``source`` as its ``source`` attribute."""
    return Mapper(source)(record.log_id, record.type, record.date, record.user_id, record.data)
