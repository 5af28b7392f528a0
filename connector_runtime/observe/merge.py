"""One set of metric families for a group of worker processes (``run --workers N``).

Each worker counts what passed through it. A scrape reaches one of them, which asks the
others for their families (:mod:`connector_runtime.serve.group`) and adds them up here:

- our counters and histograms: summed per label set, so a counter of the group only
  grows. When a worker did not answer, they are left out of that scrape altogether: a sum
  without one worker's share would go down, Prometheus would read that as a counter reset,
  and ``rate()`` would count the whole total again once the worker is back; a scrape
  without the series is a gap that ``rate()`` bridges.
- our gauges: per :data:`~connector_runtime.observe.metrics.GAUGE_MERGE` (``ready`` the
  minimum, and 0 while a worker does not answer; the oldest age the maximum), the others
  summed (they are per-shard amounts);
- the standard ``process_*``, ``python_gc_*`` and ``python_info`` families describe one
  process each: they keep every worker's samples, told apart by a ``worker`` label (the
  memory of one worker that grows stays visible, and a restarted worker resets only its
  own CPU and GC counters).

Families travel between processes as plain JSON (:func:`to_wire`, :func:`from_wire`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client.core import Metric

from connector_runtime.observe.metrics import GAUGE_MERGE, PREFIX, READY, WORKERS_MISSING

SUMMED_TYPES = frozenset({"counter", "histogram", "summary", "gaugehistogram"})

Key = tuple[str, tuple[tuple[str, str], ...]]


def to_wire(families: Iterable[Metric]) -> list[dict[str, Any]]:
    """Families as JSON-ready data."""
    return [
        {
            "name": f.name,
            "help": f.documentation,
            "type": f.type,
            "unit": f.unit,
            "samples": [[s.name, s.labels, s.value] for s in f.samples],
        }
        for f in families
    ]


def from_wire(data: Sequence[dict[str, Any]]) -> list[Metric]:
    """The inverse of :func:`to_wire`."""
    out = []
    for f in data:
        family = Metric(f["name"], f["help"], f["type"], f.get("unit", ""))
        for name, labels, value in f["samples"]:
            family.add_sample(name, dict(labels), float(value))
        out.append(family)
    return out


def _combine(family: Metric, sample: str, a: float, b: float) -> float:
    if sample.endswith("_created"):  # when a series started: the earliest worker's
        return min(a, b)
    if family.type in SUMMED_TYPES:
        return a + b
    return GAUGE_MERGE.get(family.name, _add)(a, b)


def _add(a: float, b: float) -> float:
    return a + b


def merge(workers: Sequence[tuple[int, Sequence[Metric]]], missing: int) -> list[Metric]:
    """The group's families from each answering worker's (index, families); ``missing``
    workers did not answer."""
    order: list[str] = []
    kinds: dict[str, Metric] = {}
    values: dict[str, dict[Key, float]] = {}
    for index, families in workers:
        for family in families:
            ours = family.name.startswith(PREFIX + "_")
            if ours and missing and family.type in SUMMED_TYPES:
                continue
            known = kinds.get(family.name)
            if known is None:
                known = kinds[family.name] = Metric(
                    family.name, family.documentation, family.type, family.unit
                )
                values[family.name] = {}
                order.append(family.name)
            into = values[family.name]
            for s in family.samples:
                labels = s.labels if ours else {**s.labels, "worker": str(index)}
                key = (s.name, tuple(labels.items()))
                before = into.get(key)
                into[key] = s.value if before is None else _combine(known, s.name, before, s.value)
    out = []
    for name in order:
        family = kinds[name]
        for (sample, pairs), value in values[name].items():
            if sample == WORKERS_MISSING:
                family.add_sample(sample, dict(pairs), float(missing))
            else:  # a missing worker makes the group not ready: /readyz says so too
                ready = sample != READY or not missing
                family.add_sample(sample, dict(pairs), value if ready else 0.0)
        out.append(family)
    return out
