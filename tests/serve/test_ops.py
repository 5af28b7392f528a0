"""Issue 4: metrics, health, logs, TLS, time limits, malloc tuning — through real servers.
(Trace context, source IPs, bytes in flight and the token check: tests/sources/.)"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from connector_runtime_auth0.testing import batch, jsonl, record

from connector_runtime.testing import (
    RecordingTarget,
    RunningRuntime,
    closed_within,
    connector_doc,
    free_port,
    post,
)
from tests.procs import RuntimeProcess, write_manifest
from tests.scrape import samples, value

TOKEN = "ops-stream-token-1"
Factory = Callable[..., RunningRuntime]


def test_metrics_count_requests_records_and_deliveries(
    runtime_factory: Factory, recording_target: RecordingTarget
):
    doc = connector_doc(
        "m1",
        "auth0",
        {"token": TOKEN, "events": ["s"]},
        {"type": "http", "config": {"url": recording_target.url, "mode": "batch"}},
    )
    rt = runtime_factory([doc])
    url = rt.connector_url("m1")
    auth = {"Authorization": TOKEN}
    records = [record("a", "s"), record("b", "s"), record("c", "f"), record("a", "s")]
    assert post(url, jsonl(records), auth).status == 200
    assert post(url, jsonl(batch(1)), {"Authorization": "wrong-token"}).status == 401
    assert post(url, b"{not json", auth).status == 400
    recording_target.wait_for(2)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = samples(rt.url)
        if (
            value(
                found,
                "connector_runtime_events_total",
                connector="m1",
                target="http",
                outcome="delivered",
            )
            == 2
        ):
            break
        time.sleep(0.05)
    assert value(found, "connector_runtime_requests_total", connector="m1", status="200") == 1
    assert value(found, "connector_runtime_requests_total", connector="m1", status="401") == 1
    assert value(found, "connector_runtime_requests_total", connector="m1", status="400") == 1
    rec = {
        o: value(found, "connector_runtime_records_total", connector="m1", outcome=o)
        for o in ("accepted", "filtered", "duplicate", "refused")
    }
    assert rec == {"accepted": 2, "filtered": 1, "duplicate": 1, "refused": 0}
    assert value(found, "connector_runtime_records_received_total", connector="m1") == 4
    assert value(found, "connector_runtime_invalid_bodies_total", connector="m1") == 1
    assert value(found, "connector_runtime_auth_failures_total", connector="m1") == 1
    assert value(found, "connector_runtime_spool_depth_events", connector="m1") == 0
    assert value(found, "connector_runtime_request_duration_seconds_count", connector="m1") == 3
    assert (
        value(
            found, "connector_runtime_delivery_latency_seconds_count", connector="m1", target="http"
        )
        >= 1
    )
    assert value(found, "connector_runtime_ready") == 1
    text = post(rt.url + "/metrics", method="GET").body.decode()
    assert TOKEN not in text


def test_spool_depth_and_age_show_a_backlog(
    runtime_factory: Factory, recording_target: RecordingTarget
):
    recording_target.status = 503
    doc = connector_doc(
        "m2", "auth0", {}, {"type": "http", "config": {"url": recording_target.url}}
    )
    rt = runtime_factory([doc])
    assert post(rt.connector_url("m2"), jsonl(batch(7))).status == 200
    time.sleep(0.2)
    found = samples(rt.url)
    assert value(found, "connector_runtime_spool_depth_events", connector="m2") == 7
    assert value(found, "connector_runtime_spool_oldest_age_seconds", connector="m2") > 0.1
    assert (
        value(found, "connector_runtime_delivery_retries_total", connector="m2", target="http") >= 7
    )


def test_healthz_and_readyz_say_why(runtime_factory: Factory, recording_target):
    doc = connector_doc(
        "h1", "auth0", {}, {"type": "http", "config": {"url": recording_target.url}}
    )
    rt = runtime_factory([doc])
    assert post(rt.url + "/healthz", method="GET").json() == {"status": "ok"}
    assert post(rt.url + "/readyz", method="GET").json() == {"ready": True, "reasons": []}


def _manifest(tmp_path: Path, target_url: str, runtime_spec: dict | None = None) -> Path:
    docs = [
        connector_doc(
            "o1", "auth0", {"token": TOKEN}, {"type": "http", "config": {"url": target_url}}
        )
    ]
    if runtime_spec:
        docs.append({"apiVersion": "connector-runtime/v1", "kind": "Runtime", "spec": runtime_spec})
    return write_manifest(tmp_path / "m.yaml", docs)


def test_logs_are_json_lines_without_secrets_or_personal_data(
    recording_target: RecordingTarget, tmp_path: Path
):
    proc = RuntimeProcess(_manifest(tmp_path, recording_target.url), tmp_path / "data").start()
    try:
        rec = record("log-1", user_id="auth0|private-user")
        assert (
            post(
                proc.url + "/o1", jsonl([rec]), {"Authorization": TOKEN, "X-Request-Id": "req-42"}
            ).status
            == 200
        )
        assert post(proc.url + "/o1", b"x", {"Authorization": "nope-nope"}).status == 401
        recording_target.wait_for(1)
    finally:
        assert proc.terminate() == 0
    lines = [json.loads(x) for x in proc.log().splitlines() if x.startswith("{")]
    requests = [x for x in lines if x.get("request_id")]
    ok = next(x for x in requests if x["request_id"] == "req-42")
    assert ok["connector"] == "o1" and ok["status"] == 200 and ok["accepted"] == 1
    assert ok["level"] == "info"
    denied = next(x for x in requests if x["status"] == 401)
    assert denied["reason"] == "missing or wrong Authorization token"
    everything = proc.log()
    assert TOKEN not in everything
    assert "private-user" not in everything and "ada@example.org" not in everything


def _make_cert(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={name}",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _peer_cn(port: int, ca: Path) -> str:
    context = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        subject = dict(x[0] for x in tls.getpeercert()["subject"])
        return str(subject["commonName"])


@pytest.mark.skipif(
    subprocess.run(["which", "openssl"], capture_output=True).returncode,
    reason="openssl not installed: apt-get install openssl",
)
def test_tls_serves_https_and_reloads_the_certificate_on_sighup(
    recording_target: RecordingTarget, tmp_path: Path
):
    first_cert, first_key = _make_cert(tmp_path, "first")
    second_cert, second_key = _make_cert(tmp_path, "second")
    live_cert, live_key = tmp_path / "live.pem", tmp_path / "live.key"
    live_cert.write_bytes(first_cert.read_bytes())
    live_key.write_bytes(first_key.read_bytes())
    manifest = _manifest(
        tmp_path,
        recording_target.url,
        {"tls": {"certFile": str(live_cert), "keyFile": str(live_key)}},
    )
    proc = RuntimeProcess(manifest, tmp_path / "data").start()
    try:
        assert f"webhook URL https://127.0.0.1:{proc.port}/o1" in proc.log()
        assert _peer_cn(proc.port, first_cert) == "first"
        context = ssl.create_default_context(cafile=str(first_cert))
        import http.client

        conn = http.client.HTTPSConnection("127.0.0.1", proc.port, context=context)
        conn.request(
            "POST",
            "/o1",
            body=jsonl(batch(2)),
            headers={"Authorization": TOKEN, "Content-Type": "application/json"},
        )
        assert conn.getresponse().status == 200
        conn.close()
        live_cert.write_bytes(second_cert.read_bytes())
        live_key.write_bytes(second_key.read_bytes())
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while "TLS certificate reloaded" not in proc.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _peer_cn(proc.port, second_cert) == "second"
        assert len(recording_target.wait_for(2)) == 2
    finally:
        assert proc.terminate() == 0


def test_idle_and_slow_connections_time_out(recording_target: RecordingTarget, tmp_path: Path):
    manifest = _manifest(
        tmp_path,
        recording_target.url,
        {"limits": {"idleTimeout": "1s", "bodyTimeout": "1s", "maxHeaderBytes": 2048}},
    )
    proc = RuntimeProcess(manifest, tmp_path / "data").start()
    try:
        # Slow-loris: a request head that never ends is dropped after the idle timeout.
        with socket.create_connection(("127.0.0.1", proc.port)) as loris:
            loris.sendall(b"POST /o1 HTTP/1.1\r\nHost: x\r\n")
            assert closed_within(loris, 5) < 4
        # A body that stops arriving is dropped after the body timeout.
        with socket.create_connection(("127.0.0.1", proc.port)) as slow:
            slow.sendall(b"POST /o1 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            assert closed_within(slow, 5) < 4
        # An oversized request head is refused, and nothing reaches the target.
        with socket.create_connection(("127.0.0.1", proc.port)) as big:
            big.sendall(b"POST /o1 HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 4000 + b"\r\n\r\n")
            assert closed_within(big, 5) < 4
        assert recording_target.events == []
        # The server still serves well-behaved clients.
        assert post(proc.url + "/o1", jsonl(batch(1)), {"Authorization": TOKEN}).status == 200
    finally:
        assert proc.terminate() == 0


def test_concurrent_requests_share_spool_commits(
    runtime_factory: Factory, recording_target: RecordingTarget
):
    doc = connector_doc(
        "g1",
        "auth0",
        {},
        {"type": "http", "config": {"url": recording_target.url, "mode": "batch"}},
    )
    rt = runtime_factory([doc])
    statuses: list[int] = []

    def send(n: int) -> None:
        for i in range(10):
            statuses.append(post(rt.connector_url("g1"), jsonl(batch(5, f"g{n}-{i}-"))).status)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 80
    assert rt.runtime.spool is not None
    assert rt.runtime.spool.commits < 80 + 40  # appends were grouped (acks share commits too)
    assert len(recording_target.wait_for(400)) == 400


def test_free_port_helper_gives_a_bindable_port():
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_malloc_is_tuned_on_glibc_unless_the_environment_says_otherwise(monkeypatch):
    import platform

    from connector_runtime.serve.process import tune_malloc

    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    assert tune_malloc() is False
    for name in [k for k in os.environ if k.startswith("MALLOC_") or k == "GLIBC_TUNABLES"]:
        monkeypatch.delenv(name)
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt thresholds are a glibc feature")
    assert tune_malloc() is True
