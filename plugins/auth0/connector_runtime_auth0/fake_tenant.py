"""A fake Auth0 tenant on a loopback port: the client-credentials token endpoint and the
Management API's logs endpoint, with the behaviours a log puller has to get right.

For tests of anything that reads Auth0 logs, without an Auth0 account. Each imitated
behaviour names the Auth0 documentation it follows:

- ``POST /oauth/token`` (client-credentials grant: ``client_id``, ``client_secret``,
  ``audience``): an access token that expires after ``token_ttl`` seconds
  (``expires_in``); a wrong or revoked secret gets 401 ``access_denied``.
  https://auth0.com/docs/secure/tokens/access-tokens/management-api-access-tokens/get-management-api-access-tokens-for-production
- ``GET /api/v2/logs?from=<log_id>&take=<n>``: the records whose log_id is greater than
  ``from``, ordered by log_id (not by time), at most ``take`` (1 to 100), as a JSON array;
  a ``Link`` header whose ``rel="next"`` URL continues after the last record, and for an
  empty page repeats the request's own URL.
  https://auth0.com/docs/deploy-monitor/logs/retrieve-log-events-using-mgmt-api
- Retention: records older than ``retention`` seconds are no longer returned.
  https://auth0.com/docs/deploy-monitor/logs/log-data-retention
- Rate limits: a token bucket of ``rate`` requests per second with a burst of ``burst``
  (a free tenant: 2 per second); over it, 429 with ``X-RateLimit-Limit``,
  ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (epoch seconds), headers that every
  answer carries.
  https://auth0.com/docs/troubleshoot/customer-support/operational-policies/rate-limit-policy/management-api-endpoint-rate-limits
- ``GET /api/v2/log-streams/{id}`` (scope ``read:log_streams``) answers a stream's
  settings and ``status``: ``active``, ``paused`` (set by a user) or ``suspended`` (set
  by Auth0 when deliveries kept failing); ``PATCH`` (scope ``update:log_streams``) with
  ``{"status": "active" | "paused"}`` changes it; a client cannot set ``suspended``. A
  token without the scope gets 403 ``insufficient_scope``, an unknown id 404.
  https://auth0.com/docs/api/management/v2/log-streams/get-log-streams-by-id
  https://auth0.com/docs/api/management/v2/log-streams/patch-log-streams-by-id
- A log_id begins with ``900`` and the UTC time it was written, ``YYYYMMDDhhmmss``, a
  few seconds after the record's ``date``; the rest of it keeps ids unique and ordered
  (the shape of the example log_id in the retrieve-log-events page above, 56 digits).

A stream's deliveries, as Auth0 sends them, come from
:class:`~connector_runtime_auth0.fake_sender.LogStreamSender` (told of new records by
:attr:`FakeTenant.on_write`).

Faults for tests: :meth:`FakeTenant.fail_next` (5xx answers), :meth:`FakeTenant.stall_next`
(answers later than a client's timeout), :meth:`FakeTenant.revoke` (the secret stops
working, and so do the tokens issued so far).
"""

from __future__ import annotations

import asyncio
import bisect
import json
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import tornado.httpserver
import tornado.web
from connector_runtime.testing import LoopThread, free_port

__all__ = ["FakeLogStream", "FakeTenant", "LogRequest", "log_id_at"]

STREAM_STATUSES = ("active", "paused", "suspended")
SETTABLE_STATUSES = ("active", "paused")
"""What a PATCH may set: ``suspended`` is Auth0's own verdict on a failing stream."""

WRITE_DELAY = 2.0
"""Seconds between a record's ``date`` and the time in its log_id (Auth0: a few)."""


def log_id_at(written: datetime, seq: int) -> str:
    """A log_id of Auth0's shape: ``900``, the time written, then digits (56 in all)."""
    return "900" + written.strftime("%Y%m%d%H%M%S") + f"{seq:039d}"


@dataclass
class LogRequest:
    """One request the tenant answered on ``/api/v2/logs``."""

    at: float
    """``time.monotonic()`` when it arrived."""
    status: int
    query: str
    records: int = 0
    """How many records the answer held."""
    wall: float = 0.0  # time.time() when it arrived, to compare with a 429's reset
    reset: int | None = None  # the X-RateLimit-Reset (epoch seconds) of a 429 answer


@dataclass
class FakeLogStream:
    """A Custom Webhook log stream of the tenant, as the Management API shows it."""

    id: str
    endpoint: str
    """The Payload URL deliveries go to."""
    authorization: str = ""
    """The Authorization Token, sent verbatim (no ``Bearer`` added)."""
    content_format: str = "JSONLINES"
    """``JSONLINES``, ``JSONARRAY`` or ``JSONOBJECT``."""
    content_type: str = "application/json"
    name: str = "custom-webhook"
    status: str = "active"
    history: list[tuple[float, str, str]] = field(default_factory=list)
    """(``time.monotonic()``, status, who set it: ``api`` or ``auth0``), oldest first."""

    def set_status(self, status: str, by: str) -> None:
        if status != self.status:
            self.status = status
            self.history.append((time.monotonic(), status, by))

    def describe(self) -> dict[str, object]:
        """The stream as ``GET /api/v2/log-streams/{id}`` answers it."""
        return {
            "id": self.id,
            "name": self.name,
            "type": "http",
            "status": self.status,
            "sink": {
                "httpEndpoint": self.endpoint,
                "httpContentFormat": self.content_format,
                "httpContentType": self.content_type,
                "httpAuthorization": self.authorization,
            },
            "filters": [],
        }


@dataclass
class FakeTenant:
    """Start with :meth:`start` (on a :class:`~connector_runtime.testing.LoopThread`);
    ``url`` is what a connector's ``domain`` takes."""

    loop: LoopThread
    client_id: str = "fake-client-id"
    client_secret: str = "fake-client-secret-0123456789"  # noqa: S105  (a test tenant's)
    token_ttl: float = 86400.0
    rate: float = 2.0
    burst: float = 2.0
    retention: float = 30 * 86400.0
    port: int = 0
    scopes: tuple[str, ...] = ("read:logs", "read:log_streams", "update:log_streams", "read:events")
    """What the client's grant allows; a test narrows it to see a 403."""
    log_streams: dict[str, FakeLogStream] = field(default_factory=dict)
    records: list[tuple[str, float, bytes]] = field(default_factory=list)
    """(log_id, date as epoch seconds, the record's JSON text), ordered by log_id."""
    requests: list[LogRequest] = field(default_factory=list)
    token_requests: int = 0
    on_write: list[Callable[[list[tuple[str, float, bytes]]], None]] = field(default_factory=list)
    """Called by :meth:`add_records` with the records it wrote, in the order written (how
    a log-stream sender, :mod:`.fake_sender`, learns of them)."""
    _tokens: dict[str, float] = field(default_factory=dict)
    _revoked: bool = False
    _fail: list[int] = field(default_factory=list)
    _stall: list[float] = field(default_factory=list)
    _bucket: float = 0.0
    _filled: float = 0.0
    _reset: int = 0
    _server: tornado.httpserver.HTTPServer | None = None
    extra_routes: list[tuple[str, type[tornado.web.RequestHandler], dict[str, object]]] = field(
        default_factory=list
    )
    """More routes served beside these (e.g. the Events API's, :mod:`.fake_events_api`)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- the tenant's logs --------------------------------------------------------------

    def add_records(
        self, n: int, start: datetime | None = None, step: float = 0.01, code: str = "s"
    ) -> list[str]:
        """Write ``n`` records dated from ``start`` (default: an hour ago), ``step`` seconds
        apart; returns their log ids. Each record has the fields a Management API record
        has, ``_id`` and a null field included, and an integer JSON numbers cannot hold
        in a double, so a reader that re-encodes ``data`` shows."""
        begin = start or datetime.now(UTC) - timedelta(hours=1)
        ids: list[str] = []
        written: list[tuple[str, float, bytes]] = []
        for i in range(n):
            seq = len(self.records) + i
            date = begin + timedelta(seconds=i * step)
            log_id = log_id_at(date + timedelta(seconds=WRITE_DELAY), seq)
            when = date.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            doc = (
                f'{{"date":"{when}","type":"{code}","description":"","connection":'
                f'"Username-Password-Authentication","client_id":"{self.client_id}",'
                f'"client_name":"Storefront","ip":"198.51.100.{seq % 250}","user_agent":'
                f'"Firefox 131.0.0 / Linux 0.0.0","details":{{"attempt":{seq}}},'
                f'"user_id":"auth0|user{seq % 10000:05d}","user_name":"u{seq}@example.org",'
                f'"isMobile":false,"audience":null,"big":9007199254740993,'
                f'"_id":"{log_id}","log_id":"{log_id}"}}'
            )
            written.append((log_id, date.timestamp(), doc.encode()))
            ids.append(log_id)
        # a new sorted list, swapped in whole: the loop thread may be reading a page
        # (list.sort in place shows other threads an empty list while it runs)
        self.records = sorted([*self.records, *written], key=lambda r: r[0])
        for hook in self.on_write:
            hook(written)
        return ids

    def add_log_stream(
        self,
        endpoint: str,
        authorization: str = "",
        content_format: str = "JSONLINES",
        content_type: str = "application/json",
    ) -> FakeLogStream:
        """Create a Custom Webhook stream to ``endpoint``; its id has Auth0's shape."""
        stream_id = f"lst_{len(self.log_streams) + 1:016d}"
        stream = FakeLogStream(stream_id, endpoint, authorization, content_format, content_type)
        self.log_streams[stream_id] = stream
        return stream

    # -- faults -------------------------------------------------------------------------

    def fail_next(self, n: int, status: int = 503) -> None:
        """Answer the next ``n`` log requests with ``status`` (after the rate limit)."""
        self._fail.extend([status] * n)

    def stall_next(self, n: int, seconds: float) -> None:
        """Hold the next ``n`` log requests for ``seconds`` before answering."""
        self._stall.extend([seconds] * n)

    def revoke(self) -> None:
        """The client's secret is rotated: no new token, and issued ones stop working."""
        self._revoked = True
        self._tokens.clear()

    def restore(self) -> None:
        self._revoked = False

    def expire_tokens(self) -> None:
        """Every token issued so far expires now."""
        for token in self._tokens:
            self._tokens[token] = 0.0

    # -- what a test measures -----------------------------------------------------------

    def max_requests_per_second(self) -> int:
        """The most ``/api/v2/logs`` requests that arrived within any one second."""
        times = sorted(r.at for r in self.requests)
        most, first = 0, 0
        for last, t in enumerate(times):
            while t - times[first] >= 1.0:
                first += 1
            most = max(most, last - first + 1)
        return most

    # -- serving ------------------------------------------------------------------------

    def start(self) -> FakeTenant:
        self.port = self.port or free_port()
        self._bucket, self._filled = self.burst, time.monotonic()
        tenant = self

        class Token(tornado.web.RequestHandler):
            def post(self) -> None:
                tenant.token_requests += 1
                try:
                    body = json.loads(self.request.body or b"{}")
                except ValueError:
                    body = {}
                audience = f"{tenant.url}/api/v2/"
                if (
                    body.get("grant_type") != "client_credentials"
                    or body.get("audience") != audience
                ):
                    self.set_status(403)
                    self.finish({"error": "access_denied", "error_description": "bad request"})
                    return
                if (
                    tenant._revoked
                    or body.get("client_id") != tenant.client_id
                    or body.get("client_secret") != tenant.client_secret
                ):
                    self.set_status(401)
                    self.finish({"error": "access_denied", "error_description": "Unauthorized"})
                    return
                token = secrets.token_urlsafe(24)
                tenant._tokens[token] = time.monotonic() + tenant.token_ttl
                self.finish(
                    {
                        "access_token": token,
                        "expires_in": int(tenant.token_ttl),
                        "scope": " ".join(tenant.scopes),
                        "token_type": "Bearer",
                    }
                )

        class Logs(tornado.web.RequestHandler):
            async def get(self) -> None:
                await tenant._logs(self)

        class LogStream(tornado.web.RequestHandler):
            def get(self, stream_id: str) -> None:
                tenant._log_stream(self, stream_id, "read:log_streams")

            def patch(self, stream_id: str) -> None:
                tenant._log_stream(self, stream_id, "update:log_streams")

        async def listen() -> tornado.httpserver.HTTPServer:
            app = tornado.web.Application(
                [
                    (r"/oauth/token", Token),
                    (r"/api/v2/logs", Logs),
                    (r"/api/v2/log-streams/([^/]+)", LogStream),
                    *self.extra_routes,
                ]
            )
            server = tornado.httpserver.HTTPServer(app)
            server.listen(self.port, "127.0.0.1")
            return server

        self._server = self.loop.run(listen())
        return self

    def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            self.loop.run(_close(server))

    def token_valid(self, authorization: str) -> bool:
        """Whether an ``Authorization`` header carries a token issued and not expired."""
        token = authorization.removeprefix("Bearer ")
        good = authorization.startswith("Bearer ")
        return good and self._tokens.get(token, 0.0) > time.monotonic()

    def _limit(self, handler: tornado.web.RequestHandler) -> bool:
        """Take a token from the bucket; set the three headers; False when over."""
        now = time.monotonic()
        self._bucket = min(self.burst, self._bucket + (now - self._filled) * self.rate)
        self._filled = now
        allowed = self._bucket >= 1.0
        if allowed:
            self._bucket -= 1.0
        full_in = (self.burst - self._bucket) / self.rate
        self._reset = math.ceil(time.time() + full_in)
        handler.set_header("X-RateLimit-Limit", str(int(self.burst)))
        handler.set_header("X-RateLimit-Remaining", str(int(self._bucket)))
        handler.set_header("X-RateLimit-Reset", str(self._reset))
        return allowed

    def _authorized(self, handler: tornado.web.RequestHandler, scope: str) -> bool:
        """Check the bearer token and its scope; answer 401 or 403 when they fail."""
        if not self.token_valid(handler.request.headers.get("Authorization", "")):
            _error(handler, 401, "Expired token received for JSON Web Token validation")
            return False
        if scope not in self.scopes:
            _error(
                handler, 403, f"Insufficient scope, expected any of: {scope}", "insufficient_scope"
            )
            return False
        return True

    def _log_stream(self, handler: tornado.web.RequestHandler, stream_id: str, scope: str) -> None:
        if not self._authorized(handler, scope):
            return
        if not self._limit(handler):
            _error(handler, 429, "Global limit has been reached")
            return
        stream = self.log_streams.get(stream_id)
        if stream is None:
            _error(handler, 404, "The log stream does not exist", "inexistent_log_stream")
            return
        if handler.request.method == "PATCH":
            try:
                change = json.loads(handler.request.body or b"{}")
            except ValueError:
                change = None
            status = change.get("status") if isinstance(change, dict) else None
            if status not in SETTABLE_STATUSES:
                _error(handler, 400, "Payload validation error: status must be active or paused")
                return
            stream.set_status(status, "api")
        handler.finish(stream.describe())

    async def _logs(self, handler: tornado.web.RequestHandler) -> None:
        arrived = LogRequest(time.monotonic(), 0, handler.request.query, wall=time.time())
        self.requests.append(arrived)
        arrived.status = await self._answer(handler, arrived)

    async def _answer(self, handler: tornado.web.RequestHandler, arrived: LogRequest) -> int:
        if not self._authorized(handler, "read:logs"):
            return handler.get_status()
        if not self._limit(handler):
            arrived.reset = self._reset
            return _error(handler, 429, "Global limit has been reached")
        if self._stall:
            await asyncio.sleep(self._stall.pop(0))
        if self._fail:
            return _error(handler, self._fail.pop(0), "Service unavailable")
        after = handler.get_query_argument("from", "")
        try:
            take = int(handler.get_query_argument("take", "50"))
        except ValueError:
            take = 0
        if not 1 <= take <= 100:
            return _error(handler, 400, "take must be between 1 and 100")
        oldest = time.time() - self.retention
        page: list[tuple[str, float, bytes]] = []
        at = bisect.bisect_right(self.records, after, key=lambda r: r[0])  # first > from
        while at < len(self.records) and len(page) < take:
            if self.records[at][1] >= oldest:  # past retention: no longer returned
                page.append(self.records[at])
            at += 1
        nxt = page[-1][0] if page else after
        link = f"{self.url}/api/v2/logs?" + urlencode({"from": nxt, "take": take})
        handler.set_header("Link", f'<{link}>; rel="next"')
        arrived.records = len(page)
        handler.set_header("Content-Type", "application/json; charset=utf-8")
        handler.finish(b"[" + b",".join(r[2] for r in page) + b"]")
        return 200


def _error(handler: tornado.web.RequestHandler, status: int, message: str, code: str = "") -> int:
    handler.set_status(status)
    answer = {"statusCode": status, "error": handler._reason, "message": message}
    if code:
        answer["errorCode"] = code
    handler.finish(answer)
    return status


async def _close(server: tornado.httpserver.HTTPServer) -> None:
    server.stop()
    await server.close_all_connections()
