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

from connector_runtime.events import AttributeValue, Event, is_rfc3339

from connector_runtime_auth0.catalogue import EVENT_TYPES
from connector_runtime_auth0.parse import Record

__all__ = ["CATEGORY_ATTRIBUTE", "TYPE_PREFIX", "to_event", "type_of"]

TYPE_PREFIX: Final = "com.auth0.log."
CATEGORY_ATTRIBUTE: Final = "auth0category"

# code -> (CloudEvents type, category or None), so that mapping a known code concatenates
# nothing and looks up once.
_KNOWN: Final[dict[str, tuple[str, str | None]]] = {
    code: (TYPE_PREFIX + code, t.category) for code, t in EVENT_TYPES.items()
}


def type_of(code: str) -> str:
    """The CloudEvents ``type`` for an Auth0 event type code."""
    return TYPE_PREFIX + code


def to_event(record: Record, source: str) -> Event:
    """The CloudEvent for ``record``, with ``source`` as its ``source`` attribute."""
    code = record.type
    known = _KNOWN.get(code)
    attributes: dict[str, AttributeValue] = {
        "specversion": "1.0",
        "id": record.log_id,
        "source": source,
        "type": known[0] if known is not None else TYPE_PREFIX + code,
        "datacontenttype": "application/json",
    }
    date = record.date
    if date is not None and is_rfc3339(date):
        attributes["time"] = date
    if record.user_id:
        attributes["subject"] = record.user_id
    if known is not None and known[1] is not None:
        attributes[CATEGORY_ATTRIBUTE] = known[1]
    return Event(attributes, record.data)
