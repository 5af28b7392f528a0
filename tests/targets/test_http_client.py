"""The ``http`` target's own HTTP/1.1 client, through real servers on loopback sockets.

A Tornado app plays a well-behaved target; small raw asyncio servers play the edge cases
(chunked answers, ``Connection: close``, HTTP/1.0, a server that drops kept-alive
connections, one that never answers). Each test runs its servers and the target in one
``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import tornado.httpserver
import tornado.web
from tornado.testing import bind_unused_port

from connector_runtime import __version__
from connector_runtime.errors import DeliveryError
from connector_runtime.events import Event, make_event, to_batch
from connector_runtime.records import SendResult, TargetContext
from connector_runtime.targets.http.client import (
    _CHUNK_SIZE,
    _DONE,
    _HEAD,
    _LENGTH,
    _UNTIL_EOF,
    ConnectionPool,
    ProtocolError,
    parse_head,
)
from connector_runtime.targets.http.target import HTTPTarget, retry_after_seconds

# -- helpers ----------------------------------------------------------------------------


def event(n: int = 0, data: bytes = b'{"n":1}', **kwargs: Any) -> Event:
    return make_event(
        id=f"ev-{n}", source="https://tenant.example/", type="com.example.t", data=data, **kwargs
    )


def target(url: str, **config: Any) -> HTTPTarget:
    return HTTPTarget({"url": url, **config}, TargetContext("t", logging.getLogger("t")))


@asynccontextmanager
async def started(url: str, **config: Any) -> AsyncIterator[HTTPTarget]:
    t = target(url, **config)
    await t.start()
    try:
        yield t
    finally:
        await t.close()


@dataclass
class Seen:
    """What a Tornado test target saw."""

    requests: list[tornado.httputil.HTTPServerRequest] = field(default_factory=list)
    peers: set[Any] = field(default_factory=set)
    in_flight: int = 0
    most_in_flight: int = 0


class Recorder(tornado.web.RequestHandler):
    def initialize(self, seen: Seen, answer: Callable[[bytes], tuple[int, str]]) -> None:
        self.seen = seen
        self.answer = answer

    async def post(self) -> None:
        seen = self.seen
        seen.requests.append(self.request)
        seen.peers.add(self.request.connection.context.address)  # type: ignore[union-attr]
        seen.in_flight += 1
        seen.most_in_flight = max(seen.most_in_flight, seen.in_flight)
        try:
            await asyncio.sleep(0.005)
            status, text = self.answer(self.request.body)
            self.set_status(status)
            self.finish(text)
        finally:
            seen.in_flight -= 1


@asynccontextmanager
async def tornado_target(
    answer: Callable[[bytes], tuple[int, str]] = lambda body: (200, ""), **server: Any
) -> AsyncIterator[tuple[str, Seen]]:
    seen = Seen()
    sock, port = bind_unused_port()
    app = tornado.web.Application([(r"/.*", Recorder, {"seen": seen, "answer": answer})])
    http = tornado.httpserver.HTTPServer(app, max_body_size=256 << 20, **server)
    http.add_sockets([sock])
    scheme = "https" if "ssl_options" in server else "http"
    try:
        yield f"{scheme}://127.0.0.1:{port}/ingest?x=1", seen
    finally:
        http.stop()
        await http.close_all_connections()


Script = Callable[[int, int, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]
"""``(connection number, request number on it, reader, writer)`` → keep the connection?"""


@dataclass
class RawServer:
    """A scripted server: reads each request whole, lets ``script`` answer it."""

    script: Script
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    open: int = 0
    most_open: int = 0
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number, served = self.connections, 0
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                self.requests.append(head + await reader.readexactly(length))
                served += 1
                if not await self.script(number, served, reader, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            self._writers.discard(writer)
            writer.close()


@asynccontextmanager
async def raw_server(script: Script) -> AsyncIterator[tuple[str, RawServer]]:
    raw = RawServer(script)
    server = await asyncio.start_server(raw.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/", raw
    finally:
        server.close()
        await asyncio.sleep(0.02)  # connections accepted just now get their handler
        for writer in list(raw._writers):
            writer.close()
        await server.wait_closed()
        await asyncio.sleep(0.01)


def answering(*chunks: bytes, keep: bool = True, pause: float = 0.0) -> Script:
    """A script that writes ``chunks`` (with ``pause`` between them) for every request."""

    async def script(conn: int, n: int, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        for chunk in chunks:
            w.write(chunk)
            await w.drain()
            if pause:
                await asyncio.sleep(pause)
        return keep

    return script


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


# -- the Tornado target: keep-alive, headers, status classes, bodies, the pool bound -----


def test_requests_reuse_one_kept_alive_connection():
    async def scenario() -> None:
        async with tornado_target() as (url, seen), started(url, maxConnections=4) as t:
            for n in range(30):
                assert await t.send([event(n)]) == SendResult()
            assert len(seen.requests) == 30
            assert len(seen.peers) == 1

    asyncio.run(scenario())


def test_binary_request_carries_the_expected_headers():
    async def scenario() -> None:
        async with (
            tornado_target() as (url, seen),
            started(url, headers={"Authorization": "Bearer s3cret", "X-Extra": "1"}) as t,
        ):
            result = await t.send([event(1), event(2, data=b"raw", datacontenttype=None)])
            assert not result.rejected and not result.retry
        first, second = sorted(seen.requests, key=lambda r: r.headers["ce-id"])
        port = url.split(":")[2].split("/")[0]
        assert first.uri == "/ingest?x=1" and first.method == "POST"
        assert first.headers["Host"] == f"127.0.0.1:{port}"
        assert first.headers["User-Agent"] == f"connector-runtime/{__version__}"
        assert first.headers["Authorization"] == "Bearer s3cret"
        assert first.headers["X-Extra"] == "1"
        assert first.headers["Content-Type"] == "application/json"
        assert first.headers["Content-Length"] == str(len(b'{"n":1}'))
        assert first.headers["ce-specversion"] == "1.0"
        assert first.headers["ce-source"] == "https://tenant.example/"
        assert first.body == b'{"n":1}'
        # no datacontenttype: the body goes as octet-stream, as aiohttp sent it
        assert second.headers["Content-Type"] == "application/octet-stream"
        assert second.body == b"raw"

    asyncio.run(scenario())


def test_status_classes_and_reasons():
    statuses = {"a": 400, "b": 503, "c": 429, "d": 301, "e": 404}

    def answer(body: bytes) -> tuple[int, str]:
        key = json.loads(body)["k"]
        return statuses[key], f"  nope:\n\t{key} " + "x" * 300

    async def scenario() -> None:
        async with tornado_target(answer) as (url, _), started(url) as t:
            events = [event(n, data=f'{{"k":"{k}"}}'.encode()) for n, k in enumerate(statuses)]
            result = await t.send(events)
        assert set(result.rejected) == {0, 3, 4}  # 400, 301 (no redirect followed), 404
        assert set(result.retry) == {1, 2}  # 503, 429
        # the first 200 characters, whitespace collapsed
        assert result.rejected[0] == "HTTP 400: nope: a " + "x" * 189
        assert result.retry[1] == "HTTP 503: nope: b " + "x" * 189
        assert result.retry[2].startswith("HTTP 429: nope: c x")
        # the statuses as fields, for the dead letters (never read back out of a reason)
        assert result.status == {0: 400, 1: 503, 2: 429, 3: 301, 4: 404}
        assert result.retry_after is None  # no Retry-After was sent

    asyncio.run(scenario())


def test_pool_bounds_connections_and_requests_in_flight():
    async def scenario() -> None:
        async with tornado_target() as (url, seen), started(url, maxConnections=2) as t:
            results = await asyncio.gather(*(t.send([event(n) for n in range(10)]) for _ in "abc"))
            assert all(not r.rejected and not r.retry for r in results)
            assert len(seen.requests) == 30
            assert seen.most_in_flight == 2
            assert len(seen.peers) == 2

    asyncio.run(scenario())


def test_pool_bound_seen_from_a_raw_server():
    async def slow(conn: int, n: int, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.01)
        w.write(OK)
        return True

    async def scenario() -> None:
        async with raw_server(slow) as (url, raw), started(url, maxConnections=2) as t:
            result = await t.send([event(n) for n in range(20)])
            assert not result.retry and not result.rejected
            assert len(raw.requests) == 20
            assert raw.connections == 2 and raw.most_open == 2

    asyncio.run(scenario())


def test_a_multi_megabyte_batch_arrives_intact():
    big = [event(n, data=b'{"blob":"' + bytes([97 + n % 26]) * 200_000 + b'"}') for n in range(25)]
    expected = to_batch(big)
    assert len(expected) > 5_000_000

    async def scenario() -> None:
        async with tornado_target() as (url, seen), started(url, mode="batch") as t:
            assert await t.send(big) == SendResult()
            body = seen.requests[0].body
            assert hashlib.sha256(body).digest() == hashlib.sha256(expected).digest()
            assert seen.requests[0].headers["Content-Type"] == "application/cloudevents-batch+json"

    asyncio.run(scenario())


# -- raw servers: framing, closes, timeouts ---------------------------------------------


def test_chunked_answer_split_across_packets_then_the_connection_is_reused():
    chunked = (
        b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"8;ext=1\r\nbusy, tr\r\n"
        b"7\r\ny later\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    pieces = [chunked[i : i + 5] for i in range(0, len(chunked), 5)]

    async def scenario() -> None:
        script = answering(*pieces, pause=0.001)
        async with raw_server(script) as (url, raw), started(url) as t:
            for n in range(3):
                result = await t.send([event(n)])
                assert result.retry == {0: "HTTP 503: busy, try later"}
            assert raw.connections == 1

    asyncio.run(scenario())


def test_connection_close_answer_retires_the_connection():
    async def scenario() -> None:
        closing = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        async with raw_server(answering(closing, keep=False)) as (url, raw), started(url) as t:
            for n in range(3):
                result = await t.send([event(n)])
                assert not result.retry and not result.rejected
            assert raw.connections == 3

    asyncio.run(scenario())


def test_http10_answers_with_and_without_a_length():
    async def scenario() -> None:
        until_close = b"HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n\r\nno such  path"
        async with raw_server(answering(until_close, keep=False)) as (url, _), started(url) as t:
            result = await t.send([event(0)])
        assert result.rejected == {0: "HTTP 404: no such path"}
        assert result.status == {0: 404}
        kept = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
        async with raw_server(answering(kept)) as (url, raw), started(url) as t:
            for n in range(3):
                assert not (await t.send([event(n)])).retry
            assert raw.connections == 1
        plain = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"  # 1.0 without keep-alive
        async with raw_server(answering(plain)) as (url, raw), started(url) as t:
            for n in range(2):
                assert not (await t.send([event(n)])).retry
            assert raw.connections == 2

    asyncio.run(scenario())


def test_interim_and_bodiless_answers():
    async def scenario() -> None:
        interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"
        async with raw_server(answering(interim)) as (url, raw), started(url) as t:
            for n in range(2):
                result = await t.send([event(n)])
                assert not result.retry and not result.rejected
            assert raw.connections == 1

    asyncio.run(scenario())


def test_a_server_closing_idle_kept_alive_connections_costs_no_event():
    async def closes_when_idle(conn, n, r, w) -> bool:
        w.write(OK)
        await w.drain()
        return False  # no Connection: close header, yet the server hangs up

    async def scenario() -> None:
        async with raw_server(closes_when_idle) as (url, raw), started(url) as t:
            for n in range(3):
                assert await t.send([event(n)]) == SendResult()
                await asyncio.sleep(0.05)  # the client sees the close while idle
            assert raw.connections == 3

    asyncio.run(scenario())


def test_a_request_on_a_connection_closed_as_it_was_sent_is_sent_again_once():
    async def second_request_dropped(conn, n, r, w) -> bool:
        if n == 2:  # the request arrived on a kept-alive connection: hang up unanswered
            return False
        w.write(OK)
        await w.drain()
        return True

    async def scenario() -> None:
        async with raw_server(second_request_dropped) as (url, raw), started(url) as t:
            for n in range(4):
                result = await t.send([event(n)])
                assert not result.retry and not result.rejected, result
            # Each later event went twice: dropped unanswered as the second request on a
            # kept-alive connection, then sent again as the first on a new one.
            ids = [line[7:] for r in raw.requests for line in r.split(b"\r\n") if b"ce-id" in line]
            assert ids == [b"ev-0", b"ev-1", b"ev-1", b"ev-2", b"ev-2", b"ev-3", b"ev-3"]
            assert raw.connections == 4

    asyncio.run(scenario())


def test_no_second_try_on_a_new_connection_or_after_part_of_an_answer():
    async def hang_up(conn, n, r, w) -> bool:
        return False

    async def half(conn, n, r, w) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await w.drain()
        return False

    async def scenario() -> None:
        for script in (hang_up, half):
            async with raw_server(script) as (url, raw), started(url) as t:
                result = await t.send([event(0)])
                assert set(result.retry) == {0}
                assert result.retry[0].startswith(("ServerDisconnected", "ConnectionResetError"))
                assert len(raw.requests) == 1

    asyncio.run(scenario())


def test_a_silent_server_times_out_within_the_timeout():
    async def silent(conn, n, r, w) -> bool:
        await asyncio.sleep(30)
        return False

    async def scenario() -> None:
        async with raw_server(silent) as (url, raw), started(url, timeout="300ms") as t:
            began = time.monotonic()
            result = await t.send([event(0), event(1)])
            took = time.monotonic() - began
            assert result.retry == dict.fromkeys(
                (0, 1), "TimeoutError: no complete answer within 0.3s"
            )
            assert 0.29 <= took < 1.0
            assert raw.connections == 2

    asyncio.run(scenario())


def test_every_request_of_a_call_and_every_caller_waiting_for_a_connection_time_out():
    async def silent(conn, n, r, w) -> bool:
        await asyncio.sleep(30)
        return False

    async def scenario() -> None:
        async with (
            raw_server(silent) as (url, raw),
            started(url, timeout=0.2, maxConnections=1) as t,
        ):
            began = time.monotonic()
            # one call: its events share one deadline, as when each had its own task
            result = await t.send([event(n) for n in range(3)])
            # the deadline, not the silent server's 30 s (the upper bound leaves room for a
            # loaded machine; what matters is that nobody waits for the server)
            assert 0.19 <= time.monotonic() - began < 5
            assert result.retry == dict.fromkeys(
                range(3), "TimeoutError: no complete answer within 0.2s"
            )
            assert raw.connections == 1
            # concurrent calls: two wait for the one connection, and time out waiting
            began = time.monotonic()
            results = await asyncio.gather(*(t.send([event(n)]) for n in range(3)))
            assert 0.19 <= time.monotonic() - began < 5
            reasons = sorted(r.retry[0] for r in results)
            assert reasons[0] == "TimeoutError: no complete answer within 0.2s"
            # the other two wait for the one connection; on a loaded machine one of them can
            # get the slot the expired request freed just before its own deadline, and then
            # run out of time connecting: a timeout either way, never a wait past it
            waited = {
                "TimeoutError: no free connection within 0.2s",
                "TimeoutError: no connection within 0.2s",
            }
            assert set(reasons[1:]) <= waited
            assert reasons.count("TimeoutError: no free connection within 0.2s") >= 1
            assert raw.connections in (2, 3)

    asyncio.run(scenario())


def test_connection_refused_is_transient():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def scenario() -> None:
        async with started(f"http://127.0.0.1:{port}/") as t:
            result = await t.send([event(0)])
        assert set(result.retry) == {0}
        assert result.retry[0].startswith("ConnectionRefusedError: ")

    asyncio.run(scenario())


def test_batch_mode_rejection_is_bisected_to_the_bad_event():
    def answer(body: bytes) -> tuple[int, str]:
        return (422, "bad event") if b"ev-bad" in body else (200, "")

    async def scenario() -> None:
        events = [event(0), event(1), make_event(id="ev-bad", source="s", type="t"), event(3)]
        async with tornado_target(answer) as (url, _), started(url, mode="batch") as t:
            result = await t.send(events)
        assert result.rejected == {2: "HTTP 422: bad event"} and not result.retry
        assert result.status == {2: 422}

    asyncio.run(scenario())


def test_header_values_with_cr_or_lf_are_refused_before_sending():
    async def scenario() -> None:
        async with tornado_target() as (url, seen):
            async with started(url) as t:
                bad = event(1, datacontenttype="text/plain\r\nX-Injected: 1")
                result = await t.send([event(0), bad])
                assert set(result.rejected) == {1} and not result.retry
                assert "CR/LF" in result.rejected[1]
            async with started(url, headers={"X-Bad": "a\nb"}) as t:
                result = await t.send([event(2)])
                assert set(result.rejected) == {0}
                assert "X-Bad" in result.rejected[0] and "a\nb" not in result.rejected[0]
            assert [r.headers["ce-id"] for r in seen.requests] == ["ev-0"]

    asyncio.run(scenario())


def test_not_started_and_closed_targets_refuse_to_send():
    async def scenario() -> None:
        t = target("http://127.0.0.1:9/")
        with pytest.raises(DeliveryError, match="not started"):
            await t._post(b"", None, {})
        await t.start()
        await t.close()
        with pytest.raises(DeliveryError, match="not started"):
            await t._post(b"", None, {})

    asyncio.run(scenario())


@pytest.mark.skipif(
    subprocess.run(["which", "openssl"], capture_output=True).returncode != 0,
    reason="openssl not installed: apt-get install openssl",
)
def test_https_with_the_default_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    command = "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1"
    command += " -addext subjectAltName=IP:127.0.0.1"
    subprocess.run(
        [*command.split(), "-keyout", key, "-out", cert], check=True, capture_output=True
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the default context trusts it then
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)

    async def scenario() -> None:
        async with (
            tornado_target(ssl_options=server_context) as (url, seen),
            started(url) as t,
        ):
            assert url.startswith("https://")
            for n in range(3):
                result = await t.send([event(n)])
                assert not result.retry and not result.rejected, result
            assert len(seen.peers) == 1

    asyncio.run(scenario())


# -- the answer-head parser, pure -------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        ("200 OK|Content-Length: 12", (200, _LENGTH, 12, "", True, "")),
        ("200 OK|content-length: 0", (200, _DONE, 0, "", True, "")),
        ("204 No Content", (204, _DONE, 0, "", True, "")),
        ("304 Not Modified|Content-Length: 5", (304, _DONE, 0, "", True, "")),
        ("100 Continue", (100, _HEAD, 0, "", True, "")),
        ("500 x|Transfer-Encoding: gzip, Chunked", (500, _CHUNK_SIZE, 0, "", True, "")),
        ("200 OK|Transfer-Encoding: gzip", (200, _UNTIL_EOF, 0, "", False, "")),
        ("200 OK", (200, _UNTIL_EOF, 0, "", False, "")),
        ("200 OK|Connection: Close|Content-Length: 1", (200, _LENGTH, 1, "", False, "")),
        ("200 OK|Content-Length: 3|Content-Length: 3", (200, _LENGTH, 3, "", True, "")),
        (
            "400 Bad|Content-Type:  text/plain; charset=latin-1 |Content-Length: 3",
            (400, _LENGTH, 3, "text/plain; charset=latin-1", True, ""),
        ),
        ("1.0 200 OK|Content-Length: 1", (200, _LENGTH, 1, "", False, "")),
        ("1.0 200 OK|Connection: Keep-Alive|Content-Length: 1", (200, _LENGTH, 1, "", True, "")),
        ("503 x|Retry-After:  7 |Content-Length: 0", (503, _DONE, 0, "", True, "7")),
        (
            "429 x|retry-after: Sun, 06 Nov 1994 08:49:37 GMT|Content-Length: 2",
            (429, _LENGTH, 2, "", True, "Sun, 06 Nov 1994 08:49:37 GMT"),
        ),
    ],
)
def test_parse_head(head: str, expected: tuple[int, int, int, str, bool, str]):
    """``head``: the status line after "HTTP/1.1 " (or "HTTP/1.0 " for "1.0 ..."), then
    header lines, separated by "|"."""
    version = "HTTP/1.0 " if head.startswith("1.0 ") else "HTTP/1.1 "
    text = version + head.removeprefix("1.0 ").replace("|", "\r\n")
    assert parse_head(text.encode()) == expected


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/2 200 OK",
        b"ICY 200 OK",
        b"HTTP/1.1 2x0 OK",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c",
        b"HTTP/1.1 200 OK\r\nno colon here",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1",
    ],
)
def test_parse_head_refuses(head: bytes):
    with pytest.raises(ProtocolError):
        parse_head(head)


def test_a_malformed_answer_is_a_transient_protocol_error():
    async def scenario() -> None:
        garbage = b"SPDY/3 200 OK\r\n\r\n"
        async with raw_server(answering(garbage)) as (url, _), started(url) as t:
            result = await t.send([event(0)])
        assert result.retry == {0: "ProtocolError: bad status line 'SPDY/3 200 OK'"}

    asyncio.run(scenario())


def test_the_pool_alone_reads_answer_bodies_and_keeps_their_start():
    async def scenario() -> None:
        body = b"e" * 100_000
        answer = b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        async with raw_server(answering(answer)) as (url, raw):
            port = int(url.split(":")[2].strip("/"))
            pool = ConnectionPool("127.0.0.1", port, max_connections=1, timeout=5)
            try:
                head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
                for _ in range(2):
                    response = await pool.request(head, b"")
                    assert response.status == 500 and response.keep_alive
                    assert response.body == body[:4096]
            finally:
                await pool.close()
            assert raw.connections == 1

    asyncio.run(scenario())


# -- Retry-After, pure ---------------------------------------------------------------------

NOW = 784111777.0  # Sun, 06 Nov 1994 08:49:37 GMT


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        (" 120 ", 120.0),
        ("0", None),  # no wait asked for: the computed backoff applies
        ("Sun, 06 Nov 1994 08:49:44 GMT", 7.0),  # IMF-fixdate
        ("Sunday, 06-Nov-94 08:49:44 GMT", 7.0),  # obsolete RFC 850 form
        ("Sun Nov  6 08:49:44 1994", 7.0),  # obsolete asctime form (GMT)
        ("Sun, 06 Nov 1994 08:49:37 GMT", None),  # now
        ("Sun, 06 Nov 1994 08:40:00 GMT", None),  # past
        ("", None),
        ("soon", None),
        ("-3", None),
        ("1.5", None),  # delta-seconds are digits only
        ("\u0667", None),  # a digit, but not an ASCII one
    ],
)
def test_retry_after_seconds(value: str, seconds: float | None):
    assert retry_after_seconds(value, NOW) == seconds


def test_retry_after_seconds_beyond_a_float_is_infinite():
    assert retry_after_seconds("9" * 400, NOW) == float("inf")  # capped by maxBackoff later
