"""The status page (``GET /``) and its data (``GET /status.json``) on the admin listener.

Every number comes from the metric families ``/metrics`` serves (:meth:`Ops.families`,
the whole group under ``--workers``), so the page and a scrape never disagree. Rates per
second over the last minute come from samples of the same counters, taken every
:data:`SAMPLE_EVERY` seconds while the admin listener runs (one group ask each time,
nothing per request). The last warnings and errors per connector come from the logs
(:mod:`connector_runtime.observe.recent`) of the worker holding the admin listener.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client.core import Metric
from tornado.ioloop import PeriodicCallback

from connector_runtime._version import __version__
from connector_runtime.observe.recent import RecentErrors
from connector_runtime.observe.tap import Taps
from connector_runtime.serve.ops import Endpoint, Ops
from connector_runtime.serve.status_page import render

if TYPE_CHECKING:
    from connector_runtime.runtime import Runtime

STARTED = time.time()
SAMPLE_EVERY = 5.0
WINDOW = 60.0
P = "connector_runtime_"

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]
"""Sample name → labels (sorted pairs) → value."""


def samples(families: Iterable[Metric]) -> Samples:
    out: Samples = {}
    for family in families:
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def value(table: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for k, v in table.get(name, {}).items() if wanted <= set(k))


def totals(table: Samples, connector: str) -> tuple[float, float]:
    """Records accepted and events delivered of ``connector``, as /metrics counts them."""
    accepted = value(table, P + "records_total", connector=connector, outcome="accepted")
    delivered = value(table, P + "events_total", connector=connector, outcome="delivered")
    return accepted, delivered


class Status:
    """What the status page and ``top`` show, computed from the group's metric families."""

    def __init__(self, runtime: Runtime, ops: Ops, taps: Taps, recent: RecentErrors) -> None:
        self.runtime = runtime
        self.ops = ops
        self.taps = taps
        self.recent = recent
        self.history: deque[tuple[float, dict[str, tuple[float, float]]]] = deque()
        self._sampler: PeriodicCallback | None = None

    def start(self) -> None:
        self._sampler = PeriodicCallback(self._sample, SAMPLE_EVERY * 1000)
        self._sampler.start()

    def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.stop()
        self.recent.uninstall()

    async def _sample(self) -> None:
        self._remember(samples(await self.ops.families()))

    def _remember(self, table: Samples) -> None:
        now = time.monotonic()
        names = [c.spec.name for c in self.runtime.connectors]
        self.history.append((now, {n: totals(table, n) for n in names}))
        while len(self.history) > 2 and now - self.history[1][0] >= WINDOW:
            self.history.popleft()

    def _rates(self, name: str, now_totals: tuple[float, float]) -> tuple[float, float]:
        """Per second since the oldest sample of the last minute (0 before one exists)."""
        if not self.history:
            return 0.0, 0.0
        then, old = self.history[0]
        seconds = time.monotonic() - then
        if seconds < 1.0 or name not in old:
            return 0.0, 0.0
        (accepted, delivered), (was_accepted, was_delivered) = now_totals, old[name]
        return (
            max(0.0, (accepted - was_accepted) / seconds),
            max(0.0, (delivered - was_delivered) / seconds),
        )

    async def snapshot(self) -> dict[str, Any]:
        table = samples(await self.ops.families())
        reasons, warnings = await self.ops.readiness()
        if not self.history:
            self._remember(table)
        errors = self.recent.snapshot()
        dropped = self.taps.dropped()
        group = self.ops.group
        connectors = []
        for c in self.runtime.connectors:
            name = c.spec.name
            accepted, delivered = totals(table, name)
            per_accepted, per_delivered = self._rates(name, (accepted, delivered))
            mine = f"connector {name}:"
            connectors.append(
                {
                    "name": name,
                    "source": c.spec.source.type,
                    "target": c.spec.target.type,
                    "ack": c.spec.delivery.ack,
                    "accepted": int(accepted),
                    "delivered": int(delivered),
                    "accepted_per_second": round(per_accepted, 2),
                    "delivered_per_second": round(per_delivered, 2),
                    "depth": int(value(table, P + "spool_depth_events", connector=name)),
                    "oldest_age_seconds": round(
                        value(table, P + "spool_oldest_age_seconds", connector=name), 1
                    ),
                    "dead_letters": int(value(table, P + "dead_letters", connector=name)),
                    "retries": int(value(table, P + "delivery_retries_total", connector=name)),
                    "errors": [
                        {"time": _iso(t), "level": level, "message": message}
                        for t, level, message in reversed(errors.get(name, []))
                    ],
                    "reasons": [r for r in reasons if mine in r],
                    "warnings": [w for w in warnings if mine in w],
                    "watch": [
                        {"name": w, "state": state} for w, state in c.stats.watch.states.items()
                    ],
                    "tap_dropped": dropped.get(name, 0),
                }
            )
        return {
            "version": __version__,
            "uptime_seconds": int(time.time() - STARTED),
            "workers": group.count if group is not None else 1,
            "workers_missing": int(value(table, P + "workers_missing")),
            "ready": not reasons,
            "reasons": reasons,
            "warnings": warnings,
            "taps": {"attached": self.taps.attached, "max": self.taps.max_clients},
            "connectors": connectors,
        }


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class StatusJSONHandler(Endpoint):
    """``/status.json``: what the page shows, for ``top`` and the page's refresh."""

    def initialize(self, status: Status, token: str | None = None) -> None:  # type: ignore[override]
        super().initialize(token=token)
        self.status = status

    async def answer(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(orjson.dumps(await self.status.snapshot()))


class StatusPageHandler(StatusJSONHandler):
    """``/``: the status page, rendered on the server (it works without JavaScript)."""

    async def answer(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header(
            "Content-Security-Policy",
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline';"
            " connect-src 'self'",
        )
        self.finish(render(await self.status.snapshot()))
