"""Stream health (issue 16 item 4): ``watchStream`` on an ``auth0`` or ``auth0-logs``
connector, against the fake tenant's log streams over real sockets: the status gauges,
/readyz warnings that leave the runtime ready, a log line per change, ``resumeSuspended``
(never for a paused stream), and 401/403/404/429 without a tight loop."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from connector_runtime import ManifestError, build_registry, load_manifest
from connector_runtime.testing import (
    LoopThread,
    RunningRuntime,
    connector_doc,
    post,
    write_manifest,
)

from connector_runtime_auth0.fake_tenant import FakeLogStream, FakeTenant

STATUS = "connector_runtime_auth0_log_stream_status"


@pytest.fixture
def tenant(cr_loop: LoopThread) -> Iterator[FakeTenant]:
    t = FakeTenant(cr_loop, rate=50, burst=50).start()
    yield t
    t.stop()


@pytest.fixture
def stream(tenant: FakeTenant) -> FakeLogStream:
    return tenant.add_log_stream("https://runtime.example.org/hook", "Bearer stream-token-0123")


def credentials(tenant: FakeTenant) -> dict[str, str]:
    return {
        "domain": tenant.url,
        "clientId": tenant.client_id,
        "clientSecret": tenant.client_secret,
    }


def hook_doc(tenant: FakeTenant, stream_id: str, **config: Any) -> dict[str, Any]:
    cfg = {
        "managementApi": {**credentials(tenant), "requestTimeout": "2s"},
        "watchStream": stream_id,
        "watchInterval": "1s",
        **config,
    }
    return connector_doc("hook", "auth0", cfg, {"type": "stdout"})


def logs_doc(tenant: FakeTenant, stream_id: str, **config: Any) -> dict[str, Any]:
    cfg = {
        **credentials(tenant),
        "pollInterval": "1s",
        "watchStream": stream_id,
        "watchInterval": "1s",
        **config,
    }
    return connector_doc("logs", "auth0-logs", cfg, {"type": "stdout"})


def readyz(rt: RunningRuntime) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(rt.url + "/readyz", timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def metrics(rt: RunningRuntime) -> str:
    return post(rt.url + "/metrics", method="GET").body.decode()


def status_lines(rt: RunningRuntime) -> list[str]:
    return [ln for ln in metrics(rt).splitlines() if ln.startswith(STATUS + "{")]


def gauges(connector: str, stream: str, now: str) -> list[str]:
    """The four status lines exactly as /metrics writes them when ``now`` is seen."""
    return [
        f'{STATUS}{{connector="{connector}",status="{s}",stream="{stream}"}} '
        f"{1.0 if s == now else 0.0}"
        for s in ("active", "paused", "suspended", "unknown")
    ]


def sample(name: str, **labels: str) -> str:
    """``connector_runtime_<name>{labels}`` as /metrics writes it (labels sorted)."""
    pairs = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"connector_runtime_{name}{{{pairs}}}"


def errors(kind: str, stream: str) -> str:
    return sample("auth0_log_stream_check_errors_total", connector="hook", kind=kind, stream=stream)


def metric(rt: RunningRuntime, line_start: str) -> float:
    found = [ln for ln in metrics(rt).splitlines() if ln.startswith(line_start)]
    return float(found[0].rsplit(" ", 1)[1]) if found else 0.0


def wait_until(check: Callable[[], bool], timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def seen(rt: RunningRuntime, connector: str, stream: str, now: str) -> bool:
    return wait_until(lambda: status_lines(rt) == gauges(connector, stream, now))


def warned(rt: RunningRuntime) -> list[str]:
    """The /readyz warnings once there are some (a fresh watcher is unknown before its
    first check, without a warning)."""
    assert wait_until(lambda: "warnings" in readyz(rt)[1])
    status, body = readyz(rt)
    assert status == 200 and body["ready"] is True
    return body["warnings"]


def messages(caplog: pytest.LogCaptureFixture, connector: str) -> list[str]:
    name = f"connector_runtime.{connector}"
    return [
        r.getMessage() for r in caplog.records if r.name == name and "log stream" in r.getMessage()
    ]


def test_a_webhook_connector_watches_its_stream_without_leaving_rotation(
    tenant: FakeTenant, stream: FakeLogStream, runtime_factory, caplog
):
    caplog.set_level(logging.INFO, logger="connector_runtime")
    rt = runtime_factory([hook_doc(tenant, stream.id)])
    assert seen(rt, "hook", stream.id, "active")
    assert readyz(rt) == (200, {"ready": True, "reasons": []})

    stream.set_status("suspended", "auth0")  # what Auth0 does after failed deliveries
    assert seen(rt, "hook", stream.id, "suspended")
    warning = f"connector hook: log stream {stream.id} is suspended"
    assert readyz(rt) == (200, {"ready": True, "reasons": [], "warnings": [warning]})
    assert "connector_runtime_ready 1.0" in metrics(rt)
    assert metric(rt, "connector_runtime_auth0_log_stream_resumes_total") == 0
    time.sleep(2.2)  # more checks see the same status: no more log lines, no resume
    assert stream.status == "suspended" and [s for _, s, _ in stream.history] == ["suspended"]

    stream.set_status("active", "api")  # a person resumed it in the dashboard
    assert seen(rt, "hook", stream.id, "active")
    assert readyz(rt) == (200, {"ready": True, "reasons": []})
    assert messages(caplog, "hook") == [
        f"log stream {stream.id} is active",
        f"log stream {stream.id} is suspended (was active)",
        f"log stream {stream.id} is active (was suspended)",
    ]


def test_resume_suspended_sets_it_active_again_logs_and_counts_it(
    tenant: FakeTenant, stream: FakeLogStream, runtime_factory, caplog
):
    caplog.set_level(logging.INFO, logger="connector_runtime")
    rt = runtime_factory([logs_doc(tenant, stream.id, resumeSuspended=True)])
    assert seen(rt, "logs", stream.id, "active")
    stream.set_status("suspended", "auth0")
    assert wait_until(lambda: stream.status == "active")
    assert [(s, by) for _, s, by in stream.history] == [("suspended", "auth0"), ("active", "api")]
    resumes = (
        f'connector_runtime_auth0_log_stream_resumes_total{{connector="logs",stream="{stream.id}"}}'
    )
    assert wait_until(lambda: metric(rt, resumes) == 1)
    assert seen(rt, "logs", stream.id, "active")
    assert readyz(rt)[1].get("warnings") is None
    assert f"log stream {stream.id} was suspended by Auth0; set it active again" in " ".join(
        messages(caplog, "logs")
    )


def test_a_paused_stream_is_never_resumed(
    tenant: FakeTenant, stream: FakeLogStream, runtime_factory, caplog
):
    caplog.set_level(logging.INFO, logger="connector_runtime")
    stream.set_status("paused", "api")  # a person paused it
    rt = runtime_factory([hook_doc(tenant, stream.id, resumeSuspended=True)])
    assert seen(rt, "hook", stream.id, "paused")
    time.sleep(2.5)  # a few more checks
    assert stream.status == "paused" and [s for _, s, _ in stream.history] == ["paused"]
    warning = f"connector hook: log stream {stream.id} is paused"
    assert readyz(rt) == (200, {"ready": True, "reasons": [], "warnings": [warning]})
    [line] = messages(caplog, "hook")
    assert line.startswith(f"log stream {stream.id} is paused: Auth0 sends nothing")


def test_a_missing_scope_is_unknown_names_the_scope_and_backs_off(
    tenant: FakeTenant, stream: FakeLogStream, runtime_factory, caplog
):
    caplog.set_level(logging.INFO, logger="connector_runtime")
    tenant.scopes = ("read:logs",)
    rt = runtime_factory([hook_doc(tenant, stream.id)])
    [warning] = warned(rt)
    assert status_lines(rt) == gauges("hook", stream.id, "unknown")
    assert warning.startswith(f"connector hook: log stream {stream.id}: status unknown:")
    assert (
        "answered 403 (insufficient_scope): the application lacks the scope read:log_streams"
        in warning
    )
    time.sleep(4.5)  # checks at 0, 1, 3 s: the wait doubles after each failure
    assert 2 <= metric(rt, errors("scope", stream.id)) <= 3
    assert len(messages(caplog, "hook")) == 1  # the same reason is logged once

    tenant.scopes = ("read:logs", "read:log_streams")  # the grant is fixed
    assert seen(rt, "hook", stream.id, "active")
    assert "warnings" not in readyz(rt)[1]


def test_resuming_without_update_scope_says_so_and_keeps_it_suspended(
    tenant: FakeTenant, stream: FakeLogStream, runtime_factory
):
    tenant.scopes = ("read:log_streams",)
    stream.set_status("suspended", "auth0")
    rt = runtime_factory([hook_doc(tenant, stream.id, resumeSuspended=True)])
    assert seen(rt, "hook", stream.id, "suspended")
    assert warned(rt) == [
        f"connector hook: log stream {stream.id} is suspended; resuming it failed:"
        f" PATCH /api/v2/log-streams/{stream.id} answered 403 (insufficient_scope):"
        " the application lacks the scope update:log_streams"
    ]
    assert stream.status == "suspended"


def test_refused_credentials_and_expired_tokens(
    tenant: FakeTenant, stream: FakeLogStream, runtime_factory
):
    rt = runtime_factory([hook_doc(tenant, stream.id)])
    assert seen(rt, "hook", stream.id, "active")
    assert tenant.token_requests == 1

    tenant.expire_tokens()  # 401 on the next check: a new token and the check at once
    auth = errors("auth", stream.id)
    assert wait_until(lambda: metric(rt, auth) == 1)
    assert wait_until(lambda: tenant.token_requests == 2)
    time.sleep(1.5)  # the next check, with the new token
    assert status_lines(rt) == gauges("hook", stream.id, "active")  # never unknown
    assert metric(rt, auth) == 1 and tenant.token_requests == 2

    tenant.revoke()  # the secret is rotated: no token at all
    assert wait_until(lambda: "unknown" in " ".join(readyz(rt)[1].get("warnings", [])))
    assert status_lines(rt) == gauges("hook", stream.id, "unknown")
    [warning] = warned(rt)
    assert "Auth0 refused the client credentials of client fake-client-id (HTTP 401" in warning
    assert tenant.client_secret not in metrics(rt) + warning
    tenant.restore()
    assert seen(rt, "hook", stream.id, "active")


def test_an_unknown_stream_id(tenant: FakeTenant, runtime_factory):
    rt = runtime_factory([hook_doc(tenant, "lst_0000000000009999")])
    assert warned(rt) == [
        "connector hook: log stream lst_0000000000009999: status unknown: Auth0 has no log"
        " stream lst_0000000000009999 (HTTP 404): check watchStream"
    ]


def test_429_waits_for_the_reset_and_keeps_the_status(
    tenant: FakeTenant, stream: FakeLogStream, runtime_factory
):
    tenant.rate, tenant.burst = 0.5, 1  # one request per 2 s: checks every 1 s hit 429
    rt = runtime_factory([hook_doc(tenant, stream.id)])
    assert seen(rt, "hook", stream.id, "active")
    limited = errors("rate_limited", stream.id)
    assert wait_until(lambda: metric(rt, limited) >= 1)
    stream.set_status("suspended", "auth0")
    assert seen(rt, "hook", stream.id, "suspended")  # checks go on after the reset
    assert all("unknown" not in w for w in warned(rt))


def test_watch_config_errors_name_the_file_connector_and_key(tmp_path: Path):
    registry = build_registry()
    secret = "managementapi-secret-9f8e7d6c5b4a"
    api = {"domain": "t.example", "clientId": "c", "clientSecret": secret}
    config = "spec.source.config."
    cases = [
        ({"watchStream": "lst_1"}, "watchStream", "needs Management API credentials"),
        ({"resumeSuspended": True}, "resumeSuspended", "has no stream to watch"),
        (
            {"watchStream": "lst_1", "watchInterval": "500ms", "managementApi": api},
            "watchInterval",
            "must be at least 1s",
        ),
        ({"managementApi": api}, "managementApi", "is used only to watch a stream"),
        ({"watchStream": "../admin", "managementApi": api}, "watchStream", "does not match"),
        (
            {"watchStream": "lst_1", "managementApi": {**api, "clientSecret": 7}},
            "managementApi",
            "is not of type",
        ),
    ]
    for cfg, key, message in cases:
        doc = connector_doc("hook", "auth0", cfg, {"type": "stdout"})
        manifest = write_manifest([doc], tmp_path)
        with pytest.raises(ManifestError) as caught:
            load_manifest([manifest], registry, env={})
        text = str(caught.value)
        assert str(manifest) in text and "hook" in text and config + key in text, text
        assert message in text, text
        assert secret not in text
    own = {**api, "watchStream": "lst_1", "resumeSuspended": True}
    ok = write_manifest([connector_doc("logs", "auth0-logs", own, {"type": "stdout"})], tmp_path)
    load_manifest([ok], registry, env={})  # auth0-logs watches with its own credentials
