"""The Tornado application: every connector's routes under ``/<name>``, and ops endpoints.

:func:`make_app` only builds the application; listening happens in the CLI (and in tests,
on a loopback port), so the same app is served and tested.
"""

from __future__ import annotations

import json
import re
from typing import Any

import tornado.httputil
import tornado.web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from connector_runtime.runtime import Runtime
from connector_runtime.sources.handler import new_request_id


def _declares_body(headers: tornado.httputil.HTTPHeaders) -> bool:
    return "Transfer-Encoding" in headers or headers.get("Content-Length", "0") != "0"


@tornado.web.stream_request_body
class _Endpoint(tornado.web.RequestHandler):
    """An endpoint of the runtime's own: GET (and HEAD) only, JSON errors with a request id,
    and a request body never buffered (one is not expected: such a request is answered
    as soon as its headers are in, and its connection closes)."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")

    def prepare(self) -> None:
        self.set_header("X-Request-Id", new_request_id())
        if self.request.method not in ("GET", "HEAD"):
            self.set_header("Allow", "GET, HEAD")
            self._error(405, f"method {self.request.method} not allowed; use GET")
        elif _declares_body(self.request.headers):
            self.set_header("Connection", "close")
            self.answer()

    def data_received(self, chunk: bytes) -> None:
        """Never called with a body: the answer went out before it."""

    def get(self) -> None:
        self.answer()

    def head(self) -> None:
        self.answer()

    def answer(self) -> None:
        raise NotImplementedError

    def _error(self, status: int, detail: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": detail}))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("X-Request-Id", new_request_id())  # send_error cleared the headers
        self._error(status_code, "internal error" if status_code >= 500 else self._reason)


class HealthHandler(_Endpoint):
    """``/healthz``: the process is alive and its event loop answers."""

    def answer(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": "ok"}))


class ReadyHandler(_Endpoint):
    """``/readyz``: 200 when every connector can take requests, else 503 with the reasons."""

    def initialize(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def answer(self) -> None:
        reasons = self.runtime.readiness()
        self.set_status(503 if reasons else 200)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"ready": not reasons, "reasons": reasons}))


class MetricsHandler(_Endpoint):
    """``/metrics``: Prometheus text exposition of the runtime's metrics."""

    def initialize(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def answer(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(self.runtime.metrics.registry))


class NotFoundHandler(_Endpoint):
    """Every other path: 404, answered as soon as the headers are in."""

    def prepare(self) -> None:
        self.set_header("X-Request-Id", new_request_id())
        self._error(404, f"no connector at {self.request.path}")


def make_app(runtime: Runtime, **settings: Any) -> tornado.web.Application:
    """Build the application for a started :class:`Runtime`."""
    handlers: list[Any] = [
        (r"/healthz", HealthHandler),
        (r"/readyz", ReadyHandler, {"runtime": runtime}),
        (r"/metrics", MetricsHandler, {"runtime": runtime}),
    ]
    for connector in runtime.connectors:
        for pattern, handler, kwargs in connector.routes:
            rel = pattern if not pattern or pattern.startswith("/") else "/" + pattern
            handlers.append(
                (
                    tornado.routing.PathMatches(re.escape(connector.base_path) + rel + "/?$"),
                    handler,
                    kwargs,
                )
            )
    return tornado.web.Application(
        handlers, default_handler_class=NotFoundHandler, log_function=_quiet, **settings
    )


def _quiet(handler: tornado.web.RequestHandler) -> None:
    """Access logging is the runtime's own (request id, connector, outcome), not Tornado's."""
