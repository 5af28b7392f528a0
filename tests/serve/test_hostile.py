"""Issue 13: what an attack on the port found, over raw sockets against a real runtime
process: unauthenticated requests cost only their headers, every answer at the framing
layer follows the JSON contract, SIGTERM finishes the requests in flight."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from connector_runtime_auth0.testing import batch, jsonl

from connector_runtime.testing import RecordingTarget, connector_doc, post
from tests.procs import RuntimeProcess, write_manifest

TOKEN = "hostile-test-token-0123456789abcdef"
MiB = 1024 * 1024


def _manifest(tmp_path: Path, target_url: str, **source: object) -> Path:
    doc = connector_doc(
        "a0",
        "auth0",
        {"token": TOKEN, **source},
        {"type": "http", "config": {"url": target_url, "mode": "batch"}},
    )
    return write_manifest(tmp_path / "m.yaml", [doc])


@pytest.fixture
def runtime(tmp_path: Path, recording_target: RecordingTarget) -> Iterator[RuntimeProcess]:
    proc = RuntimeProcess(_manifest(tmp_path, recording_target.url), tmp_path / "data").start()
    try:
        yield proc
    finally:
        proc.stop()


class Answer:
    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines[0].startswith("HTTP/") else 0
        self.headers = {
            k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:] if x)
        }

    def json(self) -> dict:
        return json.loads(self.body)


def read_answer(sock: socket.socket, timeout: float = 10) -> Answer:
    """Read one answer (headers and a Content-Length body); what came before an error or
    end-of-file."""
    sock.settimeout(timeout)
    raw = b""
    try:
        while b"\r\n\r\n" not in raw:
            data = sock.recv(65536)
            if not data:
                break
            raw += data
        answer = Answer(raw)
        length = int(answer.headers.get("content-length", "0"))
        while len(answer.body) < length:
            data = sock.recv(65536)
            if not data:
                break
            answer.body += data
    except (ConnectionResetError, TimeoutError):
        answer = Answer(raw)
    return answer


def exchange(port: int, data: bytes, timeout: float = 10) -> Answer:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_answer(sock, timeout)


def assert_json_error(answer: Answer, status: int) -> str:
    assert answer.status == status, answer.body
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers.get("x-request-id")
    error = answer.json()["error"]
    assert isinstance(error, str) and "\n" not in error
    return error


def rss_mib(proc: RuntimeProcess) -> float:
    return proc.rss_kib() / 1024


def chunked_head(path: str = "/a0", auth: str | None = None) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: x", "Transfer-Encoding: chunked"]
    lines += ["Content-Type: application/json"]
    if auth:
        lines.append(f"Authorization: {auth}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


# -- 1. an unauthenticated request costs at most its headers -----------------------------


def _flood_one(port: int, size: int, statuses: list[int]) -> None:
    """One unauthenticated chunked body of ``size`` bytes; records the status read back."""
    piece = chunk(b"x" * MiB)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(chunked_head())
            for _ in range(size // MiB):
                sock.sendall(piece)
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and stopped reading: the answer is waiting
        statuses.append(read_answer(sock, 30).status)


@pytest.mark.slow
def test_unauthenticated_chunked_flood_leaves_memory_at_baseline(
    runtime: RuntimeProcess, recording_target: RecordingTarget
):
    auth = {"Authorization": TOKEN}
    assert post(runtime.url + "/a0", jsonl(batch(100, "9001")), auth).status == 200
    baseline = rss_mib(runtime)
    statuses: list[int] = []
    flood = [
        threading.Thread(target=_flood_one, args=(runtime.port, 15 * MiB, statuses))
        for _ in range(300)  # 10x the 30 x 15 MiB that took RSS from 44 to 520 MB
    ]
    for t in flood:
        t.start()
    peak = baseline
    authorised: list[int] = []
    n = 0
    while any(t.is_alive() for t in flood):
        peak = max(peak, rss_mib(runtime))
        n += 1
        r = post(runtime.url + "/a0", jsonl(batch(10, f"9002{n:04d}")), auth, timeout=30)
        authorised.append(r.status)
    for t in flood:
        t.join()
    time.sleep(1)
    after = rss_mib(runtime)
    assert statuses == [401] * 300  # every client read its answer, none saw a reset only
    assert authorised and set(authorised) == {200}
    assert peak - baseline < 50, (baseline, peak)
    assert after - baseline < 50, (baseline, after)
    found = [m for m in post(runtime.url + "/metrics", method="GET").body.decode().splitlines()]
    assert 'connector_runtime_auth_failures_total{connector="a0"} 300.0' in found


def test_unauthenticated_requests_reserve_no_bytes_in_flight(tmp_path: Path, recording_target):
    manifest = _manifest(tmp_path, recording_target.url)
    proc = RuntimeProcess(manifest, tmp_path / "data").start()
    stalled = []
    try:
        for _ in range(8):  # 8 x 15 MiB declared: more than the 64 MiB budget
            sock = socket.create_connection(("127.0.0.1", proc.port))
            sock.sendall(
                b"POST /a0 HTTP/1.1\r\nHost: x\r\nContent-Length: 15728640\r\n\r\n" + b"x" * 1000
            )
            stalled.append(sock)
        for sock in stalled:
            assert_json_error(read_answer(sock), 401)
        r = post(proc.url + "/a0", jsonl(batch(5)), {"Authorization": TOKEN})
        assert r.status == 200, r.body
    finally:
        for sock in stalled:
            sock.close()
        proc.stop()


def test_chunked_bytes_count_against_the_in_flight_budget(tmp_path: Path, recording_target):
    doc = connector_doc(
        "a0",
        "auth0",
        {"token": TOKEN},
        {"type": "http", "config": {"url": recording_target.url}},
    )
    doc["spec"]["limits"] = {"maxBytesInFlight": MiB}
    proc = RuntimeProcess(write_manifest(tmp_path / "m.yaml", [doc]), tmp_path / "data").start()
    first = socket.create_connection(("127.0.0.1", proc.port))
    second = socket.create_connection(("127.0.0.1", proc.port))
    try:
        first.sendall(chunked_head(auth=TOKEN) + chunk(b" " * (700 * 1024)))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            metrics = post(proc.url + "/metrics", method="GET").body.decode()
            if 'connector_runtime_in_flight_bytes{connector="a0"} 716800.0' in metrics:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the first body's bytes were not counted in flight")
        second.sendall(chunked_head(auth=TOKEN) + chunk(b" " * (700 * 1024)))
        error = assert_json_error(read_answer(second), 503)
        assert error == "too many bytes in flight"
        first.sendall(chunk(jsonl(batch(3))) + b"0\r\n\r\n")
        assert read_answer(first).status == 200
    finally:
        first.close()
        second.close()
        proc.stop()


# -- 4. answers at the framing layer follow the contract -----------------------------------


def test_body_over_the_servers_hard_limit_is_413_json(runtime: RuntimeProcess):
    head = b"POST /a0 HTTP/1.1\r\nHost: x\r\nContent-Length: 209715200\r\n\r\n"
    with socket.create_connection(("127.0.0.1", runtime.port)) as sock:
        sock.sendall(head)
        try:
            for _ in range(8):
                sock.sendall(b"x" * MiB)
        except OSError:
            pass
        answer = read_answer(sock)
    assert assert_json_error(answer, 413).startswith("body larger than")
    assert answer.headers["connection"] == "close"


def test_headers_over_the_limit_are_431_json(runtime: RuntimeProcess):
    big = b"X-Pad: " + b"a" * (80 * 1024) + b"\r\n"
    answer = exchange(runtime.port, b"POST /a0 HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n")
    assert "headers larger than" in assert_json_error(answer, 431)


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: -5\r\n",
        b"Content-Length: abc\r\n",
        b"Content-Length: 5\r\nContent-Length: 6\r\n",
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        b"no colon in this header line\r\n",
    ],
)
def test_broken_framing_gets_a_json_400(runtime: RuntimeProcess, framing: bytes):
    answer = exchange(runtime.port, b"POST /a0 HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\nhello")
    assert_json_error(answer, 400)
    assert answer.headers["connection"] == "close"


def test_unknown_transfer_coding_is_501_json(runtime: RuntimeProcess):
    answer = exchange(
        runtime.port, b"POST /a0 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"
    )
    assert_json_error(answer, 501)


def test_chunked_body_over_max_body_bytes_is_413_while_it_streams(tmp_path: Path, recording_target):
    proc = RuntimeProcess(
        _manifest(tmp_path, recording_target.url, maxBodyBytes=65536), tmp_path / "data"
    ).start()
    try:
        with socket.create_connection(("127.0.0.1", proc.port)) as sock:
            sock.sendall(chunked_head(auth=TOKEN))
            try:
                for _ in range(64):
                    sock.sendall(chunk(b"x" * 65536))
            except OSError:
                pass
            error = assert_json_error(read_answer(sock), 413)
        assert error == "body larger than 65536 bytes"
    finally:
        proc.stop()


# -- 8. the smaller findings ---------------------------------------------------------------


def test_absolute_form_request_target_reaches_the_connector(runtime: RuntimeProcess):
    body = jsonl(batch(2, "9003"))
    answer = exchange(
        runtime.port,
        b"POST http://example.com/a0 HTTP/1.1\r\nHost: example.com\r\nAuthorization: "
        + TOKEN.encode()
        + f"\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body,
    )
    assert answer.status == 200 and answer.json()["accepted"] == 2


def test_a_utf8_bom_before_the_body_is_skipped(runtime: RuntimeProcess):
    r = post(
        runtime.url + "/a0", b"\xef\xbb\xbf" + jsonl(batch(3, "9004")), {"Authorization": TOKEN}
    )
    assert r.status == 200 and r.json()["accepted"] == 3


def test_415_does_not_echo_an_odd_content_type(runtime: RuntimeProcess):
    odd = "application/" + "x" * 300
    r = post(runtime.url + "/a0", b"{}", {"Authorization": TOKEN, "Content-Type": odd})
    assert r.status == 415 and r.json() == {"error": "unsupported Content-Type"}
    assert "x" * 300 not in runtime.log()
    r = post(runtime.url + "/a0", b"{}", {"Authorization": TOKEN, "Content-Type": "image/png"})
    assert r.json() == {"error": "unsupported Content-Type 'image/png'"}


def test_runtime_endpoints_answer_in_json_with_a_request_id(runtime: RuntimeProcess):
    answer = exchange(
        runtime.port, b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    )
    assert "not allowed" in assert_json_error(answer, 405)
    answer = exchange(runtime.port, b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
    assert assert_json_error(answer, 404) == "no connector at /nowhere"


# -- 5. SIGTERM finishes the requests whose headers arrived --------------------------------


@pytest.mark.slow
def test_sigterm_finishes_every_request_in_flight(
    runtime: RuntimeProcess, recording_target: RecordingTarget
):
    bodies = [jsonl(batch(10, f"9005{i:03d}")) for i in range(24)]
    socks = []
    for body in bodies:
        sock = socket.create_connection(("127.0.0.1", runtime.port))
        sock.sendall(
            f"POST /a0 HTTP/1.1\r\nHost: x\r\nAuthorization: {TOKEN}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[: len(body) // 2]
        )
        socks.append(sock)
    idle = socket.create_connection(("127.0.0.1", runtime.port))
    idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_answer(idle).status == 200
    time.sleep(0.3)  # every request's headers are in
    assert runtime.proc is not None
    runtime.proc.terminate()
    deadline = time.monotonic() + 10
    while "stopping" not in runtime.log() and time.monotonic() < deadline:
        time.sleep(0.02)
    body = jsonl(batch(1, "9006"))
    idle.sendall(
        f"POST /a0 HTTP/1.1\r\nHost: x\r\nAuthorization: {TOKEN}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    late = read_answer(idle)
    for sock, body in zip(socks, bodies, strict=True):
        sock.sendall(body[len(body) // 2 :])
    statuses = [read_answer(sock).status for sock in socks]
    for sock in [*socks, idle]:
        sock.close()
    assert statuses == [200] * 24
    assert assert_json_error(late, 503) == "shutting down"
    assert runtime.proc.wait(30) == 0
    # What was acknowledged is delivered: now, or by the next start on the same spool.
    runtime.start()
    expected = {f"9005{i:03d}{j:06d}" for i in range(24) for j in range(10)}
    assert recording_target.wait_for_ids(expected) == set()
