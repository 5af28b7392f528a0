"""The ``http`` target: the CloudEvents HTTP protocol binding, in three modes.

- ``binary``: one POST per event, attributes as ``ce-`` headers, data as the body;
- ``structured``: one POST per event, ``application/cloudevents+json``;
- ``batch``: one POST per batch, ``application/cloudevents-batch+json``.

Requests go through a small HTTP/1.1 client of our own (``http_client.py``, asyncio
Protocols: a fraction of a general client's CPU per request). Connections are kept alive in
a pool of at most ``maxConnections``; that pool also bounds the requests in flight, so a
slow target makes senders wait instead of queueing in memory. Redirects are not followed
(a 3xx is a permanent rejection). ``timeout`` bounds each POST as a whole, waiting for a
connection included; the POSTs of one ``send`` call in a per-event mode share one deadline.
The runtime calls ``send`` with one POST's events (``max_batch``: ``maxBatch`` in batch
mode, else 1), at most ``maxConnections`` calls at once (``max_in_flight``).
A 2xx answer is acceptance; 408, 409, 429 and 5xx (and network errors and timeouts) are
transient; any other status is a permanent rejection. A batch the target rejects for good
is split in halves and sent again, so that one bad event does not sink its neighbours.
The answer's status goes into the result as a field (``SendResult.status``, or
``DeliveryError.status``), and so does the ``Retry-After`` of a 429 or 503, in seconds
(``retry_after``): the dispatcher waits at least that long before the next try.
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import datetime
import re
import ssl
import time
from collections.abc import Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from connector_runtime._version import __version__
from connector_runtime.config.checks import parse_duration
from connector_runtime.errors import DeliveryError
from connector_runtime.events import (
    BATCH_CONTENT_TYPE,
    STRUCTURED_CONTENT_TYPE,
    Event,
    to_batch,
    to_binary,
    to_structured,
)
from connector_runtime.hookspecs import hookimpl
from connector_runtime.records import SendResult, TargetContext, TargetType
from connector_runtime.targets.http.client import ConnectionPool, ProtocolError, Response

TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})
RETRY_AFTER_STATUSES = frozenset({429, 503})
"""Answers whose ``Retry-After`` says when to come back (RFC 9110 §10.2.3; on a 3xx it
would be about a redirect, which is not followed)."""
ACCEPTED = SendResult()
MAX_BINARY_HEADER_BYTES = 8192
"""Above this many bytes of ``ce-`` headers an event goes out in structured mode."""
USER_AGENT = f"connector-runtime/{__version__}"

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_FRAMING = frozenset({"content-length", "transfer-encoding"})

CONFIG_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "http target",
    "type": "object",
    "required": ["url"],
    "additionalProperties": False,
    "properties": {
        "url": {
            "type": "string",
            "pattern": "^https?://",
            "description": "Where events are POSTed.",
        },
        "mode": {
            "enum": ["binary", "structured", "batch"],
            "default": "binary",
            "description": "CloudEvents HTTP content mode; batch sends many events per POST.",
        },
        "headers": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "x-secret": True,
            "description": "Extra request headers (e.g. Authorization); values are secret.",
        },
        "timeout": {
            "oneOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)$"},
            ],
            "default": 10,
            "description": "Seconds (or a duration string) to wait for one answer.",
        },
        "maxConnections": {
            "type": "integer",
            "minimum": 1,
            "maximum": 1024,
            "default": 32,
            "description": "Connections kept alive to the target; also the requests in flight.",
        },
        "maxBatch": {
            "type": "integer",
            "minimum": 1,
            "maximum": 100000,
            "default": 1000,
            "description": "Events per POST in batch mode.",
        },
    },
}


class HTTPTarget:
    """Posts CloudEvents to one URL over a pool of kept-alive connections."""

    def __init__(self, config: Mapping[str, Any], ctx: TargetContext) -> None:
        self.url = str(config["url"])
        self.mode = str(config.get("mode", "binary"))
        self.headers = {"User-Agent": USER_AGENT, **dict(config.get("headers", {}))}
        self.timeout = parse_duration(config.get("timeout", 10))
        self.connections = int(config.get("maxConnections", 32))
        batch = int(config.get("maxBatch", 1000))
        # One POST per send call, up to maxConnections at once: the dispatcher records each
        # answer, so a crash sends again at most the POSTs in flight (also per event).
        self.max_batch = batch if self.mode == "batch" else 1
        self.max_in_flight = self.connections
        self.log = ctx.log
        self._pool: ConnectionPool | None = None
        self._head: RequestHead | None = None
        self._bad_url = ""
        try:
            self._head = RequestHead("POST", self.url, self.headers)
        except ValueError as exc:  # as aiohttp did: every send fails, transiently
            self._bad_url = f"InvalidURL: {exc}"

    async def start(self) -> None:
        if self._pool is None and self._head is not None:
            head = self._head
            context = ssl.create_default_context() if head.scheme == "https" else None
            self._pool = ConnectionPool(
                head.host,
                head.port,
                max_connections=self.connections,
                timeout=self.timeout,
                ssl_context=context,
            )

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def send(self, events: Sequence[Event]) -> SendResult:
        if self.mode == "batch":
            return await self._send_batch(events)
        if len(events) == 1:  # as the dispatcher sends (max_batch 1)
            deadline = None if self._pool is None else self._pool.loop.time() + self.timeout
            failure = await self._send_one(events[0], deadline)
            return ACCEPTED if failure is None else failed({0: failure})
        results: list[DeliveryError | None] = [None] * len(events)
        indexes = iter(range(len(events)))
        # One deadline for the whole call, as when every event had its own task.
        deadline = None if self._pool is None else self._pool.loop.time() + self.timeout

        async def worker() -> None:
            # A few workers share the events: a task per worker, not per event (the pool
            # bounds the requests in flight anyway).
            for i in indexes:
                results[i] = await self._send_one(events[i], deadline)

        workers = min(len(events), self.connections)
        if workers == 1:
            await worker()
        elif workers:
            await asyncio.gather(*(worker() for _ in range(workers)))
        return failed({i: failure for i, failure in enumerate(results) if failure is not None})

    async def _send_one(self, event: Event, deadline: float | None) -> DeliveryError | None:
        ce_headers, body = to_binary(event) if self.mode == "binary" else ({}, b"")
        if ce_headers and sum(map(len, ce_headers.values())) <= MAX_BINARY_HEADER_BYTES:
            content_type = ce_headers.pop("Content-Type", None)
        else:
            # Structured mode, also for an event whose attributes would not fit in request
            # headers (servers refuse heads over 8-64 KiB): the binding allows either.
            content_type, ce_headers = STRUCTURED_CONTENT_TYPE, {}
            body = to_structured(event)
        try:
            await self._post(body, content_type, ce_headers, deadline)
        except DeliveryError as exc:
            return exc
        return None

    async def _send_batch(self, events: Sequence[Event]) -> SendResult:
        try:
            await self._post(to_batch(events), BATCH_CONTENT_TYPE, {})
        except DeliveryError as exc:
            if not exc.permanent:
                raise
            if len(events) == 1:
                return failed({0: exc})
            half = len(events) // 2
            left = await self._send_batch(events[:half])
            right = await self._send_batch(events[half:])
            return SendResult(
                rejected={**left.rejected, **{half + i: r for i, r in right.rejected.items()}},
                retry={**left.retry, **{half + i: r for i, r in right.retry.items()}},
                status={**left.status, **{half + i: s for i, s in right.status.items()}},
            )
        return SendResult()

    async def _post(
        self,
        body: bytes,
        content_type: str | None,
        headers: Mapping[str, str],
        deadline: float | None = None,
    ) -> None:
        pool, request = self._pool, self._head
        if request is None:
            raise DeliveryError(self._bad_url)
        if pool is None:
            raise DeliveryError("http target not started")
        try:
            head = request.render(content_type, headers, len(body))
        except ValueError as exc:
            raise DeliveryError(str(exc), permanent=True) from None
        failure = None
        try:
            response = await pool.request(head, body, deadline)
        except (OSError, ProtocolError) as exc:  # TimeoutError and ConnectionError included
            failure = f"{type(exc).__name__}: {exc}".strip(": ")
        if failure is not None:
            # Raised outside the except block: no exception chain (and no traceback frames
            # holding the request body) outlives the attempt.
            raise DeliveryError(failure)
        status = response.status
        if 200 <= status < 300:
            return
        text = _text(response)[:200]
        reason = f"HTTP {status}: {' '.join(text.split())}" if text.strip() else f"HTTP {status}"
        transient = status in TRANSIENT_STATUSES or status >= 500
        wait = None
        if status in RETRY_AFTER_STATUSES and response.retry_after:
            wait = retry_after_seconds(response.retry_after, time.time())
        raise DeliveryError(reason, permanent=not transient, status=status, retry_after=wait)


def failed(failures: Mapping[int, DeliveryError]) -> SendResult:
    """The result of a call whose events ``failures`` (by index) failed, the rest accepted:
    each one's reason and status, and the longest Retry-After any of them was given."""
    rejected: dict[int, str] = {}
    retry: dict[int, str] = {}
    status: dict[int, int] = {}
    waits = [0.0]
    for i, exc in failures.items():
        (rejected if exc.permanent else retry)[i] = exc.reason
        if exc.status is not None:
            status[i] = exc.status
        if exc.retry_after is not None:
            waits.append(exc.retry_after)
    return SendResult(rejected, retry, status, max(waits) or None)


def retry_after_seconds(value: str, now: float) -> float | None:
    """The seconds a ``Retry-After`` value asks to wait: delta-seconds (``120``) or an
    HTTP-date (``Sun, 06 Nov 1994 08:49:37 GMT``, or its two obsolete forms), counted from
    ``now`` (epoch seconds). None when it asks for no wait (0, a date past) or is not one."""
    value = value.strip()
    if value.isascii() and value.isdigit():
        seconds = float(value)  # digits beyond a float's range: inf, capped by maxBackoff
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:  # the asctime form: an HTTP-date is always GMT
            when = when.replace(tzinfo=datetime.UTC)
        seconds = when.timestamp() - now
    return seconds if seconds > 0 else None


class RequestHead:
    """Serialises request heads for one URL: the request line and the fixed headers are
    rendered once; per request only the content type, the length and the given headers."""

    def __init__(self, method: str, url: str, headers: Mapping[str, str]) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http(s) URL with a host")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        target = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
        if parts.query:
            target += "?" + quote(parts.query, safe="/?%:@!$&'()*+,;=-._~")
        host = parts.netloc.rpartition("@")[2]
        fixed = {"Host": host if host.isascii() else host.encode("idna").decode("ascii")}
        fixed["Accept"] = "*/*"
        if parts.username is not None:  # credentials in the URL, as aiohttp did
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            fixed["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        canonical = {name.lower(): name for name in fixed}
        self.content_type = "application/octet-stream"
        self.overridable: dict[str, str] = {}
        """Configured ``ce-`` headers, which an event's own attributes replace."""
        self.invalid: str | None = None
        for name, value in headers.items():
            low = name.lower()
            if not _TOKEN.fullmatch(name) or _bad_value(value):
                # Name the header, never its value: configured values may be secrets.
                self.invalid = f"request header {name!r} is not a valid name or holds CR/LF"
            elif low == "content-type":
                self.content_type = value
            elif low.startswith("ce-"):
                self.overridable[name] = value
            elif low not in _FRAMING:  # the framing headers are this client's
                fixed.pop(canonical.get(low, name), None)
                fixed[name] = value
        lines = "".join(f"{name}: {value}\r\n" for name, value in fixed.items())
        self._prefix = f"{method} {target} HTTP/1.1\r\n{lines}"

    def render(self, content_type: str | None, headers: Mapping[str, str], length: int) -> bytes:
        """The head for a body of ``length`` bytes; ``content_type`` (None: the configured
        one, else ``application/octet-stream``) and ``headers`` go after the fixed ones.

        Raises ``ValueError`` (and sends nothing) if a name or value holds CR or LF.
        """
        if self.invalid is not None:
            raise ValueError(self.invalid)
        if self.overridable:
            headers = {**self.overridable, **headers}
        lines = f"Content-Type: {content_type or self.content_type}\r\n" + "".join(
            [f"{name}: {value}\r\n" for name, value in headers.items()]
        )
        # Each line has one CR and one LF of its own: any more sit in a name or value.
        expected = len(headers) + 1
        if lines.count("\n") != expected or lines.count("\r") != expected:
            bad = [n for n, v in headers.items() if _bad_value(n) or _bad_value(v)]
            raise ValueError(f"request header {(bad or ['Content-Type'])[0]!r} holds CR/LF")
        head = f"{self._prefix}{lines}Content-Length: {length}\r\n\r\n"
        try:
            return head.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise ValueError("a request header is not encodable as UTF-8") from None


def _bad_value(value: str) -> bool:
    return "\r" in value or "\n" in value or "\0" in value


def _text(response: Response) -> str:
    """The kept body decoded with the ``charset`` of its media type (default UTF-8)."""
    charset = "utf-8"
    for param in response.content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"') or charset
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"
    return response.body.decode(charset, errors="replace")


def create(config: Mapping[str, Any], ctx: TargetContext) -> HTTPTarget:
    return HTTPTarget(config, ctx)


@hookimpl
def register_target_types(register: Any) -> None:
    register(
        TargetType(
            name="http",
            config_schema=CONFIG_SCHEMA,
            create=create,
            description="POST CloudEvents to a URL (binary, structured or batch mode)",
        )
    )
