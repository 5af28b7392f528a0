"""The admin listener (``spec.admin`` of the Runtime document): /metrics, /healthz and
/readyz there and not on the webhook port, behind an optional token (issue 15, part 5)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from connector_runtime_auth0.testing import batch, jsonl

from connector_runtime.testing import connector_doc, free_port, post
from tests.procs import RuntimeProcess, cli, write_manifest

TOKEN = "an-admin-token-0123456789"
OPS = ("/metrics", "/healthz", "/readyz")
README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def runtime_doc(admin: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "connector-runtime/v1", "kind": "Runtime", "spec": {"admin": admin}}


def start(tmp_path: Path, admin: dict[str, Any] | None) -> RuntimeProcess:
    docs = [connector_doc("a0", "auth0", {}, {"type": "stdout"})]
    if admin is not None:
        docs.append(runtime_doc(admin))
    manifest = write_manifest(tmp_path / "m.yaml", docs)
    return RuntimeProcess(manifest, tmp_path / "data").start()


@pytest.fixture
def admin_port() -> int:
    return free_port()


def test_the_ops_endpoints_move_to_the_admin_listener(tmp_path: Path, admin_port: int):
    proc = start(tmp_path, {"listen": {"host": "127.0.0.1", "port": admin_port}})
    admin = f"http://127.0.0.1:{admin_port}"
    try:
        assert post(proc.url + "/a0", jsonl(batch(3))).status == 200
        for path in OPS:
            r = post(proc.url + path, method="GET")
            assert (r.status, r.json()) == (404, {"error": f"no connector at {path}"})
            assert post(admin + path, method="GET").status == 200
        assert post(admin + "/healthz", method="GET").json() == {"status": "ok"}
        assert post(admin + "/readyz", method="GET").json() == {"ready": True, "reasons": []}
        text = post(admin + "/metrics", method="GET").body.decode()
        assert 'connector_runtime_records_total{connector="a0",outcome="accepted"} 3.0' in text
        assert post(admin + "/a0", jsonl(batch(1))).status == 404  # no connectors there
        assert post(admin + "/metrics", b"", method="POST").status == 405
        assert f"admin listener on http://127.0.0.1:{admin_port}" in proc.log()
    finally:
        assert proc.terminate() == 0


def test_without_an_admin_listener_the_webhook_port_serves_them_and_run_says_so(
    tmp_path: Path,
):
    proc = start(tmp_path, None)
    try:
        for path in OPS:
            assert post(proc.url + path, method="GET").status == 200
        assert "no admin listener: /metrics, /healthz and /readyz are on the webhook port" in (
            proc.log()
        )
    finally:
        proc.stop()


def test_the_admin_token_guards_every_admin_path(tmp_path: Path, admin_port: int):
    proc = start(tmp_path, {"listen": {"host": "127.0.0.1", "port": admin_port}, "token": TOKEN})
    admin = f"http://127.0.0.1:{admin_port}"
    try:
        for path in (*OPS, "/", "/anything"):
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
                r = post(admin + path, method="GET", headers=headers)
                assert r.status == 401, (path, headers)
                assert r.json() == {"error": "missing or wrong admin token"}
                assert r.headers["www-authenticate"].startswith("Bearer")
        good = {"Authorization": f"Bearer {TOKEN}"}
        for path in OPS:
            assert post(admin + path, method="GET", headers=good).status == 200
        assert post(admin + "/anything", method="GET", headers=good).status == 404
        assert "each request needs the admin token" in proc.log()
        assert TOKEN not in proc.log()
    finally:
        proc.stop()


def test_validate_refuses_an_admin_listener_on_the_webhook_port_and_hides_the_token(
    tmp_path: Path,
):
    clash = runtime_doc({"listen": {"port": 8080}})
    clash["spec"]["listen"] = {"host": "0.0.0.0", "port": 8080}
    docs = [connector_doc("a0", "auth0", {}, {"type": "stdout"}), clash]
    out = cli("validate", str(write_manifest(tmp_path / "clash.yaml", docs)))
    assert out.returncode == 1
    assert "spec.admin.listen.port: 8080 is the webhook port" in out.stderr
    short = "short-secret"
    docs[1] = runtime_doc({"listen": {"port": 9090}, "token": short})
    out = cli("validate", str(write_manifest(tmp_path / "short.yaml", docs)))
    assert out.returncode == 1 and "spec.admin.token" in out.stderr
    assert short not in out.stderr


def test_the_readme_proxies_only_connector_paths_and_scrapes_the_admin_listener():
    nginx = README.split("```nginx", 1)[1].split("```", 1)[0]
    locations = re.findall(r"location\s+([^{]*)\{([^}]*)\}", nginx)
    proxied = [where.strip() for where, body in locations if "proxy_pass" in body]
    assert proxied and all(where.startswith(("=", "~")) for where in proxied), proxied
    for path in OPS:
        for where in proxied:
            pattern = where.lstrip("=~ ").strip()
            assert not re.match(pattern if where.startswith("~") else re.escape(pattern), path)
    assert re.search(r"location\s+/\s*\{\s*return 404;", nginx)
    assert "admin:" in README and "scrape_configs" in README
