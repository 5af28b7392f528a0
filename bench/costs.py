"""Per-event cost of the optional stages on the request path, beside the end-to-end budget.

Measures, on this machine and in this process, the median time per event of:
- the auth0 ``events`` filter predicate;
- a compiled CloudEvents Subscriptions API filter list (prefix + CESQL);
- a compiled CESQL expression alone;
- the durable dedupe window (the spool's id look-up and insert, inside a transaction);
and prints each as a share of the per-event time at a given end-to-end rate
(``--rate``, records/s; default: the latest main-scenario median from bench/out/latest.json).

Run: .venv/bin/python bench/costs.py [--rate N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from connector_runtime_auth0 import make_predicate

from connector_runtime.events import make_event
from connector_runtime.filters.cesql import compile_expression
from connector_runtime.filters.subscription import compile_filters
from connector_runtime.spool.store import Spool

N = 20_000
ROUNDS = 7
GROUP = 16
HERE = Path(__file__).resolve().parent


def events(n: int, prefix: str = "e") -> list:
    codes = ["s", "f", "fp", "sapi", "seacft"]
    return [
        make_event(
            id=f"{prefix}{i:012d}",
            source="https://bench-tenant.eu.auth0.example/",
            type=f"com.auth0.log.{codes[i % 5]}",
            data=b'{"type":"s"}',
            subject=f"auth0|user{i % 977}",
            time="2025-03-14T09:26:53.589Z",
            extensions={"auth0category": "auth.login.success"},
        )
        for i in range(n)
    ]


def per_event(fn, batch: list) -> float:
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        fn(batch)
        samples.append((time.perf_counter() - start) / len(batch))
    return statistics.median(samples) * 1e6


def dedupe_cost() -> float:
    """µs per event of the durable append's dedupe work: look-up + insert of 100 ids per
    request, 16 requests per group commit, measured as the difference between appends
    with and without dedupe."""
    with tempfile.TemporaryDirectory() as d:
        spool = Spool(Path(d) / "spool.db")
        try:

            def appends(dedupe: bool, tag: str) -> float:
                batches = [events(100, f"{tag}{r:04d}-") for r in range(96)]
                start = time.perf_counter()
                # 16 requests in flight, as from the bench's 16 senders: the writer commits
                # them together, as it does in the runtime.
                for group in range(0, len(batches), GROUP):
                    futures = [
                        spool.submit(spool.append_job("c", b, dedupe))
                        for b in batches[group : group + GROUP]
                    ]
                    for future in futures:
                        future.result(30)
                return (time.perf_counter() - start) / (len(batches) * 100) * 1e6

            with_dedupe = statistics.median(appends(True, f"w{i}") for i in range(3))
            without = statistics.median(appends(False, f"n{i}") for i in range(3))
        finally:
            spool.close()
    return max(0.0, with_dedupe - without)


def latest_rate() -> float | None:
    path = HERE / "out" / "latest.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    for row in data.get("scenarios", data.get("rows", [])):
        if isinstance(row, dict) and row.get("name", row.get("scenario")) == "main":
            value = row.get("median_e2e") or row.get("records_per_s") or row.get("e2e")
            return float(value) if value else None
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, help="end-to-end records/s to compare with")
    args = parser.parse_args()
    batch = events(N)
    auth0 = make_predicate(["auth.login.success", "auth.login.fail", "sapi"])
    filters = compile_filters(
        [
            {"prefix": {"type": "com.auth0.log."}},
            {"sql": "NOT (EXISTS subject AND subject LIKE 'auth0|svc-%')"},
        ]
    )
    expression = compile_expression(
        "type LIKE 'com.auth0.log.f%' AND source = 'x' OR EXISTS subject"
    )
    rows = [
        ("auth0 events filter", per_event(lambda b: [auth0(e) for e in b], batch)),
        (
            "compiled filters (prefix + CESQL)",
            per_event(lambda b: [filters(e.attributes) for e in b], batch),
        ),
        (
            "compiled CESQL expression",
            per_event(lambda b: [expression.matches(e.attributes) for e in b], batch),
        ),
        ("durable dedupe (look-up + insert)", dedupe_cost()),
    ]
    rate = args.rate or latest_rate()
    budget = 1e6 / rate if rate else None
    print(
        f"| stage | µs per event | share of the per-event time at {rate:,.0f} rec/s |"
        if rate
        else "| stage | µs per event | |"
    )
    print("|---|---:|---:|")
    for name, cost in rows:
        share = f"{cost / budget:.1%}" if budget else "-"
        print(f"| {name} | {cost:.2f} | {share} |")


if __name__ == "__main__":
    main()
