"""Issue 3, dedupe: a log id accepted once is not emitted again, across restarts and for
the window (two generations), and ``maxEntries: 0`` turns it off."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from connector_runtime_auth0.testing import batch, jsonl

from connector_runtime.testing import RecordingTarget, RunningRuntime, post
from tests.connectors import doc

Factory = Callable[..., RunningRuntime]


def test_redelivery_after_a_restart_emits_nothing_new(
    runtime_factory: Factory, recording_target: RecordingTarget, tmp_path: Path
):
    data = tmp_path / "spool"
    first = runtime_factory([doc(recording_target)], data_dir=data)
    body = jsonl(batch(25, prefix="again-"))
    assert post(first.connector_url("a0"), body).json()["accepted"] == 25
    recording_target.wait_for(25)
    first.stop()
    second = runtime_factory([doc(recording_target)], data_dir=data)
    r = post(second.connector_url("a0"), body)
    assert r.json() == {"accepted": 0, "filtered": 0, "duplicates": 25}
    time.sleep(0.3)
    assert len(recording_target.events) == 25


def test_an_id_is_remembered_for_the_window_and_forgotten_two_rotations_later(
    runtime_factory: Factory, recording_target: RecordingTarget
):
    rt = runtime_factory([doc(recording_target, dedupe={"window": "2s"})])
    body = jsonl(batch(3, prefix="win-"))
    url = rt.connector_url("a0")
    assert post(url, body).json()["accepted"] == 3
    started = time.monotonic()
    assert post(url, body).json()["duplicates"] == 3
    answer = {}
    while time.monotonic() - started < 12:
        time.sleep(0.5)
        answer = post(url, body).json()
        if answer["accepted"]:
            break
    # Forgotten after at least the window, at most twice it plus the checks' granularity.
    assert answer == {"accepted": 3, "filtered": 0, "duplicates": 0}
    assert 2 <= time.monotonic() - started < 8
    assert len(recording_target.wait_for(6)) == 6


def test_dedupe_max_entries_0_turns_dedupe_off(
    runtime_factory: Factory, recording_target: RecordingTarget
):
    rt = runtime_factory([doc(recording_target, dedupe={"maxEntries": 0})])
    body = jsonl(batch(3, prefix="nodedupe-"))
    assert post(rt.connector_url("a0"), body).json()["accepted"] == 3
    assert post(rt.connector_url("a0"), body).json() == {
        "accepted": 3,
        "filtered": 0,
        "duplicates": 0,
    }
    assert len(recording_target.wait_for(6)) == 6
