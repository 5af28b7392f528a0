"""Reading the Auth0 Management API's logs by checkpoint (the parts without a socket).

- :func:`base_url` and :func:`audience`: where a ``domain`` points;
- :func:`start_checkpoint`: the ``from`` of a first run, from ``startFrom``;
- :func:`written_at`: when a log_id says its record was written;
- :func:`parse_page`: a ``GET /api/v2/logs`` answer (a JSON array of records) into
  ``(log_id, event)`` pairs, each event mapped as the ``auth0`` webhook source maps a
  stream's record, ``data`` being the record's exact JSON text as the API returned it;
- :class:`Pacer`: at most ``rate`` requests per second, with no burst.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

import msgspec
from connector_runtime import Event, is_rfc3339

from connector_runtime_auth0.mapping import Mapper

__all__ = [
    "EARLIEST_DAYS",
    "Pacer",
    "PageError",
    "audience",
    "base_url",
    "parse_page",
    "start_checkpoint",
    "written_at",
]

EARLIEST_DAYS: Final = 31
"""``startFrom: earliest`` starts this many days back: longer than any plan keeps logs."""
_PREFIX: Final = "900"


class PageError(ValueError):
    """An answer that is not a JSON array of log records; one line, safe to log."""


class _Fields(msgspec.Struct, gc=False):
    log_id: str | None = None
    type: str | None = None
    date: str | None = None
    user_id: str | None = None


_PAGE: Final = msgspec.json.Decoder(list[msgspec.Raw])
_FIELDS: Final = msgspec.json.Decoder(_Fields)


def base_url(domain: str) -> str:
    """``https://<domain>`` for a host name; a URL with a scheme as it is (no final /)."""
    url = domain if "://" in domain else f"https://{domain}"
    return url.rstrip("/")


def audience(domain: str) -> str:
    """The Management API's audience for a client-credentials token."""
    return base_url(domain) + "/api/v2/"


def _stamp(moment: datetime) -> str:
    return _PREFIX + moment.astimezone(UTC).strftime("%Y%m%d%H%M%S")


def start_checkpoint(start_from: str, now: datetime | None = None) -> str:
    """The ``from`` of a first run. A log_id is used as it is; a time becomes the prefix of
    the log_ids written from then on (``900`` + ``YYYYMMDDhhmmss``), which sorts before
    them; ``now`` is that of the current time; ``earliest`` that of :data:`EARLIEST_DAYS`
    ago. Raises ``ValueError`` for anything else.

    ``from`` returns the records newer than it, ordered by log_id; the example log_id of
    https://auth0.com/docs/deploy-monitor/logs/retrieve-log-events-using-mgmt-api shows the
    shape (``900``, ``20211201185132``, then more digits)."""
    moment = now or datetime.now(UTC)
    if start_from == "now":
        return _stamp(moment)
    if start_from == "earliest":
        return _stamp(moment - timedelta(days=EARLIEST_DAYS))
    if is_rfc3339(start_from):
        # RFC 3339 allows a lower-case t and z, which datetime does not read
        return _stamp(datetime.fromisoformat(start_from.upper().replace("Z", "+00:00")))
    if start_from.isdigit() and start_from.startswith(_PREFIX) and len(start_from) >= 17:
        return start_from
    raise ValueError(
        f"startFrom {start_from!r} is neither a log_id (digits starting with 900), an RFC 3339"
        " time, 'earliest' nor 'now'"
    )


def written_at(log_id: str) -> float | None:
    """When the log_id says it was written (epoch seconds), or None if it says nothing."""
    digits = log_id[3:17]
    if not log_id.startswith(_PREFIX) or len(digits) != 14 or not digits.isdigit():
        return None
    try:
        return datetime.strptime(digits, "%Y%m%d%H%M%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def parse_page(body: bytes, mapper: Mapper) -> list[tuple[str, Event]]:
    """The records of one page, in the order the API sent them (by log_id)."""
    try:
        raws: Sequence[msgspec.Raw] = _PAGE.decode(body)
    except (msgspec.DecodeError, RecursionError):
        raise PageError("the logs API answered something that is not a JSON array") from None
    out = []
    for index, raw in enumerate(raws):
        data = bytes(raw)
        try:
            fields = _FIELDS.decode(data)
        except (msgspec.DecodeError, RecursionError):
            raise PageError(f"record {index} of a logs page is not a log object") from None
        if not fields.log_id or not fields.type:
            raise PageError(f"record {index} of a logs page has no log_id or type")
        event = mapper(fields.log_id, fields.type, fields.date, fields.user_id, data)
        out.append((fields.log_id, event))
    return out


class Pacer:
    """Spaces requests at least ``1 / rate`` seconds apart (a token bucket holding one
    token), so no window of one second ever holds more than ``rate`` of them; a margin of
    :data:`MARGIN` absorbs the jitter of the way to the server."""

    MARGIN: Final = 0.01

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate + self.MARGIN
        self._next = 0.0

    async def wait(self) -> None:
        now = time.monotonic()
        while now < self._next:  # asyncio may wake a timer up to its clock resolution early
            await asyncio.sleep(self._next - now)
            now = time.monotonic()
        self._next = now + self.interval

    def hold_until(self, wall_clock: float) -> None:
        """No request before ``wall_clock`` (epoch seconds, e.g. ``X-RateLimit-Reset``)."""
        self._next = max(self._next, time.monotonic() + max(0.0, wall_clock - time.time()))
