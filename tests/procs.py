"""Running ``connector-runtime`` as a real subprocess for tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from connector_runtime.testing import free_port

CLI = [sys.executable, "-m", "connector_runtime.cli"]


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    """Run a CLI command to completion; returns the CompletedProcess (text mode)."""
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


class RuntimeProcess:
    """``connector-runtime run`` in a subprocess, on a free loopback port."""

    def __init__(
        self,
        manifest: Path,
        data_dir: Path,
        port: int | None = None,
        env: dict[str, str] | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.manifest = manifest
        self.args = list(args)
        self.data_dir = data_dir
        self.port = port or free_port()
        self.env = env or {}
        self.proc: subprocess.Popen[str] | None = None
        self.stderr_path = data_dir.parent / f"runtime-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20) -> RuntimeProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # A restart on the same port appends to the same log: look only at this run's lines.
        seen = len(self.log())
        err = open(self.stderr_path, "a")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                *CLI,
                "run",
                str(self.manifest),
                "--port",
                str(self.port),
                "--host",
                "127.0.0.1",
                "--data-dir",
                str(self.data_dir),
                *self.args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
            env={**os.environ, **self.env},
        )
        err.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "listening on" in self.log()[seen:]:
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"runtime exited {self.proc.returncode}: {self.log()}")
            time.sleep(0.05)
        raise RuntimeError(f"runtime did not start: {self.log()}")

    def log(self) -> str:
        return self.stderr_path.read_text() if self.stderr_path.exists() else ""

    def rss_kib(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def kill_9_once_delivered(
    manifest: Path, data: Path, delivered: Callable[[], int], count: int, timeout: float = 60
) -> None:
    """Start a runtime on ``manifest`` and ``data``, wait until ``delivered()`` (what the
    target holds) reaches ``count``, then ``kill -9`` it."""
    proc = RuntimeProcess(manifest, data).start()
    try:
        deadline = time.monotonic() + timeout
        while delivered() < count:
            assert time.monotonic() < deadline, proc.log()
            time.sleep(0.002)
        proc.kill9()
    finally:
        proc.stop()


def write_manifest(path: Path, docs: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path
