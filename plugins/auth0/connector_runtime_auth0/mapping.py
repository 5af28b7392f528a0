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

from collections.abc import Sequence
from functools import lru_cache
from typing import Final

import orjson
from connector_runtime.events import AttributeValue, Event, is_rfc3339

from connector_runtime_auth0.catalogue import EVENT_TYPES
from connector_runtime_auth0.parse import Record

__all__ = ["CATEGORY_ATTRIBUTE", "TYPE_PREFIX", "plain_text", "to_event", "type_of"]

TYPE_PREFIX: Final = "com.auth0.log."
CATEGORY_ATTRIBUTE: Final = "auth0category"

# The event's structured JSON document is built here, beside its attributes, from pieces
# encoded once per code: what the spool stores and a batch delivery sends, with no second
# encoding of attributes or data. It equals ``to_structured`` of the same event byte for
# byte (a test holds it to that).
_HEAD: Final = b'{"specversion":"1.0","id":'
_JSON_DATA: Final = b',"datacontenttype":"application/json"'


def _parts(ce_type: str, category: str | None) -> tuple[str, str | None, bytes, bytes]:
    cat = b"" if category is None else b',"auth0category":' + orjson.dumps(category)
    return ce_type, category, b',"type":' + orjson.dumps(ce_type) + _JSON_DATA, cat


# code -> (CloudEvents type, category or None, encoded type part, encoded category part), so
# that mapping a known code concatenates nothing and looks up once.
_KNOWN: Final[dict[str, tuple[str, str | None, bytes, bytes]]] = {
    code: _parts(TYPE_PREFIX + code, t.category) for code, t in EVENT_TYPES.items()
}


@lru_cache(maxsize=64)
def _source_part(source: str) -> bytes:
    return b',"source":' + orjson.dumps(source)


def type_of(code: str) -> str:
    """The CloudEvents ``type`` for an Auth0 event type code."""
    return TYPE_PREFIX + code


def to_event(record: Record, source: str) -> Event:
    """The CloudEvent for ``record``, with ``source`` as its ``source`` attribute."""
    code = record.type
    known = _KNOWN.get(code)
    ce_type, category, type_part, category_part = (
        known if known is not None else _parts(TYPE_PREFIX + code, None)
    )
    attributes: dict[str, AttributeValue] = {
        "specversion": "1.0",
        "id": record.log_id,
        "source": source,
        "type": ce_type,
        "datacontenttype": "application/json",
    }
    parts = [_HEAD, orjson.dumps(record.log_id), _source_part(source), type_part]
    date = record.date
    if date is not None and is_rfc3339(date):
        attributes["time"] = date
        parts.append(b',"time":' + orjson.dumps(date))
    if record.user_id:
        attributes["subject"] = record.user_id
        parts.append(b',"subject":' + orjson.dumps(record.user_id))
    if category is not None:
        attributes[CATEGORY_ATTRIBUTE] = category
        parts.append(category_part)
    parts += (b',"data":', record.data, b"}")
    return Event(attributes, record.data, b"".join(parts))


def plain_text(records: Sequence[Record], source: str) -> bool:
    """True when every string that becomes an attribute is printable, so no attribute can
    hold a character CloudEvents strings exclude (the date is checked as a timestamp)."""
    if not source.isprintable():
        return False
    for record in records:
        if not (record.log_id.isprintable() and record.type.isprintable()):
            return False
        if record.user_id is not None and not record.user_id.isprintable():
            return False
    return True
