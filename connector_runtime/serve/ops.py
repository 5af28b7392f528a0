"""The runtime's own endpoints: ``/healthz``, ``/readyz``, ``/metrics``.

They are served on the webhook port, or, when the Runtime document sets ``admin.listen``,
only on that admin listener (:mod:`connector_runtime.serve.admin`), where an optional
``admin.token`` guards every path. Under ``--workers N`` one worker answers for the whole
group: it asks its siblings (:mod:`connector_runtime.serve.group`) and merges what they
say (:mod:`connector_runtime.observe.merge`).
"""

from __future__ import annotations

import base64
import hmac
import json
from typing import Any

import tornado.httputil
import tornado.web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import Metric

from connector_runtime.observe.merge import from_wire, merge, to_wire
from connector_runtime.runtime import Runtime
from connector_runtime.serve.group import Answer, WorkerGroup
from connector_runtime.sources.handler import new_request_id


class _Families:
    """Families in the shape ``generate_latest`` reads (a registry's ``collect``)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


class Ops:
    """What the ops endpoints answer from: one runtime, and the group it belongs to under
    ``--workers`` (None for a single process)."""

    def __init__(self, runtime: Runtime, group: WorkerGroup | None = None) -> None:
        self.runtime = runtime
        self.group = group

    def answers(self) -> dict[str, Answer]:
        """What this worker tells a sibling that asks (:meth:`WorkerGroup.start`)."""
        return {"metrics": self._own_metrics, "readiness": self._own_readiness}

    async def _own_metrics(self) -> list[dict[str, Any]]:
        await self.runtime.count_dead_letters()
        return to_wire(self.runtime.metrics.families())

    async def _own_readiness(self) -> dict[str, list[str]]:
        return {"reasons": self.runtime.readiness(), "warnings": self.runtime.warnings()}

    async def families(self) -> list[Metric]:
        """Every metric family, for the whole group (what ``/metrics`` and the status page
        read)."""
        await self.runtime.count_dead_letters()
        own = self.runtime.metrics.families()
        if self.group is None:
            return own
        answers, missing = await self.group.ask("metrics")
        workers = [(self.group.index, own)]
        workers += [(i, from_wire(data)) for i, data in sorted(answers.items())]
        return merge(workers, len(missing))

    async def metrics(self) -> bytes:
        """The Prometheus text exposition, for the whole group."""
        return generate_latest(_Families(await self.families()))

    async def readiness(self) -> tuple[list[str], list[str]]:
        """Why the group should get no traffic now (empty when every worker is ready), and
        the warnings that leave it ready (watchers')."""
        reasons, warnings = self.runtime.readiness(), self.runtime.warnings()
        if self.group is None:
            return reasons, warnings
        answers, missing = await self.group.ask("readiness")
        mine = self.group.index
        out = [f"worker {mine}: {r}" for r in reasons]
        warned = [f"worker {mine}: {w}" for w in warnings]
        for index, theirs in sorted(answers.items()):
            out += [f"worker {index}: {r}" for r in theirs["reasons"]]
            warned += [f"worker {index}: {w}" for w in theirs["warnings"]]
        out += [f"worker {index} did not answer" for index in missing]
        return out, warned


def _declares_body(headers: tornado.httputil.HTTPHeaders) -> bool:
    return "Transfer-Encoding" in headers or headers.get("Content-Length", "0") != "0"


def token_matches(header: str | None, token: str) -> bool:
    """``Authorization: Bearer <token>``, or ``Basic`` with the token as the password (what
    a browser sends for the status page), compared in constant time."""
    scheme, _, credentials = (header or "").strip().partition(" ")
    if scheme.lower() == "basic":
        try:
            pair = base64.b64decode(credentials.strip(), validate=True)
        except ValueError:
            return False
        return hmac.compare_digest(pair.partition(b":")[2], token.encode())
    return scheme.lower() == "bearer" and hmac.compare_digest(
        credentials.strip().encode(), token.encode()
    )


@tornado.web.stream_request_body
class Endpoint(tornado.web.RequestHandler):
    """An endpoint of the runtime's own: GET (and HEAD) only, JSON errors with a request id,
    and a request body never buffered (one is not expected: such a request is answered
    as soon as its headers are in, and its connection closes). With a ``token`` (the admin
    listener's), a request without it gets 401 whatever its path."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")

    def initialize(self, ops: Ops | None = None, token: str | None = None) -> None:
        self.ops = ops
        self.token = token

    async def prepare(self) -> None:
        if not self.authorized():
            return
        if self.request.method not in ("GET", "HEAD"):
            self.set_header("Allow", "GET, HEAD")
            self._error(405, f"method {self.request.method} not allowed; use GET")
        elif self._close_if_body():
            await self.answer()

    def authorized(self) -> bool:
        """Set the request id; without the token (when there is one) answer 401."""
        self.set_header("X-Request-Id", new_request_id())
        if self.token is None or token_matches(
            self.request.headers.get("Authorization"), self.token
        ):
            return True
        self.set_header(  # Basic: a browser asks for the token (as the password)
            "WWW-Authenticate",
            'Bearer realm="connector-runtime admin", Basic realm="connector-runtime admin"',
        )
        self._close_if_body()
        self._error(401, "missing or wrong admin token")
        return False

    def _close_if_body(self) -> bool:
        if _declares_body(self.request.headers):
            self.set_header("Connection", "close")
            return True
        return False

    def data_received(self, chunk: bytes) -> None:
        """Never called with a body: the answer went out before it."""

    async def get(self) -> None:
        await self.answer()

    async def head(self) -> None:
        await self.answer()

    async def answer(self) -> None:
        raise NotImplementedError

    def _error(self, status: int, detail: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": detail}))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("X-Request-Id", new_request_id())  # send_error cleared the headers
        self._error(status_code, "internal error" if status_code >= 500 else self._reason)


class HealthHandler(Endpoint):
    """``/healthz``: the process is alive and its event loop answers."""

    async def answer(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": "ok"}))


class ReadyHandler(Endpoint):
    """``/readyz``: 200 when every connector (of every worker) can take requests, else 503
    with the reasons; ``warnings`` (only when there are some) say what watchers see wrong
    that does not stop this process from taking requests (a paused Auth0 log stream)."""

    async def answer(self) -> None:
        assert self.ops is not None
        reasons, warnings = await self.ops.readiness()
        self.set_status(503 if reasons else 200)
        self.set_header("Content-Type", "application/json")
        body: dict[str, Any] = {"ready": not reasons, "reasons": reasons}
        if warnings:
            body["warnings"] = warnings
        self.finish(json.dumps(body))


class MetricsHandler(Endpoint):
    """``/metrics``: Prometheus text exposition of the runtime's (the group's) metrics."""

    async def answer(self) -> None:
        assert self.ops is not None
        body = await self.ops.metrics()
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(body)


class NotFoundHandler(Endpoint):
    """Every other path: 404, answered as soon as the headers are in."""

    async def prepare(self) -> None:
        if self.authorized():
            self._error(404, f"no connector at {self.request.path}")


def ops_routes(ops: Ops, token: str | None = None) -> list[Any]:
    """The routes of the ops endpoints (on the webhook port, or on the admin listener)."""
    kwargs = {"ops": ops, "token": token}
    return [
        (r"/healthz", HealthHandler, kwargs),
        (r"/readyz", ReadyHandler, kwargs),
        (r"/metrics", MetricsHandler, kwargs),
    ]


def quiet(handler: tornado.web.RequestHandler) -> None:
    """Access logging is the runtime's own (request id, connector, outcome), not Tornado's."""
