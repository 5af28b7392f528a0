"""Process plumbing for the benchmark driver: start pinned, poll, sample /proc, stop.

Pinning uses ``os.sched_setaffinity`` in the child before it runs (so every thread it
starts inherits the core). :func:`cpu_plan` gives the system under test the first allowed
core and everything else (load generator, target, the driver itself, py-spy) the second;
with fewer than two cores nothing is pinned and the report says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PYTHON = sys.executable
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuPlan:
    sut: frozenset[int] | None
    other: frozenset[int] | None

    @property
    def pinned(self) -> bool:
        return self.sut is not None

    def describe(self) -> str:
        if not self.pinned:
            return "not pinned (fewer than 2 usable cores)"
        sut, other = min(self.sut or ()), min(self.other or ())
        return f"SUT on CPU {sut}, load generator + target on CPU {other}"


def cpu_plan() -> CpuPlan:
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return CpuPlan(None, None)
    if len(cpus) < 2:
        return CpuPlan(None, None)
    return CpuPlan(frozenset({cpus[0]}), frozenset({cpus[1]}))


def pin_self(cpus: frozenset[int] | None) -> None:
    if cpus is not None:
        os.sched_setaffinity(0, cpus)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """A child process, pinned, with its output in a log file; stopped with SIGTERM."""

    def __init__(
        self,
        name: str,
        cmd: Sequence[str],
        log: Path,
        cpus: frozenset[int] | None,
        env: dict[str, str] | None = None,
        stdout: int | None = None,
    ) -> None:
        self.name = name
        self.log_path = log
        self._log = log.open("wb")
        self.popen = subprocess.Popen(
            list(cmd),
            cwd=ROOT,
            stdout=stdout if stdout is not None else self._log,
            stderr=self._log,
            env={**os.environ, **(env or {})},
        )
        # Popen returns once the child exec'd; it starts no thread for a while yet, and the
        # threads it starts later inherit the mask (a preexec_fn is unsafe in a threaded parent).
        if cpus is not None:
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(self.popen.pid, cpus)

    def output(self, timeout: float) -> bytes:
        """Wait for the process to exit; its stdout (started with ``stdout=PIPE``)."""
        out, _ = self.popen.communicate(timeout=timeout)
        return out or b""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()
        return self.popen.returncode

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


def http(method: str, url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def wait_http(url: str, proc: Proc, timeout: float = 30.0) -> None:
    """Wait until GET ``url`` answers 200; raise with the process's last output if not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.tail()}")
        with contextlib.suppress(OSError):
            if http("GET", url, 0.5)[0] == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{proc.name} did not answer {url} within {timeout:g}s:\n{proc.tail()}")


def target_count(control_url: str) -> dict[str, Any]:
    status, body = http("GET", control_url + "/count")
    if status != 200:
        raise RuntimeError(f"target count: HTTP {status}")
    result: dict[str, Any] = json.loads(body)
    return result


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (KiB) of a process."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def core_busy(cpu: int) -> tuple[int, int]:
    """(busy, total) jiffies of one core since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                values = [int(v) for v in line.split()[1:]]
                idle = values[3] + values[4]
                return sum(values) - idle, sum(values)
    return 0, 0


def machine_busy() -> float:
    """CPU seconds all cores spent in processes (user, nice, system) since boot. Interrupt
    time is left out: loopback networking runs there and is ours, but no process is
    charged for it."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return (values[0] + values[1] + values[2]) / CLOCK_TICKS


def own_cpu() -> float:
    """CPU seconds of this process and of every child it has waited for."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class OtherLoad:
    """How busy the machine was with work that is not ours (other users' processes, and
    kernel work not charged to a process), in cores, between :meth:`start` and
    :meth:`stop`. Call :meth:`stop` after every child was waited for."""

    def start(self) -> None:
        self.t0, self.busy0, self.own0 = time.monotonic(), machine_busy(), own_cpu()

    def stop(self) -> float:
        wall = time.monotonic() - self.t0
        other = (machine_busy() - self.busy0) - (own_cpu() - self.own0)
        return max(0.0, other / wall) if wall > 0 else 0.0


def wait_quiet(limit: float, threshold: float) -> float:
    """Wait up to ``limit`` seconds for the machine to be idle (less than ``threshold``
    cores busy over a second); return the load last seen."""
    deadline = time.monotonic() + limit
    while True:
        b0, t0 = machine_busy(), time.monotonic()
        time.sleep(1.0)
        load = (machine_busy() - b0) / (time.monotonic() - t0)
        if load < threshold or time.monotonic() >= deadline:
            return load


@dataclass
class Sampler:
    """Samples a process's RSS every ``interval`` seconds on a background thread."""

    pid: int
    interval: float = 0.2
    samples: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = proc_status(self.pid).get("VmRSS")
            if rss is not None:
                self.samples.append((time.monotonic(), rss))
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def max_between(self, t0: float, t1: float) -> int | None:
        values = [rss for t, rss in self.samples if t0 <= t <= t1]
        return max(values) if values else None

    def at(self, t: float) -> int | None:
        before = [rss for ts, rss in self.samples if ts <= t]
        return before[-1] if before else None
