"""The admin listener's application (``spec.admin.listen``): the ops endpoints
(:mod:`connector_runtime.serve.ops`), the status page at ``/`` and ``/status.json``
(:mod:`connector_runtime.serve.status`), and ``/tap`` (:mod:`connector_runtime.serve.tap`).
Events carry personal data, so the tap is served here only, never on the webhook port;
an optional ``admin.token`` guards every path."""

from __future__ import annotations

from typing import Any

import tornado.web

from connector_runtime.observe.recent import RecentErrors
from connector_runtime.runtime import Runtime
from connector_runtime.serve.group import WorkerGroup
from connector_runtime.serve.ops import NotFoundHandler, Ops, ops_routes, quiet
from connector_runtime.serve.status import Status, StatusJSONHandler, StatusPageHandler
from connector_runtime.serve.tap import DEFAULT_MAX_TAPS, TapHandler, make_taps


def make_admin_app(
    runtime: Runtime,
    *,
    token: str | None = None,
    group: WorkerGroup | None = None,
    max_taps: int = DEFAULT_MAX_TAPS,
    **settings: Any,
) -> tornado.web.Application:
    """The admin listener's application for a started :class:`Runtime`: the ops endpoints
    (answering for the whole ``group`` of workers when there is one), the status page and
    the tap, each behind ``token`` when one is configured; every other path is 404 (401
    first, without the token)."""
    ops = Ops(runtime, group)
    taps = make_taps(runtime, max_taps)
    tap_args = {"taps": taps, "runtime": runtime, "group": group, "token": token}
    recent = RecentErrors([c.spec.name for c in runtime.connectors]).install()
    status = Status(runtime, ops, taps, recent)
    status.start()
    status_args = {"status": status, "token": token}
    return tornado.web.Application(
        [
            *ops_routes(ops, token),
            (r"/", StatusPageHandler, status_args),
            (r"/status\.json", StatusJSONHandler, status_args),
            (r"/tap", TapHandler, tap_args),
        ],
        default_handler_class=NotFoundHandler,
        default_handler_args={"token": token},
        log_function=quiet,
        **settings,
    )
