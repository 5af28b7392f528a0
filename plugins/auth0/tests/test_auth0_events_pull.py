"""The ``auth0-events-pull`` source against the fake Events API, over real sockets: the
same CloudEvents as the webhook source, resume with Last-Event-ID after a cut connection,
duplicates dropped, 410 per ``onExpired``, idle streams and expired tokens, and test
events counted apart in /metrics for both the push and the pull source."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from connector_runtime import ManifestError, build_registry, load_manifest
from connector_runtime.conformance import PullConformance
from connector_runtime.testing import (
    LoopThread,
    RecordingTarget,
    connector_doc,
    post,
    write_manifest,
)
from test_auth0_logs import metric, readyz, wait_until

from connector_runtime_auth0.events_puller import start_query
from connector_runtime_auth0.fake_events_api import FakeEventsAPI
from connector_runtime_auth0.testing import stream_event

PUSH_TOKEN = "push-token-0123456789"
PUSH_AUTH = {"Authorization": f"Bearer {PUSH_TOKEN}"}


@pytest.fixture
def api(cr_loop: LoopThread) -> Iterator[FakeEventsAPI]:
    a = FakeEventsAPI(cr_loop).start()
    yield a
    a.stop()


def pull_doc(api: FakeEventsAPI, target_url: str, mode: str = "batch", **config: Any):
    cfg = {
        "domain": api.url,
        "clientId": api.tenant.client_id,
        "clientSecret": api.tenant.client_secret,
        "startFrom": "earliest",
        "requestTimeout": "2s",
        **config,
    }
    target = {"type": "http", "config": {"url": target_url, "mode": mode}}
    return connector_doc("evpull", "auth0-events-pull", cfg, target)


def test_events_arrive_as_the_webhook_source_emits_them(
    api: FakeEventsAPI, cr_loop: LoopThread, runtime_factory, recording_target: RecordingTarget
):
    """The same events pulled and pushed (to an auth0-events connector of the same
    runtime) reach their targets identical: attributes, and data byte for byte."""
    api.line_end = b"\r\n"
    ids = api.add(5, event_type="organization.member.added")
    pushed_to = RecordingTarget(cr_loop).start()
    try:
        push = connector_doc(
            "evpush",
            "auth0-events",
            {"token": PUSH_TOKEN},
            {"type": "http", "config": {"url": pushed_to.url, "mode": "binary"}},
        )
        rt = runtime_factory([pull_doc(api, recording_target.url, mode="binary"), push])
        for k in range(5):
            body = stream_event(k, "organization.member.added")
            assert post(rt.url + "/evpush", body, PUSH_AUTH).status == 200
        assert not recording_target.wait_for_ids(set(ids))
        assert not pushed_to.wait_for_ids(set(ids))
        pulled = sorted(recording_target.events, key=lambda e: e.id)
        pushed = sorted(pushed_to.events, key=lambda e: e.id)
        assert [e.attributes for e in pulled] == [e.attributes for e in pushed]
        assert [e.body for e in pulled] == [e.body for e in pushed]
        assert b"9007199254740993" in pulled[0].body  # data as sent, not re-encoded
        assert pulled[0].attributes["a0stream"] == "est_Qm9ndXNTdHJlYW0wMDAwMDE"
    finally:
        pushed_to.stop()
    assert api.requests[0].from_timestamp  # startFrom earliest


def test_a_cut_connection_resumes_with_last_event_id_and_loses_nothing(
    api: FakeEventsAPI, runtime_factory, recording_target: RecordingTarget
):
    ids = api.add(40, duplicate_every=4)  # 50 messages: 10 events twice (at least once)
    api.drop_after(7, 12)  # the first two connections are cut mid-message
    rt = runtime_factory([pull_doc(api, recording_target.url)])
    assert not recording_target.wait_for_ids(set(ids))
    assert wait_until(lambda: api.connections() >= 3)
    time.sleep(0.5)
    got = [e.id for e in recording_target.events]
    assert sorted(got) == sorted(ids)  # each once: duplicates dropped, nothing lost
    first, second, third = api.requests[:3]
    assert first.last_event_id is None
    assert second.last_event_id == api.events[6].offset  # the last one committed
    assert second.from_ == second.last_event_id
    assert third.last_event_id == api.events[6 + 12].offset
    errors = 'connector_runtime_pull_errors_total{connector="evpull",kind="disconnected"}'
    assert metric(rt, errors) == 2
    duplicates = 'connector_runtime_records_total{connector="evpull",outcome="duplicate"}'
    assert metric(rt, duplicates) == 10


def test_stream_ends_heartbeats_and_new_events_flow_live(
    api: FakeEventsAPI, runtime_factory, recording_target: RecordingTarget
):
    api.close_after = 0.7  # Auth0 ends each stream after a while
    api.heartbeat = 0.1
    runtime_factory([pull_doc(api, recording_target.url, startFrom="now")])
    assert wait_until(lambda: api.connections() >= 1)
    ids = api.add(3)
    assert not recording_target.wait_for_ids(set(ids))
    assert wait_until(lambda: api.connections() >= 3)
    later = api.add(2)
    assert not recording_target.wait_for_ids(set(later))
    resumed = [r for r in api.requests[1:] if r.status == 200]
    assert all(r.last_event_id for r in resumed)  # offset-only heartbeats keep it moving
    assert len(recording_target.events) == 5


def test_an_idle_stream_is_reconnected(
    api: FakeEventsAPI, runtime_factory, recording_target: RecordingTarget
):
    api.heartbeat = 3600  # never a heartbeat
    rt = runtime_factory([pull_doc(api, recording_target.url, idleTimeout="300ms")])
    assert wait_until(lambda: api.connections() >= 3)
    assert metric(rt, 'connector_runtime_pull_errors_total{connector="evpull",kind="idle"}') >= 2
    ids = api.add(2)
    assert not recording_target.wait_for_ids(set(ids))


def test_an_expired_token_is_renewed(
    api: FakeEventsAPI, runtime_factory, recording_target: RecordingTarget
):
    api.close_after = 0.5
    runtime_factory([pull_doc(api, recording_target.url)])
    assert wait_until(lambda: api.connections() >= 1)
    api.tenant.expire_tokens()
    assert wait_until(lambda: any(r.status == 401 for r in api.requests))
    ids = api.add(3)
    assert not recording_target.wait_for_ids(set(ids))
    assert api.tenant.token_requests >= 2
    assert api.tenant.client_secret.encode() not in b"".join(str(r).encode() for r in api.requests)


def expired_setup(api: FakeEventsAPI) -> tuple[str, list[str]]:
    """Three events older than the retention, four kept; the offset of an old one."""
    api.retention = 600
    api.add(3, published=time.time() - 3600)
    kept = api.add(4)
    return api.events[1].offset, kept


def test_410_with_on_expired_fail_stays_not_ready_and_says_so(
    api: FakeEventsAPI, runtime_factory, recording_target: RecordingTarget
):
    offset, _ = expired_setup(api)
    rt = runtime_factory([pull_doc(api, recording_target.url, startFrom=offset)])
    kind = 'connector_runtime_pull_errors_total{connector="evpull",kind="expired"}'
    assert wait_until(lambda: metric(rt, kind) == 1)
    status, reasons = readyz(rt)
    assert status == 503
    assert reasons == [
        f"connector evpull: the Events API answered 410 Gone: offset {offset} has expired"
        " (the tenant no longer keeps its events); events after it were lost to this"
        " connector. Set onExpired to 'earliest' or 'now' to resume"
    ]
    time.sleep(1.0)
    assert len(api.requests) == 1  # it stays: no retry loop against a 410
    assert recording_target.events == []


@pytest.mark.parametrize("policy", ["earliest", "now"])
def test_410_with_on_expired_resumes_where_the_policy_says(
    policy: str, api: FakeEventsAPI, runtime_factory, recording_target: RecordingTarget
):
    offset, kept = expired_setup(api)
    rt = runtime_factory([pull_doc(api, recording_target.url, startFrom=offset, onExpired=policy)])
    kind = 'connector_runtime_pull_errors_total{connector="evpull",kind="expired"}'
    assert wait_until(lambda: metric(rt, kind) == 1)
    assert wait_until(lambda: api.connections() == 1)
    new = api.add(2)
    expected = set(kept + new) if policy == "earliest" else set(new)
    assert not recording_target.wait_for_ids(expected)
    time.sleep(0.3)
    assert {e.id for e in recording_target.events} == expected
    assert wait_until(lambda: readyz(rt)[0] == 200)
    assert api.requests[1].last_event_id is None
    assert bool(api.requests[1].from_timestamp) == (policy == "earliest")


@pytest.mark.parametrize("mode", ["pass", "drop"])
def test_test_events_are_counted_apart_for_push_and_pull(
    mode: str,
    api: FakeEventsAPI,
    runtime_factory,
    recording_target: RecordingTarget,
):
    api.add(3, first=0)
    api.add(2, first=100, purpose="test")
    push = connector_doc(
        "evpush",
        "auth0-events",
        {"token": PUSH_TOKEN, "testEvents": mode},
        {"type": "http", "config": {"url": recording_target.url, "mode": "batch"}},
    )
    rt = runtime_factory([pull_doc(api, recording_target.url, testEvents=mode), push])
    for k in (200, 201, 202):
        body = stream_event(k, purpose="test" if k < 202 else None)
        assert post(rt.url + "/evpush", body, PUSH_AUTH).status == 200
    kept = 3 + 1 + (0 if mode == "drop" else 4)
    assert len(recording_target.wait_for(kept)) >= kept
    time.sleep(0.3)
    assert len(recording_target.events) == kept
    outcome = "dropped" if mode == "drop" else "passed"
    for name in ("evpull", "evpush"):
        labels = f'connector="{name}",kind="test",outcome="{outcome}"'
        assert metric(rt, f"connector_runtime_source_events_total{{{labels}}}") == 2
    purposes = [e.attributes.get("a0purpose") for e in recording_target.events]
    assert purposes.count("test") == (0 if mode == "drop" else 4)


class TestEventsPullConformance(PullConformance):
    """The auth0-events-pull source against the kit's fake Events API."""

    source_type = "auth0-events-pull"
    wait_seconds: ClassVar[float] = 30.0

    def start_source(self, loop):
        self.api = FakeEventsAPI(loop).start()
        self.api.add(60, duplicate_every=10)

    def stop_source(self):
        self.api.stop()

    def config(self):
        return {
            "domain": self.api.url,
            "clientId": self.api.tenant.client_id,
            "clientSecret": self.api.tenant.client_secret,
            "startFrom": "earliest",
        }

    def expected_events(self):
        return 60

    def add_more(self):
        return len(self.api.add(7))


def test_exact_event_types_are_asked_for_and_families_filtered_here(
    api: FakeEventsAPI, runtime_factory, recording_target: RecordingTarget
):
    wanted = api.add(3, event_type="user.deleted")
    api.add(3, event_type="user.created")
    org = api.add(2, event_type="organization.member.added")
    exact = pull_doc(api, recording_target.url, events=["user.deleted"])
    family = pull_doc(api, recording_target.url, events=["organization.member.*"])
    family["metadata"]["name"] = "family"
    runtime_factory([exact, family])
    assert not recording_target.wait_for_ids(set(wanted + org))
    time.sleep(0.3)
    assert sorted(e.id for e in recording_target.events) == sorted(wanted + org)
    asked = sorted(r.event_types for r in api.requests)
    assert asked == [[], ["user.deleted"]]


def test_start_query_and_validate(tmp_path, api: FakeEventsAPI):
    now = datetime(2026, 12, 7, 16, 0, 0, tzinfo=UTC)
    assert start_query("now", now) == {}
    assert start_query("earliest", now) == {"from_timestamp": "2026-11-06T16:00:00Z"}
    assert start_query("2026-12-01T00:00:00Z", now) == {"from_timestamp": "2026-12-01T00:00:00Z"}
    assert start_query("2026-12-01t00:00:00z", now) == {"from_timestamp": "2026-12-01T00:00:00Z"}
    assert start_query("ofs_000000000007", now) == {"from": "ofs_000000000007"}
    bad = [
        ({"events": ["user.creatd"]}, "spec.source.config.events[0]", "user.created"),
        ({"idleTimeout": "soon"}, "spec.source.config.idleTimeout", "soon"),
        ({"onExpired": "retry"}, "spec.source.config.onExpired", "retry"),
    ]
    for config, where, detail in bad:
        doc = pull_doc(api, "http://127.0.0.1:9", clientSecret="s3cr3t-x", **config)
        with pytest.raises(ManifestError) as err:
            load_manifest([write_manifest([doc], tmp_path)], build_registry(), env={})
        assert where in str(err.value) and detail in str(err.value), str(err.value)
        assert "s3cr3t-x" not in str(err.value)


def test_a_message_that_is_no_cloudevent_stops_the_connector_before_it(
    api: FakeEventsAPI, runtime_factory, recording_target: RecordingTarget
):
    before = api.add(2)
    api.publish("user.created", b'{"id":"evt_x","type":"user.created"}')
    bad = api.events[-1].offset
    api.add(2)
    rt = runtime_factory([pull_doc(api, recording_target.url)])
    assert not recording_target.wait_for_ids(set(before))
    assert wait_until(lambda: readyz(rt)[0] == 503)
    [reason] = readyz(rt)[1]
    assert reason.startswith(f"connector evpull: message {bad}: event: missing attribute")
    time.sleep(0.5)
    assert sorted(e.id for e in recording_target.events) == sorted(before)  # none skipped
    kind = 'connector_runtime_pull_errors_total{connector="evpull",kind="invalid_event"}'
    assert metric(rt, kind) >= 1
