"""Stream health where an operator looks (issues 16 item 4 and 19): the watched Auth0 log
stream on the status page, in ``/status.json`` and in ``top``, from a real ``run`` process;
and under ``--workers 2`` one watcher for the group (worker 0), its gauge and warning seen
through whichever worker a scrape reaches."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from connector_runtime_auth0.fake_tenant import FakeLogStream, FakeTenant

from connector_runtime.cli.top import frame
from connector_runtime.testing import LoopThread, connector_doc, free_port, post
from tests.procs import RuntimeProcess, write_manifest

STATUS = "connector_runtime_auth0_log_stream_status"


@pytest.fixture
def tenant(cr_loop: LoopThread) -> Iterator[FakeTenant]:
    t = FakeTenant(cr_loop, rate=50, burst=50).start()
    yield t
    t.stop()


def docs(tenant: FakeTenant, stream: FakeLogStream, admin_port: int | None) -> list[Any]:
    api = {"domain": tenant.url, "clientId": tenant.client_id, "clientSecret": tenant.client_secret}
    config = {"managementApi": api, "watchStream": stream.id, "watchInterval": "1s"}
    out: list[Any] = [
        connector_doc("hook", "auth0", config, {"type": "stdout"}),
        connector_doc("plain", "auth0", {}, {"type": "stdout"}),
    ]
    if admin_port is not None:
        admin = {"listen": {"host": "127.0.0.1", "port": admin_port}}
        out.append(
            {"apiVersion": "connector-runtime/v1", "kind": "Runtime", "spec": {"admin": admin}}
        )
    return out


def until(check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("not seen in time")


def gauge(url: str, status: str) -> float | None:
    for line in post(url + "/metrics", method="GET").body.decode().splitlines():
        if line.startswith(STATUS + "{") and f'status="{status}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def test_the_status_page_json_and_top_show_the_watched_stream(tenant: FakeTenant, tmp_path: Path):
    stream = tenant.add_log_stream("https://runtime.example.org/hook")
    stream.set_status("suspended", "auth0")
    port = free_port()
    manifest = write_manifest(tmp_path / "m.yaml", docs(tenant, stream, port))
    proc = RuntimeProcess(manifest, tmp_path / "data").start()
    admin = f"http://127.0.0.1:{port}"
    try:
        until(lambda: gauge(admin, "suspended") == 1.0)
        status = post(admin + "/status.json", method="GET").json()
        hook, plain = status["connectors"]
        state = f"Auth0 log stream {stream.id}: suspended"
        warning = f"connector hook: log stream {stream.id} is suspended"
        assert hook["watch"] == [{"name": "auth0-log-stream", "state": state}]
        assert (hook["warnings"], hook["reasons"]) == ([warning], [])
        assert (plain["watch"], plain["warnings"]) == ([], [])
        assert status["ready"] is True and status["warnings"] == [warning]
        page = post(admin + "/", method="GET").body.decode()
        assert f"<li>warning: {warning}</li>" in page
        assert f"<li>watching {state}</li>" in page
        text = frame(status, None, 1.0)
        assert f"  hook: warning: {warning}" in text and f"  hook: watching {state}" in text

        stream.set_status("active", "api")
        until(lambda: gauge(admin, "active") == 1.0)
        hook = post(admin + "/status.json", method="GET").json()["connectors"][0]
        active = f"Auth0 log stream {stream.id}: active"
        assert (hook["watch"][0]["state"], hook["warnings"]) == (active, [])
        assert f"<li>watching {active}</li>" in post(admin + "/", method="GET").body.decode()
    finally:
        assert proc.terminate() == 0
    assert f"log stream {stream.id} is suspended" in proc.log()
    assert tenant.client_secret not in proc.log()


def test_under_workers_one_watcher_answers_for_the_group(tenant: FakeTenant, tmp_path: Path):
    stream = tenant.add_log_stream("https://runtime.example.org/hook")
    manifest = write_manifest(tmp_path / "m.yaml", docs(tenant, stream, None))
    proc = RuntimeProcess(manifest, tmp_path / "data", args=["--workers", "2"]).start()
    try:
        until(lambda: post(proc.url + "/readyz", method="GET").status == 200)
        until(lambda: gauge(proc.url, "active") == 1.0)
        stream.set_status("suspended", "auth0")
        until(lambda: gauge(proc.url, "suspended") == 1.0)
        warning = f"worker 0: connector hook: log stream {stream.id} is suspended"
        for _ in range(12):  # a new connection each: the kernel spreads them over the workers
            assert gauge(proc.url, "suspended") == 1.0  # one watcher: the sum over workers is 1
            ready = post(proc.url + "/readyz", method="GET")
            assert ready.status == 200
            assert ready.json() == {"ready": True, "reasons": [], "warnings": [warning]}
    finally:
        assert proc.terminate() == 0
    assert proc.log().count(f"log stream {stream.id} is active") == 1
