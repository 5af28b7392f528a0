"""The Prometheus exposition (``/metrics``) of the counters in
:mod:`connector_runtime.observe.stats`.

The request path only bumps plain integers in a ``ConnectorStats`` (no locks, no label
look-ups); a collector turns them into Prometheus metric families when ``/metrics``
is scraped. The two latency histograms are prometheus-client ``Histogram`` children bound
once per connector. Each runtime has its own ``CollectorRegistry``, so several runtimes in
one process (tests) do not share numbers.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from connector_runtime.observe.stats import ConnectorStats

if TYPE_CHECKING:
    from connector_runtime.config.model import ConnectorSpec

PREFIX = "connector_runtime"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DELIVERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)


class Metrics:
    """The Prometheus registry of one runtime."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.request_seconds = Histogram(
            f"{PREFIX}_request_duration_seconds",
            "Time from a webhook request's arrival to its answer.",
            ["connector"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.delivery_seconds = Histogram(
            f"{PREFIX}_delivery_latency_seconds",
            "Time from accepting events to their acceptance by the target (per batch).",
            ["connector", "target"],
            buckets=DELIVERY_BUCKETS,
            registry=self.registry,
        )

    def bind(self, connector: str, target: str, stats: ConnectorStats) -> None:
        stats.observe_request = self.request_seconds.labels(connector).observe
        stats.observe_delivery = self.delivery_seconds.labels(connector, target).observe

    def watch(self, runtime: Watched) -> None:
        self.registry.register(_RuntimeCollector(runtime))


class _Queue(Protocol):
    @property
    def pending_events(self) -> int: ...
    @property
    def pending_bytes(self) -> int: ...


class _Connector(Protocol):
    @property
    def spec(self) -> ConnectorSpec: ...
    @property
    def stats(self) -> ConnectorStats: ...
    @property
    def queue(self) -> _Queue | None: ...


class Watched(Protocol):
    """What the collector reads of a runtime (the runtime is not imported: it sits above)."""

    @property
    def connectors(self) -> Sequence[_Connector]: ...

    def readiness(self) -> list[str]: ...


class _RuntimeCollector(Collector):
    def __init__(self, runtime: Watched) -> None:
        self.runtime = runtime

    def collect(self) -> Iterable[Metric]:
        return list(self._families())

    def _families(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            f"{PREFIX}_requests",
            "Webhook requests answered, by status.",
            labels=["connector", "status"],
        )
        records = CounterMetricFamily(
            f"{PREFIX}_records",
            "Records received from sources, by outcome.",
            labels=["connector", "outcome"],
        )
        events = CounterMetricFamily(
            f"{PREFIX}_events",
            "Events handled by the dispatcher per target, by outcome.",
            labels=["connector", "target", "outcome"],
        )
        auth = CounterMetricFamily(
            f"{PREFIX}_auth_failures",
            "Requests refused for missing or wrong credentials.",
            labels=["connector"],
        )
        filter_errors = CounterMetricFamily(
            f"{PREFIX}_filter_errors",
            "CESQL filter evaluations that raised an error.",
            labels=["connector"],
        )
        depth = GaugeMetricFamily(
            f"{PREFIX}_spool_depth_events", "Events waiting for delivery.", labels=["connector"]
        )
        depth_bytes = GaugeMetricFamily(
            f"{PREFIX}_spool_depth_bytes",
            "Bytes of events waiting for delivery.",
            labels=["connector"],
        )
        oldest = GaugeMetricFamily(
            f"{PREFIX}_spool_oldest_age_seconds",
            "Age of the oldest event waiting.",
            labels=["connector"],
        )
        inflight = GaugeMetricFamily(
            f"{PREFIX}_bytes_in_flight",
            "Request body bytes being received or processed.",
            labels=["connector"],
        )
        ready = GaugeMetricFamily(f"{PREFIX}_ready", "1 when /readyz answers 200.")
        now = time.time()
        for c in self.runtime.connectors:
            name, target, s = c.spec.name, c.spec.target.type, c.stats
            for status, n in sorted(s.statuses.items()):
                requests.add_metric([name, str(status)], n)
            for outcome in ("received", "accepted", "filtered", "duplicates", "invalid"):
                records.add_metric(
                    [name, outcome.rstrip("s") if outcome == "duplicates" else outcome],
                    getattr(s, outcome),
                )
            for outcome in ("delivered", "retried", "dead_lettered"):
                events.add_metric([name, target, outcome], getattr(s, outcome))
            auth.add_metric([name], s.auth_failures)
            filter_errors.add_metric([name], s.filter_errors)
            queue = c.queue
            depth.add_metric([name], queue.pending_events if queue else 0)
            depth_bytes.add_metric([name], queue.pending_bytes if queue else 0)
            first = getattr(queue, "oldest", None)
            oldest.add_metric([name], max(0.0, now - first) if first else 0.0)
            inflight.add_metric([name], s.bytes_in_flight)
        ready.add_metric([], 0.0 if self.runtime.readiness() else 1.0)
        yield from (
            requests,
            records,
            events,
            auth,
            filter_errors,
            depth,
            depth_bytes,
            oldest,
            inflight,
            ready,
        )
