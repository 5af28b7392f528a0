"""The ``auth0-logs`` pull task: an Auth0 tenant's logs, by checkpoint, into the runtime.

One loop per connector (:func:`pull`, the source type's ``pull``):

1. a client-credentials token (``POST /oauth/token``), fetched again before it expires or
   when the API answers 401;
2. ``GET /api/v2/logs?from=<checkpoint>&take=<take>``, paced by :class:`~.logs_api.Pacer`
   to at most ``requestsPerSecond``;
3. the page's records, up to the first one written less than ``settle`` ago, handed to the
   runtime with the last one's log_id as the checkpoint (committed with them); then the
   ``Link`` header's next page, or, when a page was short, ``pollInterval`` of sleep.

Failures never skip a record (the checkpoint moves only with a commit) and never spin:
429 waits until ``X-RateLimit-Reset``; 5xx, timeouts and refused connections back off
(1 s doubling to 60 s); refused credentials back off from 5 s to 5 min. Each is a
``ctx.status.problem`` (a /readyz reason and ``pull_errors_total{kind}``), cleared by the
next page that commits.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

from connector_runtime import PullContext, Unavailable, parse_duration
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse

from connector_runtime_auth0.logs_api import (
    Pacer,
    PageError,
    audience,
    base_url,
    parse_page,
    start_checkpoint,
    written_at,
)
from connector_runtime_auth0.mapping import Mapper

__all__ = ["Settings", "pull"]

REFRESH_MARGIN: Final = 60.0
"""A token is fetched again this long before it expires (at most half its lifetime)."""
BACKOFF: Final = (1.0, 60.0)
AUTH_BACKOFF: Final = (5.0, 300.0)


@dataclass(frozen=True)
class Settings:
    domain: str
    client_id: str
    client_secret: str
    start_from: str
    take: int
    rate: float
    poll_interval: float
    settle: float
    timeout: float

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> Settings:
        return cls(
            domain=config["domain"],
            client_id=config["clientId"],
            client_secret=config["clientSecret"],
            start_from=config.get("startFrom", "now"),
            take=int(config.get("take", 100)),
            rate=float(config.get("requestsPerSecond", 1)),
            poll_interval=parse_duration(config.get("pollInterval", "10s")),
            settle=parse_duration(config.get("settle", 0)),
            timeout=parse_duration(config.get("requestTimeout", "30s")),
        )


class _Retry(Exception):
    """This request failed in a way that passes: wait ``delay``, then ask again."""

    def __init__(self, kind: str, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.delay = delay


class _Tenant:
    """The HTTP side: a token, and log pages."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.base = base_url(settings.domain)
        self.http = AsyncHTTPClient(force_instance=True)
        self.pacer = Pacer(settings.rate)
        self._token: str | None = None
        self._renew_at = 0.0

    async def _fetch(self, request: HTTPRequest) -> HTTPResponse:
        try:
            return await self.http.fetch(request, raise_error=False)
        except HTTPClientError as exc:  # 599: timeout, connection refused or reset
            raise _Retry("unavailable", f"{_where(request)}: {exc.message or exc}") from None
        except OSError as exc:
            raise _Retry("unavailable", f"{_where(request)}: {exc.strerror or exc}") from None

    async def token(self) -> str:
        if self._token is not None and time.monotonic() < self._renew_at:
            return self._token
        body = json.dumps(
            {
                "grant_type": "client_credentials",
                "client_id": self.s.client_id,
                "client_secret": self.s.client_secret,
                "audience": audience(self.s.domain),
            }
        )
        request = HTTPRequest(
            self.base + "/oauth/token",
            method="POST",
            body=body,
            headers={"Content-Type": "application/json"},
            request_timeout=self.s.timeout,
        )
        response = await self._fetch(request)
        if response.code in (400, 401, 403):
            raise _Retry(
                "auth",
                f"Auth0 refused the client credentials of client {self.s.client_id}"
                f" (HTTP {response.code} {_error_code(response.body)}): check clientId,"
                " clientSecret and that the application may call the Management API",
            )
        if response.code != 200:
            raise _Retry("unavailable", f"POST /oauth/token answered HTTP {response.code}")
        try:
            answer = json.loads(response.body)
            token, lifetime = str(answer["access_token"]), float(answer.get("expires_in", 86400))
        except (ValueError, KeyError, TypeError):
            raise _Retry("unavailable", "POST /oauth/token answered no access_token") from None
        self._token = token
        self._renew_at = time.monotonic() + lifetime - min(REFRESH_MARGIN, lifetime / 2)
        return token

    async def page(self, url: str) -> tuple[bytes, str | None]:
        """A page's body and its ``Link: rel="next"`` URL."""
        token = await self.token()
        await self.pacer.wait()
        request = HTTPRequest(
            url, headers={"Authorization": f"Bearer {token}"}, request_timeout=self.s.timeout
        )
        response = await self._fetch(request)
        if response.code == 200:
            return response.body, _next_link(response.headers.get("Link", ""))
        if response.code == 429:
            reset = _number(response.headers.get("X-RateLimit-Reset"))
            wait_until = reset if reset is not None else time.time() + 1.0
            self.pacer.hold_until(wait_until)
            raise _Retry("rate_limited", "the logs API answered 429 (rate limit)", 0.0)
        if response.code == 401:
            self._token = None  # expired or revoked: the next attempt asks for a new one
            raise _Retry("auth", "the logs API refused the access token (HTTP 401)", 0.0)
        if response.code == 403:
            raise _Retry(
                "auth", "the logs API answered 403: the application lacks the scope read:logs"
            )
        raise _Retry("unavailable", f"GET /api/v2/logs answered HTTP {response.code}")

    def close(self) -> None:
        self.http.close()


async def pull(ctx: PullContext) -> None:
    """The ``auth0-logs`` source's task (see the module docstring)."""
    s = Settings.of(ctx.config)
    mapper_source = ctx.config.get("source") or ctx.default_source
    tenant = _Tenant(s)
    checkpoint = ctx.checkpoint
    if checkpoint is None:  # the first run: fix its start in the spool at once
        checkpoint = start_checkpoint(s.start_from)
        await _submit(ctx, [], checkpoint)
    url: str | None = None
    failures = 0
    try:
        while True:
            if url is None:
                url = f"{tenant.base}/api/v2/logs?" + urlencode(
                    {"from": checkpoint, "take": s.take}
                )
            try:
                body, link = await tenant.page(url)
                records = parse_page(body, Mapper(mapper_source))
            except (_Retry, PageError) as exc:
                kind, reason, delay = (
                    (exc.kind, exc.reason, exc.delay)
                    if isinstance(exc, _Retry)
                    else ("invalid_page", str(exc), None)
                )
                ctx.status.problem(kind, reason)
                failures += 1
                low, high = AUTH_BACKOFF if kind == "auth" and delay is None else BACKOFF
                if delay is None:
                    delay = min(high, low * 2 ** (failures - 1)) * random.uniform(0.8, 1.0)  # noqa: S311  (jitter)
                elif kind == "auth" and failures > 1:  # a fresh token refused again
                    delay = min(AUTH_BACKOFF[1], AUTH_BACKOFF[0] * 2 ** (failures - 2))
                await asyncio.sleep(delay)
                continue
            failures = 0
            cutoff = time.time() - s.settle
            ready = records
            if s.settle > 0:
                ready = []
                for log_id, event in records:
                    if (written_at(log_id) or 0.0) > cutoff:
                        break
                    ready.append((log_id, event))
            if ready:
                checkpoint = ready[-1][0]
                await _submit(ctx, [event for _, event in ready], checkpoint)
            ctx.status.ok()
            whole = len(ready) == len(records)
            if len(records) < s.take or not whole:  # caught up (or held back by settle)
                url = None
                await asyncio.sleep(s.poll_interval)
            else:
                url = link if link and whole else None
    finally:
        tenant.close()


async def _submit(ctx: PullContext, events: list[Any], checkpoint: str) -> None:
    """Commit ``events`` with ``checkpoint``; while the spool refuses, wait and try again."""
    while True:
        try:
            await ctx.ingest.submit(events, checkpoint=checkpoint)
            return
        except Unavailable as exc:
            ctx.status.problem("spool", f"the spool refused a page: {exc}")
            await asyncio.sleep(max(1.0, float(exc.retry_after or 1)))


def _next_link(header: str) -> str | None:
    for part in header.split(","):
        url, _, params = part.partition(";")
        if 'rel="next"' in params.replace(" ", "") or "rel=next" in params.replace(" ", ""):
            return url.strip().strip("<>") or None
    return None


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _error_code(body: bytes) -> str:
    try:
        answer = json.loads(body)
    except ValueError:
        return "no JSON"
    code = answer.get("error") if isinstance(answer, dict) else None
    return str(code)[:60] if code else "no error code"


def _where(request: HTTPRequest) -> str:
    return f"{request.method} {request.url.split('?', 1)[0]}"
