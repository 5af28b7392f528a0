"""The ``auth0-logs`` pull source against the fake tenant, over real sockets: backfill
exactly once within the rate, the same CloudEvents as the webhook source, and 429s,
expired and revoked tokens, 5xx and timeouts without a skipped record."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from connector_runtime import ManifestError, build_registry, load_manifest
from connector_runtime.testing import (
    LoopThread,
    RecordingTarget,
    RunningRuntime,
    connector_doc,
    post,
    write_manifest,
)

from connector_runtime_auth0.fake_tenant import FakeTenant
from connector_runtime_auth0.logs_api import audience, base_url, start_checkpoint, written_at
from connector_runtime_auth0.pulling import Backoff


@pytest.fixture
def tenant(cr_loop: LoopThread) -> Iterator[FakeTenant]:
    t = FakeTenant(cr_loop, rate=20, burst=20).start()
    yield t
    t.stop()


def logs_doc(tenant: FakeTenant, target_url: str, **config: Any) -> dict[str, Any]:
    cfg = {
        "domain": tenant.url,
        "clientId": tenant.client_id,
        "clientSecret": tenant.client_secret,
        "startFrom": "earliest",
        "pollInterval": "200ms",
        "requestTimeout": "2s",
        **config,
    }
    return connector_doc(
        "logs", "auth0-logs", cfg, {"type": "http", "config": {"url": target_url, "mode": "batch"}}
    )


def readyz(rt: RunningRuntime) -> tuple[int, list[str]]:
    try:
        with urllib.request.urlopen(rt.url + "/readyz", timeout=10) as r:
            return r.status, json.loads(r.read())["reasons"]
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())["reasons"]


def metric(rt: RunningRuntime, line_start: str) -> float:
    text = post(rt.url + "/metrics", method="GET").body.decode()
    found = [ln for ln in text.splitlines() if ln.startswith(line_start)]
    return float(found[0].rsplit(" ", 1)[1]) if found else 0.0


def wait_until(check: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


BACKFILL = 50_000
BACKFILL_RATE = 100
"""requests per second: 500 pages of 100, about 10 s (the pacer spaces them 20 ms apart)"""


def test_backfill_from_earliest_delivers_each_record_once_within_the_rate(
    tenant: FakeTenant, runtime_factory, recording_target: RecordingTarget
):
    tenant.rate = tenant.burst = BACKFILL_RATE  # the tenant's own limit: 429 if exceeded
    ids = tenant.add_records(BACKFILL, step=0.001)
    doc = logs_doc(tenant, recording_target.url, requestsPerSecond=BACKFILL_RATE, take=100)
    rt = runtime_factory([doc])
    recording_target.wait_for(BACKFILL, timeout=110)
    got = recording_target.ids
    assert len(got) == len(set(got)) == BACKFILL  # none twice
    assert set(got) == set(ids)  # none missing
    assert tenant.max_requests_per_second() <= BACKFILL_RATE
    assert tenant.token_requests == 1
    # caught up: more records are picked up by the next polls, nothing is sent twice
    more = tenant.add_records(5, start=datetime.now(UTC) - timedelta(minutes=1))
    recording_target.wait_for(BACKFILL + 5)
    assert sorted(recording_target.ids) == sorted(ids + more)
    assert readyz(rt) == (200, [])
    # stopped, no poll is in flight: a request is listed as it arrives, its status set once
    # answered, so a look while the puller polls can meet one not yet answered
    rt.stop()
    assert wait_until(lambda: all(r.status for r in list(tenant.requests)), timeout=5)
    assert all(r.status == 200 for r in tenant.requests)
    assert sum(r.records for r in tenant.requests) == BACKFILL + 5  # no page fetched twice


def test_the_fake_tenants_pages_follow_from_take_and_retention(tenant: FakeTenant):
    """Pages by bisection: after ``from``, at most ``take``, nothing past retention."""
    tenant.rate = tenant.burst = 1000
    expired = tenant.add_records(3, start=datetime.now(UTC) - timedelta(days=40))
    kept = tenant.add_records(250, start=datetime.now(UTC) - timedelta(days=2))
    tenant.add_records(2, start=datetime.now(UTC) - timedelta(days=35))
    assert expired[-1] < kept[0]
    token = json.loads(
        post(
            tenant.url + "/oauth/token",
            json.dumps(
                {
                    "grant_type": "client_credentials",
                    "client_id": tenant.client_id,
                    "client_secret": tenant.client_secret,
                    "audience": tenant.url + "/api/v2/",
                }
            ),
            {"Content-Type": "application/json"},
        ).body
    )["access_token"]

    def page(url: str) -> tuple[list[str], str]:
        r = post(url, method="GET", headers={"Authorization": f"Bearer {token}"})
        assert r.status == 200, r.body
        link = r.headers["link"]
        return [rec["log_id"] for rec in json.loads(r.body)], link[1 : link.index(">")]

    first, link = page(tenant.url + "/api/v2/logs?from=900&take=100")
    assert first == kept[:100]  # the 40- and 35-day old records are past the 30 days
    second, link = page(link)
    third, link = page(link)
    assert second + third == kept[100:]
    assert page(link) == ([], link)  # nothing newer: an empty page, the same URL again
    middle, _ = page(tenant.url + f"/api/v2/logs?from={kept[41]}&take=7")
    assert middle == kept[42:49]


def test_pulled_events_are_those_of_the_webhook_source(
    tenant: FakeTenant, runtime_factory, recording_target: RecordingTarget
):
    [log_id] = tenant.add_records(1)
    raw = tenant.records[0][2]
    source = {"source": "https://example.eu.auth0.com/"}
    hook = connector_doc(
        "hook",
        "auth0",
        source,
        {"type": "http", "config": {"url": recording_target.url, "mode": "structured"}},
    )
    pulled = logs_doc(tenant, recording_target.url, **source)
    pulled["spec"]["target"]["config"]["mode"] = "structured"
    rt = runtime_factory([hook, pulled])
    body = json.dumps({"log_id": log_id, "data": "DATA"}).encode().replace(b'"DATA"', raw)
    assert post(rt.connector_url("hook"), body).status == 200
    a, b = recording_target.wait_for(2)
    assert a.body == b.body  # the same structured CloudEvent, byte for byte
    assert raw in a.body and b"9007199254740993" in a.body


def test_429_expired_and_revoked_tokens_5xx_and_timeouts_skip_nothing(
    tenant: FakeTenant, runtime_factory, recording_target: RecordingTarget
):
    tenant.rate = tenant.burst = 2  # a free tenant's limit, exceeded on purpose below
    ids = tenant.add_records(900)
    tenant.fail_next(3, 503)
    tenant.stall_next(1, 3.0)  # longer than requestTimeout: a timeout
    rt = runtime_factory([logs_doc(tenant, recording_target.url, requestsPerSecond=5, take=50)])
    seen: set[str] = set()  # every /readyz reason on the way

    def progress() -> bool:
        seen.update(readyz(rt)[1])
        return len(recording_target.events) >= 300

    assert wait_until(progress)
    for reason in ("Timeout during request", "answered HTTP 503", "answered 429 (rate limit)"):
        assert any(reason in r for r in seen), (reason, seen)
    assert metric(rt, 'connector_runtime_pull_errors_total{connector="logs",kind="rate_limited"}')
    unavailable = 'connector_runtime_pull_errors_total{connector="logs",kind="unavailable"}'
    assert metric(rt, unavailable) >= 3  # a timeout and 503s
    tenant.expire_tokens()  # the next request gets 401 and a new token
    assert wait_until(lambda: tenant.token_requests >= 2)
    tenant.revoke()  # the secret stops working: a readiness reason, backoff, no spinning
    assert wait_until(lambda: "client credentials" in str(readyz(rt)[1]))
    status, reasons = readyz(rt)
    assert status == 503
    assert reasons == [
        "connector logs: Auth0 refused the client credentials of client fake-client-id"
        " (HTTP 401 access_denied): check clientId, clientSecret and that the application"
        " may call the Management API with the scope read:logs"
    ]
    asked = tenant.token_requests
    time.sleep(2.0)  # the auth backoff starts at 5 s: at most one more try in 2 s
    assert tenant.token_requests <= asked + 1
    assert metric(rt, 'connector_runtime_pull_errors_total{connector="logs",kind="auth"}') >= 1
    tenant.restore()
    recording_target.wait_for(900, timeout=60)
    assert sorted(recording_target.ids) == sorted(ids)  # none skipped, none twice
    assert wait_until(lambda: readyz(rt) == (200, []))
    # no request between a 429 and the X-RateLimit-Reset it announced (5/s would otherwise
    # ask again within 0.2 s); both times are read from the same clock
    answered = list(tenant.requests)
    after_429 = [(r, n) for r, n in pairwise(answered) if r.status == 429]
    assert after_429
    assert [(r.reset, n.wall) for r, n in after_429 if n.wall < r.reset] == []


def test_5xx_backs_off_says_so_and_resumes_where_it_stood(
    tenant: FakeTenant, runtime_factory, recording_target: RecordingTarget
):
    ids = tenant.add_records(5)
    tenant.fail_next(3, 502)
    rt = runtime_factory([logs_doc(tenant, recording_target.url, requestsPerSecond=20)])
    assert wait_until(lambda: len(tenant.requests) >= 1)
    time.sleep(2.0)
    # backoff 1 s, then 2 s (times 0.8 to 1, jitter): the second request came, the third
    # not yet (without backoff, 20/s would have asked 40 times)
    assert [r.status for r in list(tenant.requests)] == [502, 502]
    assert readyz(rt) == (503, ["connector logs: GET /api/v2/logs answered HTTP 502"])
    unavailable = 'connector_runtime_pull_errors_total{connector="logs",kind="unavailable"}'
    assert metric(rt, unavailable) == 2
    recording_target.wait_for(5)
    assert sorted(recording_target.ids) == sorted(ids)
    assert [r.query for r in tenant.requests][:4] == [tenant.requests[0].query] * 4
    assert wait_until(lambda: readyz(rt) == (200, []))


def test_tokens_are_renewed_before_they_expire(
    tenant: FakeTenant, runtime_factory, recording_target: RecordingTarget
):
    tenant.token_ttl = 2.0  # expires_in: 2; renewed after half of it, 1 s
    ids = tenant.add_records(10)
    rt = runtime_factory([logs_doc(tenant, recording_target.url, requestsPerSecond=20)])
    recording_target.wait_for(10)
    assert wait_until(lambda: tenant.token_requests >= 4, timeout=15)
    assert sorted(recording_target.ids) == sorted(ids)
    assert readyz(rt) == (200, [])
    rt.stop()  # no poll in flight: every request listed has its answer
    assert wait_until(lambda: all(r.status for r in list(tenant.requests)), timeout=5)
    assert {r.status for r in tenant.requests} == {200}  # never a 401: none ran out


def test_events_and_source_as_for_the_auth0_type(
    tmp_path, tenant: FakeTenant, runtime_factory, recording_target: RecordingTarget
):
    tenant.add_records(6, code="s")
    failed = tenant.add_records(4, code="f")
    tenant.add_records(3, code="fp")
    events = {"events": ["f"], "source": "https://example.eu.auth0.com/"}
    runtime_factory([logs_doc(tenant, recording_target.url, **events)])
    recording_target.wait_for(4)
    time.sleep(0.5)  # a few more polls: the others stay filtered out
    assert sorted(recording_target.ids) == sorted(failed)
    assert {e.attributes["source"] for e in recording_target.events} == {events["source"]}
    doc = logs_doc(tenant, "http://127.0.0.1:9", events=["f", "sucess"])
    with pytest.raises(ManifestError, match=r"spec.source.config.events\[1\]"):
        load_manifest([write_manifest([doc], tmp_path)], build_registry(), env={})


def test_settle_leaves_the_newest_records_for_later(
    tenant: FakeTenant, runtime_factory, recording_target: RecordingTarget
):
    old = tenant.add_records(20, start=datetime.now(UTC) - timedelta(minutes=10))
    new = tenant.add_records(5, start=datetime.now(UTC))
    runtime_factory([logs_doc(tenant, recording_target.url, settle="5m")])
    recording_target.wait_for(20)
    time.sleep(1.0)  # a few polls: the new ones stay behind
    assert sorted(recording_target.ids) == sorted(old)
    assert all(written_at(i) for i in new)


def test_domain_is_a_host_name_or_a_base_url():
    assert base_url("example.eu.auth0.com") == "https://example.eu.auth0.com"
    assert base_url("http://127.0.0.1:8443/") == "http://127.0.0.1:8443"
    assert audience("example.eu.auth0.com") == "https://example.eu.auth0.com/api/v2/"


def test_start_from_and_validate(tmp_path, tenant: FakeTenant):
    now = datetime(2026, 12, 7, 16, 0, 0, tzinfo=UTC)
    assert start_checkpoint("now", now) == "90020261207160000"
    assert start_checkpoint("2026-12-01T00:00:00Z", now) == "90020261201000000"
    assert start_checkpoint("2026-12-01t02:00:00.5+02:00", now) == "90020261201000000"
    assert start_checkpoint("2026-12-01t00:00:00z", now) == "90020261201000000"
    assert start_checkpoint("earliest", now) == "90020261106160000"
    lid = "90020261201000000" + "0" * 39
    assert start_checkpoint(lid, now) == lid
    for bad in ("yesterday", "12345"):
        with pytest.raises(ValueError, match="startFrom"):
            start_checkpoint(bad, now)
    doc = logs_doc(tenant, "http://127.0.0.1:9", startFrom="yesterday", clientSecret="s3cr3t-x")
    with pytest.raises(ManifestError) as err:
        load_manifest([write_manifest([doc], tmp_path)], build_registry(), env={})
    assert "spec.source.config.startFrom: startFrom 'yesterday' is neither" in str(err.value)
    assert "s3cr3t-x" not in str(err.value)
    for key, bad in (("take", 0), ("take", 101), ("requestsPerSecond", 0)):
        doc = logs_doc(tenant, "http://127.0.0.1:9", **{key: bad})
        with pytest.raises(ManifestError, match=f"spec.source.config.{key}"):
            load_manifest([write_manifest([doc], tmp_path)], build_registry(), env={})
    doc = logs_doc(tenant, "http://127.0.0.1:9")
    doc["spec"]["delivery"] = {"ack": "received"}
    with pytest.raises(ManifestError, match="pulls with a checkpoint"):
        load_manifest([write_manifest([doc], tmp_path)], build_registry(), env={})


def test_a_shared_dedupe_scope_fills_the_streams_gaps_without_repeats(
    tenant: FakeTenant, runtime_factory, recording_target: RecordingTarget
):
    ids = tenant.add_records(300)
    sink = {"type": "http", "config": {"url": recording_target.url, "mode": "batch"}}
    shared = {"dedupe": {"scope": "tenant-a"}}
    hook = connector_doc("hook", "auth0", {}, sink, delivery=shared)
    rt = runtime_factory([hook])
    # the stream delivered the first 200 records, then paused: the last 100 never came
    stream = [(lid, raw) for lid, _, raw in tenant.records[:200]]
    for i in range(0, 200, 50):
        body = b"\n".join(
            b'{"log_id":"' + lid.encode() + b'","data":' + raw + b"}"
            for lid, raw in stream[i : i + 50]
        )
        assert post(rt.connector_url("hook"), body).json()["accepted"] == 50
    recording_target.wait_for(200)
    rt.stop()
    pulled = logs_doc(tenant, recording_target.url)
    pulled["spec"]["delivery"] = shared
    data = rt.runtime.data_dir
    rt2 = runtime_factory([hook, pulled], data_dir=data)
    recording_target.wait_for(300)
    assert wait_until(
        lambda: (
            metric(rt2, 'connector_runtime_records_total{connector="logs",outcome="duplicate"}')
            == 200
        )
    )
    got = recording_target.ids
    assert sorted(got) == sorted(ids)  # every record of the tenant, each once
    # and a record the stream sends again later is a duplicate for the webhook connector
    lid, raw = stream[0]
    again = b'{"log_id":"' + lid.encode() + b'","data":' + raw + b"}\n"
    assert post(rt2.connector_url("hook"), again).json()["duplicates"] == 1


def test_backoff_gets_a_new_token_at_once_unless_the_fresh_one_is_refused_too():
    backoff = Backoff()
    assert 0.8 <= backoff.next("unavailable", None) <= 1.0  # a 503: 1 s, jittered
    assert backoff.next("auth", 0.0) == 0.0  # then a 401: a new token at once
    assert backoff.next("auth", 0.0) == 5.0  # the new token refused as well: slow down
    assert backoff.next("auth", 0.0) == 10.0
    assert backoff.next("rate_limited", 0.0) == 0.0  # the pacer holds until the reset
    assert backoff.next("auth", 0.0) == 0.0
    backoff.reset()
    assert backoff.next("auth", 0.0) == 0.0
