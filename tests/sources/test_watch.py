"""Watchers (``SourceType.watchers``): background tasks of a connector that report a state,
``/readyz`` warnings that leave the runtime ready, gauges and counters of their own; restarted
with backoff when they raise, cancelled when the runtime stops. The example plugin of the
guide (``docs/examples/watch_plugin/flag.py``) runs as a throwaway plugin in real runtimes."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from connector_runtime import build_registry
from connector_runtime.testing import RunningRuntime, connector_doc

FLAG = (Path(__file__).parents[2] / "docs" / "examples" / "watch_plugin" / "flag.py").read_text()


def readyz(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def lines(url: str, prefix: str) -> list[str]:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return [ln for ln in text.splitlines() if ln.startswith(prefix)]


def until(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    assert check()


@pytest.fixture
def flagged(throwaway_plugin):
    throwaway_plugin("cr_watch_flag", FLAG)


def test_a_watcher_warns_without_making_the_runtime_not_ready(
    flagged, runtime_factory: Callable[..., RunningRuntime], tmp_path: Path
):
    flag = tmp_path / "flag"
    flag.write_text("ok")
    doc = connector_doc("door", "flagged", {"path": str(flag)}, {"type": "stdout"})
    rt = runtime_factory([doc], registry=build_registry())
    ok = 'connector_runtime_flag_ok{connector="door",flag="flag"}'
    until(lambda: lines(rt.url, ok) == [ok + " 1.0"])
    assert readyz(rt.url) == (200, {"ready": True, "reasons": []})
    [connector] = rt.runtime.connectors
    assert connector.stats.watch.states == {"flag": "flag flag: ok"}

    flag.write_text("down")
    until(lambda: lines(rt.url, ok) == [ok + " 0.0"])
    assert readyz(rt.url) == (
        200,
        {"ready": True, "reasons": [], "warnings": ["connector door: the flag says down"]},
    )
    assert lines(rt.url, "connector_runtime_ready ") == ["connector_runtime_ready 1.0"]
    [checks] = lines(rt.url, "connector_runtime_flag_checks_total{")
    assert checks.startswith('connector_runtime_flag_checks_total{connector="door",flag="flag"} ')
    assert float(checks.rsplit(" ", 1)[1]) >= 2

    flag.write_text("ok")
    until(lambda: "warnings" not in readyz(rt.url)[1])


def test_a_failing_watcher_is_restarted_and_stops_with_the_runtime(
    flagged, runtime_factory: Callable[..., RunningRuntime], tmp_path: Path, caplog
):
    flag = tmp_path / "flag"
    flag.write_text("crash")  # the first run raises (and writes ok), the second reports
    doc = connector_doc("door", "flagged", {"path": str(flag)}, {"type": "stdout"})
    rt = runtime_factory([doc], registry=build_registry())
    restarts = 'connector_runtime_watch_restarts_total{connector="door",watch="flag"}'
    until(lambda: lines(rt.url, restarts) == [restarts + " 1.0"])
    ok = 'connector_runtime_flag_ok{connector="door",flag="flag"}'
    until(lambda: lines(rt.url, ok) == [ok + " 1.0"])  # after the 1 s backoff
    assert re.search(
        r"watcher flag failed \(RuntimeError: the flag said crash, raised at cr_watch_flag\.py:"
        r"\d+ in watch_flag\); restarting in 1s",
        caplog.text,
    )
    [connector] = rt.runtime.connectors
    rt.stop()
    before = dict(connector.stats.watch.families["connector_runtime_flag_checks"].samples)
    time.sleep(0.3)  # it ran every 0.1 s: cancelled, it reads no more
    assert connector.stats.watch.families["connector_runtime_flag_checks"].samples == before


def test_a_source_type_without_watchers_reports_nothing(runtime_factory, tmp_path: Path):
    doc = connector_doc("plain", "auth0", {}, {"type": "stdout"})
    rt = runtime_factory([doc])
    assert rt.runtime.connectors[0].watchers == []
    assert lines(rt.url, "connector_runtime_watch_restarts_total") == []
