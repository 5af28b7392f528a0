"""Issue 8: ``spec.filters`` (Subscriptions API dialects + CESQL) on any connector."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from connector_runtime_auth0.testing import jsonl, record

from connector_runtime.testing import RecordingTarget, RunningRuntime, connector_doc, post
from tests.procs import cli, write_manifest
from tests.scrape import samples, value

Factory = Callable[..., RunningRuntime]

RECORDS = [
    record("r1", "f", user_id="auth0|svc-health"),
    record("r2", "f", user_id="auth0|alice"),
    record("r3", "fp", user_id=None),
    record("r4", "s", user_id="auth0|alice"),
    record("r5", "sapi", user_id=None),
]


def start(factory: Factory, target: RecordingTarget, filters, config=None) -> RunningRuntime:
    doc = connector_doc(
        "f1",
        "auth0",
        config or {},
        {"type": "http", "config": {"url": target.url}},
        delivery={"ack": "delivered"},
        filters=filters,
    )
    return factory([doc])


def test_sql_and_dialects_filter_after_the_source_filter(
    runtime_factory: Factory, recording_target: RecordingTarget
):
    filters = [
        {"prefix": {"type": "com.auth0.log.f"}},
        {"not": {"sql": "EXISTS subject AND subject LIKE 'auth0|svc-%'"}},
    ]
    rt = start(runtime_factory, recording_target, filters, {"events": ["auth.login.fail", "s"]})
    r = post(rt.connector_url("f1"), jsonl(RECORDS))
    assert r.json() == {"accepted": 2, "filtered": 3, "duplicates": 0}
    assert sorted(recording_target.ids) == ["r2", "r3"]


def test_any_all_exact_suffix(runtime_factory: Factory, recording_target: RecordingTarget):
    filters = [
        {
            "any": [
                {"exact": {"type": "com.auth0.log.s"}},
                {"all": [{"suffix": {"type": ".sapi"}}, {"sql": "NOT EXISTS subject"}]},
            ]
        }
    ]
    rt = start(runtime_factory, recording_target, filters)
    assert post(rt.connector_url("f1"), jsonl(RECORDS)).json()["accepted"] == 2
    assert sorted(recording_target.ids) == ["r4", "r5"]


def test_an_erroring_expression_filters_out_and_is_counted(
    runtime_factory: Factory, recording_target: RecordingTarget
):
    # INT() of a non-numeric subject is a cast error, of a missing one a missing-attribute
    # error: an expression that errors is false, so every event is filtered out.
    rt = start(runtime_factory, recording_target, [{"sql": "INT(subject) > 0"}])
    r = post(rt.connector_url("f1"), jsonl(RECORDS))
    assert r.json() == {"accepted": 0, "filtered": 5, "duplicates": 0}
    assert recording_target.events == []
    found = samples(rt.url)
    assert value(found, "connector_runtime_filter_errors_total", connector="f1") == 5


def test_a_clean_expression_counts_no_errors(
    runtime_factory: Factory, recording_target: RecordingTarget
):
    rt = start(runtime_factory, recording_target, [{"sql": "NOT EXISTS subject"}])
    assert post(rt.connector_url("f1"), jsonl(RECORDS)).json()["accepted"] == 2
    assert sorted(recording_target.ids) == ["r3", "r5"]
    found = samples(rt.url)
    assert value(found, "connector_runtime_filter_errors_total", connector="f1") == 0


def test_a_parse_error_is_a_validate_error_pointing_at_the_column(tmp_path: Path):
    manifest = write_manifest(
        tmp_path / "m.yaml",
        [
            connector_doc(
                "f1",
                "auth0",
                {},
                {"type": "stdout"},
                filters=[{"exact": {"type": "x"}}, {"sql": "type = 'a' AND AND"}],
            )
        ],
    )
    out = cli("validate", str(manifest))
    assert out.returncode == 1
    assert "connector f1: spec.filters[1].sql: invalid CESQL expression: column 16" in out.stderr
    bad = write_manifest(
        tmp_path / "b.yaml",
        [connector_doc("f1", "auth0", {}, {"type": "stdout"}, filters=[{"regex": {"type": "x"}}])],
    )
    out = cli("validate", str(bad))
    assert out.returncode == 1 and "spec.filters[0]" in out.stderr and "regex" in out.stderr


def test_filter_test_explains_each_event_offline(tmp_path: Path):
    manifest = write_manifest(
        tmp_path / "m.yaml",
        [
            connector_doc(
                "f1",
                "auth0",
                {"events": ["auth.login.fail"]},
                {"type": "stdout"},
                filters=[{"sql": "NOT (EXISTS subject AND subject LIKE 'auth0|svc-%')"}],
            )
        ],
    )
    deliveries = tmp_path / "deliveries.jsonl"
    deliveries.write_bytes(jsonl(RECORDS))
    broken = tmp_path / "broken.json"
    broken.write_bytes(b"[1]")
    out = cli("filter", "test", str(manifest), "--connector", "f1", str(deliveries), str(broken))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert f"{deliveries}: r1 com.auth0.log.f: FILTERED" in lines
    assert f"{deliveries}: r2 com.auth0.log.f: PASS" in lines
    assert f"{deliveries}: r4 com.auth0.log.s: FILTERED" in lines
    assert any("source filter (auth0): filtered" in x for x in lines)
    assert any("/spec/filters/0/sql" in x and "value false" in x for x in lines)
    assert any(x.startswith(f"{broken}: refused by the source: element 0") for x in lines)
    assert "2 of 5 event(s) pass" in out.stderr
    missing = cli("filter", "test", str(manifest), "--connector", "nope", str(deliveries))
    assert missing.returncode == 3 and "no connector 'nope'" in missing.stderr
