"""A fake of Auth0's Events API (``GET /api/v2/events``, Server-Sent Events) on a loopback
port, beside a :class:`~.fake_tenant.FakeTenant` whose ``/oauth/token`` issues the tokens.

What it imitates, after https://auth0.com/docs/customize/events/consume-events-with-events-api
and the Management API reference
(https://auth0.com/docs/api/management/v2/events/subscribe-events):

- ``text/event-stream``; a ``:connected`` comment first, then ``retry: <ms>``;
- each event as ``id: <offset>``, ``event: <type>`` and ``data:`` holding
  ``{"offset": ..., "event": <the CloudEvent>}`` (the shape of the node SDK's
  ``EventStreamCloudEvent…`` messages), the JSON split over two ``data:`` lines;
- ``event: offset-only`` messages (``{"type": "offset-only", "offset": ...}``) as
  heartbeats while nothing happens, beside ``:`` comments;
- resuming after an offset given as ``Last-Event-ID`` or ``from`` (the header wins);
  ``from_timestamp`` (RFC 3339) starts at the first event published then or later; none
  of them: only events published from now on; ``event_type`` (repeated) selects types;
- 401 without a valid token.

What the documentation leaves open, and this fake assumes (the README says so too): an
offset older than ``retention`` (its event no longer kept) is answered ``410 Gone``; an
offset it never issued ``400``; offsets are opaque strings.

Faults for tests: :meth:`FakeEventsAPI.drop_after` (the connection is cut in the middle of
a message), duplicates (:meth:`FakeEventsAPI.add` with ``duplicate_every``: the stream
holds such an event twice, under two offsets: delivery at least once), ``close_after``
(the server ends each stream after that many seconds, as Auth0 does every few minutes),
and the line ends used (``line_end``: LF, CRLF or CR).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import tornado.iostream
import tornado.web
from connector_runtime.testing import LoopThread

from connector_runtime_auth0.fake_tenant import FakeTenant
from connector_runtime_auth0.testing import stream_event

__all__ = ["EventsRequest", "FakeEventsAPI", "StoredEvent"]


@dataclass(frozen=True)
class StoredEvent:
    offset: str
    published: float
    """Epoch seconds."""
    type: str
    body: bytes
    """The CloudEvent's exact JSON text."""


@dataclass
class EventsRequest:
    """One ``GET /api/v2/events`` the fake answered."""

    last_event_id: str | None
    from_: str | None
    from_timestamp: str | None
    event_types: list[str] = field(default_factory=list)
    status: int = 0
    sent: int = 0
    """Events (not heartbeats) written to this connection."""


@dataclass
class FakeEventsAPI:
    """Start with :meth:`start`; ``url`` is a connector's ``domain``, ``tenant`` holds the
    client credentials."""

    loop: LoopThread
    retention: float = 7 * 86400.0
    heartbeat: float = 0.5
    """Seconds of quiet before a heartbeat (a comment and an offset-only message)."""
    retry_ms: int = 100
    close_after: float | None = None
    line_end: bytes = b"\n"
    token_ttl: float = 86400.0
    events: list[StoredEvent] = field(default_factory=list)
    requests: list[EventsRequest] = field(default_factory=list)
    tenant: FakeTenant = field(init=False)
    _drops: list[int] = field(default_factory=list)
    _index: dict[str, int] = field(default_factory=dict)
    _seq: int = 0
    _numbered: int = 0

    @property
    def url(self) -> str:
        return self.tenant.url

    def start(self) -> FakeEventsAPI:
        self.tenant = FakeTenant(self.loop, token_ttl=self.token_ttl)
        self.tenant.extra_routes.append((r"/api/v2/events", _Events, {"api": self}))
        self.tenant.start()
        return self

    def stop(self) -> None:
        self.tenant.stop()

    # -- the stream's content -----------------------------------------------------------

    def add(
        self,
        n: int,
        *,
        first: int | None = None,
        event_type: str = "user.created",
        purpose: str | None = None,
        duplicate_every: int = 0,
        published: float | None = None,
    ) -> list[str]:
        """Publish ``n`` events (numbered from ``first``, by default after the last one);
        every ``duplicate_every``-th is published a second time right after it. Returns
        the CloudEvent ids, each once."""
        start = first if first is not None else self._numbered
        self._numbered = max(self._numbered, start + n)
        ids = []
        for k in range(start, start + n):
            body = stream_event(k, event_type, purpose=purpose)
            ids.append(f"evt_{k:022d}")
            copies = 2 if duplicate_every and (k - start) % duplicate_every == 0 else 1
            for _ in range(copies):
                self.publish(event_type, body, published)
        return ids

    def publish(self, event_type: str, body: bytes, published: float | None = None) -> None:
        """Publish one message whose event is ``body`` as it is (valid or not)."""
        self._seq += 1
        offset = f"ofs_{self._seq:012d}"
        self._index[offset] = len(self.events)
        when = time.time() if published is None else published
        self.events.append(StoredEvent(offset, when, event_type, body))

    def drop_after(self, *sent: int) -> None:
        """Cut the next connections (one per number) after that many events, halfway
        through writing the next message."""
        self._drops.extend(sent)

    def connections(self) -> int:
        return sum(1 for r in self.requests if r.status == 200)

    # -- serving ------------------------------------------------------------------------

    def _position(self, request: EventsRequest) -> int | tuple[int, str]:
        """The index of the first event to send, or (status, message) to refuse."""
        offset = request.last_event_id or request.from_
        oldest = time.time() - self.retention
        if offset:
            index = self._index.get(offset)
            if index is None:
                return (400, f"offset {offset!r} is not valid")
            if self.events[index].published < oldest:
                return (410, "the offset has expired")
            return index + 1
        if request.from_timestamp:
            try:
                moment = datetime.fromisoformat(request.from_timestamp.replace("Z", "+00:00"))
            except ValueError:
                return (400, "from_timestamp is not an RFC 3339 time")
            at = max(moment.timestamp(), oldest)
            later = (i for i, e in enumerate(self.events) if e.published >= at)
            return next(later, len(self.events))
        return len(self.events)

    def _message(self, event: StoredEvent) -> bytes:
        end = self.line_end
        return (
            b"id: "
            + event.offset.encode()
            + end
            + b"event: "
            + event.type.encode()
            + end
            + b'data: {"offset":"'
            + event.offset.encode()
            + b'",'
            + end
            + b'data: "event":'
            + event.body
            + b"}"
            + end
            + end
        )

    def _heartbeat(self, offset: str) -> bytes:
        end = self.line_end
        beat = b": heartbeat" + end
        if offset:
            beat += (
                b"id: "
                + offset.encode()
                + end
                + b"event: offset-only"
                + end
                + b'data: {"type":"offset-only","offset":"'
                + offset.encode()
                + b'"}'
                + end
            )
        return beat + end


class _Events(tornado.web.RequestHandler):
    def initialize(self, api: FakeEventsAPI) -> None:
        self.api = api

    async def get(self) -> None:
        api = self.api
        arrived = EventsRequest(
            self.request.headers.get("Last-Event-ID"),
            self.get_query_argument("from", None),
            self.get_query_argument("from_timestamp", None),
            self.get_query_arguments("event_type"),
        )
        api.requests.append(arrived)
        if not api.tenant.token_valid(self.request.headers.get("Authorization", "")):
            arrived.status = 401
            self._refuse(401, "Expired token received for JSON Web Token validation")
            return
        if "read:events" not in api.tenant.scopes:
            arrived.status = 403
            self._refuse(403, "Insufficient scope, expected any of: read:events")
            return
        where = api._position(arrived)
        if isinstance(where, tuple):
            arrived.status = where[0]
            self._refuse(*where)
            return
        arrived.status = 200
        drop = api._drops.pop(0) if api._drops else None
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        end = api.line_end
        self.write(b":connected" + end + b"retry: " + str(api.retry_ms).encode() + end + end)
        ends_at = None if api.close_after is None else time.monotonic() + api.close_after
        quiet_since, offset = time.monotonic(), arrived.last_event_id or arrived.from_ or ""
        try:
            await self.flush()
            while ends_at is None or time.monotonic() < ends_at:
                if where < len(api.events):
                    event = api.events[where]
                    if arrived.event_types and event.type not in arrived.event_types:
                        where, offset = where + 1, event.offset  # a later heartbeat says so
                        continue
                    message = api._message(event)
                    if drop is not None and arrived.sent >= drop:
                        self.write(message[: len(message) // 2])
                        await self.flush()
                        self.request.connection.stream.close()  # type: ignore[union-attr]
                        return
                    self.write(message)
                    where, offset, arrived.sent = where + 1, event.offset, arrived.sent + 1
                    if where == len(api.events) or arrived.sent % 50 == 0:
                        await self.flush()
                    quiet_since = time.monotonic()
                    continue
                if time.monotonic() - quiet_since >= api.heartbeat:
                    self.write(api._heartbeat(offset))
                    await self.flush()
                    quiet_since = time.monotonic()
                await asyncio.sleep(0.01)
        except tornado.iostream.StreamClosedError:
            return
        self.finish()

    def _refuse(self, status: int, message: str) -> None:
        self.set_status(status)
        body: dict[str, Any] = {"statusCode": status, "error": self._reason, "message": message}
        self.finish(body)
