"""Pull sources (``SourceType.pull``): checkpoints committed with events, restarts with
backoff, readiness and metrics, and the ack policies that refuse them. A throwaway plugin
counts upwards; real runtimes, real spools, a recording target over loopback HTTP."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from connector_runtime import ManifestError, build_registry, load_manifest
from connector_runtime.testing import (
    RecordingTarget,
    RunningRuntime,
    connector_doc,
    write_manifest,
)
from tests import procs

COUNTER = (
    Path(__file__).parents[2] / "docs" / "examples" / "pull_plugin" / "counter.py"
).read_text()


def http_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def metrics(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        return resp.read().decode()


@pytest.fixture
def counter(throwaway_plugin):
    throwaway_plugin("cr_pull_counter", COUNTER)
    import cr_pull_counter

    cr_pull_counter.STARTS.clear()
    return cr_pull_counter


def test_pull_commits_events_with_the_checkpoint_and_resumes_after_it(
    counter,
    runtime_factory: Callable[..., RunningRuntime],
    recording_target: RecordingTarget,
    tmp_path: Path,
):
    registry = build_registry()
    target = {"type": "http", "config": {"url": recording_target.url}}
    doc = connector_doc("count", "counter", {"total": 250, "batch": 40}, target)
    data = tmp_path / "data"
    first = runtime_factory([doc], registry=registry, data_dir=data)
    recording_target.wait_for(250)
    assert sorted(recording_target.ids) == sorted(f"c-{i}" for i in range(250))
    text = metrics(first.url)
    assert 'connector_runtime_pull_state{connector="count",state="running"} 1.0' in text
    first.stop()
    assert counter.STARTS == [None]

    # a restart on the same spool starts from the last committed checkpoint: nothing again
    doc = connector_doc("count", "counter", {"total": 300, "batch": 40}, target)
    runtime_factory([doc], registry=registry, data_dir=data)
    recording_target.wait_for(300)
    assert counter.STARTS == [None, "250"]
    assert sorted(recording_target.ids) == sorted(f"c-{i}" for i in range(300))


def test_a_failing_pull_task_is_restarted_from_its_checkpoint(
    counter,
    runtime_factory: Callable[..., RunningRuntime],
    recording_target: RecordingTarget,
):
    registry = build_registry()
    target = {"type": "http", "config": {"url": recording_target.url}}
    doc = connector_doc("count", "counter", {"total": 100, "batch": 30, "failAt": 60}, target)
    running = runtime_factory([doc], registry=registry)
    recording_target.wait_for(100)
    assert counter.STARTS == [None, "60"]
    assert sorted(recording_target.ids) == sorted(f"c-{i}" for i in range(100))
    text = metrics(running.url)
    assert 'connector_runtime_pull_restarts_total{connector="count"} 1.0' in text
    assert 'connector_runtime_pull_errors_total{connector="count",kind="unavailable"} 1.0' in text
    status, body = http_json(running.url + "/readyz")
    assert (status, body["reasons"]) == (200, [])  # ok() cleared the problem


def test_readyz_reports_a_pull_source_problem(
    throwaway_plugin,
    runtime_factory: Callable[..., RunningRuntime],
    recording_target: RecordingTarget,
):
    throwaway_plugin(
        "cr_pull_stuck",
        COUNTER.replace('"counter"', '"stuck"').replace(
            "    n = int(ctx.checkpoint or 0)",
            '    ctx.status.problem("auth", "credentials refused (HTTP 401)")\n'
            "    await asyncio.Event().wait()\n    n = 0",
        ),
    )
    registry = build_registry()
    target = {"type": "http", "config": {"url": recording_target.url}}
    running = runtime_factory(
        [connector_doc("stuck", "stuck", {"total": 1, "batch": 1}, target)], registry=registry
    )
    for _ in range(200):  # the task runs on its own: wait until it reported
        status, body = http_json(running.url + "/readyz")
        if status == 503:
            break
        time.sleep(0.05)
    assert status == 503
    assert body["reasons"] == ["connector stuck: credentials refused (HTTP 401)"]


@pytest.mark.parametrize(
    ("delivery", "message"),
    [
        ({"ack": "received"}, "spec.delivery.ack: source type 'counter' pulls with a checkpoint"),
        ({"ack": "delivered"}, "only ack: durable commits with its events (not 'delivered')"),
    ],
)
def test_validate_refuses_ack_policies_without_a_checkpoint(
    counter, tmp_path: Path, delivery, message
):
    doc = connector_doc(
        "count", "counter", {"total": 1, "batch": 1}, {"type": "stdout"}, delivery=delivery
    )
    with pytest.raises(ManifestError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_manifest([write_manifest([doc], tmp_path)], build_registry(), env={})


LEAKY = """
from connector_runtime import SourceType, hookimpl

SCHEMA = {
    "type": "object",
    "properties": {"url": {"type": "string"}, "clientSecret": {"type": "string", "x-secret": True}},
}


async def pull(ctx):
    secret, token = ctx.config["clientSecret"], "eyJhbGciOiJIUzI1NiJ9.runtime-token"
    ctx.status.problem("auth", f"credentials refused: {secret}")
    raise ConnectionError(
        f"POST {ctx.config['url']}?client_secret={secret} refused secret {secret}"
        f" (sent Authorization: Bearer {token})"
    )


@hookimpl
def register_source_types(register):
    register(SourceType(name="leaky", config_schema=SCHEMA, routes=lambda ctx: [], pull=pull))
"""


def test_a_failing_pull_task_is_logged_usefully_and_without_secrets(
    throwaway_plugin, tmp_path: Path
):
    """The restart line names the exception's type, its text and where it was raised; the
    traceback comes at debug level; neither shows the configured secret nor a token."""
    throwaway_plugin("cr_pull_leaky", LEAKY)
    secret = "client-s3cret-value-0123"
    config = {"url": "https://tenant.example/oauth/token", "clientSecret": secret}
    doc = connector_doc("leaky", "leaky", config, {"type": "stdout"})
    manifest = procs.write_manifest(tmp_path / "m.yaml", [doc])
    proc = procs.RuntimeProcess(manifest, tmp_path / "data", args=["--log-level", "debug"])
    proc.start()
    try:
        for _ in range(200):  # the task fails at once; wait for its first restart line
            if "pull source failed" in proc.log():
                break
            time.sleep(0.05)
        status, body = http_json(proc.url + "/readyz")
    finally:
        proc.terminate()
    log = proc.log()
    assert secret not in log and "runtime-token" not in log
    assert (status, body["reasons"]) == (503, ["connector leaky: credentials refused: <redacted>"])
    lines = [json.loads(line) for line in log.splitlines()]
    at = next(n for n, text in enumerate(LEAKY.splitlines(), 1) if "raise Connection" in text)
    failed = next(x for x in lines if x["msg"].startswith("pull source failed"))
    assert failed["level"] == "error"
    assert (failed["connector"], failed["error_type"]) == ("leaky", "ConnectionError")
    assert failed["msg"] == (
        "pull source failed (ConnectionError: POST https://tenant.example/oauth/token"
        "?client_secret=***<redacted> refused secret <redacted> (sent Authorization: Bearer ***),"
        f" raised at cr_pull_leaky.py:{at} in pull); restarting in 1s"
    )
    traceback = next(x for x in lines if x["msg"].startswith("pull source failure, traceback"))
    assert traceback["level"] == "debug"
    assert "Traceback (most recent call last)" in traceback["msg"]
    assert f'cr_pull_leaky.py", line {at}, in pull' in traceback["msg"]
