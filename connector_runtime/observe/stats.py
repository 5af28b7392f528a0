"""Counters per connector, bumped by every layer: a leaf module (it imports nothing of the
runtime), so the request path, the spool and the dispatcher can all reach it without an
import cycle. :mod:`connector_runtime.observe.metrics` reads them when ``/metrics`` is
scraped."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

Labels = tuple[tuple[str, str], ...]
"""A sample's labels, as sorted (name, value) pairs."""


@dataclass
class Family:
    """A gauge or counter a watcher contributes: its help text and samples by labels."""

    kind: str
    """``gauge`` or ``counter``."""
    documentation: str
    samples: dict[Labels, float] = field(default_factory=dict)


@dataclass
class WatchHealth:
    """What a connector's watchers reported (``records.WatchStatus``), by watcher name."""

    states: dict[str, str] = field(default_factory=dict)
    """The state line each watcher last reported (the status page)."""
    warnings: dict[str, str] = field(default_factory=dict)
    """``/readyz`` warnings, by watcher."""
    families: dict[str, Family] = field(default_factory=dict)
    """Metric families by full name (``connector_runtime_…``)."""
    restarts: Counter[str] = field(default_factory=Counter)


@dataclass
class ConnectorStats:
    """Counters of one connector since the process started."""

    requests: int = 0
    received: int = 0
    accepted: int = 0
    filtered: int = 0
    duplicates: int = 0
    refused: int = 0
    """Records of a request that parsed but was not acknowledged (503): the outcomes
    accepted, filtered, duplicates and refused add up to received."""
    invalid: int = 0
    """Request bodies refused with 400 (a body, not its records)."""
    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0
    auth_failures: int = 0
    filter_errors: int = 0
    transform_errors: int = 0
    """Transforms that failed for an event (it was filtered out) or replaced a value by null."""
    bytes_in_flight: int = 0
    requests_in_flight: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    pull_state: str = ""
    """A pull source's task: ``running``, ``backoff``, ``stopped`` ("" for webhook sources)."""
    pull_problem: str | None = None
    """Why a pull source cannot make progress now (``/readyz``), or None."""
    pull_restarts: int = 0
    pull_errors: Counter[str] = field(default_factory=Counter)
    """Problems a pull source reported, by kind (``auth``, ``rate_limited``, ...)."""
    watch: WatchHealth = field(default_factory=WatchHealth)
    counted: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Events a source counted apart, by (kind, outcome), e.g. ("test", "dropped")."""
    observe_request: Callable[[float], None] = lambda seconds: None
    observe_delivery: Callable[[float], None] = lambda seconds: None

    def count(self, kind: str, outcome: str, n: int = 1) -> None:
        """Count ``n`` events of ``kind`` with ``outcome`` (a
        :class:`~connector_runtime.records.SourceCounts`)."""
        self.counted[kind, outcome] += n
