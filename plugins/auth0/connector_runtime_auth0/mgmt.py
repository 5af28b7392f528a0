"""What every Auth0 Management API reader shares: a client-credentials token, one failure
type, and the backoff between attempts.

- :class:`Credentials`: a token from ``POST /oauth/token`` (the client-credentials grant),
  fetched again :data:`REFRESH_MARGIN` before it expires or after :meth:`Credentials.drop`
  (when the API answered 401);
  https://auth0.com/docs/secure/tokens/access-tokens/management-api-access-tokens/get-management-api-access-tokens-for-production
- :class:`Retry`: a request that failed in a way that passes, with the ``kind`` that
  ``ctx.status.problem`` counts and a one-line reason without secrets;
- :class:`Backoff`: 1 s doubling to 60 s with jitter; refused credentials 5 s to 5 min;
- :func:`submit`: events and their checkpoint into the spool, waiting while it refuses.

Used by :mod:`.puller` (``auth0-logs``) and :mod:`.events_puller` (``auth0-events-pull``).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Sequence
from typing import Final

from connector_runtime import Event, PullContext, Unavailable
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse

from connector_runtime_auth0.logs_api import audience, base_url

__all__ = [
    "AUTH_BACKOFF",
    "BACKOFF",
    "REFRESH_MARGIN",
    "Backoff",
    "Credentials",
    "Retry",
    "submit",
]

REFRESH_MARGIN: Final = 60.0
"""A token is fetched again this long before it expires (at most half its lifetime)."""
BACKOFF: Final = (1.0, 60.0)
AUTH_BACKOFF: Final = (5.0, 300.0)


class Retry(Exception):
    """This request failed in a way that passes: wait ``delay`` (None: the backoff's),
    then ask again."""

    def __init__(self, kind: str, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.delay = delay


class Backoff:
    """How long to wait after the n-th failure in a row (:meth:`next`); :meth:`reset`
    after a success."""

    def __init__(self) -> None:
        self.failures = 0

    def reset(self) -> None:
        self.failures = 0

    def next(self, kind: str, delay: float | None) -> float:
        self.failures += 1
        if delay is None:
            low, high = AUTH_BACKOFF if kind == "auth" else BACKOFF
            jitter = random.uniform(0.8, 1.0)  # noqa: S311  (jitter)
            return float(min(high, low * 2 ** (self.failures - 1)) * jitter)
        if kind == "auth" and self.failures > 1:  # a fresh token refused again
            return float(min(AUTH_BACKOFF[1], AUTH_BACKOFF[0] * 2 ** (self.failures - 2)))
        return delay


class Credentials:
    """A Management API access token for ``client_id``, kept until shortly before it
    expires."""

    def __init__(
        self, domain: str, client_id: str, client_secret: str, timeout: float, scope: str
    ) -> None:
        self.domain = domain
        self.base = base_url(domain)
        self.client_id = client_id
        self._secret = client_secret
        self.timeout = timeout
        self.scope = scope
        self.http = AsyncHTTPClient(force_instance=True)
        self._token: str | None = None
        self._renew_at = 0.0

    async def fetch(self, request: HTTPRequest) -> HTTPResponse:
        """``request``'s answer, whatever its status; a transport failure is a Retry."""
        try:
            return await self.http.fetch(request, raise_error=False)
        except HTTPClientError as exc:  # 599: timeout, connection refused or reset
            raise Retry("unavailable", f"{where(request)}: {exc.message or exc}") from None
        except OSError as exc:
            raise Retry("unavailable", f"{where(request)}: {exc.strerror or exc}") from None

    def drop(self) -> None:
        """The API refused the token (expired or revoked): the next call asks anew."""
        self._token = None

    async def token(self) -> str:
        if self._token is not None and time.monotonic() < self._renew_at:
            return self._token
        body = json.dumps(
            {
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self._secret,
                "audience": audience(self.domain),
            }
        )
        request = HTTPRequest(
            self.base + "/oauth/token",
            method="POST",
            body=body,
            headers={"Content-Type": "application/json"},
            request_timeout=self.timeout,
        )
        response = await self.fetch(request)
        if response.code in (400, 401, 403):
            raise Retry(
                "auth",
                f"Auth0 refused the client credentials of client {self.client_id}"
                f" (HTTP {response.code} {error_code(response.body)}): check clientId,"
                f" clientSecret and that the application may call the Management API"
                f" with the scope {self.scope}",
            )
        if response.code != 200:
            raise Retry("unavailable", f"POST /oauth/token answered HTTP {response.code}")
        try:
            answer = json.loads(response.body)
            token, lifetime = str(answer["access_token"]), float(answer.get("expires_in", 86400))
        except (ValueError, KeyError, TypeError):
            raise Retry("unavailable", "POST /oauth/token answered no access_token") from None
        self._token = token
        self._renew_at = time.monotonic() + lifetime - min(REFRESH_MARGIN, lifetime / 2)
        return token

    def close(self) -> None:
        self.http.close()


async def submit(ctx: PullContext, events: Sequence[Event], checkpoint: str) -> None:
    """Commit ``events`` with ``checkpoint``; while the spool refuses, wait and try again."""
    while True:
        try:
            await ctx.ingest.submit(events, checkpoint=checkpoint)
            return
        except Unavailable as exc:
            ctx.status.problem("spool", f"the spool refused a batch: {exc}")
            await asyncio.sleep(max(1.0, float(exc.retry_after or 1)))


def error_code(body: bytes) -> str:
    """The ``error`` member of an Auth0 error answer (at most 60 characters)."""
    try:
        answer = json.loads(body)
    except ValueError:
        return "no JSON"
    code = answer.get("error") if isinstance(answer, dict) else None
    return str(code)[:60] if code else "no error code"


def where(request: HTTPRequest) -> str:
    return f"{request.method} {request.url.split('?', 1)[0]}"
