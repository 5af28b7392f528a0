"""The fake tenant's log-stream sender sends as Auth0 documents it, over real sockets: the
token verbatim, every Content Format, retries and the Health view, suspension after
``pause_after`` of failures, nothing of what was written while suspended, and on again
once set active (through the Management API)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import tornado.httpserver
import tornado.web
from connector_runtime.testing import LoopThread, RecordingTarget, connector_doc, free_port, post

from connector_runtime_auth0.fake_sender import LogStreamSender, stream_data
from connector_runtime_auth0.fake_tenant import FakeTenant
from connector_runtime_auth0.parse import detect_format, parse_body

TOKEN = "Sekr3t stream token, no scheme"


@dataclass
class Capture:
    """A plain HTTP server on a loopback port keeping each request's headers and body,
    answering ``status`` (the first ``fail`` requests get 503)."""

    loop: LoopThread
    port: int = 0
    fail: int = 0
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    refused: int = 0
    _server: tornado.httpserver.HTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/auth0"

    def start(self) -> Capture:
        self.port = self.port or free_port()
        capture = self

        class Handler(tornado.web.RequestHandler):
            def post(self) -> None:
                if capture.fail > 0:
                    capture.fail -= 1
                    capture.refused += 1
                    self.set_status(503)
                    return
                capture.requests.append((dict(self.request.headers), self.request.body))

        async def listen() -> tornado.httpserver.HTTPServer:
            server = tornado.httpserver.HTTPServer(tornado.web.Application([(r"/auth0", Handler)]))
            server.listen(self.port, "127.0.0.1")
            return server

        self._server = self.loop.run(listen())
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:

            async def close() -> None:
                server.stop()
                await server.close_all_connections()

            self.loop.run(close())

    def ids(self) -> list[str]:
        return [r.log_id for _, body in self.requests for r in parse_body(body)]


@pytest.fixture
def tenant(cr_loop: LoopThread) -> Iterator[FakeTenant]:
    t = FakeTenant(cr_loop, rate=100, burst=100).start()
    yield t
    t.stop()


@pytest.fixture
def capture(cr_loop: LoopThread) -> Iterator[Capture]:
    c = Capture(cr_loop).start()
    yield c
    c.stop()


@pytest.fixture
def senders() -> Iterator[Callable[..., LogStreamSender]]:
    started: list[LogStreamSender] = []

    def start(tenant: FakeTenant, endpoint: str, content_format: str = "JSONLINES", **kw):
        stream = tenant.add_log_stream(endpoint, TOKEN, content_format)
        sender = LogStreamSender(tenant, stream, **kw).start()
        started.append(sender)
        return sender

    yield start
    for sender in started:
        sender.stop()


def wait_until(check: Callable[[], bool], timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.mark.parametrize(
    ("content_format", "detected"),
    [("JSONLINES", "jsonlines"), ("JSONARRAY", "array"), ("JSONOBJECT", "object")],
)
def test_what_is_written_from_now_on_is_posted_with_the_token_verbatim(
    tenant: FakeTenant, capture: Capture, senders, content_format: str, detected: str
):
    before = tenant.add_records(5)
    sender = senders(tenant, capture.url, content_format, batch_size=7)
    ids = tenant.add_records(20)
    assert wait_until(lambda: sender.delivered == 20)
    assert sorted(capture.ids()) == ids  # from "now": nothing written before the start
    assert not set(before) & set(capture.ids())
    assert len(capture.requests) == sender.batches == 3  # 7 + 7 + 6
    api = {lid: doc for lid, _, doc in tenant.records}
    for headers, body in capture.requests:
        assert headers["Authorization"] == TOKEN
        assert headers["Content-Type"] == "application/json"  # the same for every format
        assert detect_format(body) == detected
        for record in parse_body(body, detected):
            # the API's record without _id and its null fields, every digit kept
            assert record.data == stream_data(api[record.log_id])
            data = json.loads(record.data)
            assert "_id" not in data and "audience" not in data
            assert data["big"] == 9007199254740993
            assert b"9007199254740993" in record.data
    assert (sender.attempts, sender.failures, sender.health) == (3, 0, [])


def test_a_failed_batch_is_tried_three_times_then_restarted_until_it_goes_through(
    tenant: FakeTenant, capture: Capture, senders
):
    capture.fail = 7  # two full rounds of three attempts, then one more failure
    sender = senders(tenant, capture.url, restart_delay=0.05)
    ids = tenant.add_records(10)
    assert wait_until(lambda: sender.delivered == 10)
    assert capture.ids() == ids
    assert (sender.attempts, sender.failures, sender.batches) == (8, 7, 1)
    assert [(h.kind, h.records, h.statuses) for h in sender.health] == [
        ("error", 10, [503, 503, 503]),
        ("error", 10, [503, 503, 503]),
    ]
    assert tenant.log_streams[sender.stream.id].status == "active"


def test_a_stream_failing_for_pause_after_is_suspended_and_resumes_with_new_records_only(
    tenant: FakeTenant, cr_loop: LoopThread, senders
):
    port = free_port()  # nothing listens there yet: every attempt is refused
    down = Capture(cr_loop, port=port)
    sender = senders(tenant, down.url, pause_after=0.5, restart_delay=0.05)
    stream = sender.stream
    lost = tenant.add_records(10)
    assert wait_until(lambda: stream.status == "suspended")
    assert [(s, by) for _, s, by in stream.history] == [("suspended", "auth0")]
    errors = [h for h in sender.health if h.kind == "error"]
    assert errors and all(h.statuses == [0, 0, 0] for h in errors)
    assert sender.health[-1].kind == "suspended"
    # written while suspended: never sent by the stream, even once the server is back
    lost += tenant.add_records(10)
    down.start()
    try:
        time.sleep(0.3)
        assert down.requests == []
        assert sorted(sender.dropped_ids) == sorted(lost)
        # a user (or the runtime's watcher) sets it active through the Management API
        token = post(
            tenant.url + "/oauth/token",
            json.dumps(
                {
                    "grant_type": "client_credentials",
                    "client_id": tenant.client_id,
                    "client_secret": tenant.client_secret,
                    "audience": f"{tenant.url}/api/v2/",
                }
            ),
        ).json()["access_token"]
        answer = post(
            f"{tenant.url}/api/v2/log-streams/{stream.id}",
            json.dumps({"status": "active"}),
            {"Authorization": f"Bearer {token}"},
            method="PATCH",
        )
        assert answer.json()["status"] == "active"
        fresh = tenant.add_records(10)
        assert wait_until(lambda: sender.delivered == 10)
        assert down.ids() == fresh
        assert sender.delivered_ids == fresh
    finally:
        down.stop()
    assert [(s, by) for _, s, by in stream.history][-1] == ("active", "api")


def test_repeats_and_shuffles_reach_an_auth0_connector_once_each(
    tenant: FakeTenant, senders, runtime_factory, recording_target: RecordingTarget
):
    sink = {"type": "http", "config": {"url": recording_target.url, "mode": "batch"}}
    rt = runtime_factory([connector_doc("hook", "auth0", {"token": TOKEN}, sink)])
    sender = senders(tenant, rt.connector_url("hook"), batch_size=10, duplicate_every=2, shuffle=16)
    ids = tenant.add_records(100)  # one write: ten batches of ten
    assert wait_until(lambda: sender.idle and sender.batches == 15)
    assert sender.repeats == 5 and sender.delivered == 150
    assert Counter(Counter(sender.delivered_ids).values()) == {1: 50, 2: 50}
    assert sender.delivered_ids[:10] != sorted(sender.delivered_ids[:10])  # not in order
    assert not recording_target.wait_for_ids(set(ids))
    assert sorted(recording_target.ids) == ids  # the connector dropped the repeats
    assert sender.failures == 0  # the connector took the token as sent


def test_a_starting_cursor_sends_the_kept_records_after_it_first(
    tenant: FakeTenant, capture: Capture, senders
):
    now = datetime.now(UTC)
    tenant.add_records(3, start=now - timedelta(hours=2))
    kept = tenant.add_records(3, start=now - timedelta(minutes=30))
    cursor = (now - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    sender = senders(tenant, capture.url, start_from=cursor)
    later = tenant.add_records(2)
    assert wait_until(lambda: sender.delivered == 5)
    assert capture.ids() == kept + later
