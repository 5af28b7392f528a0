"""The ``http`` target: the CloudEvents HTTP protocol binding, in three modes.

- ``binary``: one POST per event, attributes as ``ce-`` headers, data as the body;
- ``structured``: one POST per event, ``application/cloudevents+json``;
- ``batch``: one POST per batch, ``application/cloudevents-batch+json``.

Connections are kept alive in a pool of at most ``maxConnections``; that pool also bounds
the requests in flight, so a slow target makes senders wait instead of queueing in memory.
A 2xx answer is acceptance; 408, 409, 429 and 5xx (and network errors and timeouts) are
transient; any other status is a permanent rejection. A batch the target rejects for good
is split in halves and sent again, so that one bad event does not sink its neighbours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from connector_runtime.config_checks import parse_duration
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

TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})
MAX_BINARY_HEADER_BYTES = 8192
"""Above this many bytes of ``ce-`` headers an event goes out in structured mode."""
USER_AGENT = "connector-runtime/0.1"

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
        # Per-event modes still take many events per call and fan out over the pool.
        self.max_batch = batch if self.mode == "batch" else 4 * self.connections
        self.log = ctx.log
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.connections, keepalive_timeout=30, enable_cleanup_closed=True
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                skip_auto_headers=("Accept-Encoding",),
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, events: Sequence[Event]) -> SendResult:
        if self.mode == "batch":
            return await self._send_batch(events)
        results = await asyncio.gather(*(self._send_one(e) for e in events))
        rejected: dict[int, str] = {}
        retry: dict[int, str] = {}
        for i, (permanent, reason) in enumerate(results):
            if reason is None:
                continue
            (rejected if permanent else retry)[i] = reason
        return SendResult(rejected=rejected, retry=retry)

    async def _send_one(self, event: Event) -> tuple[bool, str | None]:
        ce_headers, body = to_binary(event) if self.mode == "binary" else ({}, b"")
        if ce_headers and sum(map(len, ce_headers.values())) <= MAX_BINARY_HEADER_BYTES:
            headers = {**self.headers, **ce_headers}
        else:
            # Structured mode, also for an event whose attributes would not fit in request
            # headers (servers refuse heads over 8-64 KiB): the binding allows either.
            headers = {**self.headers, "Content-Type": STRUCTURED_CONTENT_TYPE}
            body = to_structured(event)
        try:
            await self._post(body, headers)
        except DeliveryError as exc:
            return exc.permanent, exc.reason
        return False, None

    async def _send_batch(self, events: Sequence[Event]) -> SendResult:
        headers = {**self.headers, "Content-Type": BATCH_CONTENT_TYPE}
        try:
            await self._post(to_batch(events), headers)
        except DeliveryError as exc:
            if not exc.permanent:
                raise
            if len(events) == 1:
                return SendResult(rejected={0: exc.reason})
            half = len(events) // 2
            left = await self._send_batch(events[:half])
            right = await self._send_batch(events[half:])
            return SendResult(
                rejected={**left.rejected, **{half + i: r for i, r in right.rejected.items()}},
                retry={**left.retry, **{half + i: r for i, r in right.retry.items()}},
            )
        return SendResult()

    async def _post(self, body: bytes, headers: Mapping[str, str]) -> None:
        session = self._session
        if session is None:
            raise DeliveryError("http target not started")
        failure = None
        try:
            async with session.post(
                self.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
                if 200 <= status < 300:
                    await response.read()
                    return
                text = (await response.text(errors="replace"))[:200]
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            failure = f"{type(exc).__name__}: {exc}".strip(": ")
        if failure is not None:
            # Raised outside the except block: no exception chain (and no traceback frames
            # holding the request body) outlives the attempt.
            raise DeliveryError(failure)
        reason = f"HTTP {status}: {' '.join(text.split())}" if text.strip() else f"HTTP {status}"
        transient = status in TRANSIENT_STATUSES or status >= 500
        raise DeliveryError(reason, permanent=not transient, status=status)


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
