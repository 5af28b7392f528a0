"""A base Tornado handler for webhook sources.

:class:`SourceHandler` does what every webhook source needs, so a plugin's handler only
parses its body into events. As soon as the headers are in, before any body byte is read:
shutting down (503), the connector's source-IP allow-list (403), POST only (405), the
Authorization token compared in constant time (401), a declared body over the limit (413)
and admission control on bytes in flight (503). A request refused there is answered at
once and its connection closed (the body is drained, never buffered), so an unauthenticated
request costs at most its headers. While the body streams in: the body limit (413) and,
for a body of undeclared length (chunked), its bytes counted against the in-flight budget
as they arrive (503). Then: credentials that cover the body (``verify_body``), accepted
Content-Types (415), parsing, a request id, W3C ``traceparent`` carried into the events,
one-line JSON error bodies, an access log line and metrics, and handing events to the
runtime (200 with counts, or 503 + Retry-After).
"""

from __future__ import annotations

import hmac
import itertools
import os
import re
import time
from collections.abc import Sequence
from typing import Any

import orjson
from tornado.iostream import StreamClosedError
from tornado.web import HTTPError, RequestHandler, stream_request_body

from connector_runtime.errors import Unavailable
from connector_runtime.events import Event
from connector_runtime.records import SourceContext
from connector_runtime.sources.guard import RequestGuard

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
JSON_CONTENT_TYPES = frozenset(
    {
        "application/json",
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
        "application/x-jsonlines",
        "application/jsonlines",
        "application/json-seq",
        "application/cloudevents+json",
        "application/cloudevents-batch+json",
    }
)
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_MEDIA_TYPE = re.compile(r"(?=.{3,127}$)[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")
_NONCHARACTERS = "".join(
    chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(17)
)
_UNALLOWED = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef" + _NONCHARACTERS + "]")


_BOM = b"\xef\xbb\xbf"
"""A UTF-8 byte order mark some senders put before a JSON body; it is skipped."""

_REQUEST_PREFIX = os.urandom(6).hex()
_request_numbers = itertools.count(1)


def new_request_id() -> str:
    """A request id unique to this process's lifetime and practically across processes:
    a random prefix drawn at start, then a counter (cheaper than a uuid4 per request)."""
    return f"{_REQUEST_PREFIX}{next(_request_numbers):012x}"


class RequestRejected(HTTPError):
    """A client error with a one-line reason for the response body (no secrets inside)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, "%s", detail)
        self.detail = detail
        self.retry_after = retry_after
        self.headers = headers or {}


def accepted_tokens(value: object) -> tuple[str, ...]:
    """The tokens a ``token`` config value accepts: one string, or each string of a list
    (empty strings accept nothing; no token at all means no check)."""
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list | tuple):
        return tuple(v for v in value if isinstance(v, str) and v)
    return ()


def media_type(header: str | None) -> str:
    """The lower-cased media type of a Content-Type header, without parameters."""
    return (header or "").split(";", 1)[0].strip().lower()


def unsupported_type(mtype: str) -> str:
    """The 415 reason: names the media type only when it is a plain ``type/subtype`` of
    at most 127 characters (never control characters or a header's length echoed back)."""
    if _MEDIA_TYPE.fullmatch(mtype):
        return f"unsupported Content-Type {mtype!r}"
    return "unsupported Content-Type"


def is_json_like(mtype: str) -> bool:
    """True for JSON, JSON Lines and text media types (and an absent Content-Type)."""
    return (
        not mtype
        or mtype in JSON_CONTENT_TYPES
        or mtype.startswith("text/")
        or mtype.endswith("+json")
    )


def attribute_problem(events: Sequence[Event]) -> str | None:
    """Why an event's attributes are not valid CloudEvents strings (control characters,
    surrogates or noncharacters, which the CloudEvents type system excludes), or None.
    Cheap for the usual case: ``str.isprintable`` in C, the pattern only for strings it
    flags."""
    for index, event in enumerate(events):
        for name, value in event.peek().items():
            if isinstance(value, str) and not value.isprintable():
                found = _UNALLOWED.search(value)
                if found is not None:
                    code = ord(found.group())
                    return (
                        f"event {index}: attribute {name!r} holds U+{code:04X},"
                        " which CloudEvents strings exclude"
                    )
    return None


def with_trace_context(events: Sequence[Event], traceparent: str, tracestate: str | None) -> None:
    """Set the CloudEvents distributed-tracing extension on every event that has none (an
    event passed through from a CloudEvents sender keeps its own trace context)."""
    for event in events:
        if "traceparent" in event.peek():
            continue
        event.attributes["traceparent"] = traceparent
        if tracestate:
            event.attributes["tracestate"] = tracestate


@stream_request_body
class SourceHandler(RequestHandler):
    """Base class for a source's webhook endpoint. Subclasses implement :meth:`events`."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")

    TOKEN_KEY: str | None = "token"  # noqa: S105 - a config key name, not a secret
    """The config key holding the accepted Authorization header value, or a list of them
    (None: no such check)."""

    ctx: SourceContext
    max_body_bytes: int
    tokens: tuple[str, ...]
    """Every accepted Authorization value (empty: no check)."""
    token: str | None
    """The first of :attr:`tokens` (for handlers that expect exactly one)."""

    def initialize(self, ctx: SourceContext, **options: Any) -> None:
        """``ctx`` comes from the runtime; ``options`` are any further route kwargs a
        source passes its own handler (e.g. a config compiled once per connector)."""
        self.ctx = ctx
        self.route_options = options
        self.max_body_bytes = int(ctx.config.get("maxBodyBytes", DEFAULT_MAX_BODY_BYTES))
        self.tokens = accepted_tokens(ctx.config.get(self.TOKEN_KEY) if self.TOKEN_KEY else None)
        self.token = self.tokens[0] if self.tokens else None
        self._chunks: list[bytes] = []
        self._size = 0
        self._reserved = 0
        self._metered = False  # no Content-Length: bytes are admitted as they arrive
        self._body_read = False
        self._started = time.monotonic()
        self._outcome: dict[str, int] | None = None
        self._rejection: str | None = None
        self._counted = False
        self.request_id = ""

    # -- what subclasses provide ------------------------------------------------------

    def events(self, body: bytes) -> Sequence[Event]:
        """Turn the request body into events, or raise :class:`RequestRejected` (400)."""
        raise NotImplementedError

    def authorize(self) -> None:
        """Check the credentials; the default compares the ``token`` config (one token or
        a list) in constant time.

        Missing and wrong tokens get the same answer and take the same path. Every accepted
        token is compared, also after a match, so the time taken does not tell which one
        matched."""
        if not self.tokens:
            return
        # Tornado hands header values over as latin-1 text: encoding them back gives the
        # bytes that were sent, to compare with the UTF-8 bytes of the configured token.
        given = self.request.headers.get("Authorization", "").encode("latin-1", "replace")
        matched = False
        for token in self.tokens:
            matched |= hmac.compare_digest(given, token.encode("utf-8"))
        if not matched:
            raise RequestRejected(401, "missing or wrong Authorization token")

    def verify_body(self, body: bytes) -> None:
        """Check credentials that cover the body (e.g. an HMAC signature); raise
        ``RequestRejected(401, ...)`` to refuse. Runs after :meth:`authorize` and before the
        Content-Type check and parsing; a refusal counts as an auth failure."""

    def accepts_content_type(self, mtype: str) -> bool:
        return is_json_like(mtype)

    def attribute_problem(self, events: Sequence[Event]) -> str | None:
        """Why the events cannot be CloudEvents (a 400), or None; the default looks at
        every string attribute (:func:`attribute_problem`). A source that knows which of
        its strings can hold anything may check just those."""
        return attribute_problem(events)

    # -- the request path -------------------------------------------------------------

    def prepare(self) -> None:
        headers = self.request.headers
        given_id = headers.get("X-Request-Id", "")
        self.request_id = given_id if _REQUEST_ID.fullmatch(given_id) else new_request_id()
        self.set_header("X-Request-Id", self.request_id)
        guard = self.ctx.guard
        if guard is not None:
            guard.stats.requests_in_flight += 1
            self._counted = True
            if not guard.accepting:
                raise RequestRejected(503, "shutting down", retry_after=5)
            if not guard.allows(self.request.remote_ip or "", headers.get("X-Forwarded-For")):
                raise RequestRejected(403, "source address not allowed")
        if self.request.method != "POST":
            raise RequestRejected(405, f"method {self.request.method} not allowed; use POST")
        try:
            self.authorize()
        except RequestRejected:
            if guard is not None:
                guard.stats.auth_failures += 1
            raise
        length = headers.get("Content-Length")
        if length is None:
            self._metered = "Transfer-Encoding" in headers
            return
        claimed = int(length) if length.isdigit() else 0  # the connection checked it
        if claimed > self.max_body_bytes:
            raise RequestRejected(413, f"body larger than {self.max_body_bytes} bytes")
        if guard is not None:
            if not guard.admit(claimed):
                raise RequestRejected(503, "too many bytes in flight", retry_after=1)
            self._reserved = claimed

    def data_received(self, chunk: bytes) -> None:
        size = self._size = self._size + len(chunk)
        if size > self.max_body_bytes:
            self._refuse(RequestRejected(413, f"body larger than {self.max_body_bytes} bytes"))
            return
        if self._metered:
            guard = self.ctx.guard
            if guard is not None:
                if not guard.admit(len(chunk), own=self._reserved):
                    self._refuse(RequestRejected(503, "too many bytes in flight", retry_after=1))
                    return
                self._reserved += len(chunk)
        self._chunks.append(chunk)

    def _refuse(self, rejection: RequestRejected) -> None:
        """Answer while the body is still arriving; the connection closes after it."""
        self._chunks = []
        self._rejection = rejection.detail
        self.send_error(rejection.status_code, exc_info=(type(rejection), rejection, None))

    async def post(self) -> None:
        self._body_read = True
        guard = self.ctx.guard
        body = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks = []
        try:
            self.verify_body(body)
        except RequestRejected:
            if guard is not None:
                guard.stats.auth_failures += 1
            raise
        mtype = media_type(self.request.headers.get("Content-Type"))
        if not self.accepts_content_type(mtype):
            raise RequestRejected(415, unsupported_type(mtype))
        if body[:3] == _BOM:
            body = body[3:]
        try:
            events = self.events(body)
        except RequestRejected:
            if guard is not None:
                guard.stats.invalid += 1
            raise
        problem = self.attribute_problem(events)
        if problem is not None:
            if guard is not None:
                guard.stats.invalid += 1
            raise RequestRejected(400, problem)
        traceparent = self.request.headers.get("traceparent", "").strip().lower()
        if traceparent and _TRACEPARENT.fullmatch(traceparent):
            with_trace_context(events, traceparent, self.request.headers.get("tracestate"))
        try:
            outcome = await self.ctx.ingest.submit(events, request_id=self.request_id)
        except Unavailable as exc:
            raise RequestRejected(503, exc.reason, retry_after=exc.retry_after) from None
        self._outcome = outcome.as_dict()
        self.set_header("Content-Type", "application/json")
        self.finish(orjson.dumps(self._outcome))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header(
            "X-Request-Id", self.request_id or new_request_id()
        )  # send_error cleared it
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, RequestRejected):
            detail = exc.detail
            if exc.retry_after is not None:
                self.set_header("Retry-After", str(exc.retry_after))
            for name, value in exc.headers.items():
                self.set_header(name, value)
        elif status_code >= 500:
            detail = "internal error"
        else:
            detail = self._reason
        if status_code == 405:
            self.set_header("Allow", "POST")
        if not self._body_read:  # answered before the body: the connection closes
            self.set_header("Connection", "close")
        self.set_header("Content-Type", "application/json")
        self.finish(orjson.dumps({"error": detail}))

    def on_finish(self) -> None:
        guard = self.ctx.guard
        status = self.get_status()
        seconds = time.monotonic() - self._started
        if guard is not None:
            guard.release(self._reserved)
            self._reserved = 0
            self._uncount(guard)
            guard.stats.statuses[status] += 1
            guard.stats.observe_request(seconds)
        fields: dict[str, Any] = {
            "connector": self.ctx.connector,
            "request_id": self.request_id,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "bytes": self._size,
        }
        if self._outcome is not None:
            fields.update(self._outcome)
        if self._rejection is not None:
            fields["reason"] = self._rejection
        self.ctx.log.info(
            "request %s: %d%s",
            self.request_id,
            status,
            f" {self._rejection}" if self._rejection else "",
            extra={"fields": fields},
        )

    def on_connection_close(self) -> None:
        guard = self.ctx.guard
        if guard is not None:
            guard.release(self._reserved)
            self._reserved = 0
            self._uncount(guard)

    def _uncount(self, guard: RequestGuard) -> None:
        if self._counted:
            self._counted = False
            guard.stats.requests_in_flight -= 1

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, RequestRejected):
            self._rejection = value.detail  # logged once, by on_finish
            return
        if self._finished and isinstance(value, StreamClosedError):
            return  # answered early; the rest of the body was never going to come
        super().log_exception(typ, value, tb)
