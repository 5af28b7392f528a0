"""Issue 15 part 8: under ``run`` every line on stderr is a JSON object by default, start-up
lines and the error that stops the runtime included; ``--log-level`` takes any case."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from connector_runtime_auth0.testing import batch, jsonl

from connector_runtime.testing import RecordingTarget, connector_doc, free_port, post
from tests.procs import RuntimeProcess, cli, write_manifest

TOKEN = "Bearer logs-token-0123456789abcdef0123456789"


def two_connectors(tmp_path: Path, target: RecordingTarget) -> Path:
    http = {"type": "http", "config": {"url": target.url, "mode": "batch"}}
    return write_manifest(
        tmp_path / "m.yaml",
        [
            connector_doc("guarded", "auth0", {"token": TOKEN}, http),
            connector_doc("open", "auth0", {}, {"type": "stdout"}),
        ],
    )


def records(text: str) -> list[dict[str, Any]]:
    """Every stderr line as JSON; fails on the first line that is not a JSON object."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"line {number} is not JSON: {line!r}") from None
        assert isinstance(record, dict), line
        out.append(record)
    return out


def test_every_stderr_line_is_a_json_object_start_up_included(
    tmp_path: Path, recording_target: RecordingTarget
):
    manifest = two_connectors(tmp_path, recording_target)
    proc = RuntimeProcess(manifest, tmp_path / "data").start()
    try:
        base = proc.url
        assert post(f"{base}/guarded", jsonl(batch(2)), {"Authorization": TOKEN}).status == 200
        assert post(f"{base}/guarded", jsonl(batch(1)), {"Authorization": "wrong"}).status == 401
        recording_target.wait_for(2)
    finally:
        assert proc.terminate() == 0
    lines = records(proc.log())
    assert all({"ts", "level", "logger", "msg"} <= set(x) for x in lines)
    urls = {x["connector"]: x for x in lines if "webhook URL" in x["msg"]}
    assert urls["guarded"]["url"] == f"{base}/guarded"
    assert urls["guarded"]["msg"] == f"connector guarded: auth0 -> http: webhook URL {base}/guarded"
    assert (urls["open"]["source"], urls["open"]["target"]) == ("auth0", "stdout")
    messages = [x["msg"] for x in lines]
    note = next(i for i, m in enumerate(messages) if m.startswith("behind a reverse proxy"))
    assert "the public URL differs" in messages[note] and "https://<public host>/" in messages[note]
    (listening,) = [x for x in lines if x["msg"].startswith("listening on")]
    assert (listening["host"], listening["port"]) == ("127.0.0.1", proc.port)
    assert messages.index(listening["msg"]) > note > messages.index(urls["open"]["msg"])
    (warning,) = [x for x in lines if "no token configured" in x["msg"]]
    assert warning["level"] == "warning" and "connector open" in warning["msg"]
    assert [x["status"] for x in lines if x.get("connector") == "guarded" and "status" in x] == [
        200,
        401,
    ]
    assert TOKEN not in proc.log()


def test_log_level_takes_any_case_and_refuses_unknown_levels(tmp_path: Path):
    manifest = write_manifest(
        tmp_path / "m.yaml", [connector_doc("d1", "auth0", {"token": TOKEN}, {"type": "stdout"})]
    )
    for level in ("debug", "DEBUG", "Warning"):
        proc = RuntimeProcess(
            manifest, tmp_path / f"data-{level}", args=["--log-level", level]
        ).start()
        try:
            assert post(f"{proc.url}/d1", jsonl(batch(1)), {"Authorization": TOKEN}).status == 200
        finally:
            assert proc.terminate() == 0
        lines = records(proc.log())
        if level.lower() == "debug":
            assert any(x["level"] == "debug" for x in lines), lines
        else:  # the start-up lines show at every level; the access lines (INFO) do not
            assert {x["logger"] for x in lines if x["level"] == "info"} == {
                "connector_runtime.startup"
            }, lines
            assert not any("request" in x["msg"] for x in lines), lines
    out = cli("run", str(manifest), "--log-level", "verbose")
    assert out.returncode == 2
    assert "invalid choice: 'verbose'" in out.stderr and "Traceback" not in out.stderr


def test_text_format_stays_readable(tmp_path: Path, recording_target: RecordingTarget):
    manifest = two_connectors(tmp_path, recording_target)
    proc = RuntimeProcess(manifest, tmp_path / "data", args=["--log-format", "text"]).start()
    try:
        log = proc.log()
    finally:
        assert proc.terminate() == 0
    (line,) = [x for x in log.splitlines() if "webhook URL" in x and "guarded" in x]
    assert line.endswith(
        f"INFO connector_runtime.startup: connector guarded: auth0 -> http: webhook URL {proc.url}/guarded"
    )
    assert any(
        x.endswith(f"INFO connector_runtime.startup: listening on 127.0.0.1:{proc.port}")
        for x in log.splitlines()
    )
    assert not any(x.startswith("{") for x in log.splitlines())


def test_the_error_that_stops_run_is_a_json_record(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: connector-runtime/v1\nkind: Connector\nmetadata: {name: x1}\n"
        "spec:\n  source: {type: auth0, config: {format: csv}}\n  target: {type: stdout}\n"
    )
    out = cli("run", str(bad), "--port", str(free_port()), "--data-dir", str(tmp_path / "d"))
    assert out.returncode == 1
    (error,) = records(out.stderr)
    assert error["level"] == "error"
    assert (error["file"], error["connector"], error["key"]) == (
        str(bad),
        "x1",
        "spec.source.config.format",
    )
    assert error["msg"].startswith(f"{bad}: connector x1: spec.source.config.format: 'csv'")
    good = write_manifest(
        tmp_path / "good.yaml", [connector_doc("g1", "auth0", {"token": TOKEN}, {"type": "stdout"})]
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = cli("run", str(good), "--port", str(port), "--data-dir", str(tmp_path / "d"))
    assert out.returncode == 3
    lines = records(out.stderr)
    assert lines[-1]["level"] == "error"
    assert lines[-1]["msg"].startswith(f"cannot listen on 127.0.0.1:{port}")
    # the other commands keep their one-line "error:" answers
    out = cli("validate", str(bad))
    assert out.returncode == 1 and out.stderr.startswith(f"error: {bad}: connector x1:")
