"""Stream health: the watcher of an Auth0 log stream (``watchStream`` on an ``auth0`` or
``auth0-logs`` connector).

Every ``watchInterval`` it asks ``GET /api/v2/log-streams/{id}`` (scope
``read:log_streams``) for the stream's ``status``: ``active``, ``paused`` (a person paused
it) or ``suspended`` (Auth0 stopped it after its deliveries kept failing).
https://auth0.com/docs/api/management/v2/log-streams/get-log-streams-by-id

- ``connector_runtime_auth0_log_stream_status{connector,stream,status}``: 1 for the status
  seen, 0 for the others; ``unknown`` while the last check failed (refused credentials, a
  missing scope, no such stream, Auth0 unreachable) and before the first one.
- A non-active or unknown stream is a ``/readyz`` warning (the runtime stays ready: the
  webhook still takes what Auth0 sends, and resuming a stream needs it in rotation) and a
  line in the log on every change of status, not on every check.
- ``resumeSuspended: true``: a ``suspended`` stream is set ``active`` again with ``PATCH
  {"status": "active"}`` (scope ``update:log_streams``), logged and counted
  (``connector_runtime_auth0_log_stream_resumes_total``). A ``paused`` stream is never
  resumed: a person paused it.
  https://auth0.com/docs/api/management/v2/log-streams/patch-log-streams-by-id
- Failed checks never spin: a 401 gets a new token and one retry at once, a 429 waits until
  ``X-RateLimit-Reset``, anything else waits ``watchInterval`` doubling up to 10 minutes.
  ``connector_runtime_auth0_log_stream_check_errors_total{kind}`` counts them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from connector_runtime import WatchContext, Watcher, parse_duration
from tornado.httpclient import HTTPResponse

from connector_runtime_auth0.management import ApiProblem, ManagementApi

__all__ = ["MIN_INTERVAL", "STATUSES", "WatchSettings", "check_watch_config", "watchers"]

STATUSES: Final = ("active", "paused", "suspended", "unknown")
DEFAULT_INTERVAL: Final = "60s"
MIN_INTERVAL: Final = 1.0
MAX_ERROR_WAIT: Final = 600.0
WATCHER: Final = "auth0-log-stream"
RESUME: Final = json.dumps({"status": "active"}).encode()


@dataclass(frozen=True)
class WatchSettings:
    stream: str
    interval: float
    resume: bool
    domain: str
    client_id: str
    client_secret: str
    timeout: float

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> WatchSettings | None:
        """The watch a validated config asks for (``None``: none). The credentials are
        ``managementApi``'s (``auth0``) or the connector's own (``auth0-logs``)."""
        stream = config.get("watchStream")
        if not stream:
            return None
        api = config.get("managementApi") or config
        return cls(
            stream=stream,
            interval=parse_duration(config.get("watchInterval", DEFAULT_INTERVAL)),
            resume=bool(config.get("resumeSuspended", False)),
            domain=api["domain"],
            client_id=api["clientId"],
            client_secret=api["clientSecret"],
            timeout=parse_duration(api.get("requestTimeout", "30s")),
        )


def watchers(config: Mapping[str, Any]) -> Sequence[Watcher]:
    """The source types' ``watchers``: one for ``watchStream``, else none."""
    return [Watcher(WATCHER, watch)] if config.get("watchStream") else []


def check_watch_config(config: Mapping[str, Any], has_credentials: bool) -> list[tuple[str, str]]:
    """What a schema cannot say about ``watchStream`` and its companions."""
    problems = []
    watched = bool(config.get("watchStream"))
    if watched and not has_credentials:
        problems.append(
            (
                "watchStream",
                "needs Management API credentials to read the stream's status: set"
                " managementApi (domain, clientId, clientSecret)",
            )
        )
    for key in ("watchInterval", "resumeSuspended"):
        if key in config and not watched:
            problems.append((key, "has no stream to watch: set watchStream"))
    if "managementApi" in config and not watched:
        problems.append(("managementApi", "is used only to watch a stream: set watchStream"))
    timeout = (config.get("managementApi") or {}).get("requestTimeout")
    if timeout is not None:
        try:
            parse_duration(timeout)
        except ValueError as exc:
            problems.append(("managementApi.requestTimeout", str(exc)))
    if "watchInterval" in config:
        try:
            seconds = parse_duration(config["watchInterval"])
        except ValueError as exc:
            problems.append(("watchInterval", str(exc)))
        else:
            if seconds < MIN_INTERVAL:
                problems.append(
                    (
                        "watchInterval",
                        f"must be at least {MIN_INTERVAL:g}s: each check is a Management API"
                        " request, counted against the tenant's rate limit",
                    )
                )
    return problems


class _View:
    """What the runtime shows of the stream: gauges, state line, warning, log lines."""

    def __init__(self, ctx: WatchContext, stream: str) -> None:
        self.ctx = ctx
        self.stream = stream
        self.labels = {"stream": stream}
        self.last: str | None = None
        self.last_reason: str | None = None

    def _publish(self, status: str, warning: str | None, note: str = "") -> None:
        for s in STATUSES:
            self.ctx.status.gauge(
                "auth0_log_stream_status",
                "An Auth0 log stream's status, as the Management API last answered it: 1 for"
                " the status seen (unknown: the last check failed).",
                {**self.labels, "status": s},
                float(s == status),
            )
        self.ctx.status.report(f"Auth0 log stream {self.stream}: {status}{note}", warning)

    def start(self) -> None:
        self._publish("unknown", None, " (not checked yet)")

    def seen(self, status: str, resume_failed: str | None = None) -> None:
        warning = None if status == "active" else f"log stream {self.stream} is {status}"
        if resume_failed:
            warning = f"{warning}; resuming it failed: {resume_failed}"
        self._publish(status, warning)
        if status != self.last:
            was = f" (was {self.last})" if self.last else ""
            if status == "active":
                self.ctx.log.info("log stream %s is active%s", self.stream, was)
            elif status == "paused":
                self.ctx.log.warning(
                    "log stream %s is paused%s: Auth0 sends nothing until a person sets it"
                    " active (resumeSuspended never resumes a paused stream)",
                    self.stream,
                    was,
                )
            else:
                self.ctx.log.warning("log stream %s is %s%s", self.stream, status, was)
        if resume_failed and resume_failed != self.last_reason:
            self.ctx.log.warning("resuming log stream %s failed: %s", self.stream, resume_failed)
        self.last, self.last_reason = status, resume_failed

    def error(self, problem: ApiProblem) -> None:
        self.ctx.status.count(
            "auth0_log_stream_check_errors",
            "Checks of an Auth0 log stream's status (or resumes) that failed, by kind.",
            {**self.labels, "kind": problem.kind},
        )

    def unknown(self, problem: ApiProblem) -> None:
        self._publish("unknown", f"log stream {self.stream}: status unknown: {problem.reason}")
        if self.last != "unknown" or problem.reason != self.last_reason:
            self.ctx.log.warning("log stream %s: status unknown: %s", self.stream, problem.reason)
        self.last, self.last_reason = "unknown", problem.reason

    def resumed(self) -> None:
        self.ctx.status.count(
            "auth0_log_stream_resumes",
            "Times a suspended Auth0 log stream was set active again (resumeSuspended).",
            self.labels,
        )
        self.ctx.log.warning(
            "log stream %s was suspended by Auth0; set it active again (resumeSuspended: true)."
            " Records of the suspended time are not sent by the stream",
            self.stream,
        )


async def watch(ctx: WatchContext) -> None:
    """The watcher's task (see the module docstring)."""
    s = WatchSettings.of(ctx.config)
    if s is None:
        return
    scope = "read:log_streams update:log_streams" if s.resume else "read:log_streams"
    api = ManagementApi(s.domain, s.client_id, s.client_secret, s.timeout, rate=1.0, scope=scope)
    view = _View(ctx, s.stream)
    view.start()
    failures = 0
    try:
        while True:
            try:
                await _check(api, s, view)
                failures, wait = 0, s.interval
            except ApiProblem as problem:
                view.error(problem)
                failures += 1
                if problem.delay is not None and failures == 1:  # a new token, or after 429
                    continue
                if problem.kind != "rate_limited":  # a 429 says nothing about the stream
                    view.unknown(problem)
                wait = min(max(s.interval, MAX_ERROR_WAIT), s.interval * 2 ** (failures - 1))
            await asyncio.sleep(wait)
    finally:
        api.close()


async def _check(api: ManagementApi, s: WatchSettings, view: _View) -> None:
    """One check: the status, and a resume when asked; raises :class:`ApiProblem`."""
    url = f"{api.base}/api/v2/log-streams/{quote(s.stream, safe='')}"
    what = f"GET /api/v2/log-streams/{s.stream}"
    status = _status(await api.call("GET", url, "read:log_streams", what), what, s.stream)
    if status != "suspended" or not s.resume:
        view.seen(status)
        return
    what = f"PATCH /api/v2/log-streams/{s.stream}"
    try:
        answer = await api.call("PATCH", url, "update:log_streams", what, body=RESUME)
        status = _status(answer, what, s.stream)
    except ApiProblem as problem:
        view.error(problem)
        view.seen("suspended", problem.reason)
        return
    view.resumed()
    view.seen(status)


def _status(response: HTTPResponse, what: str, stream: str) -> str:
    if response.code == 404:
        reason = f"Auth0 has no log stream {stream} (HTTP 404): check watchStream"
        raise ApiProblem("not_found", reason)
    if response.code != 200:
        raise ApiProblem("unavailable", f"{what} answered HTTP {response.code}")
    try:
        status = json.loads(response.body)["status"]
    except (ValueError, KeyError, TypeError):
        status = None
    if status not in STATUSES[:3]:
        raise ApiProblem("invalid_answer", f"{what} answered no known status")
    return str(status)
