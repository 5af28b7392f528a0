"""Medians, ratios and the targets of the issue, as a markdown report."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

TARGET_RATE = 100_000
TARGET_PARSE_RATIO = 0.40
TARGET_P99_MS = 50.0
TARGET_B1_RATIO = 0.5
TARGET_BINARY_RATIO = 0.5
TARGET_RSS_MIB = 150.0
TARGET_COST = 0.10

MEDIAN_FIELDS = (
    "rate",
    "per_cpu",
    "ingest_rate",
    "request_rate",
    "events_rate",
    "p50_ms",
    "p99_ms",
    "sut_cpu",
    "core1_busy",
    "target_cpu",
    "drain",
    "paused",
    "other_load",
)


def summarize(
    rounds: list[dict[str, Any]],
    outage: dict[str, Any] | None = None,
    profile: dict[str, Any] | None = None,
    max_other_load: float = 0.25,
) -> dict[str, Any]:
    """Medians per scenario over its *quiet* rounds (other processes used at most
    ``max_other_load`` cores) when it has any, else over all of them; lost events and peak
    RSS count from every round."""
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    failures: dict[str, list[str]] = defaultdict(list)
    for r in rounds:
        if "error" in r:
            failures[r["scenario"]].append(r["error"])
        else:
            by[r["scenario"]].append(r)
    scenarios: dict[str, dict[str, Any]] = {}
    for name, runs in by.items():
        quiet = [r for r in runs if r.get("other_load", 0.0) <= max_other_load]
        used = quiet or runs
        s: dict[str, Any] = {
            "rounds": len(runs),
            "used": len(used),
            "rates": [(round(r["rate"]), r in used) for r in runs],
            "by_round": {r["round"]: r["rate"] for r in used},
        }
        for key in MEDIAN_FIELDS:
            values = [r[key] for r in used if r.get(key) is not None]
            s[key] = statistics.median(values) if values else None
        s["peak_rss_mib"] = max((r.get("peak_rss_mib") or 0) for r in runs)
        peak = max(runs, key=lambda r: r.get("peak_rss_mib") or 0)
        if "peak_rss_by_proc_mib" in peak:  # supervisor, then workers (that round's)
            s["peak_rss_by_proc_mib"] = peak["peak_rss_by_proc_mib"]
        s["workers"] = runs[0].get("workers")
        s["pinned"] = runs[0].get("pinned", True)
        s["lost"] = sum(r.get("lost", 0) for r in runs) if any("lost" in r for r in runs) else None
        s["extra"] = sum(r.get("extra", 0) for r in runs)
        s["non_2xx"] = sum(
            v for r in runs for k, v in r["statuses"].items() if not k.startswith("2")
        )
        s["errors"] = sum(r["errors"] for r in runs)
        scenarios[name] = s
    return {
        "scenarios": scenarios,
        "failures": dict(failures),
        "checks": _checks(scenarios, outage),
        "outage": {k: v for k, v in (outage or {}).get("outage", {}).items() if k != "rss_series"}
        or None,
        "profile": profile,
    }


def _get(scenarios: dict[str, dict[str, Any]], name: str, key: str) -> float | None:
    value = scenarios.get(name, {}).get(key)
    return float(value) if value is not None else None


def _ratio(scenarios: dict[str, dict[str, Any]], a: str, b: str) -> tuple[float, str] | None:
    """``a`` / ``b``: the median of the ratios within each round both ran in (neighbours in
    time, so a slow minute of the machine cancels out), else the ratio of the medians."""
    sa, sb = scenarios.get(a), scenarios.get(b)
    if not sa or not sb or not sb["rate"]:
        return None
    pairs = [
        sa["by_round"][r] / sb["by_round"][r]
        for r in sorted(sa["by_round"].keys() & sb["by_round"].keys())
        if sb["by_round"][r]
    ]
    if not pairs:
        return sa["rate"] / sb["rate"], "ratio of medians"
    return statistics.median(pairs), "rounds " + " ".join(f"{p:.2f}" for p in pairs)


def _checks(
    scenarios: dict[str, dict[str, Any]], outage: dict[str, Any] | None
) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []

    def check(what: str, value: float | None, goal: str, ok: bool | None) -> None:
        checks.append({"what": what, "value": value, "goal": goal, "ok": ok})

    def ratio(a: str, b: str, what: str, goal: float | None, cost: bool = False) -> None:
        found = _ratio(scenarios, a, b)
        if found is None:
            return
        value, how = found
        if cost:  # the share of throughput lost going from b to a
            value = 1 - value
            how = "from " + how
            ok = value < goal if goal is not None else None
            shown_goal = f"< {goal:.0%}" if goal is not None else "(for scale)"
        else:
            ok = value >= goal if goal is not None else None
            shown_goal = f">= {goal:g}" if goal is not None else "(for scale)"
        check(f"{what} ({how})", value, shown_goal, ok)

    main = _get(scenarios, "main", "rate")
    if main is not None:
        check("main: records/s end to end", main, f">= {TARGET_RATE:,}", main >= TARGET_RATE)
        ratio("main", "ceiling-parse", "main / parse ceiling", TARGET_PARSE_RATIO)
        ratio("main", "ceiling-bare", "main / bare Tornado", None)
        _per_cpu(check, scenarios, "main", "ceiling-parse", "main / parse ceiling")
        p99 = _get(scenarios, "main", "p99_ms")
        if p99 is not None:
            check("main: webhook p99 (ms)", p99, f"< {TARGET_P99_MS:g}", p99 < TARGET_P99_MS)
    ratio("B1", "ceiling-bare-B1", "B=1: requests/s / bare Tornado B=1", TARGET_B1_RATIO)
    _per_cpu(check, scenarios, "B1", "ceiling-bare-B1", "B=1 / bare Tornado B=1")
    ratio("binary", "target-binary", "binary: events/s / target on one core", TARGET_BINARY_RATIO)
    _per_cpu(check, scenarios, "binary", "target-binary", "binary / target")
    sut = [n for n in scenarios if not n.startswith(("ceiling", "target"))]
    # The RSS goal is of one runtime process; --workers N runs N + 1 (their own rows below).
    single = [n for n in sut if (scenarios[n].get("workers") or 1) == 1]
    if single:
        rss = max(scenarios[n]["peak_rss_mib"] for n in single)
        check(
            "peak RSS of the SUT, any "
            + ("scenario" if single == sut else "single-process scenario")
            + " (MiB)",
            rss,
            f"< {TARGET_RSS_MIB:g}",
            rss < TARGET_RSS_MIB,
        )
    if sut:
        lost = sum(scenarios[n]["lost"] or 0 for n in sut)
        check("events lost, all SUT runs", lost, "0", lost == 0)
    ratio(
        "workers2",
        "workers1",
        "workers2 / workers1, records/s, both NOT pinned (SUT, target, load share the cores)",
        None,
    )
    for n in sut:
        s, workers = scenarios[n], scenarios[n].get("workers") or 1
        if workers > 1:
            by_proc = s.get("peak_rss_by_proc_mib") or []
            split = " + ".join(f"{v:.0f}" for v in by_proc)
            check(
                f"{n}: peak RSS, sum of VmHWM of supervisor + {workers} workers (MiB"
                + (f": {split}" if split else "")
                + ")",
                s["peak_rss_mib"],
                "(for scale)",
                None,
            )
    ratio("main", "nofilter", "cost of the events filter: main vs nofilter", TARGET_COST, True)
    ratio("main", "nodedupe", "cost of dedupe: main vs nodedupe", TARGET_COST, True)
    ratio("filter30", "main", "cost of 30% filtered records: filter30 vs main", TARGET_COST, True)
    ratio("dup10", "main", "cost of 10% redelivered batches: dup10 vs main", TARGET_COST, True)
    if outage and "outage" in outage:
        o = outage["outage"]
        first, last = o.get("rss_first_quarter_mib"), o.get("rss_last_quarter_mib")
        if first and last:
            drift = last - first
            check(
                f"RSS drift over a {o['seconds']:.0f}s outage, last vs first quarter (MiB)",
                drift,
                "flat (< 10)",
                drift < 10,
            )
        check("outage: events lost", outage.get("lost", 0), "0", outage.get("lost", 0) == 0)
    return checks


def _per_cpu(check: Any, scenarios: dict[str, dict[str, Any]], a: str, b: str, what: str) -> None:
    """The same ratio per CPU-second of the server: what it would be with the core to itself
    (only meaningful when the server, not the load, is the limit)."""
    x, y = _get(scenarios, a, "per_cpu"), _get(scenarios, b, "per_cpu")
    if x is not None and y:
        check(f"{what}, per CPU-second of each server", x / y, "(contention-free view)", None)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    sc = summary["scenarios"]
    lines = [
        f"Run {meta['date']} on {meta['machine']}, Python {meta['python']}, commit"
        f" {meta['commit']}; {meta['pinning']}; {meta['args']['rounds']} round(s) of"
        f" {meta['args']['duration']:g} s load per scenario. Medians over the quiet rounds"
        f" (other processes used <= {meta['args']['max_other_load']:g} cores; the rest are"
        " marked * and left out when a scenario has a quiet one).",
        "",
        "| scenario | records/s e2e | rounds | rec per CPU-s | ingest rec/s | req/s | p50 ms"
        " | p99 ms"
        " | peak RSS MiB | lost | SUT CPU | CPU1 busy | other load |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in meta["scenarios"]:
        s = sc.get(name)
        if s is None:
            if name in summary["failures"]:
                lines.append(f"| {name} | failed |" + " |" * 11)
            continue
        shown_name = name if s.get("pinned", True) else f"{name} (not pinned)"
        rates = " ".join(
            (f"{r // 1000}k" if r >= 10000 else str(r)) + ("" if used else "*")
            for r, used in s["rates"]
        )
        lines.append(
            f"| {shown_name} | {s['rate']:,.0f} | {rates} | {_fmt(s['per_cpu'], ',.0f')}"
            f" | {_fmt(s['ingest_rate'], ',.0f')} | {_fmt(s['request_rate'], ',.0f')}"
            f" | {_fmt(s['p50_ms'], '.1f')} | {_fmt(s['p99_ms'], '.1f')}"
            f" | {_fmt(s['peak_rss_mib'] or None, '.0f')} | {_fmt(s['lost'], 'd')}"
            f" | {_fmt(s['sut_cpu'], '.0%')} | {_fmt(s['core1_busy'], '.0%')}"
            f" | {_fmt(s['other_load'], '.2f')} |"
        )
    lines += ["", "Scenarios:"]
    lines += [f"- `{name}`: {about['about']}" for name, about in meta["scenarios"].items()]
    lines += ["", "| check | value | goal | |", "|---|---:|---|---|"]
    for c in summary["checks"]:
        value = c["value"]
        if abs(value) >= 1000:
            shown = f"{value:,.0f}"
        else:
            shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        mark = "-" if c["ok"] is None else ("pass" if c["ok"] else "**miss**")
        lines.append(f"| {c['what']} | {shown} | {c['goal']} | {mark} |")
    if summary.get("outage"):
        o = summary["outage"]
        lines += [
            "",
            f"Outage: target down {o['seconds']:.0f} s under load; SUT RSS before"
            f" {_fmt(o['rss_before_mib'], '.0f')} MiB, median over the first quarter of the"
            f" outage {_fmt(o.get('rss_first_quarter_mib'), '.0f')} MiB and over the last"
            f" {_fmt(o.get('rss_last_quarter_mib'), '.0f')} MiB, max during"
            f" {_fmt(o['rss_max_during_mib'], '.0f')} MiB, at recovery"
            f" {_fmt(o['rss_at_up_mib'], '.0f')} MiB, after drain"
            f" {_fmt(o['rss_after_drain_mib'], '.0f')} MiB; caught up"
            f" {_fmt(o['catch_up_s'], '.1f')} s after the target came back;"
            f" {o['repeats']} events delivered twice.",
        ]
    for name, errors in summary["failures"].items():
        lines.append(f"\nFAILED {name}: {errors[0].splitlines()[0]}")
    profile = summary.get("profile")
    if profile:
        lines += ["", _render_profile(profile)]
    return "\n".join(lines)


def _render_profile(profile: dict[str, Any]) -> str:
    lines = [
        f"Profile of one {profile.get('scenario', 'main')} run: {profile['samples']} py-spy"
        " samples over all threads,"
        f" {profile['running']} of them running; shares are of the running samples"
        " (= of the SUT's core).",
        "",
        "| thread | " + " | ".join(["running", "GIL wait", "idle", "fsync"]) + " |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, states in profile["threads"].items():
        cells = [f"{states.get(k, 0.0):.1%}" for k in ("running", "GIL wait", "idle", "fsync")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if profile.get("stages"):
        lines += ["", "| share | stage |", "|---:|---|"]
        lines += [f"| {share:.1%} | {name} |" for name, share in profile["stages"]]
    lines += ["", "| self | function (C calls count for their Python caller) |", "|---:|---|"]
    lines += [f"| {share:.1%} | `{name}` |" for name, share in profile["self"][:20]]
    lines += ["", "| total | function (anywhere on the stack) |", "|---:|---|"]
    lines += [
        f"| {share:.1%} | `{name}` |"
        for name, share in profile["total"]
        if not name.startswith(_PLUMBING)
    ][:25]
    if profile.get("native_leaf"):
        lines += ["", "| running in | C function |", "|---:|---|"]
        lines += [f"| {share:.1%} | `{name}` |" for name, share in profile["native_leaf"][:8]]
    return "\n".join(lines)


_PLUMBING = (
    "<module>",
    "main (",
    "cmd_run",
    "run (asyncio",
    "Runner.run",
    "BaseEventLoop.run_",
    "Thread._bootstrap",
    "Thread.run",
)
