"""The Prometheus exposition (``/metrics``) of the counters in
:mod:`connector_runtime.observe.stats`.

The request path only bumps plain integers in a ``ConnectorStats`` (no locks, no label
look-ups); a collector turns them into Prometheus metric families when ``/metrics``
is scraped. The two latency histograms are prometheus-client ``Histogram`` children bound
once per connector. Each runtime has its own ``CollectorRegistry``, so several runtimes in
one process (tests) do not share numbers; the standard ``process_*``, ``python_gc_*`` and
``python_info`` collectors are registered on it too.

The outcomes of one counter partition what it counts, so ``sum()`` over them means
something: ``records_total`` adds up to ``records_received_total``, and ``events_total``
counts each event once, when it leaves the spool (retries are ``delivery_retries_total``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Protocol

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from connector_runtime.observe.stats import ConnectorStats

if TYPE_CHECKING:
    from connector_runtime.config.model import ConnectorSpec

PREFIX = "connector_runtime"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DELIVERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)
RECORD_OUTCOMES = {
    "accepted": "accepted",
    "filtered": "filtered",
    "duplicate": "duplicates",
    "refused": "refused",
}
"""``records_total``'s outcome label → the ``ConnectorStats`` field."""
EVENT_OUTCOMES = ("delivered", "dead_lettered")
WORKERS_MISSING = f"{PREFIX}_workers_missing"
READY = f"{PREFIX}_ready"

GAUGE_MERGE: Mapping[str, Callable[[float, float], float]] = {
    READY: min,
    f"{PREFIX}_spool_oldest_age_seconds": max,
    f"{PREFIX}_build_info": max,
}
"""How the gauges of several worker processes combine into the group's (:mod:`.merge`);
every other gauge of ours is an amount per process (a shard's depth, bytes in flight), and
the group's is the sum."""


def version() -> str:
    """The installed runtime's version (``build_info``)."""
    try:
        return metadata.version("connector-runtime")
    except metadata.PackageNotFoundError:  # running from a tree that was never installed
        return "unknown"


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
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    def bind(self, connector: str, target: str, stats: ConnectorStats) -> None:
        stats.observe_request = self.request_seconds.labels(connector).observe
        stats.observe_delivery = self.delivery_seconds.labels(connector, target).observe

    def watch(self, runtime: Watched) -> None:
        self.registry.register(_RuntimeCollector(runtime))

    def families(self) -> list[Metric]:
        """Every metric family of this process, as a scrape would read them now."""
        return list(self.registry.collect())


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

    @property
    def dead_letters(self) -> Mapping[str, int]:
        """Dead letters stored now, per connector (counted by the runtime, cached)."""
        ...

    def readiness(self) -> list[str]: ...


def _counter(name: str, documentation: str, *labels: str) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", documentation, labels=list(labels))


def _gauge(name: str, documentation: str, *labels: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", documentation, labels=list(labels))


class _RuntimeCollector(Collector):
    def __init__(self, runtime: Watched) -> None:
        self.runtime = runtime
        self.version = version()

    def collect(self) -> Iterable[Metric]:
        own = list(self._families())
        return own + list(_watch_families(self.runtime.connectors, {f.name for f in own}))

    def _families(self) -> Iterator[Metric]:
        requests = _counter(
            "requests", "Webhook requests answered, by status.", "connector", "status"
        )
        received = _counter(
            "records_received", "Records parsed from webhook request bodies.", "connector"
        )
        records = _counter(
            "records",
            "Received records by outcome (adds up to records_received_total); refused: the"
            " request was answered 503 after it parsed, so nothing of it was acknowledged.",
            "connector",
            "outcome",
        )
        invalid = _counter(
            "invalid_bodies",
            "Request bodies refused with 400 (not parseable, or an element lacking a field).",
            "connector",
        )
        events = _counter(
            "events",
            "Events that left the spool, by outcome: delivered to the target or dead-lettered.",
            "connector",
            "target",
            "outcome",
        )
        retries = _counter(
            "delivery_retries",
            "Events whose delivery attempt failed and that wait for another one.",
            "connector",
            "target",
        )
        auth = _counter(
            "auth_failures", "Requests refused for missing or wrong credentials.", "connector"
        )
        filter_errors = _counter(
            "filter_errors", "CESQL filter evaluations that raised an error.", "connector"
        )
        transform_errors = _counter(
            "transform_errors",
            "Transform problems: an event filtered out, or a value replaced by null.",
            "connector",
        )
        depth = _gauge("spool_depth_events", "Events waiting for delivery.", "connector")
        depth_bytes = _gauge(
            "spool_depth_bytes", "Bytes of events waiting for delivery.", "connector"
        )
        oldest = _gauge("spool_oldest_age_seconds", "Age of the oldest event waiting.", "connector")
        inflight = _gauge(
            "in_flight_bytes", "Request body bytes being received or processed.", "connector"
        )
        dead = _gauge("dead_letters", "Dead letters stored now (dlq list shows them).", "connector")
        ready = _gauge("ready", "1 when /readyz answers 200.")
        build = _gauge("build_info", "The running runtime's version (always 1).", "version")
        missing = _gauge(
            "workers_missing",
            "Worker processes that did not answer this scrape (their numbers are left out).",
        )
        now = time.time()
        dead_now = self.runtime.dead_letters
        for c in self.runtime.connectors:
            name, target, s = c.spec.name, c.spec.target.type, c.stats
            for status, n in sorted(s.statuses.items()):
                requests.add_metric([name, str(status)], n)
            received.add_metric([name], s.received)
            for outcome, field in RECORD_OUTCOMES.items():
                records.add_metric([name, outcome], getattr(s, field))
            invalid.add_metric([name], s.invalid)
            for outcome in EVENT_OUTCOMES:
                events.add_metric([name, target, outcome], getattr(s, outcome))
            retries.add_metric([name, target], s.retried)
            auth.add_metric([name], s.auth_failures)
            filter_errors.add_metric([name], s.filter_errors)
            transform_errors.add_metric([name], s.transform_errors)
            queue = c.queue
            depth.add_metric([name], queue.pending_events if queue else 0)
            depth_bytes.add_metric([name], queue.pending_bytes if queue else 0)
            first = getattr(queue, "oldest", None)
            oldest.add_metric([name], max(0.0, now - first) if first else 0.0)
            inflight.add_metric([name], s.bytes_in_flight)
            dead.add_metric([name], dead_now.get(name, 0))
        ready.add_metric([], 0.0 if self.runtime.readiness() else 1.0)
        build.add_metric([self.version], 1.0)
        missing.add_metric([], 0.0)
        yield from (
            requests,
            received,
            records,
            invalid,
            events,
            retries,
            auth,
            filter_errors,
            transform_errors,
            depth,
            depth_bytes,
            oldest,
            inflight,
            dead,
        )
        yield from _source_families(self.runtime.connectors)
        yield from (
            ready,
            build,
            missing,
        )


def _source_families(connectors: Sequence[_Connector]) -> Iterator[Metric]:
    """What sources report besides requests: pull tasks, watchers, events counted apart."""
    pull_state = _gauge(
        "pull_state",
        "A pull source's task: 1 for the state it is in (running, backoff, stopped).",
        "connector",
        "state",
    )
    pull_restarts = _counter(
        "pull_restarts", "Times a pull source's task failed and was restarted.", "connector"
    )
    pull_errors = _counter(
        "pull_errors",
        "Problems a pull source reported, by kind (auth, rate_limited, unavailable, ...).",
        "connector",
        "kind",
    )
    watch_restarts = _counter(
        "watch_restarts", "Times a watcher failed and was started again.", "connector", "watch"
    )
    counted = _counter(
        "source_events",
        "Events a source counted apart, by kind (test: a sender's test deliveries) and"
        " outcome (passed, dropped).",
        "connector",
        "kind",
        "outcome",
    )
    for c in connectors:
        name, s = c.spec.name, c.stats
        if s.pull_state:
            for state in ("running", "backoff", "stopped"):
                pull_state.add_metric([name, state], float(s.pull_state == state))
            pull_restarts.add_metric([name], s.pull_restarts)
            for kind, n in sorted(s.pull_errors.items()):
                pull_errors.add_metric([name, kind], n)
        for watcher in sorted({*s.watch.states, *s.watch.restarts}):
            watch_restarts.add_metric([name, watcher], s.watch.restarts[watcher])
        for (kind, outcome), n in sorted(s.counted.items()):
            counted.add_metric([name, kind, outcome], n)
    yield from (pull_state, pull_restarts, pull_errors, watch_restarts, counted)


def _watch_families(connectors: Sequence[_Connector], taken: set[str]) -> Iterator[Metric]:
    """The gauges and counters watchers contributed, one family per name across
    connectors; a name the runtime uses itself is left out."""
    families: dict[str, Metric] = {}
    for c in connectors:
        for full, family in c.stats.watch.families.items():
            if full in taken:
                continue
            metric = families.get(full)
            if metric is None:
                metric = families[full] = Metric(full, family.documentation, family.kind)
            sample = full + "_total" if family.kind == "counter" else full
            for labels, value in sorted(family.samples.items()):
                metric.add_sample(sample, dict(labels), value)
    yield from families.values()
