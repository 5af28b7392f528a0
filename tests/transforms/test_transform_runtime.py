"""Issue 18: ``spec.transforms`` through a real runtime: where they run, what they cost
when unused (nothing: the data passes byte for byte), and an untouched event kept as is."""

from __future__ import annotations

from collections.abc import Callable

from connector_runtime_auth0.testing import as_lines, data_text, sample_batch

from connector_runtime.testing import RecordingTarget, RunningRuntime, connector_doc, post
from tests.scrape import samples, value

Factory = Callable[..., RunningRuntime]
KEY = "runtime-test-key-0123456789"
# odd but valid JSON text: spacing, escapes, a float and an integer past 2**53
ODD = b'{ "type" : "s", "log_id":"odd1", "n": 9007199254740993, "f": 1.10, "t":"\\u00e9"}'


def start(factory: Factory, target: RecordingTarget, transforms=None, ack="delivered"):
    doc = connector_doc(
        "t1",
        "auth0",
        {},
        {"type": "http", "config": {"url": target.url, "mode": "structured"}},
        delivery={"ack": ack},
        transforms=transforms,
    )
    return factory([doc])


def body() -> bytes:
    return as_lines([*sample_batch(), ("odd1", "s", ODD)])


def test_without_transforms_nothing_runs_and_data_passes_byte_for_byte(
    runtime_factory: Factory, recording_target: RecordingTarget
):
    running = start(runtime_factory, recording_target, ack="durable")
    assert running.runtime.connectors[0].pipeline.transform is None  # no per-event work
    assert post(running.connector_url("t1"), body()).status == 200
    recording_target.wait_for(7)
    for log_id, _, data in [*sample_batch(), ("odd1", "s", ODD)]:
        [got] = [e for e in recording_target.events if e.id == log_id]
        assert got.body.endswith(b',"data":' + data + b"}")


def test_an_event_no_transform_changes_is_passed_on_as_it_arrived(
    runtime_factory: Factory, recording_target: RecordingTarget
):
    untouched = [{"hash": {"paths": ["data.not_there", "data.details.nope[*]"], "key": KEY}}]
    running = start(runtime_factory, recording_target, untouched)
    assert running.runtime.connectors[0].pipeline.transform is not None
    assert post(running.connector_url("t1"), body()).json()["accepted"] == 7
    assert all(
        e.body.endswith(b',"data":' + ODD + b"}") for e in recording_target.events if e.id == "odd1"
    )


def test_transforms_run_after_filters_before_dedupe_and_count_errors(
    runtime_factory: Factory, recording_target: RecordingTarget
):
    transforms = [
        {"drop": {"paths": ["data.user_agent"]}},
        {"hash": {"paths": ["data.details"], "key": KEY}},  # an object: the event is refused
    ]
    doc = connector_doc(
        "t1",
        "auth0",
        {},
        {"type": "http", "config": {"url": recording_target.url, "mode": "batch"}},
        delivery={"ack": "delivered"},
        filters=[{"exact": {"type": "com.auth0.log.s"}}],
        transforms=transforms,
    )
    running = runtime_factory([doc])
    url = running.connector_url("t1")
    with_details = data_text("s", "d1")
    without = data_text("s", "d2", details=None)
    other_type = data_text("fp", "d3", details=None)
    lines = as_lines([("d1", "s", with_details), ("d2", "s", without), ("d3", "fp", other_type)])
    assert post(url, lines).json() == {"accepted": 1, "filtered": 2, "duplicates": 0}
    # the same again: d2 is a duplicate (dedupe after transforms, on the same id)
    assert post(url, lines).json() == {"accepted": 0, "filtered": 2, "duplicates": 1}
    assert recording_target.ids == ["d2"]
    assert "user_agent" not in recording_target.events[0].data
    stats = running.runtime.connectors[0].stats
    assert stats.transform_errors == 2  # d1 twice; d3 was filtered before any transform
    found = samples(running.url)
    assert value(found, "connector_runtime_transform_errors_total", connector="t1") == 2
