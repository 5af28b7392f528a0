"""The status page at ``/`` on the admin listener (issue 19, part 3), loaded in headless
Chromium (Debian's ``chromium``; .ci/run installs it); its numbers are checked against
``/metrics``, and a screenshot is written with the test output (``build/test-output/``)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from connector_runtime_auth0.testing import batch, jsonl

from connector_runtime.testing import RecordingTarget, connector_doc, free_port, post
from tests.procs import RuntimeProcess, write_manifest

OUTPUT = Path(__file__).resolve().parents[2] / "build" / "test-output"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Cells(HTMLParser):
    """``{connector: {field: text}}`` of the page's table, and the text of elements by id."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self.ids: dict[str, str] = {}
        self._row: str | None = None
        self._field: str | None = None
        self._id: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("data-connector"):
            self._row = a["data-connector"]
            self.rows[self._row] = {}
        elif tag == "td" and a.get("data-field"):
            self._field = a["data-field"]
        elif a.get("id"):
            self._id = a["id"]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "span"):
            self._field = self._id = None

    def handle_data(self, data: str) -> None:
        if self._row is not None and self._field is not None:
            self.rows[self._row][self._field] = data
        elif self._id is not None:
            self.ids[self._id] = self.ids.get(self._id, "") + data


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    return subprocess.run(
        [CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120, check=True
    )


def metric(text: str, name: str, **labels: str) -> int:
    """The value of one sample of a /metrics text, whatever the order of its labels."""
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return int(float(line.rsplit(" ", 1)[1]))
    raise AssertionError(f"no {name} {labels} in /metrics")


@pytest.fixture
def runtime(tmp_path: Path, recording_target: RecordingTarget) -> Any:
    recording_target.respond = lambda e: 400 if e.attributes["type"] == "com.auth0.log.f" else 200
    port = free_port()
    http = {"type": "http", "config": {"url": recording_target.url, "maxBatch": 1}}
    admin = {"listen": {"host": "127.0.0.1", "port": port}}
    docs = [
        connector_doc("auth0-logins", "auth0", {}, {"type": "stdout"}),
        connector_doc("auth0-to-siem", "auth0", {}, http),
        {"apiVersion": "connector-runtime/v1", "kind": "Runtime", "spec": {"admin": admin}},
    ]
    proc = RuntimeProcess(write_manifest(tmp_path / "m.yaml", docs), tmp_path / "data").start()
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        assert proc.terminate() == 0


def settle(admin: str) -> str:
    """/metrics once nothing waits in a spool any more (bounded by a number of looks)."""
    for _ in range(200):
        text = post(admin + "/metrics", method="GET").body.decode()
        depths = re.findall(r"^connector_runtime_spool_depth_events\{.*\} (\S+)$", text, re.M)
        if depths and all(float(d) == 0 for d in depths):
            return text
        time.sleep(0.05)
    raise AssertionError("the spools did not drain")


def test_status_json_counts_as_metrics_and_shows_errors_with_times(runtime):
    proc, admin = runtime
    assert post(proc.url + "/auth0-to-siem", jsonl(batch(4, prefix="7001", code="f"))).status == 200
    settle(admin)
    status = post(admin + "/status.json", method="GET").json()
    siem = next(c for c in status["connectors"] if c["name"] == "auth0-to-siem")
    assert (siem["source"], siem["target"], siem["ack"]) == ("auth0", "http", "durable")
    assert (siem["accepted"], siem["delivered"], siem["dead_letters"]) == (4, 0, 4)
    assert siem["errors"], "the dead-letter warnings are listed"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", siem["errors"][0]["time"])
    assert "dead-lettered: HTTP 400" in siem["errors"][0]["message"]
    assert status["ready"] is True and status["version"]
    page = post(admin + "/", method="GET")
    assert page.status == 200 and {k.lower(): v for k, v in page.headers.items()}[
        "content-type"
    ].startswith("text/html")
    assert b'<meta http-equiv="refresh"' in page.body  # works without JavaScript


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_the_page_in_chromium_shows_the_numbers_of_metrics(runtime):
    proc, admin = runtime
    assert post(proc.url + "/auth0-logins", jsonl(batch(7, prefix="7100"))).status == 200
    assert post(proc.url + "/auth0-logins", jsonl(batch(5, prefix="7101"))).status == 200
    mixed = batch(3, prefix="7200") + batch(2, prefix="7201", code="f")
    assert post(proc.url + "/auth0-to-siem", jsonl(mixed)).status == 200
    settle(admin)
    # --virtual-time-budget lets the page's script refresh the numbers in place
    dom = chromium("--virtual-time-budget=3000", "--dump-dom", admin + "/").stdout
    metrics = post(admin + "/metrics", method="GET").body.decode()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    shot = OUTPUT / "status-page.png"
    shot.unlink(missing_ok=True)
    chromium(f"--screenshot={shot}", "--window-size=1920,330", admin + "/")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cells = Cells()
    cells.feed(dom)
    assert cells.ids["updated"] == "live"  # the script refreshed the page from status.json
    assert set(cells.rows) == {"auth0-logins", "auth0-to-siem"}
    for name, row in cells.rows.items():
        assert int(row["accepted"]) == metric(
            metrics, "connector_runtime_records_total", connector=name, outcome="accepted"
        )
        assert int(row["delivered"]) == metric(
            metrics, "connector_runtime_events_total", connector=name, outcome="delivered"
        )
        assert int(row["dead_letters"]) == metric(
            metrics, "connector_runtime_dead_letters", connector=name
        )
        assert int(row["depth"]) == metric(
            metrics, "connector_runtime_spool_depth_events", connector=name
        )
        assert int(row["retries"]) == metric(
            metrics, "connector_runtime_delivery_retries_total", connector=name
        )
    assert cells.rows["auth0-logins"]["accepted"] == "12"
    assert (
        cells.rows["auth0-to-siem"]["delivered"],
        cells.rows["auth0-to-siem"]["dead_letters"],
    ) == (
        "3",
        "2",
    )
