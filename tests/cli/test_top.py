"""``connector-runtime top`` (issue 19, part 4): frames through a real pty (each frame
clears the screen; Ctrl-C on the terminal ends it with 0), and through a pipe (one plain
frame per interval)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from connector_runtime_auth0.testing import batch, jsonl

from connector_runtime.cli.top import CLEAR
from connector_runtime.testing import connector_doc, free_port, post
from tests.procs import CLI, RuntimeProcess, write_manifest


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[tuple[RuntimeProcess, str]]:
    port = free_port()
    admin = {"listen": {"host": "127.0.0.1", "port": port}}
    docs = [
        connector_doc("logins", "auth0", {}, {"type": "stdout"}),
        connector_doc("audit", "auth0", {}, {"type": "stdout"}),
        {"apiVersion": "connector-runtime/v1", "kind": "Runtime", "spec": {"admin": admin}},
    ]
    proc = RuntimeProcess(write_manifest(tmp_path / "m.yaml", docs), tmp_path / "data").start()
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        assert proc.terminate() == 0


def read_until(fd: int, done: Any, limit: int = 400) -> str:
    """What the pty says until ``done(text)`` holds (at most ``limit`` reads)."""
    text = ""
    for _ in range(limit):
        ready, _, _ = select.select([fd], [], [], 30)
        assert ready, f"top went silent after: {text!r}"
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        text += chunk.decode(errors="replace")
        if done(text):
            break
    return text


def test_top_refreshes_in_a_terminal_and_ctrl_c_ends_it(runtime):
    proc, admin = runtime
    assert post(proc.url + "/logins", jsonl(batch(9, prefix="8000"))).status == 200
    pid, fd = pty.fork()
    if pid == 0:  # the child: top on the pty, its controlling terminal
        os.execv(CLI[0], [*CLI, "top", admin, "--interval", "0.2"])
    try:
        text = read_until(fd, lambda t: t.count(CLEAR) >= 3)
        assert text.count(CLEAR) >= 3  # each frame replaced the last
        last = text.split(CLEAR)[-2]  # a whole frame: the one before the last began
        rows = {line.split()[0]: line.split() for line in last.splitlines() if line}
        assert rows["logins"][1:3] == ["auth0>stdout", "9"]  # accepted, as /metrics counts
        assert rows["audit"][2] == "0"
        os.write(fd, b"\x03")  # Ctrl-C on the terminal
        read_until(fd, lambda t: False)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0


def test_top_through_a_pipe_prints_one_plain_frame_per_interval(runtime):
    _, admin = runtime
    r = subprocess.run(
        [*CLI, "top", admin, "--frames", "3", "--interval", "0.1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout
    assert r.stdout.count("connector-runtime ") == 3
    assert r.stdout.count("\nlogins ") == 3 and r.stdout.count("\naudit ") == 3


def test_top_says_when_the_runtime_is_unreachable():
    url = f"http://127.0.0.1:{free_port()}"
    r = subprocess.run([*CLI, "top", url], capture_output=True, text=True, timeout=60)
    assert r.returncode == 3
    assert r.stderr.startswith(f"error: cannot reach the runtime's admin listener at {url}: ")
    assert len(r.stderr.splitlines()) == 1
