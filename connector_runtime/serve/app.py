"""The Tornado application: every connector's routes under ``/<name>``, and ops endpoints.

:func:`make_app` only builds the application; listening happens in the CLI (and in tests,
on a loopback port), so the same app is served and tested. The ops endpoints
(:mod:`connector_runtime.serve.ops`) are part of it unless an admin listener serves them.
"""

from __future__ import annotations

import re
from typing import Any

import tornado.routing
import tornado.web

from connector_runtime.runtime import Runtime
from connector_runtime.serve.group import WorkerGroup
from connector_runtime.serve.ops import NotFoundHandler, Ops, ops_routes, quiet


def make_app(
    runtime: Runtime, *, ops: bool = True, group: WorkerGroup | None = None, **settings: Any
) -> tornado.web.Application:
    """Build the application for a started :class:`Runtime`: its connectors' routes and,
    with ``ops`` (no admin listener), ``/healthz``, ``/readyz`` and ``/metrics``, answering
    for the whole ``group`` of workers when there is one."""
    handlers: list[Any] = ops_routes(Ops(runtime, group)) if ops else []
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
        handlers, default_handler_class=NotFoundHandler, log_function=quiet, **settings
    )
