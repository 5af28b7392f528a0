"""The command line: run, validate, plugins, schema — exit codes and what users see."""

from __future__ import annotations

import json
from pathlib import Path

from connector_runtime_auth0.testing import batch, jsonl

from connector_runtime.plugins import build_registry
from connector_runtime.testing import RecordingTarget, connector_doc, post
from tests.procs import RuntimeProcess, cli, write_manifest

ROOT = Path(__file__).resolve().parents[2]


def tenant_manifest(tmp_path: Path, target: RecordingTarget) -> Path:
    """A manifest of one auth0 connector, ``tenant-a``, with no token, into ``target``."""
    return write_manifest(
        tmp_path / "m.yaml",
        [connector_doc("tenant-a", "auth0", {}, {"type": "http", "config": {"url": target.url}})],
    )


def test_run_prints_the_webhook_url_and_warns_without_a_token(
    tmp_path: Path, recording_target: RecordingTarget
):
    manifest = tenant_manifest(tmp_path, recording_target)
    proc = RuntimeProcess(manifest, tmp_path / "data").start()
    try:
        log = proc.log()
        assert f"webhook URL http://127.0.0.1:{proc.port}/tenant-a" in log
        assert "no token configured: anyone who can reach the port can post" in log
        assert post(proc.url + "/tenant-a", jsonl(batch(3))).status == 200
        assert len(recording_target.wait_for(3)) == 3
    finally:
        assert proc.terminate() == 0


def test_make_run_manifest_serves_to_stdout_without_any_environment(tmp_path: Path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from connector_runtime.testing import free_port, wait_healthy

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("AUTH0_STREAM_TOKEN", "HOST")}
    env["PORT"] = str(port)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "connector_runtime.cli",
            "run",
            str(ROOT / "manifests/auth0.yaml"),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}")
        r = post(f"http://127.0.0.1:{port}/auth0", jsonl(batch(2)))
        assert r.status == 200
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    lines = [json.loads(x) for x in out.splitlines()]
    assert [e["id"] for e in lines] == ["9002025000000", "9002025000001"]
    assert all(e["specversion"] == "1.0" and e["type"] == "com.auth0.log.s" for e in lines)
    assert f"webhook URL http://127.0.0.1:{port}/auth0" in err
    assert "anyone who can reach the port can post" in err


def test_validate_reports_every_problem_on_one_line_without_traceback(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: connector-runtime/v1\nkind: Connector\nmetadata: {name: x1}\n"
        "spec:\n  source: {type: auth0, config: {events: [sx], format: csv}}\n"
        "  target: {type: htp}\n"
    )
    out = cli("validate", str(bad))
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert any("spec.source.config.format" in x and "'csv'" in x for x in lines)
    assert any("spec.target.type: unknown target type 'htp' (installed:" in x for x in lines)
    assert all(x.startswith(f"error: {bad}: connector x1: ") for x in lines)


def test_validate_on_missing_file_and_garbage(tmp_path: Path):
    out = cli("validate", str(tmp_path / "nope.yaml"))
    assert out.returncode == 1 and "cannot read" in out.stderr
    garbage = tmp_path / "g.yaml"
    garbage.write_bytes(b"\xff\xfe\x00binary")
    out = cli("validate", str(garbage))
    assert out.returncode == 1 and "Traceback" not in out.stderr


def test_validate_warns_about_received_and_never_prints_secrets(tmp_path: Path):
    manifest = write_manifest(
        tmp_path / "m.yaml",
        [
            connector_doc(
                "r1",
                "auth0",
                {"token": "super-secret-value-42"},
                {
                    "type": "http",
                    "config": {
                        "url": "http://127.0.0.1:9",
                        "headers": {"Authorization": "Bearer target-secret-99"},
                    },
                },
                delivery={"ack": "received"},
            )
        ],
    )
    out = cli("validate", str(manifest))
    assert out.returncode == 0
    assert "crashes" in out.stderr and "'received'" in out.stderr
    assert "super-secret-value-42" not in out.stdout + out.stderr
    assert "target-secret-99" not in out.stdout + out.stderr


def test_unusable_port_is_exit_3_with_one_line(tmp_path: Path):
    import socket

    manifest = write_manifest(
        tmp_path / "m.yaml",
        [connector_doc("p1", "auth0", {}, {"type": "stdout"})],
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out = cli("run", str(manifest), "--port", str(port), "--data-dir", str(tmp_path / "d"))
    assert out.returncode == 3
    assert "cannot listen on 127.0.0.1" in out.stderr
    assert "Traceback" not in out.stderr


def test_plugins_lists_types_and_versions():
    out = cli("plugins", "--json")
    assert out.returncode == 0
    data = json.loads(out.stdout)
    by_name = {p["name"]: p for p in data["plugins"]}
    assert by_name["auth0"]["sourceTypes"] == [
        "auth0",
        "auth0-logs",
        "auth0-events",
        "auth0-events-pull",
    ]
    assert by_name["auth0"]["version"] == "0.1.0"
    targets = {t for p in data["plugins"] for t in p["targetTypes"]}
    assert {"http", "stdout", "file"} <= targets
    text = cli("plugins").stdout
    assert "auth0 0.1.0: source auth0" in text


def test_a_broken_plugin_is_listed_with_its_reason_and_others_work(throwaway_plugin):
    throwaway_plugin("cr_broken_import", "raise RuntimeError('kaput on import')\n")
    throwaway_plugin(
        "cr_bad_hook",
        "from connector_runtime import hookimpl\n"
        "@hookimpl\ndef register_sauce_types(register):\n    pass\n",
    )
    registry = build_registry()
    reasons = {b.name: b.reason for b in registry.broken}
    assert "kaput on import" in reasons["cr_broken_import"]
    assert "register_sauce_types" in reasons["cr_bad_hook"]
    assert "auth0" in registry.source_types
    out = cli("plugins")
    assert out.returncode == 0
    assert "cr_broken_import BROKEN: import failed: RuntimeError: kaput on import" in out.stdout
    assert "auth0 0.1.0: source auth0" in out.stdout


def test_a_plugin_can_add_a_target_type(throwaway_plugin, tmp_path: Path):
    throwaway_plugin(
        "cr_null_target",
        "from connector_runtime import hookimpl, TargetType, SendResult\n"
        "class Null:\n    max_batch = 10\n"
        "    async def start(self): pass\n"
        "    async def send(self, events): return SendResult()\n"
        "    async def close(self): pass\n"
        "@hookimpl\ndef register_target_types(register):\n"
        "    register(TargetType('null', {'type': 'object'}, lambda config, ctx: Null()))\n",
    )
    manifest = write_manifest(
        tmp_path / "m.yaml", [connector_doc("n1", "auth0", {}, {"type": "null"})]
    )
    out = cli("validate", str(manifest))
    assert out.returncode == 0, out.stderr
    assert "auth0 -> null" in out.stdout


def test_schema_prints_type_and_manifest_schemas():
    out = cli("schema", "auth0")
    assert out.returncode == 0
    schema = json.loads(out.stdout)
    assert schema["properties"]["token"]["x-secret"] is True
    assert json.loads(cli("schema", "manifest").stdout)["title"].startswith("connector-runtime")
    assert "binary" in json.loads(cli("schema", "http").stdout)["properties"]["mode"]["enum"]
    bad = cli("schema", "nosuch")
    assert bad.returncode == 1 and "known:" in bad.stderr


def test_usage_errors_exit_2():
    assert cli("frobnicate").returncode == 2
    assert cli("run").returncode == 2


def test_a_second_runtime_on_a_data_dir_in_use_exits_with_one_line(
    tmp_path: Path, recording_target: RecordingTarget
):
    manifest = tenant_manifest(tmp_path, recording_target)
    first = RuntimeProcess(manifest, tmp_path / "data").start()
    try:
        second = cli("run", str(manifest), "--port", "0", "--data-dir", str(tmp_path / "data"))
        assert second.returncode != 0
        assert "is in use by another process" in second.stderr
        assert "Traceback" not in second.stderr
        assert post(first.url + "/tenant-a", jsonl(batch(2))).status == 200  # still serving
    finally:
        assert first.terminate() == 0
