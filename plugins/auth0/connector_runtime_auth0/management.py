"""A client of the Auth0 Management API, shared by the ``auth0-logs`` and
``auth0-events-pull`` tasks and the log stream watcher: client-credentials tokens fetched
again before they expire, requests paced by :class:`~.logs_api.Pacer`, and the answers
every endpoint shares turned into an :class:`ApiProblem` with a kind (a metric label) and a
one-line reason without secrets.

- 401 on a request: the token expired or was revoked; it is dropped, so the next request
  asks for a new one (``delay`` 0: at once).
- 403: the application's grant lacks the scope the endpoint needs (Auth0 answers
  ``insufficient_scope``); the reason names the scope we asked for.
- 429: no request before ``X-RateLimit-Reset`` (epoch seconds), then ``delay`` 0.
  https://auth0.com/docs/troubleshoot/customer-support/operational-policies/rate-limit-policy/management-api-endpoint-rate-limits
- 5xx is left to the caller; timeouts and refused connections are ``unavailable``.

Tokens: https://auth0.com/docs/secure/tokens/access-tokens/management-api-access-tokens/get-management-api-access-tokens-for-production
"""

from __future__ import annotations

import json
import time
from typing import Final

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse

from connector_runtime_auth0.logs_api import Pacer, audience, base_url

__all__ = ["ApiProblem", "ManagementApi", "error_code", "number"]

REFRESH_MARGIN: Final = 60.0
"""A token is fetched again this long before it expires (at most half its lifetime)."""


class ApiProblem(Exception):
    """A request failed: ``kind`` (``auth``, ``scope``, ``rate_limited``, ``unavailable``,
    ...), a one-line ``reason``, and ``delay``: seconds to wait before asking again when the
    answer says so (0: at once), else None (the caller backs off)."""

    def __init__(self, kind: str, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.delay = delay


class ManagementApi:
    """One tenant's Management API, as one machine-to-machine application."""

    def __init__(
        self,
        domain: str,
        client_id: str,
        client_secret: str,
        timeout: float,
        *,
        rate: float,
        scope: str,
    ) -> None:
        """``scope``: what the caller's endpoints need, named when credentials are refused."""
        self.domain = domain
        self.scope = scope
        self.client_id = client_id
        self._secret = client_secret
        self.timeout = timeout
        self.base = base_url(domain)
        self.http = AsyncHTTPClient(force_instance=True)
        self.pacer = Pacer(rate)
        self._token: str | None = None
        self._renew_at = 0.0

    async def _fetch(self, request: HTTPRequest) -> HTTPResponse:
        try:
            return await self.http.fetch(request, raise_error=False)
        except HTTPClientError as exc:  # 599: timeout, connection refused or reset
            raise ApiProblem("unavailable", f"{_where(request)}: {exc.message or exc}") from None
        except OSError as exc:
            raise ApiProblem("unavailable", f"{_where(request)}: {exc.strerror or exc}") from None

    def drop(self) -> None:
        """The API refused the token (expired or revoked): the next request asks anew."""
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
        response = await self._fetch(request)
        if response.code in (400, 401, 403):
            raise ApiProblem(
                "auth",
                f"Auth0 refused the client credentials of client {self.client_id}"
                f" (HTTP {response.code} {error_code(response.body)}): check clientId,"
                " clientSecret and that the application may call the Management API"
                f" with the scope {self.scope}",
            )
        if response.code != 200:
            raise ApiProblem("unavailable", f"POST /oauth/token answered HTTP {response.code}")
        try:
            answer = json.loads(response.body)
            token, lifetime = str(answer["access_token"]), float(answer.get("expires_in", 86400))
        except (ValueError, KeyError, TypeError):
            raise ApiProblem("unavailable", "POST /oauth/token answered no access_token") from None
        self._token = token
        self._renew_at = time.monotonic() + lifetime - min(REFRESH_MARGIN, lifetime / 2)
        return token

    async def call(
        self, method: str, url: str, scope: str, what: str, body: bytes | None = None
    ) -> HTTPResponse:
        """``method url`` with a token, paced; 401, 403 and 429 raise :class:`ApiProblem`
        (``what`` names the endpoint in reasons, ``scope`` the scope it needs); any other
        answer is returned."""
        token = await self.token()
        await self.pacer.wait()
        headers = {"Authorization": f"Bearer {token}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = HTTPRequest(
            url, method=method, body=body, headers=headers, request_timeout=self.timeout
        )
        response = await self._fetch(request)
        if response.code == 429:
            reset = number(response.headers.get("X-RateLimit-Reset"))
            self.pacer.hold_until(reset if reset is not None else time.time() + 1.0)
            raise ApiProblem("rate_limited", f"{what} answered 429 (rate limit)", 0.0)
        if response.code == 401:
            self.drop()  # expired or revoked: the next attempt asks for a new one
            raise ApiProblem("auth", f"{what} refused the access token (HTTP 401)", 0.0)
        if response.code == 403:
            raise ApiProblem(
                "scope",
                f"{what} answered 403 ({error_code(response.body)}): the application lacks"
                f" the scope {scope}",
            )
        return response

    def close(self) -> None:
        self.http.close()


def error_code(body: bytes) -> str:
    """An Auth0 error answer's ``errorCode`` or ``error`` (short), for a reason."""
    try:
        answer = json.loads(body)
    except ValueError:
        return "no JSON"
    if not isinstance(answer, dict):
        return "no error code"
    code = answer.get("errorCode") or answer.get("error")
    return str(code)[:60] if code else "no error code"


def number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _where(request: HTTPRequest) -> str:
    return f"{request.method} {request.url.split('?', 1)[0]}"
