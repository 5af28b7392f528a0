"""A/B the cost of one tap at full sampling: CPU per record of the runtime with no tap
attached (A) and with one ``connector-runtime tap --connector auth0`` reading everything
(B), alternating runs, the same load as ``bench/ab.py`` (B=100, c=16, no pacing).

Both sides serve ``bench/manifest.yaml`` plus an admin listener (so the only difference is
the attached tap). The runtime runs on CPU 0; the target, the load and the tap client on
CPU 1. A tap client that cannot keep up loses events (counted by the runtime); the
figures printed say how many it received and how many were dropped for it.

    python bench/tap_cost.py --pairs 3 --duration 5
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ab import HERE, PYTHON, RUNTIME, TOKEN, _stat, _wait_up

ADMIN = """
  admin:
    listen: {host: 127.0.0.1, port: %d}
"""


def run_once(tap: bool, duration: float, port: int = 9302) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as data:
        manifest = Path(data) / "manifest.yaml"
        manifest.write_text((HERE / "manifest.yaml").read_text() + ADMIN % (port + 3))
        target = subprocess.Popen(
            [
                *("taskset", "-c", "1", PYTHON, str(HERE / "target.py")),
                *("--port", str(port + 1), "--control-port", str(port + 2)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        env = {**os.environ, "BENCH_TARGET_URL": f"http://127.0.0.1:{port + 1}/"}
        sut = subprocess.Popen(
            [
                *("taskset", "-c", "0", RUNTIME, "run", str(manifest)),
                *("--port", str(port), "--data-dir", str(Path(data) / "d")),
            ],
            env={**env, "BENCH_TOKEN": TOKEN},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        admin = f"http://127.0.0.1:{port + 3}"
        client = None
        try:
            _wait_up(admin + "/healthz")
            if tap:
                out = open(Path(data) / "tap.out", "w")  # noqa: SIM115
                client = subprocess.Popen(
                    ["taskset", "-c", "1", RUNTIME, "tap", admin, "--connector", "auth0"],
                    stdout=out,
                    stderr=subprocess.DEVNULL,
                )
                out.close()
                while (
                    json.loads(urllib.request.urlopen(admin + "/status.json").read())["taps"][
                        "attached"
                    ]
                    < 1
                ):
                    time.sleep(0.05)
            _, cpu0 = _stat(sut.pid)
            load = subprocess.run(
                [
                    *("taskset", "-c", "1", PYTHON, str(HERE / "loadgen.py")),
                    *("--batch", "100", "--concurrency", "16", "--duration", str(duration)),
                    *("--token", TOKEN, f"http://127.0.0.1:{port}/auth0"),
                ],
                capture_output=True,
                check=True,
                text=True,
            )
            time.sleep(1.0)
            _, cpu1 = _stat(sut.pid)
            status = json.loads(urllib.request.urlopen(admin + "/status.json").read())
        finally:
            for proc in (client, sut, target):
                if proc is not None:
                    proc.terminate()
                    proc.wait(30)
        received = 0
        if tap:
            with open(Path(data) / "tap.out") as lines:
                received = sum(1 for _ in lines)
    records = json.loads(load.stdout)["records_acked"]
    return {
        "records_per_s": records / duration,
        "cpu_us_per_record": (cpu1 - cpu0) / max(records, 1) * 1e6,
        "tap_received": received,
        "tap_dropped": status["connectors"][0]["tap_dropped"],
        "records": records,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--duration", type=float, default=5.0)
    args = p.parse_args()
    results: dict[str, list[dict[str, float]]] = {"no tap": [], "one tap": []}
    for n in range(args.pairs):
        for side, runs in results.items():
            got = run_once(side == "one tap", args.duration)
            runs.append(got)
            print(
                f"pair {n + 1} {side}: {got['cpu_us_per_record']:6.2f} us CPU/record,"
                f" {got['records_per_s']:,.0f} records/s; tap got {got['tap_received']:,},"
                f" dropped {got['tap_dropped']:,} of {got['records']:,}",
                flush=True,
            )
    for side, runs in results.items():
        cpu = statistics.median(r["cpu_us_per_record"] for r in runs)
        rate = statistics.median(r["records_per_s"] for r in runs)
        print(f"{side}: median {cpu:.2f} us CPU/record, {rate:,.0f} records/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
