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
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from connector_runtime import PullContext, parse_duration

from connector_runtime_auth0.logs_api import PageError, parse_page, start_checkpoint, written_at
from connector_runtime_auth0.management import ApiProblem, ManagementApi
from connector_runtime_auth0.mapping import Mapper
from connector_runtime_auth0.pulling import Backoff, submit

__all__ = ["Settings", "pull"]


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


class _Tenant(ManagementApi):
    """The Management API, and its log pages."""

    def __init__(self, s: Settings) -> None:
        super().__init__(
            s.domain, s.client_id, s.client_secret, s.timeout, rate=s.rate, scope="read:logs"
        )

    async def page(self, url: str) -> tuple[bytes, str | None]:
        """A page's body and its ``Link: rel="next"`` URL."""
        response = await self.call("GET", url, "read:logs", "the logs API")
        if response.code == 200:
            return response.body, _next_link(response.headers.get("Link", ""))
        raise ApiProblem("unavailable", f"GET /api/v2/logs answered HTTP {response.code}")


async def pull(ctx: PullContext) -> None:
    """The ``auth0-logs`` source's task (see the module docstring)."""
    s = Settings.of(ctx.config)
    mapper_source = ctx.config.get("source") or ctx.default_source
    tenant = _Tenant(s)
    checkpoint = ctx.checkpoint
    if checkpoint is None:  # the first run: fix its start in the spool at once
        checkpoint = start_checkpoint(s.start_from)
        await submit(ctx, [], checkpoint)
    url: str | None = None
    backoff = Backoff()
    try:
        while True:
            if url is None:
                url = f"{tenant.base}/api/v2/logs?" + urlencode(
                    {"from": checkpoint, "take": s.take}
                )
            try:
                body, link = await tenant.page(url)
                records = parse_page(body, Mapper(mapper_source))
            except (ApiProblem, PageError) as exc:
                kind, reason, delay = (
                    (exc.kind, exc.reason, exc.delay)
                    if isinstance(exc, ApiProblem)
                    else ("invalid_page", str(exc), None)
                )
                ctx.status.problem(kind, reason)
                await asyncio.sleep(backoff.next(kind, delay))
                continue
            backoff.reset()
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
                await submit(ctx, [event for _, event in ready], checkpoint)
            ctx.status.ok()
            whole = len(ready) == len(records)
            if len(records) < s.take or not whole:  # caught up (or held back by settle)
                url = None
                await asyncio.sleep(s.poll_interval)
            else:
                url = link if link and whole else None
    finally:
        tenant.close()


def _next_link(header: str) -> str | None:
    for part in header.split(","):
        url, _, params = part.partition(";")
        if 'rel="next"' in params.replace(" ", "") or "rel=next" in params.replace(" ", ""):
            return url.strip().strip("<>") or None
    return None
