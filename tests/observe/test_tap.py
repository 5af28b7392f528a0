"""The tap (issue 19, parts 1 and 2): ``GET /tap`` on the admin listener and
``connector-runtime tap``, against a real runtime process, over real sockets."""

from __future__ import annotations

import base64
import json
import os
import queue
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from connector_runtime_auth0.testing import batch, jsonl

from connector_runtime.testing import RecordingTarget, connector_doc, free_port, post
from tests.procs import CLI, RuntimeProcess, write_manifest

TOKEN = "a-tap-admin-token-0123456789"


def runtime_doc(port: int, **admin: Any) -> dict[str, Any]:
    spec = {"admin": {"listen": {"host": "127.0.0.1", "port": port}, **admin}}
    return {"apiVersion": "connector-runtime/v1", "kind": "Runtime", "spec": spec}


def start(tmp_path: Path, docs: list[dict[str, Any]]) -> RuntimeProcess:
    return RuntimeProcess(write_manifest(tmp_path / "m.yaml", docs), tmp_path / "data").start()


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[RuntimeProcess, str]]:
    """Connectors a0 and b0 (stdout targets), an admin listener allowing 2 taps."""
    port = free_port()
    docs = [
        connector_doc("a0", "auth0", {}, {"type": "stdout"}),
        connector_doc("b0", "auth0", {}, {"type": "stdout"}),
        runtime_doc(port, maxTaps=2),
    ]
    proc = start(tmp_path, docs)
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        assert proc.terminate() == 0


_readers: dict[int, queue.Queue[str]] = {}


def read_line(stream: Any, timeout: float = 20) -> str:
    """One line of a subprocess pipe; fails (instead of hanging) when none comes. A thread
    per pipe reads it (``select`` would miss lines already in the pipe object's buffer)."""
    key = id(stream)
    if key not in _readers:
        lines: queue.Queue[str] = queue.Queue()
        _readers[key] = lines

        def pump() -> None:
            for line in stream:
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
    try:
        return _readers[key].get(timeout=timeout)
    except queue.Empty:
        raise AssertionError("no line from the tap") from None


def tap_cli(admin: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [*CLI, "tap", admin, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
        env={**os.environ, **(env or {})},
    )
    assert "tapping connector" in read_line(proc.stderr)
    return proc


def stop(tap: subprocess.Popen[str]) -> int:
    """Ctrl-C the tap; its exit code (pipes closed)."""
    if tap.poll() is None:
        tap.send_signal(signal.SIGINT)
    try:
        return tap.wait(timeout=20)
    finally:
        for pipe in (tap.stdout, tap.stderr):
            if pipe is not None:
                _readers.pop(id(pipe), None)
                pipe.close()


def status(admin: str) -> dict[str, Any]:
    return post(admin + "/status.json", method="GET").json()


def test_tap_prints_exactly_the_connectors_events_and_stops_on_ctrl_c(two):
    proc, admin = two
    tap = tap_cli(admin, "--connector", "a0")
    try:
        assert post(proc.url + "/a0", jsonl(batch(5, prefix="1000"))).status == 200
        assert post(proc.url + "/b0", jsonl(batch(3, prefix="2000"))).status == 200
        assert post(proc.url + "/a0", jsonl(batch(2, prefix="1001"))).status == 200
        lines = [json.loads(read_line(tap.stdout)) for _ in range(7)]
        tap.send_signal(signal.SIGINT)
        assert tap.wait(timeout=20) == 0
        with pytest.raises(AssertionError):
            read_line(tap.stdout, timeout=0.5)  # nothing of b0 came after
        assert "Traceback" not in tap.stderr.read()
    finally:
        stop(tap)
    expected = [f"1000{i:06d}" for i in range(5)] + [f"1001{i:06d}" for i in range(2)]
    assert [line["event"]["id"] for line in lines] == expected
    assert {line["stage"] for line in lines} == {"accepted"}
    assert all(line["event"]["type"] == "com.auth0.log.s" for line in lines)


def test_a_filter_and_a_sample_choose_what_is_printed(two):
    proc, admin = two
    tap = tap_cli(
        admin, "--connector", "a0", "--filter", "type = 'com.auth0.log.f'", "--sample", "2"
    )
    try:
        body = batch(6, prefix="3000", code="f") + batch(6, prefix="3001", code="s")
        assert post(proc.url + "/a0", jsonl(body)).status == 200
        marker = batch(1, prefix="3002", code="f")
        assert post(proc.url + "/a0", jsonl(marker)).status == 200
        lines = [json.loads(read_line(tap.stdout)) for _ in range(4)]
    finally:
        assert stop(tap) == 0
    # the 1st, 3rd, 5th of the six f records, then the 7th f record: one in two
    ids = [line["event"]["id"] for line in lines]
    assert ids == ["3000000000", "3000000002", "3000000004", "3002000000"]


def test_delivered_and_dead_stages(tmp_path: Path, recording_target: RecordingTarget):
    recording_target.respond = lambda e: 400 if e.attributes["type"] == "com.auth0.log.f" else 200
    port = free_port()
    target = {"type": "http", "config": {"url": recording_target.url, "maxBatch": 1}}
    docs = [connector_doc("a0", "auth0", {}, target), runtime_doc(port)]
    proc = start(tmp_path, docs)
    admin = f"http://127.0.0.1:{port}"
    try:
        tap = tap_cli(admin, "--connector", "a0", "--stage", "delivered", "--stage", "dead")
        shown = tap_cli(admin, "--connector", "a0", "--stage", "dead", "--format", "pretty")
        body = batch(2, prefix="4000", code="s") + batch(1, prefix="4001", code="f")
        assert post(proc.url + "/a0", jsonl(body)).status == 200
        lines = [json.loads(read_line(tap.stdout)) for _ in range(3)]
        pretty = read_line(shown.stdout)
        assert [stop(tap), stop(shown)] == [0, 0]
    finally:
        assert proc.terminate() == 0
    by_stage = {(line["stage"], line["event"]["id"]) for line in lines}
    assert by_stage == {
        ("delivered", "4000000000"),
        ("delivered", "4000000001"),
        ("dead", "4001000000"),
    }
    dead = next(line for line in lines if line["stage"] == "dead")
    assert dead["reason"].startswith("HTTP 400")
    assert pretty.split()[:4] == ["09:26:53", "dead", "com.auth0.log.f", "4001000000"]
    assert "(HTTP 400" in pretty


def stuck_tap(admin: str, connector: str) -> socket.socket:
    """A tap client that asks and then never reads (a tiny receive buffer)."""
    host, port = admin.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.sendall(f"GET /tap?connector={connector} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


def test_a_stuck_tap_client_loses_events_not_ingestion(two):
    proc, admin = two
    sock = stuck_tap(admin, "a0")
    try:
        for _ in range(100):  # attached once the runtime has read the request
            if status(admin)["taps"]["attached"] == 1:
                break
            time.sleep(0.05)
        requests, per_request = 60, 200

        def send(n: int) -> int:
            body = jsonl(batch(per_request, prefix=f"5{n:03d}"))
            return post(proc.url + "/a0", body).status

        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(send, range(requests)))
        assert statuses == [200] * requests
        a0 = next(c for c in status(admin)["connectors"] if c["name"] == "a0")
        metrics = post(admin + "/metrics", method="GET").body.decode()
        page = post(admin + "/", method="GET").body.decode()
    finally:
        sock.close()
    total = requests * per_request
    assert a0["accepted"] == total  # every record of the load was accepted...
    assert f'connector_runtime_records_total{{connector="a0",outcome="accepted"}} {total}.0' in (
        metrics
    )
    assert a0["tap_dropped"] > 0  # ...while the stuck client's copies were dropped
    assert f'<td data-field="tap_dropped">{a0["tap_dropped"]}</td>' in page


def test_bad_requests_get_a_precise_status_and_reason(two):
    proc, admin = two
    cases = {
        "/tap": (400, "missing query parameter 'connector'"),
        "/tap?connector=zz": (404, "no connector named 'zz' (connectors: a0, b0)"),
        "/tap?connector=a0&stage=sent": (
            400,
            "stage 'sent' unknown; use accepted, delivered, dead",
        ),
        "/tap?connector=a0&sample=0": (400, "sample '0' is not a whole number from 1 to 1000000"),
        "/tap?connector=a0&format=xml": (400, "format 'xml' unknown; use ndjson or sse"),
        "/tap?connector=a0&filter=type%20%3D": (
            400,
            "filter 'type =': column 7: unexpected end of expression",
        ),
    }
    for path, (code, reason) in cases.items():
        r = post(admin + path, method="GET")
        assert (r.status, r.json()) == (code, {"error": reason}), path
    # the tap is never on the webhook port
    assert post(proc.url + "/tap?connector=a0", method="GET").status == 404


def test_at_most_max_taps_at_once(two):
    _proc, admin = two
    first = tap_cli(admin, "--connector", "a0")
    second = tap_cli(admin, "--connector", "b0")
    try:
        r = post(admin + "/tap?connector=a0", method="GET")
        assert (r.status, r.json()) == (
            429,
            {"error": "2 taps are attached already, the most at once (spec.admin.maxTaps)"},
        )
        assert status(admin)["taps"] == {"attached": 2, "max": 2}
    finally:
        assert [stop(first), stop(second)] == [0, 0]


def test_the_admin_token_guards_the_tap(tmp_path: Path):
    port = free_port()
    docs = [connector_doc("a0", "auth0", {}, {"type": "stdout"}), runtime_doc(port, token=TOKEN)]
    proc = start(tmp_path, docs)
    admin = f"http://127.0.0.1:{port}"
    try:
        for path in ("/tap?connector=a0", "/status.json", "/"):
            assert post(admin + path, method="GET").status == 401
        # a browser asks for the token as the password of Basic authentication
        basic = base64.b64encode(f"admin:{TOKEN}".encode()).decode()
        assert (
            post(admin + "/", method="GET", headers={"Authorization": f"Basic {basic}"}).status
            == 200
        )
        wrong = base64.b64encode(b"admin:not-the-token").decode()
        r = post(admin + "/", method="GET", headers={"Authorization": f"Basic {wrong}"})
        assert r.status == 401
        denied = subprocess.run(
            [*CLI, "tap", admin, "--connector", "a0"], capture_output=True, text=True, timeout=60
        )
        assert denied.returncode == 3
        assert denied.stderr == (
            f"error: {admin}: missing or wrong admin token (set CONNECTOR_RUNTIME_ADMIN_TOKEN)\n"
        )
        tap = tap_cli(admin, "--connector", "a0", env={"CONNECTOR_RUNTIME_ADMIN_TOKEN": TOKEN})
        assert post(proc.url + "/a0", jsonl(batch(1, prefix="6000"))).status == 200
        assert json.loads(read_line(tap.stdout))["event"]["id"] == "6000000000"
        assert stop(tap) == 0
        assert TOKEN not in proc.log()
    finally:
        assert proc.terminate() == 0


def test_cli_errors_are_one_line_with_an_exit_code(two):
    _proc, admin = two
    port = free_port()
    cases = [
        ([f"http://127.0.0.1:{port}", "--connector", "a0"], 3, "cannot reach the runtime"),
        ([admin, "--connector", "zz"], 1, "no connector named 'zz' (connectors: a0, b0)"),
        ([admin, "--connector", "a0", "--sample", "0"], 2, "--sample 0: must be 1 or more"),
    ]
    for args, code, text in cases:
        r = subprocess.run([*CLI, "tap", *args], capture_output=True, text=True, timeout=60)
        assert r.returncode == code, r.stderr
        assert text in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr


def test_without_an_admin_listener_run_says_the_tap_is_off(tmp_path: Path):
    proc = start(tmp_path, [connector_doc("a0", "auth0", {}, {"type": "stdout"})])
    try:
        assert "the status page and the tap are off (set spec.admin.listen" in proc.log()
        assert post(proc.url + "/tap?connector=a0", method="GET").status == 404
    finally:
        assert proc.terminate() == 0


def test_server_sent_events(two):
    proc, admin = two
    host, port = admin.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(
            b"GET /tap?connector=a0 HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
        )
        got = b""
        while b"event: tap" not in got:
            got += sock.recv(65536)
        assert post(proc.url + "/a0", jsonl(batch(2, prefix="6100"))).status == 200
        while got.count(b"event: accepted") < 2:
            chunk = sock.recv(65536)
            assert chunk, got
            got += chunk
    assert b"content-type: text/event-stream" in got.lower()
    frames = [f for f in got.split(b"\r\n\r\n", 1)[1].decode().split("\n\n") if "data:" in f]
    data = [json.loads(f.split("data: ", 1)[1].split("\n")[0]) for f in frames]
    assert data[0] == {"tap": "a0", "stages": ["accepted"], "worker": 0, "workers": 1}
    assert [d["event"]["id"] for d in data[1:3]] == ["6100000000", "6100000001"]


def test_under_workers_the_tap_is_worker_0s_and_the_status_the_groups(tmp_path: Path):
    port = free_port()
    docs = [connector_doc("a0", "auth0", {}, {"type": "stdout"}), runtime_doc(port)]
    manifest = write_manifest(tmp_path / "m.yaml", docs)
    proc = RuntimeProcess(manifest, tmp_path / "data", args=["--workers", "2"]).start()
    admin = f"http://127.0.0.1:{port}"
    try:
        tap = subprocess.Popen(
            [*CLI, "tap", admin, "--connector", "a0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert "tapping connector a0" in read_line(tap.stderr)
        assert read_line(tap.stderr) == "note: tapping worker 0 of 2 only\n"
        assert stop(tap) == 0
        for n in range(20):  # connections spread over both workers
            assert post(proc.url + "/a0", jsonl(batch(3, prefix=f"62{n:02d}"))).status == 200
        a0 = post(admin + "/status.json", method="GET").json()
        assert a0["workers"] == 2
        assert a0["connectors"][0]["accepted"] == 60  # the group's, as /metrics counts
    finally:
        assert proc.terminate() == 0
