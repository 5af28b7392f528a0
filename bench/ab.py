"""A/B the runtime's CPU per record: two environments, alternating runs, same load.

On this shared VM, throughput swings ±20-40 % over minutes; CPU time and page faults per
record of the system under test swing far less. Each run starts the counting target (CPU
1) and ``connector-runtime run bench/manifest.yaml`` (CPU 0) on a fresh data dir, drives
``main``'s load (B=100, or ``--batch``; c=16, no pacing) for ``--duration`` seconds from
CPU 1, and reads the runtime's user+system CPU and minor page faults from ``/proc``. Runs
alternate A, B, A, B ... so a slow minute hits both; the medians of each side are printed
at the end.

    python bench/ab.py --b MALLOC_ARENA_MAX=2            # A: as is; B: with that variable
    python bench/ab.py --a X=1 --b X=2 --pairs 5
    python bench/ab.py --b-tree ../exp                   # B: the code of another worktree
    python bench/ab.py --b-pii strict                    # B: the auth0 pii preset on

Linux only (``taskset``, ``/proc``). The environment is how to switch a variant on without
editing code: a ``MALLOC_*`` variable, ``PYTHON*`` settings, or a variable the code under
test reads while you experiment.
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

import yaml

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
RUNTIME = str(Path(PYTHON).parent / "connector-runtime")
TOKEN = "Bearer bench-token-0123456789"  # the bench manifest's default
TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float]:
    """(minor faults, CPU seconds) of ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[7]), (int(fields[11]) + int(fields[12])) / TICKS


def _wait_up(url: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def run_once(
    env: dict[str, str],
    duration: float,
    port: int = 9202,
    runtime: str = RUNTIME,
    batch: int = 100,
    pii: str | None = None,
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as data:
        manifest = HERE / "manifest.yaml"
        if pii:  # the same manifest, with the auth0 source's pii preset
            docs = list(yaml.safe_load_all(manifest.read_text()))
            docs[0]["spec"]["source"]["config"]["pii"] = {"preset": pii, "key": "k" * 32}
            manifest = Path(data) / "manifest.yaml"
            manifest.write_text(yaml.safe_dump_all(docs))
        target = subprocess.Popen(
            [
                *("taskset", "-c", "1", PYTHON, str(HERE / "target.py")),
                *("--port", str(port + 1), "--control-port", str(port + 2)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        sut_env = {
            **os.environ,
            **env,
            "BENCH_TARGET_URL": f"http://127.0.0.1:{port + 1}/",
            "BENCH_TOKEN": TOKEN,
        }
        sut = subprocess.Popen(
            [
                *("taskset", "-c", "0", runtime, "run", str(manifest)),
                *("--port", str(port), "--data-dir", str(Path(data) / "data")),
            ],
            env=sut_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_up(f"http://127.0.0.1:{port}/healthz")
            faults0, cpu0 = _stat(sut.pid)
            load = subprocess.run(
                [
                    *("taskset", "-c", "1", PYTHON, str(HERE / "loadgen.py")),
                    *("--batch", str(batch)),
                    *("--concurrency", "16", "--duration", str(duration), "--token", TOKEN),
                    f"http://127.0.0.1:{port}/auth0",
                ],
                capture_output=True,
                check=True,
                text=True,
            )
            time.sleep(1.0)  # let the dispatcher finish what was acknowledged
            faults1, cpu1 = _stat(sut.pid)
        finally:
            for proc in (sut, target):
                proc.terminate()
                proc.wait(30)
    records = json.loads(load.stdout)["records_acked"]
    return {
        "records_per_s": records / duration,
        "cpu_us_per_record": (cpu1 - cpu0) / max(records, 1) * 1e6,
        "faults_per_record": (faults1 - faults0) / max(records, 1),
    }


def _env(pairs: list[str]) -> dict[str, str]:
    return dict(p.split("=", 1) for p in pairs)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--a", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--b", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument(
        "--b-tree",
        metavar="DIR",
        help="B runs DIR/.venv/bin/connector-runtime (a worktree with its own venv), so two"
        " versions of the code can be compared",
    )
    p.add_argument("--b-pii", metavar="PRESET", help="B runs with the auth0 pii preset PRESET")
    p.add_argument("--pairs", type=int, default=4)
    p.add_argument("--batch", type=int, default=100, help="records per request")
    p.add_argument("--duration", type=float, default=5.0)
    args = p.parse_args()
    sides = {"A": _env(args.a), "B": _env(args.b)}
    runtimes = {"A": RUNTIME, "B": RUNTIME}
    if args.b_tree:
        runtimes["B"] = str(Path(args.b_tree) / ".venv" / "bin" / "connector-runtime")
    results: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    for n in range(args.pairs):
        for side, env in sides.items():
            pii = args.b_pii if side == "B" else None
            got = run_once(env, args.duration, runtime=runtimes[side], batch=args.batch, pii=pii)
            results[side].append(got)
            print(
                f"pair {n + 1} {side}: {got['cpu_us_per_record']:6.2f} us CPU/record,"
                f" {got['faults_per_record']:.3f} faults/record,"
                f" {got['records_per_s']:,.0f} records/s",
                flush=True,
            )
    for side, runs in results.items():
        cpu = statistics.median(r["cpu_us_per_record"] for r in runs)
        faults = statistics.median(r["faults_per_record"] for r in runs)
        label = sides[side] or ("(as is)" if runtimes[side] == RUNTIME else runtimes[side])
        if side == "B" and args.b_pii:
            label = f"pii preset {args.b_pii}"
        print(f"{side} {label}: median {cpu:.2f} us CPU/record, {faults:.3f} faults/record")
    return 0


if __name__ == "__main__":
    sys.exit(main())
