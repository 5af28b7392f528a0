"""The benchmark driver: ``make bench`` (``python bench/run.py``).

For every scenario and round it starts what is measured on a fresh temp data dir (the
counting target ``bench/target.py`` and ``connector-runtime run bench/manifest.yaml``, or
one of the ceiling servers of ``bench/ceilings.py``), pins the server to CPU 0 and the
load generator, the target and itself to CPU 1, drives load (``bench/loadgen.py``) for
``--duration`` seconds, waits until every expected event reached the target, and stops
everything. The ``workers1`` / ``workers2`` scenarios (``run --workers N``) are not
pinned: with two cores, a SUT pinned to one leaves a second worker nothing to run on, so
there the SUT, the target, the load generator and the driver share all cores. Rounds go
round-robin over the scenarios (later rounds in a shuffled order), so a slow minute of the
machine hits them all alike, and ratios are taken within a round.
It prints one markdown table, the ratios and the issue's targets, and writes it all to
``bench/out/latest.json`` (and the table to ``bench/out/latest.md``).

Measures:

- records/s e2e: records the runtime acknowledged (2xx) divided by the time from the first
  request until the last expected event reached the target (for the ceilings, until the
  last answer); filtered and redelivered records count as records, since Auth0 sent them;
- rec per CPU-s: the same records per CPU-second the server used (its rate if it had the
  core to itself; meaningful when the server, not the load, is the limit);
- webhook p50/p99: per-request latency seen by the senders;
- peak RSS: ``VmHWM`` of the runtime's process (all threads); with ``--workers N``, the
  sum of the ``VmHWM`` of the supervisor and of its N workers (their peaks need not
  coincide, so the sum is an upper bound of the memory they held at once);
- lost: expected events that never reached the target (expected = acknowledged records
  that pass the filter and are not redeliveries);
- SUT CPU: the server's CPU seconds over the wall time of the run (1.0 = a full core;
  with ``--workers N``, the supervisor's and the workers' together, so up to N);
- other load: cores used by processes that are not ours during the run. A machine shared
  with other work makes numbers swing, so before each run the driver waits (up to
  ``--wait-quiet`` s) for it to go quiet, repeats a run that had more than
  ``--max-other-load`` (up to ``--retries`` times) and takes medians over quiet rounds.

``--max-backlog`` keeps the load generator from getting further ahead of the target than
that many events, so a run measures the sustained rate rather than how fast a spool fills.

    python bench/run.py                         # everything, medians of 3 (a few minutes)
    python bench/run.py --quick                 # one short round
    python bench/run.py --scenario main --rounds 5 --profile
    python bench/run.py --scenario main --outage 30
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from harness import (
    BENCH,
    PYTHON,
    ROOT,
    CpuPlan,
    OtherLoad,
    Proc,
    Sampler,
    core_busy,
    cpu_plan,
    cpu_seconds,
    free_port,
    http,
    pin_self,
    proc_status,
    target_count,
    wait_http,
    wait_quiet,
)
from records import FILTERED_TYPE, KEPT_EVENTS, KEPT_TYPES
from report import render, summarize

OUT = BENCH / "out"
MANIFEST = BENCH / "manifest.yaml"
TOKEN = "Bearer bench-token-0123456789"


@dataclass(frozen=True)
class Scenario:
    name: str
    server: str
    """``sut`` (the runtime), ``bare`` / ``parse`` (ceilings) or ``target`` (its capacity)."""
    about: str
    batch: int = 100
    concurrency: int = 16
    mode: str = "batch"
    filter_share: float = 0.0
    dup_share: float = 0.0
    max_backlog: int | None = None
    """Events; ``None``: the ``--max-backlog`` option."""
    filtering: bool = True
    """False: the manifest's ``events`` filter is taken out."""
    dedupe: bool = True
    """False: ``delivery.dedupe.maxEntries: 0`` (no dedupe window at all)."""
    workers: int | None = None
    """``run --workers N``; ``None``: the option left out (one process)."""
    pinned: bool = True
    """False: the SUT, the target, the load generator and the driver share all cores."""


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("ceiling-bare", "bare", "bare Tornado: read the body, answer (B=100)"),
        Scenario("ceiling-parse", "parse", "Tornado + orjson.loads of every line (B=100)"),
        Scenario("main", "sut", "durable, batch target, B=100, c=16"),
        Scenario("ceiling-bare-B1", "bare", "bare Tornado, B=1", batch=1),
        Scenario("B1", "sut", "durable, batch target, B=1, c=16", batch=1),
        Scenario("target-binary", "target", "counting target, binary CE, 1 core", batch=1),
        Scenario("binary", "sut", "durable, binary target, B=100, c=16", mode="binary"),
        Scenario("nofilter", "sut", "main without the events filter", filtering=False),
        Scenario("filter30", "sut", "main + 30% filtered records", filter_share=0.3),
        Scenario("nodedupe", "sut", "main with dedupe turned off (maxEntries 0)", dedupe=False),
        Scenario("dup10", "sut", "main + 10% redelivered batches", dup_share=0.1),
        Scenario(
            "workers1",
            "sut",
            "main with `--workers 1`, NOT PINNED: SUT, target and load generator share both cores",
            workers=1,
            pinned=False,
        ),
        Scenario(
            "workers2",
            "sut",
            "main with `--workers 2` (supervisor + 2 worker processes on one port,"
            " SO_REUSEPORT), NOT PINNED like workers1; CPU and peak RSS summed over the"
            " 3 processes",
            workers=2,
            pinned=False,
        ),
    )
}
DEFAULT_BACKLOG = {"batch": 20_000, "binary": 2_000}


def check_manifest() -> None:
    """The bench manifest must keep every type the generator sends but FILTERED_TYPE."""
    from connector_runtime_auth0.catalogue import category_of

    docs = list(yaml.safe_load_all(MANIFEST.read_text()))
    events = set(docs[0]["spec"]["source"]["config"]["events"])
    if events != set(KEPT_EVENTS):
        raise SystemExit(f"{MANIFEST}: events differ from records.KEPT_EVENTS")
    for code, _ in KEPT_TYPES:
        if code not in events and category_of(code) not in events:
            raise SystemExit(f"{MANIFEST}: type {code} would be filtered out")
    if FILTERED_TYPE in events or category_of(FILTERED_TYPE) in events:
        raise SystemExit(f"{MANIFEST}: {FILTERED_TYPE} would pass the filter")


def sut_command(
    port: int, data_dir: Path, manifest: Path = MANIFEST, workers: int | None = None
) -> list[str]:
    script = Path(PYTHON).parent / "connector-runtime"
    head = [str(script)] if script.exists() else [PYTHON, "-m", "connector_runtime.cli"]
    extra = ["--workers", str(workers)] if workers is not None else []
    return [
        *head,
        "run",
        str(manifest),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--log-level",
        "WARNING",
        *extra,
    ]


def loadgen_command(sc: Scenario, url: str, args: argparse.Namespace, **extra: Any) -> list[str]:
    cmd = [
        PYTHON,
        str(BENCH / "loadgen.py"),
        url,
        "--batch",
        str(sc.batch),
        "--concurrency",
        str(sc.concurrency),
        "--duration",
        str(extra.get("duration", args.duration)),
        "--filter-share",
        str(sc.filter_share),
        "--dup-share",
        str(sc.dup_share),
        "--token",
        TOKEN,
    ]
    if sc.server == "target":
        cmd += ["--kind", "ce-binary"]
    if extra.get("rate"):
        cmd += ["--rate", str(extra["rate"])]
    if extra.get("count_url") and extra.get("max_backlog"):
        cmd += ["--max-backlog", str(extra["max_backlog"]), "--count-url", extra["count_url"]]
    return cmd


class Run:
    """One round of one scenario: its processes, in a temp dir removed afterwards."""

    def __init__(self, sc: Scenario, args: argparse.Namespace, plan: CpuPlan) -> None:
        self.sc = sc
        self.args = args
        self.plan = plan
        self.dir = Path(tempfile.mkdtemp(prefix=f"bench-{sc.name}-"))
        self.procs: list[Proc] = []
        self.sut_pids: list[int] = []
        """The runtime's processes once it listens: itself, then its workers, if any."""

    def start(self, name: str, cmd: list[str], cpus: frozenset[int] | None, **kw: Any) -> Proc:
        proc = Proc(name, cmd, self.dir / f"{name}.log", cpus, **kw)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        if not self.args.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def start_target(self, cpus: frozenset[int] | None, track_ids: bool = False) -> str:
        port, control = free_port(), free_port()
        cmd = [
            PYTHON,
            str(BENCH / "target.py"),
            "--port",
            str(port),
            "--control-port",
            str(control),
        ]
        proc = self.start("target", cmd + (["--track-ids"] if track_ids else []), cpus)
        control_url = f"http://127.0.0.1:{control}"
        wait_http(control_url + "/count", proc)
        self.target_url = f"http://127.0.0.1:{port}/"
        return control_url

    def start_sut(self, env: dict[str, str] | None = None) -> tuple[Proc, str]:
        port = free_port()
        env = {
            "BENCH_TARGET_URL": self.target_url,
            "BENCH_TARGET_MODE": self.sc.mode,
            "BENCH_TOKEN": TOKEN,
            **(env or {}),
        }
        manifest = MANIFEST
        if not (self.sc.filtering and self.sc.dedupe):
            docs = list(yaml.safe_load_all(MANIFEST.read_text()))
            spec = docs[0]["spec"]
            if not self.sc.filtering:
                del spec["source"]["config"]["events"]
            if not self.sc.dedupe:
                spec["delivery"]["dedupe"] = {"maxEntries": 0}
            manifest = self.dir / "manifest.yaml"
            manifest.write_text(yaml.safe_dump_all(docs))
        cmd = sut_command(port, self.dir / "data", manifest, self.sc.workers)
        sut = self.start("sut", cmd, self.plan.sut, env=env)
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/healthz", sut)
        self.sut_pids = [sut.pid, *self._wait_workers(sut, port)]
        return sut, base + "/auth0"

    def _wait_workers(self, sut: Proc, port: int, timeout: float = 30.0) -> list[int]:
        """With ``--workers N``: wait until all N workers listen (the load generator opens
        its connections once, at the start; any opened while only some workers listen
        would all go to those) and return their pids."""
        n = self.sc.workers or 1
        if n <= 1:
            return _children(sut.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not sut.alive():
                raise RuntimeError(f"sut exited ({sut.popen.returncode}):\n{sut.tail()}")
            workers = _children(sut.pid)
            if len(workers) >= n and _listeners(port) >= n:
                return workers
            time.sleep(0.05)
        raise RuntimeError(f"sut: {n} workers did not all listen within {timeout:g}s")

    def sut_alive(self, sut: Proc) -> bool:
        return sut.alive() and all(_alive(pid) for pid in self.sut_pids[1:])

    def loadgen(self, cmd: list[str], cpus: frozenset[int] | None = None) -> dict[str, Any]:
        """Run the load generator to the end (on the second core unless told) and parse
        its result."""
        proc = self.start("loadgen", cmd, cpus or self.plan.other, stdout=subprocess.PIPE)
        out = proc.output(timeout=self.args.duration + 120)
        if proc.popen.returncode != 0:
            raise RuntimeError(f"loadgen failed:\n{proc.tail()}")
        result: dict[str, Any] = json.loads(out)
        return result

    def drain(self, control_url: str, expected: int, sut: Proc | None) -> dict[str, Any]:
        """Wait until the target counted ``expected`` events, or nothing moved for a while."""
        last_change = time.monotonic()
        seen = -1
        while True:
            count = target_count(control_url)
            got = count["distinct"] if count["distinct"] is not None else count["events"]
            if got >= expected:
                return count
            if count["events"] != seen:
                seen, last_change = count["events"], time.monotonic()
            if time.monotonic() - last_change > self.args.drain_stall:
                return count
            if sut is not None and not self.sut_alive(sut):
                return count
            time.sleep(0.05)


def _dispatch(run: Run) -> dict[str, Any]:
    if run.sc.server in ("bare", "parse"):
        return _ceiling(run)
    if run.sc.server == "target":
        return _target_capacity(run)
    return _sut(run)


def _ceiling(run: Run) -> dict[str, Any]:
    port = free_port()
    cmd = [PYTHON, str(BENCH / "ceilings.py"), run.sc.server, "--port", str(port)]
    server = run.start(run.sc.server, cmd, run.plan.sut)
    wait_http(f"http://127.0.0.1:{port}/healthz", server)
    other = _watched_core(run.plan)
    busy0 = core_busy(other) if other is not None else (0, 0)
    cpu0 = cpu_seconds(server.pid)
    lg = run.loadgen(loadgen_command(run.sc, f"http://127.0.0.1:{port}/auth0", run.args))
    cpu = cpu_seconds(server.pid) - cpu0
    busy1 = core_busy(other) if other is not None else (0, 0)
    wall = lg["last_ack"] - lg["first_send"]
    return {
        **_load_fields(lg),
        "rate": lg["ack_rate"],
        "request_rate": lg["request_rate"],
        "wall": wall,
        "sut_cpu": cpu / wall if wall > 0 else None,
        "per_cpu": lg["records_acked"] / cpu if cpu > 0 else None,
        "core1_busy": _busy(busy0, busy1) if other is not None else None,
        "peak_rss_mib": proc_status(server.pid).get("VmHWM", 0) / 1024,
    }


def _watched_core(plan: CpuPlan) -> int | None:
    """The core of the load generator and target when they have one to themselves."""
    if plan.other is None or plan.other == plan.sut:
        return None
    return min(plan.other)


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (``/proc/PID/task/PID/children`` is not on
    every kernel)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def _alive(pid: int) -> bool:
    """Running, not a zombie its parent has not waited for yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _listeners(port: int) -> int:
    """Listening sockets on 127.0.0.1:``port`` (one per worker with SO_REUSEPORT)."""
    local = f"0100007F:{port:04X}"
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return 0
    return sum(1 for line in lines if line.split()[1:2] == [local] and line.split()[3] == "0A")


def _tree_cpu(pids: list[int]) -> list[float]:
    return [cpu_seconds(pid) for pid in pids]


@dataclass
class TreeSampler(Sampler):
    """:class:`Sampler` of the summed RSS of ``pid`` and of the ``extra`` processes."""

    extra: tuple[int, ...] = ()

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = [proc_status(pid).get("VmRSS") for pid in (self.pid, *self.extra)]
            if rss[0] is not None:
                self.samples.append((time.monotonic(), sum(r or 0 for r in rss)))
            self._stop.wait(self.interval)


def _busy(before: tuple[int, int], after: tuple[int, int]) -> float:
    return (after[0] - before[0]) / max(1, after[1] - before[1])


def _target_capacity(run: Run) -> dict[str, Any]:
    # The target alone on the second core; the load generator takes the first.
    control_url = run.start_target(run.plan.other)
    target_pid = run.procs[-1].pid
    cpu0 = cpu_seconds(target_pid)
    lg = run.loadgen(loadgen_command(run.sc, run.target_url, run.args), run.plan.sut)
    count = target_count(control_url)
    cpu = cpu_seconds(target_pid) - cpu0
    wall = count["last"] - lg["first_send"]
    return {
        **_load_fields(lg),
        "per_cpu": count["events"] / cpu if cpu > 0 else None,
        "received": count["events"],
        "lost": max(0, lg["expected"] - count["events"]),
        "rate": lg["records_acked"] / wall if wall > 0 else 0.0,
        "request_rate": lg["request_rate"],
        "wall": wall,
        "target_cpu": cpu / wall if wall > 0 else None,
    }


def _sut(run: Run, outage: float = 0.0) -> dict[str, Any]:
    args, sc = run.args, run.sc
    control_url = run.start_target(run.plan.other, track_ids=args.track_ids or outage > 0)
    sut, url = run.start_sut()
    pids = run.sut_pids
    sampler = TreeSampler(sut.pid, extra=tuple(pids[1:]))
    sampler.start()
    profiler = _start_profiler(run, sut) if args.profiling else None
    cpu0 = _tree_cpu(pids)
    other = _watched_core(run.plan)
    busy0 = core_busy(other) if other is not None else (0, 0)
    t_start = time.monotonic()
    if outage:
        lg, phases = _outage_load(run, url, control_url, outage)
    else:
        backlog = sc.max_backlog if sc.max_backlog is not None else args.max_backlog
        if backlog is None:
            backlog = DEFAULT_BACKLOG[sc.mode]
        lg = run.loadgen(
            loadgen_command(sc, url, args, max_backlog=backlog, count_url=control_url + "/count")
        )
        phases = {}
    count = run.drain(control_url, lg["expected"], sut)
    t_end = time.monotonic()
    cpu_by_proc = [after - before for before, after in zip(cpu0, _tree_cpu(pids), strict=True)]
    sut_cpu = sum(cpu_by_proc)
    busy1 = core_busy(other) if other is not None else (0, 0)
    statuses = [proc_status(pid) for pid in pids]
    peak_by_proc = [s.get("VmHWM", 0) / 1024 for s in statuses]
    sampler.stop()
    profile = _stop_profiler(run, profiler) if profiler is not None else None
    received = count["distinct"] if count["distinct"] is not None else count["events"]
    wall = count["last"] - lg["first_send"] if count["last"] else t_end - t_start
    result = {
        **_load_fields(lg),
        "received": count["events"],
        "distinct": count["distinct"],
        "repeats": count["repeats"],
        "lost": max(0, lg["expected"] - received),
        "extra": max(0, count["events"] - lg["expected"]),
        "rate": lg["records_acked"] / wall if wall > 0 else 0.0,
        "ingest_rate": lg["ack_rate"],
        "request_rate": lg["request_rate"],
        "events_rate": received / wall if wall > 0 else 0.0,
        "wall": wall,
        "drain": max(0.0, count["last"] - lg["last_ack"]) if count["last"] else None,
        "sut_cpu": sut_cpu / (t_end - t_start),
        "per_cpu": lg["records_acked"] / sut_cpu if sut_cpu > 0 else None,
        "core1_busy": _busy(busy0, busy1) if other is not None else None,
        "peak_rss_mib": sum(peak_by_proc),
        "end_rss_mib": sum(s.get("VmRSS", 0) for s in statuses) / 1024,
        "workers": run.sc.workers,
        "pinned": run.plan.sut is not None and run.plan.sut != run.plan.other,
    }
    if len(pids) > 1:
        # The supervisor first, then the workers: how memory and work were split.
        result["peak_rss_by_proc_mib"] = [round(v, 1) for v in peak_by_proc]
        result["cpu_s_by_proc"] = [round(v, 2) for v in cpu_by_proc]
    if outage:
        result["outage"] = _outage_report(sampler, phases, count, lg)
    if profile is not None:
        result["profile"] = profile
    if sut.stop() not in (0, None):
        result["sut_exit"] = sut.popen.returncode
        result["sut_log"] = sut.tail()
    return result


def _load_fields(lg: dict[str, Any]) -> dict[str, Any]:
    return {
        "requests": lg["requests"],
        "ok": lg["ok"],
        "errors": lg["errors"],
        "statuses": lg["statuses"],
        "records_acked": lg["records_acked"],
        "expected": lg["expected"],
        "sut_accepted": lg["sut_accepted"],
        "sut_duplicates": lg["sut_duplicates"],
        "sut_filtered": lg["sut_filtered"],
        "p50_ms": lg["latency_ms"]["p50"],
        "p99_ms": lg["latency_ms"]["p99"],
        "max_ms": lg["latency_ms"]["max"],
        "paused": lg["paused"],
    }


def _outage_load(
    run: Run, url: str, control_url: str, outage: float
) -> tuple[dict[str, Any], dict[str, float]]:
    """Load at ``--outage-rate`` for warm-up + outage + recovery; target down in between."""
    args = run.args
    warm = recover = max(5.0, args.duration)
    cmd = loadgen_command(
        run.sc, url, args, duration=warm + outage + recover, rate=args.outage_rate
    )
    proc = run.start("loadgen", cmd, run.plan.other, stdout=subprocess.PIPE)
    t0 = time.monotonic()
    phases = {"start": t0}
    while proc.alive():
        now = time.monotonic() - t0
        if "down" not in phases and now >= warm:
            http("POST", control_url + "/down")
            phases["down"] = time.monotonic()
        if "up" not in phases and now >= warm + outage:
            http("POST", control_url + "/up")
            phases["up"] = time.monotonic()
        time.sleep(0.05)
    assert proc.popen.stdout is not None
    out = proc.popen.stdout.read()
    if proc.popen.returncode != 0:
        raise RuntimeError(f"loadgen failed:\n{proc.tail()}")
    phases["load_end"] = time.monotonic()
    return json.loads(out), phases


def _outage_report(
    sampler: Sampler, phases: dict[str, float], count: dict[str, Any], lg: dict[str, Any]
) -> dict[str, Any]:
    def mib(value: int | None) -> float | None:
        return None if value is None else value / 1024

    down, up = phases["down"], phases["up"]
    during = [kib for t, kib in sampler.samples if down <= t <= up]
    quarter = max(1, len(during) // 4)
    return {
        "seconds": up - down,
        # Flat or not: the median RSS of the outage's last quarter against its first.
        "rss_first_quarter_mib": mib(int(statistics.median(during[:quarter]))) if during else None,
        "rss_last_quarter_mib": mib(int(statistics.median(during[-quarter:]))) if during else None,
        "rss_before_mib": mib(sampler.at(down)),
        "rss_max_during_mib": mib(sampler.max_between(down, up)),
        "rss_at_up_mib": mib(sampler.at(up)),
        "rss_after_drain_mib": mib(sampler.samples[-1][1] if sampler.samples else None),
        "catch_up_s": (count["last"] - up) if count["last"] else None,
        "repeats": count["repeats"],
        "rss_series": [(round(t - phases["start"], 2), kib) for t, kib in sampler.samples[::5]],
    }


def _start_profiler(run: Run, sut: Proc) -> Proc | None:
    spy = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
    if not Path(spy).exists():
        print("  (py-spy not found: pip install py-spy)", file=sys.stderr)
        return None
    out = run.dir / "profile.txt"
    rate = str(run.args.profile_rate)
    cmd = [spy, "record", "--pid", str(sut.pid), "--rate", rate, "--format", "raw"]
    # --native --idle: every thread, with the C frames that tell running from waiting.
    cmd += ["--threads", "--full-filenames", "--native", "--idle", "--output", str(out)]
    cmd += ["--duration", str(int(run.args.duration))]
    return run.start("py-spy", cmd, run.plan.other)


def _stop_profiler(run: Run, spy: Proc) -> dict[str, Any] | None:
    from pyspy_summary import summarize as summarize_profile

    try:
        spy.popen.wait(30)
    except subprocess.TimeoutExpired:
        spy.stop()
    out = run.dir / "profile.txt"
    if not out.exists():
        print(f"  (py-spy wrote nothing: {spy.tail(3)})", file=sys.stderr)
        return None
    OUT.mkdir(exist_ok=True)
    shutil.copy(out, OUT / f"profile-{run.sc.name}.txt")
    return summarize_profile(out.read_text(), top=40)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--duration", type=float, default=5.0, help="seconds of load per run")
    p.add_argument("--rounds", type=int, default=3, help="rounds per scenario (medians)")
    p.add_argument("--quick", action="store_true", help="one round of 2 s each")
    p.add_argument(
        "--scenario",
        action="append",
        choices=sorted(SCENARIOS),
        help="run only these (repeatable); the ceilings they are compared with are added",
    )
    p.add_argument("--max-backlog", type=int, help="events ahead of the target (0: no limit)")
    p.add_argument(
        "--profile",
        nargs="?",
        const="main",
        choices=sorted(
            n for n, sc in SCENARIOS.items() if sc.server == "sut" and (sc.workers or 1) == 1
        ),
        help="one extra run of a scenario (default: main) under py-spy",
    )
    p.add_argument(
        "--profile-rate",
        type=int,
        default=50,
        help="py-spy samples/s (each pauses the SUT to unwind its stacks)",
    )
    p.add_argument("--outage", type=float, default=0.0, help="also run a target outage (s)")
    p.add_argument("--outage-rate", type=float, default=10_000, help="records/s in the outage run")
    p.add_argument("--track-ids", action="store_true", help="target checks every event id")
    p.add_argument("--drain-stall", type=float, default=20.0, help="give up after s of no progress")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=60.0,
        help="before each run, wait up to s for other processes to go quiet (0: don't)",
    )
    p.add_argument(
        "--max-other-load",
        type=float,
        default=0.2,
        help="cores other processes may use during a run before it is repeated",
    )
    p.add_argument("--retries", type=int, default=2, help="repeats of a run on a busy machine")
    p.add_argument("--keep", action="store_true", help="keep temp dirs (logs, spool)")
    p.add_argument("--out", type=Path, default=OUT / "latest.json")
    args = p.parse_args()
    args.profiling = False
    if args.quick:
        args.duration, args.rounds = 2.0, 1

    signal.signal(signal.SIGTERM, _terminate)  # so that every child is stopped on the way out
    check_manifest()
    allowed = frozenset(os.sched_getaffinity(0))
    cores = len(allowed)
    pinned = cpu_plan()
    free = CpuPlan(allowed, allowed)  # explicit: children inherit the driver's own pinning

    def plan(sc: Scenario) -> CpuPlan:
        return pinned if sc.pinned else free

    pin_self(pinned.other)
    names = _with_ceilings(args.scenario or list(SCENARIOS))
    unpinned = [n for n in names if not SCENARIOS[n].pinned]
    pinning = pinned.describe()
    if unpinned:
        pinning += (
            f"; {', '.join(unpinned)}: NOT pinned (SUT, target, load generator and driver"
            f" share CPUs {','.join(map(str, sorted(allowed)))})"
        )
    print(f"connector-runtime bench: {pinning}; {args.rounds} round(s) of", end=" ")
    print(f"{args.duration:g}s: {', '.join(names)}", flush=True)

    rounds: list[dict[str, Any]] = []
    for r in range(args.rounds):
        # Round 1 in the listed order, later ones shuffled: what ran just before a scenario
        # (a disk still writing back, a warm cache) must not always be the same thing.
        order = list(names)
        if r:
            random.Random(r).shuffle(order)
        for name in order:
            rounds.append(_one(SCENARIOS[name], args, plan(SCENARIOS[name]), r))
    outage = None
    if args.outage:
        outage = _one(SCENARIOS["main"], args, pinned, 0, outage=args.outage)
    profile = None
    if args.profile:
        args.profiling = True
        profiled = _one(SCENARIOS[args.profile], args, plan(SCENARIOS[args.profile]), 0)
        args.profiling = False
        profile = profiled.get("profile")
        if profile is not None:
            profile["scenario"] = args.profile

    summary = summarize(rounds, outage, profile, args.max_other_load)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": f"{platform.machine()}, {_cpu_model()}, {cores} cores",
        "python": platform.python_version(),
        "commit": _git_head(),
        "pinning": pinning,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "scenarios": {n: asdict(SCENARIOS[n]) for n in names},
    }
    text = render(summary, meta)
    print()
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    document = {"meta": meta, "summary": summary, "rounds": rounds, "outage": outage}
    args.out.write_text(json.dumps(document, indent=2, default=str) + "\n")
    args.out.with_suffix(".md").write_text(text + "\n")
    print(f"\nwritten: {args.out}")
    return 0


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def _with_ceilings(names: list[str]) -> list[str]:
    wanted = set(names)
    if wanted & {"main", "filter30", "dup10", "nofilter", "nodedupe"}:
        wanted |= {"ceiling-bare", "ceiling-parse"}
    if "B1" in wanted:
        wanted.add("ceiling-bare-B1")
    if "binary" in wanted:
        wanted.add("target-binary")
    if wanted & {"filter30", "dup10", "nofilter", "nodedupe"}:
        wanted.add("main")
    if "workers2" in wanted:
        wanted.add("workers1")
    return [n for n in SCENARIOS if n in wanted]


def _one(
    sc: Scenario, args: argparse.Namespace, plan: CpuPlan, r: int, outage: float = 0.0
) -> dict[str, Any]:
    """One round of ``sc``; repeated (up to ``--retries`` times) while other processes
    kept the machine busier than ``--max-other-load``; the quietest attempt counts."""
    label = f"{sc.name} (outage {outage:g}s)" if outage else sc.name
    print(f"  round {r + 1}: {label:<22}", end=" ", flush=True)
    best: dict[str, Any] | None = None
    started = time.monotonic()
    for attempt in range(1 + max(0, args.retries)):
        result = _attempt(sc, args, plan, r, outage)
        result["attempts"] = attempt + 1
        if "error" in result:
            print(f"FAILED: {result['error']}", flush=True)
            return result
        if best is None or result["other_load"] < best["other_load"]:
            best = result
        if result["other_load"] <= args.max_other_load:
            break
        print(f"(busy machine: {result['other_load']:.2f} cores; again)", end=" ", flush=True)
    assert best is not None
    print(_one_line(best, time.monotonic() - started), flush=True)
    return best


def _attempt(
    sc: Scenario, args: argparse.Namespace, plan: CpuPlan, r: int, outage: float
) -> dict[str, Any]:
    idle = wait_quiet(args.wait_quiet, args.max_other_load) if args.wait_quiet else None
    pin_self(plan.other)  # the driver's share of the cores too (all of them, unpinned)
    other = OtherLoad()
    other.start()
    try:
        run = Run(sc, args, plan)
        try:
            result = _sut(run, outage=outage) if outage else _dispatch(run)
        finally:
            run.close()
    except (RuntimeError, OSError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
        return {"scenario": sc.name, "round": r, "error": str(exc)}
    result = {"scenario": sc.name, "round": r, **result, "other_load": other.stop()}
    if idle is not None:
        result["load_before"] = idle
    return result


def _one_line(result: dict[str, Any], took: float) -> str:
    parts = [f"{result['rate']:>9,.0f} rec/s", f"p99 {result['p99_ms']:6.1f} ms"]
    if "lost" in result:
        parts.append(f"lost {result['lost']}")
    if result.get("peak_rss_mib"):
        parts.append(f"RSS {result['peak_rss_mib']:.0f} MiB")
    if result.get("sut_cpu") is not None:
        parts.append(f"CPU {result['sut_cpu']:.0%}")
    if result.get("target_cpu") is not None:
        parts.append(f"target CPU {result['target_cpu']:.0%}")
    if result.get("other_load", 0) > 0.1:
        parts.append(f"OTHER LOAD {result['other_load']:.2f} cores")
    bad = {k: v for k, v in result["statuses"].items() if not k.startswith("2")}
    if bad or result["errors"]:
        parts.append(f"non-2xx {bad} errors {result['errors']}")
    return ", ".join(parts) + f"  [{took:.0f}s]"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _git_head() -> str | None:
    """The commit measured, read-only (no index refresh), "+ changes" when the core differs."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            timeout=5,
            check=False,
            env=env,
        )
        changed = subprocess.run(
            ["git", "diff", "--quiet", "HEAD", "--", "connector_runtime", "plugins"],
            cwd=ROOT,
            capture_output=True,
            timeout=5,
            check=False,
            env=env,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.decode().strip() + (" + uncommitted changes" if changed.returncode else "")


if __name__ == "__main__":
    sys.exit(main())
