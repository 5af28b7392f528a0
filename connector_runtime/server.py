"""The Tornado application: every connector's routes under ``/<name>``, and ops endpoints.

:func:`make_app` only builds the application; listening happens in the CLI (and in tests,
on a loopback port), so the same app is served and tested.
"""

from __future__ import annotations

import json
import re
from typing import Any

import tornado.web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from connector_runtime.runtime import Runtime

RESERVED_PATHS = ("healthz", "readyz", "metrics")


class HealthHandler(tornado.web.RequestHandler):
    """``/healthz``: the process is alive and its event loop answers."""

    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": "ok"}))


class ReadyHandler(tornado.web.RequestHandler):
    """``/readyz``: 200 when every connector can take requests, else 503 with the reasons."""

    def initialize(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def get(self) -> None:
        reasons = self.runtime.readiness()
        self.set_status(503 if reasons else 200)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"ready": not reasons, "reasons": reasons}))


class MetricsHandler(tornado.web.RequestHandler):
    """``/metrics``: Prometheus text exposition of the runtime's metrics."""

    def initialize(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(self.runtime.metrics.registry))


class NotFoundHandler(tornado.web.RequestHandler):
    def prepare(self) -> None:
        self.set_status(404)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": f"no connector at {self.request.path}"}))


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
