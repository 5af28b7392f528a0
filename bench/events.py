"""Records/s of the Auth0 Event Streams source beside the log-stream source, in one run.

One runtime (``bench/events-manifest.yaml``: both connectors, ``ack: durable``, to the
counting target ``bench/target.py``) pinned to CPU 0; the load generator and the target on
CPU 1. Rounds alternate the two kinds of load, each for ``--duration`` seconds with
``--concurrency`` senders, as their senders send: log streams 100 records per request
(JSON Lines), event streams one CloudEvent per request. A run's rate is the records
acknowledged divided by the time from its first request until the target counted its last
event. Prints one markdown table of the medians.

    python bench/events.py --rounds 3 --duration 8
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from harness import BENCH, PYTHON, Proc, cpu_plan, free_port, http, target_count, wait_http

KINDS = {
    "auth0": ["--kind", "auth0", "--batch", "100", "--token", "Bearer bench-token-0123456789"],
    "auth0-events": ["--kind", "auth0-events", "--token", "Bearer bench-token-0123456789"],
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--concurrency", type=int, default=16)
    args = p.parse_args()
    plan = cpu_plan()
    where = Path(tempfile.mkdtemp(prefix="cr-bench-events-"))
    port, tport, cport = free_port(), free_port(), free_port()
    control = f"http://127.0.0.1:{cport}"
    target = Proc(
        "target",
        [PYTHON, str(BENCH / "target.py"), "--port", str(tport), "--control-port", str(cport)],
        where / "target.log",
        plan.other,
    )
    env = {"BENCH_TARGET_URL": f"http://127.0.0.1:{tport}/", "BENCH_PORT": str(port)}
    cli = [PYTHON, "-m", "connector_runtime.cli", "run", str(BENCH / "events-manifest.yaml")]
    runtime = Proc(
        "runtime", [*cli, "--data-dir", str(where / "data")], where / "rt.log", plan.sut, env=env
    )
    rates: dict[str, list[float]] = {kind: [] for kind in KINDS}
    latency: dict[str, list[float]] = {kind: [] for kind in KINDS}
    try:
        wait_http(control + "/count", target)
        wait_http(f"http://127.0.0.1:{port}/healthz", runtime)
        for round_ in range(args.rounds):
            order = list(KINDS) if round_ % 2 == 0 else list(reversed(KINDS))
            for kind in order:
                http("POST", control + "/reset")
                url = f"http://127.0.0.1:{port}/{kind}"
                cmd = [PYTHON, str(BENCH / "loadgen.py"), url, *KINDS[kind]]
                cmd += ["--duration", str(args.duration), "--concurrency", str(args.concurrency)]
                gen = Proc("loadgen", cmd, where / "lg.log", plan.other, stdout=subprocess.PIPE)
                result = json.loads(gen.output(args.duration + 120))
                gen.stop()
                deadline = time.monotonic() + 120
                while (count := target_count(control))["events"] < result["records_acked"]:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{kind}: target got {count['events']} events")
                    time.sleep(0.1)
                elapsed = count["last"] - result["first_send"]
                rates[kind].append(result["records_acked"] / elapsed)
                latency[kind].append(result["latency_ms"]["p50"])
    finally:
        runtime.stop()
        target.stop()
    runs = f"{args.rounds} rounds of {args.duration:g} s, {args.concurrency} senders"
    print(f"{runs}; {plan.describe()}")
    print("| source | records per request | records/s e2e (median) | webhook p50 ms |")
    print("|---|---|---|---|")
    for kind, per in (("auth0", 100), ("auth0-events", 1)):
        rate, p50 = statistics.median(rates[kind]), statistics.median(latency[kind])
        print(f"| `{kind}` | {per} | {rate:,.0f} | {p50:.1f} |")


if __name__ == "__main__":
    main()
