"""Prometheus conventions (issue 15, part 6): counters whose outcomes partition what they
count, base units, the standard process and GC collectors, build info, the dead-letter
gauge; the README's table and the Grafana dashboard name exactly what /metrics exports."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from fnmatch import fnmatch
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from connector_runtime_auth0.testing import jsonl, record
from prometheus_client.parser import text_string_to_metric_families

from connector_runtime import runtime as runtime_module
from connector_runtime.testing import RecordingTarget, RunningRuntime, connector_doc, post
from tests.procs import cli

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
DASHBOARD = ROOT / "deploy" / "grafana" / "connector-runtime.json"
Factory = Callable[..., RunningRuntime]


def scrape(rt: RunningRuntime) -> list[Any]:
    r = post(rt.url + "/metrics", method="GET")
    assert r.status == 200
    return list(text_string_to_metric_families(r.body.decode()))


def value(families: list[Any], sample: str, **labels: str) -> float:
    found = [
        s.value for f in families for s in f.samples if s.name == sample and s.labels == labels
    ]
    assert len(found) == 1, (sample, labels, found)
    return float(found[0])


def total(families: list[Any], sample: str, **labels: str) -> float:
    """The sum over every sample of ``sample`` whose labels include ``labels``."""
    return sum(
        s.value
        for f in families
        for s in f.samples
        if s.name == sample and labels.items() <= s.labels.items()
    )


PULL_PLUGIN = """
import asyncio
from connector_runtime import SourceType, Watcher, hookimpl

async def watch(ctx):
    ctx.status.report("all well")
    await asyncio.Event().wait()

async def pull(ctx):
    ctx.counts.count("test", "passed", 2)
    ctx.counts.count("test", "dropped")
    ctx.status.problem("auth", "credentials refused")
    ctx.status.ok()
    await ctx.ingest.submit([], checkpoint="1")
    await asyncio.Event().wait()

@hookimpl
def register_source_types(register):
    register(SourceType(name="metrics-pull", config_schema={"type": "object"},
                        routes=lambda ctx: [], pull=pull,
                        watchers=lambda config: [Watcher("w", watch)]))
"""


@pytest.fixture
def busy(
    runtime_factory: Factory, recording_target: RecordingTarget, throwaway_plugin
) -> RunningRuntime:
    """A runtime whose connector ``p1`` (ack: delivered, only type ``s``) saw every outcome:
    accepted, filtered, duplicate, refused (target down: 503), a dead letter, a 400 body;
    and a pull connector ``pull1`` that counted test events, reported a problem and
    recovered, with a watcher."""
    throwaway_plugin("cr_metrics_pull", PULL_PLUGIN)
    pull = connector_doc("pull1", "metrics-pull", {}, {"type": "stdout"})
    doc = connector_doc(
        "p1",
        "auth0",
        {"events": ["s"]},
        {"type": "http", "config": {"url": recording_target.url, "mode": "binary"}},
        {"ack": "delivered"},
    )
    rt = runtime_factory([doc, pull])
    url = rt.connector_url("p1")
    records = [record("a", "s"), record("b", "s"), record("c", "f"), record("a", "s")]
    assert post(url, jsonl(records)).status == 200  # 2 accepted, 1 filtered, 1 duplicate
    recording_target.status = 503
    assert post(url, jsonl([record("d", "s"), record("e", "s")])).status == 503  # refused
    recording_target.status = 200
    recording_target.respond = lambda e: 400 if e.id == "g" else 200
    assert post(url, jsonl([record("f", "s"), record("g", "s")])).status == 200
    assert post(url, b"{not json").status == 400
    for _ in range(200):  # the pull task runs on its own: wait until it reported
        found = {f.name for f in scrape(rt) if f.samples}
        if {"connector_runtime_pull_errors", "connector_runtime_watch_restarts"} <= found:
            break
        time.sleep(0.05)
    return rt


def test_record_outcomes_add_up_to_received_and_events_count_once(busy: RunningRuntime):
    found = scrape(busy)
    outcomes = {
        o: value(found, "connector_runtime_records_total", connector="p1", outcome=o)
        for o in ("accepted", "filtered", "duplicate", "refused")
    }
    assert outcomes == {"accepted": 4, "filtered": 1, "duplicate": 1, "refused": 2}
    received = value(found, "connector_runtime_records_received_total", connector="p1")
    assert received == 8 == total(found, "connector_runtime_records_total", connector="p1")
    assert value(found, "connector_runtime_invalid_bodies_total", connector="p1") == 1
    events = {
        o: value(found, "connector_runtime_events_total", connector="p1", target="http", outcome=o)
        for o in ("delivered", "dead_lettered")
    }
    assert events == {"delivered": 3, "dead_lettered": 1}  # a, b, f; g
    assert (
        value(found, "connector_runtime_delivery_retries_total", connector="p1", target="http") == 2
    )


def test_the_dead_letter_gauge_follows_the_dead_letter_store(
    busy: RunningRuntime, monkeypatch: pytest.MonkeyPatch
):
    assert value(scrape(busy), "connector_runtime_dead_letters", connector="p1") == 1
    listed = json.loads(
        cli("dlq", "list", "--data-dir", str(busy.runtime.data_dir), "--json").stdout
    )
    assert len(listed) == 1
    purged = cli("dlq", "purge", "--all", "--data-dir", str(busy.runtime.data_dir))
    assert purged.returncode == 0, purged.stderr
    # Purged from outside the runtime: seen at the next recount (every 10 s; now here).
    monkeypatch.setattr(runtime_module, "DEAD_LETTERS_RECOUNT", 0.0)
    assert value(scrape(busy), "connector_runtime_dead_letters", connector="p1") == 0


def test_build_info_and_the_standard_collectors(busy: RunningRuntime):
    found = scrape(busy)
    version = metadata.version("connector-runtime")
    assert value(found, "connector_runtime_build_info", version=version) == 1
    assert value(found, "process_resident_memory_bytes") > 0
    assert value(found, "process_cpu_seconds_total") > 0
    assert value(found, "process_open_fds") > 0
    assert value(found, "python_gc_collections_total", generation="0") >= 0
    assert total(found, "python_info", implementation="CPython") == 1


def readme_table() -> dict[str, tuple[str, set[str], set[str]]]:
    """The README's metrics table: name (or glob) → (type, label names, the values the
    table lists for one of them, as in ``outcome = delivered, dead_lettered``)."""
    body = README.split("<!-- metrics: tests/observe/test_metrics.py", 1)[1].split("\n\n", 1)[0]
    out = {}
    for line in body.splitlines()[3:]:
        names, kind, labels = (cell.strip() for cell in line.strip("|").split("|"))
        names_part, _, values = labels.split("(", 1)[0].partition("=")
        label_names = {w.strip() for w in names_part.split(",") if w.strip() not in ("", "\u2013")}
        listed = {v.strip() for v in values.split(",") if v.strip()}
        for name in re.findall(r"`([^`]+)`", names):
            out[name] = (kind.split()[0], label_names, listed)
    return out


def exported(families: list[Any]) -> dict[str, tuple[str, set[str], set[str]]]:
    out = {}
    for f in families:
        if f.name.endswith("_created"):  # a histogram's start times (OpenMetrics)
            continue
        name = f.name + ("_total" if f.type == "counter" else "")
        labels = {k for s in f.samples for k in s.labels} - {"le"}
        outcomes = {s.labels["outcome"] for s in f.samples if "outcome" in s.labels}
        out[name] = (f.type, labels, outcomes)
    return out


def test_the_readme_table_is_what_metrics_exports(busy: RunningRuntime):
    table, found = readme_table(), exported(scrape(busy))
    ours = {n: v for n, v in found.items() if n.startswith("connector_runtime_")}
    assert ours == {n: v for n, v in table.items() if n.startswith("connector_runtime_")}
    globs = [n for n in table if not n.startswith("connector_runtime_")]
    assert globs == ["process_*", "python_gc_*", "python_info"]
    others = [n for n in found if not n.startswith("connector_runtime_")]
    assert all(any(fnmatch(n, g) for g in globs) for n in others), others
    assert all(any(fnmatch(n, g) for n in others) for g in globs), others
    renamed = README.split("Renamed before the first release:", 1)[1].split("\n\n", 1)[0]
    mentioned = set(
        re.findall(r"`(connector_runtime_[a-z_]+)(?![\w.])", README.replace(renamed, ""))
    )
    assert mentioned <= set(ours), mentioned - set(ours)


KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or"}
KEYWORDS |= {"unless", "bool", "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (Grafana variables allowed)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values, $variables in them
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges, $__rate_interval
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"label_values\((.*),\s*\w+\s*\)", r"\1", expr)  # Grafana: (metric, label)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        after = expr[m.end() :].lstrip()
        if not after.startswith("(") and m.group().lower() not in KEYWORDS:
            names.add(m.group())
    return names


def test_metric_names_finds_what_an_expression_reads():
    expr = (
        'histogram_quantile(0.99, sum by (connector, le) (rate(a_bucket{job=~"$job",x="y"}'
        "[$__rate_interval]))) / on (connector) group_left b_total + max(c) or vector(1)"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c"}
    assert metric_names('label_values(d{job=~"$job"}, connector)') == {"d"}


def dashboard_expressions() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            exprs.append(var["query"]["query"])
    return exprs


def test_the_grafana_dashboard_reads_only_metrics_the_runtime_exports(busy: RunningRuntime):
    samples = {s.name for f in scrape(busy) for s in f.samples}
    for histogram in ("request_duration_seconds", "delivery_latency_seconds"):
        assert {f"connector_runtime_{histogram}_{x}" for x in ("bucket", "sum", "count")} <= samples
    exprs = dashboard_expressions()
    assert len(exprs) > 20
    read = set().union(*map(metric_names, exprs))
    assert read - samples == set()
    wanted = {
        "connector_runtime_records_total",
        "connector_runtime_events_total",
        "connector_runtime_delivery_retries_total",
        "connector_runtime_dead_letters",
        "connector_runtime_spool_depth_events",
        "connector_runtime_spool_oldest_age_seconds",
        "connector_runtime_in_flight_bytes",
        "connector_runtime_request_duration_seconds_bucket",
        "connector_runtime_ready",
    }
    assert wanted <= read, wanted - read
