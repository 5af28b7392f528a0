"""Backfill N records (default 50,000) from the fake Auth0 tenant with an ``auth0-logs``
connector, and the same records through the ``auth0`` webhook path, in one run.

Prints, for the pull: whether every record arrived exactly once, the most requests the
tenant saw within one second (against ``requestsPerSecond``), the wall time; and for both
paths the runtime process's CPU (user + system, from /proc) per record. Each path runs in
its own ``connector-runtime run`` subprocess on a fresh data dir, delivering in batch mode
to a recording target in this process. A round runs the pull, then the webhook path; the
ratio is taken within a round, and the medians over ``--rounds`` are reported (each round
on stderr as it ends).

    .venv/bin/python bench/pull_backfill.py [--records 50000] [--rps 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

import yaml
from connector_runtime_auth0.fake_tenant import FakeTenant

from connector_runtime.testing import LoopThread, RecordingTarget, connector_doc, free_port

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def start(doc: dict, where: Path) -> tuple[subprocess.Popen[bytes], int]:
    manifest = where / "m.yaml"
    manifest.write_text(yaml.safe_dump(doc, sort_keys=False))
    port = free_port()
    log = open(where / "runtime.log", "ab")  # noqa: SIM115
    cmd = [sys.executable, "-m", "connector_runtime.cli", "run", str(manifest)]
    cmd += ["--port", str(port), "--data-dir", str(where / "data"), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
    for _ in range(400):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc, port
        except OSError:
            time.sleep(0.05)
    raise SystemExit((where / "runtime.log").read_text())


def wait_for(target: RecordingTarget, n: int) -> None:
    while len(target.events) < n:
        time.sleep(0.05)


def pull_round(tenant: FakeTenant, target: RecordingTarget, doc: dict, where: Path) -> dict:
    """One backfill from ``earliest`` on a fresh data dir: wall, CPU, exactly once."""
    where.mkdir()
    tenant.requests.clear()
    target.events.clear()
    proc, _ = start(doc, where)
    began, cpu0 = time.monotonic(), cpu_seconds(proc.pid)
    wait_for(target, len(tenant.records))
    wall, cpu = time.monotonic() - began, cpu_seconds(proc.pid) - cpu0
    proc.terminate()
    proc.wait()
    got = Counter(e.id for e in target.events)
    once = set(got) == {r[0] for r in tenant.records} and all(n == 1 for n in got.values())
    return {
        "exactly_once": once,
        "max_requests_in_one_second": tenant.max_requests_per_second(),
        "log_requests": len(tenant.requests),
        "wall": wall,
        "cpu": cpu,
    }


def hook_round(tenant: FakeTenant, target: RecordingTarget, sink: dict, where: Path) -> float:
    """The same records posted to an ``auth0`` webhook connector, 100 per request: CPU."""
    where.mkdir()
    target.events.clear()
    proc, port = start(connector_doc("hook", "auth0", {}, sink), where)
    bodies = []
    for i in range(0, len(tenant.records), 100):
        lines = [
            b'{"log_id":"' + r[0].encode() + b'","data":' + r[2] + b"}"
            for r in tenant.records[i : i + 100]
        ]
        bodies.append(b"\n".join(lines) + b"\n")
    cpu0 = cpu_seconds(proc.pid)
    for body in bodies:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/hook", body, method="POST")
        req.add_header("Content-Type", "application/json")
        urllib.request.urlopen(req, timeout=30).read()
    wait_for(target, len(tenant.records))
    cpu = cpu_seconds(proc.pid) - cpu0
    proc.terminate()
    proc.wait()
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--rps", type=float, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    loop = LoopThread()
    tenant = FakeTenant(loop, rate=args.rps * 2, burst=args.rps * 2).start()
    tenant.add_records(args.records, step=0.001)
    target = RecordingTarget(loop).start()
    sink = {"type": "http", "config": {"url": target.url, "mode": "batch"}}
    pull_doc = connector_doc(
        "logs",
        "auth0-logs",
        {
            "domain": tenant.url,
            "clientId": tenant.client_id,
            "clientSecret": tenant.client_secret,
            "startFrom": "earliest",
            "requestsPerSecond": args.rps,
        },
        sink,
    )
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.rounds):
            pulled = pull_round(tenant, target, pull_doc, Path(tmp) / f"pull{n}")
            hook_cpu = hook_round(tenant, target, sink, Path(tmp) / f"hook{n}")
            pull_us = pulled["cpu"] / args.records * 1e6
            hook_us = hook_cpu / args.records * 1e6
            rounds.append(
                {
                    "exactly_once": pulled["exactly_once"],
                    "max_requests_in_one_second": pulled["max_requests_in_one_second"],
                    "log_requests": pulled["log_requests"],
                    "pull_wall_seconds": round(pulled["wall"], 1),
                    "pull_cpu_us_per_record": round(pull_us, 1),
                    "webhook_cpu_us_per_record": round(hook_us, 1),
                    "ratio_pull_to_webhook": round(pull_us / hook_us, 2),
                }
            )
            print(json.dumps(rounds[-1]), file=sys.stderr)

    def median(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    result = {
        "records": args.records,
        "requestsPerSecond": args.rps,
        "rounds": len(rounds),
        "exactly_once_every_round": all(r["exactly_once"] for r in rounds),
        "max_requests_in_one_second": max(r["max_requests_in_one_second"] for r in rounds),
        "median_pull_wall_seconds": median("pull_wall_seconds"),
        "median_pull_cpu_us_per_record": median("pull_cpu_us_per_record"),
        "median_webhook_cpu_us_per_record": median("webhook_cpu_us_per_record"),
        "median_ratio_pull_to_webhook": median("ratio_pull_to_webhook"),
    }
    print(json.dumps(result, indent=2))
    target.stop()
    tenant.stop()
    loop.close()


if __name__ == "__main__":
    main()
