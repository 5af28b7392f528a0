"""The ``auth0-events-pull`` task: Auth0's Events API (``GET /api/v2/events``, Server-Sent
Events) read by offset into the runtime, each event the same CloudEvent the
``auth0-events`` webhook source emits.
https://auth0.com/docs/customize/events/consume-events-with-events-api

One loop per connector (:func:`pull`):

1. a client-credentials token (:class:`~.management.ManagementApi`, scope ``read:events``),
   renewed before it expires and after a 401;
2. ``GET /api/v2/events`` with the committed offset as ``Last-Event-ID`` (and ``from``,
   for a proxy that drops the header; Auth0 prefers the header), or on a first run per
   ``startFrom``: nothing (``now``) or ``from_timestamp``; ``event_type`` for each of
   ``events`` when they are all exact types (the Management API reference:
   https://auth0.com/docs/api/management/v2/events/subscribe-events);
3. the stream parsed (:mod:`.sse`); the messages each read completes are handed over at
   once, their events with the last message's ``id`` as the checkpoint, committed with
   them; an ``offset-only`` heartbeat's id is committed too (Auth0 asks to keep the id of
   every message);
4. when the stream ends (Auth0 closes connections every few minutes) or is cut, a new one
   resumes after the committed offset, after the server's ``retry`` delay; no byte (not
   even a heartbeat) for ``idleTimeout`` counts as a cut.

``410 Gone`` (the offset has expired) follows ``onExpired``: ``fail`` stays not ready and
says so; ``earliest`` resumes at the oldest event Auth0 still keeps, ``now`` at new events;
either logs the gap as an error and counts ``pull_errors_total{kind="expired"}``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlencode

from connector_runtime import Event, PullContext, is_rfc3339, parse_duration

from connector_runtime_auth0.eventstreams import OFFSET_ONLY, parse_message, pass_on
from connector_runtime_auth0.logs_api import EARLIEST_DAYS
from connector_runtime_auth0.management import ApiProblem, ManagementApi, error_code, number
from connector_runtime_auth0.parse import ParseError
from connector_runtime_auth0.pulling import Backoff, submit
from connector_runtime_auth0.sse import Message, SSEParser
from connector_runtime_auth0.stream_http import Broken, Idle, Stream, open_stream

__all__ = ["Expired", "Settings", "pull", "start_query"]

SCOPE: Final = "read:events"
DEFAULT_RETRY: Final = 1.0
"""Seconds before reconnecting after a stream ended, when the server set no ``retry``."""
MAX_RETRY: Final = 60.0
"""The longest ``retry`` delay taken from a stream, in seconds."""
MAX_PENDING: Final = 16 * 1024 * 1024
"""The most bytes of one unfinished SSE message kept (a stream past it is broken)."""


@dataclass(frozen=True)
class Settings:
    domain: str
    client_id: str
    client_secret: str
    start_from: str
    on_expired: str
    idle: float
    timeout: float
    test_events: str
    source: str | None
    event_types: tuple[str, ...]
    """``event_type`` query values: ``events`` when it lists exact types only (a
    ``family.*`` cannot be asked for, so then the runtime's filter alone selects)."""

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> Settings:
        return cls(
            domain=config["domain"],
            client_id=config["clientId"],
            client_secret=config["clientSecret"],
            start_from=config.get("startFrom", "now"),
            on_expired=config.get("onExpired", "fail"),
            idle=parse_duration(config.get("idleTimeout", "2m")),
            timeout=parse_duration(config.get("requestTimeout", "30s")),
            test_events=config.get("testEvents", "pass"),
            source=config.get("source"),
            event_types=_exact(config.get("events") or ()),
        )


class Expired(Exception):
    """The API answered 410: the offset is older than what the tenant keeps."""


def start_query(start_from: str, now: datetime | None = None) -> dict[str, str]:
    """The query of a first run (or of a restart after 410): ``now`` asks for nothing (new
    events only), ``earliest`` for ``from_timestamp`` :data:`EARLIEST_DAYS` days ago (before
    anything a tenant keeps), an RFC 3339 time for ``from_timestamp`` of it, anything else
    is an offset (``from``). Raises ``ValueError`` for an empty value."""
    if not start_from:
        raise ValueError("startFrom is empty")
    if start_from == "now":
        return {}
    if start_from == "earliest":
        moment = (now or datetime.now(UTC)) - timedelta(days=EARLIEST_DAYS)
        return {"from_timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if is_rfc3339(start_from):  # RFC 3339 allows a lower-case t and z; send the usual form
        return {"from_timestamp": start_from.upper()}
    return {"from": start_from}


class _Reader:
    """One connector's connection to the Events API."""

    def __init__(self, ctx: PullContext, settings: Settings) -> None:
        self.ctx = ctx
        self.s = settings
        self.creds = ManagementApi(
            settings.domain,
            settings.client_id,
            settings.client_secret,
            settings.timeout,
            rate=1.0,  # unused: one long request at a time, reconnects backed off
            scope=SCOPE,
        )
        self.offset = ctx.checkpoint
        self.query: dict[str, str] = {} if self.offset else start_query(settings.start_from)
        if "from" in self.query:  # startFrom names an offset: resume after it
            self.offset, self.query = self.query["from"], {}
        self.retry = DEFAULT_RETRY

    async def connect(self) -> Stream:
        token = await self.creds.token()
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "text/event-stream",
            "Cache-Control": "no-cache",
        }
        query = [*self.query.items()]
        if self.offset:
            headers["Last-Event-ID"] = self.offset
            query = [("from", self.offset)]
        query += [("event_type", name) for name in self.s.event_types]
        url = f"{self.creds.base}/api/v2/events" + (f"?{urlencode(query)}" if query else "")
        try:
            stream = await open_stream(url, headers, self.s.timeout)
        except Broken as exc:
            raise ApiProblem("unavailable", f"GET /api/v2/events: {exc}") from None
        if stream.status == 200:
            kind = stream.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind == "text/event-stream":
                return stream
            stream.close()
            raise ApiProblem("unavailable", f"GET /api/v2/events answered {kind or 'no type'}")
        body = await stream.body(4096, self.s.timeout)
        stream.close()
        raise self._refusal(stream, body)

    def _refusal(self, stream: Stream, body: bytes) -> Exception:
        code = stream.status
        if code == 410:
            return Expired()
        if code == 401:
            self.creds.drop()  # expired or revoked: the next attempt asks for a new one
            return ApiProblem("auth", "the Events API refused the access token (HTTP 401)", 0.0)
        if code == 403:
            return ApiProblem(
                "scope",
                f"the Events API answered 403 ({error_code(body)}): the application lacks"
                f" the scope {SCOPE}",
            )
        if code == 429:
            wait = number(stream.headers.get("retry-after"))
            reset = number(stream.headers.get("x-ratelimit-reset"))
            if wait is None and reset is not None:
                wait = max(0.0, reset - time.time())
            return ApiProblem("rate_limited", "the Events API answered 429 (rate limit)", wait)
        return ApiProblem(
            "unavailable", f"GET /api/v2/events answered HTTP {code} {error_code(body)}"
        )

    async def read(self, stream: Stream) -> int:
        """Hand over what ``stream`` brings until it ends; how many messages it brought
        (events and heartbeats)."""
        parser, handed = SSEParser(), 0
        try:
            async for chunk in stream.chunks(self.s.idle):
                messages = parser.feed(chunk)
                if parser.retry is not None:
                    self.retry = min(parser.retry / 1000, MAX_RETRY)
                if messages:
                    handed += await self._hand_over(messages)
                elif parser.pending > MAX_PENDING:
                    raise ApiProblem("invalid_stream", "an Events API message is over 16 MiB")
        except Idle:
            raise ApiProblem(
                "idle",
                f"no byte from the Events API for {self.s.idle:g}s (not even a heartbeat):"
                " reconnecting",
                0.0,
            ) from None
        except Broken as exc:
            raise ApiProblem(
                "disconnected", f"the Events API stream broke: {exc}", self.retry
            ) from None
        finally:
            stream.close()
        return handed

    async def _hand_over(self, messages: Sequence[Message]) -> int:
        """Commit the events of ``messages`` with the last one's id. A message that is not
        a CloudEvent is not skipped: those before it are committed, then an ApiProblem."""
        events: list[Event] = []
        for index, message in enumerate(messages):
            if message.event == OFFSET_ONLY:
                continue
            try:
                events.extend(parse_message(message.data))
            except ParseError as exc:
                await self._commit(events, messages[:index])
                raise ApiProblem(
                    "invalid_event", f"message {message.last_event_id}: {exc}"
                ) from None
        await self._commit(events, messages)
        self.ctx.status.ok()
        return len(messages)

    async def _commit(self, events: list[Event], messages: Sequence[Message]) -> None:
        if not messages:
            return
        checkpoint = messages[-1].last_event_id or self.offset
        kept, tests = pass_on(events, self.s.test_events, self.s.source)
        if tests:
            outcome = "dropped" if self.s.test_events == "drop" else "passed"
            self.ctx.counts.count("test", outcome, tests)
        if checkpoint:
            await submit(self.ctx, kept, checkpoint)
        elif kept:
            await self.ctx.ingest.submit(kept)
        self.offset, self.query = checkpoint, {}


async def pull(ctx: PullContext) -> None:
    """The ``auth0-events-pull`` source's task (see the module docstring)."""
    s = Settings.of(ctx.config)
    reader = _Reader(ctx, s)
    backoff = Backoff()
    try:
        while True:
            try:
                stream = await reader.connect()
            except Expired:
                await _expired(ctx, reader)
                continue
            except ApiProblem as exc:
                ctx.status.problem(exc.kind, exc.reason)
                await asyncio.sleep(backoff.next(exc.kind, exc.delay))
                continue
            try:
                handed = await reader.read(stream)
            except ApiProblem as exc:
                ctx.status.problem(exc.kind, exc.reason)
                handed = 0
            if handed:  # a healthy stream, ended or cut: reconnect after the server's delay
                backoff.reset()
                await asyncio.sleep(reader.retry)
            else:  # a stream that brought nothing, not even a heartbeat: do not spin on it
                await asyncio.sleep(max(reader.retry, backoff.next("unavailable", None)))
    finally:
        reader.creds.close()


async def _expired(ctx: PullContext, reader: _Reader) -> None:
    offset, policy = reader.offset, reader.s.on_expired
    if policy == "fail":
        ctx.status.problem(
            "expired",
            f"the Events API answered 410 Gone: offset {offset} has expired (the tenant no"
            " longer keeps its events); events after it were lost to this connector. Set"
            " onExpired to 'earliest' or 'now' to resume",
        )
        ctx.log.error("Events API offset %s expired (410); onExpired is fail: stopped", offset)
        await asyncio.Event().wait()  # stays not ready until the runtime restarts
    ctx.status.problem(
        "expired",
        f"the Events API answered 410 Gone: offset {offset} has expired; resuming from"
        f" {policy} (onExpired), events in between are lost",
    )
    ctx.log.error(
        "Events API offset %s expired (410): resuming from %s; events in between are lost",
        offset,
        policy,
    )
    reader.offset, reader.query = None, start_query(policy)


def _exact(names: Sequence[str]) -> tuple[str, ...]:
    return () if any(n.endswith("*") for n in names) else tuple(names)
