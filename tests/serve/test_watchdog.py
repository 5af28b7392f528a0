"""TimedServer: idle and body deadlines kept by a sweep instead of a timeout per read."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import tornado.web

from connector_runtime.serve.deadlines import TimedServer
from connector_runtime.testing import LoopThread, closed_within, free_port, post


class Echo(tornado.web.RequestHandler):
    def post(self) -> None:
        self.finish(b"%d" % len(self.request.body))


@pytest.fixture
def server(cr_loop: LoopThread) -> Iterator[tuple[TimedServer, int]]:
    port = free_port()

    async def start() -> TimedServer:
        app = tornado.web.Application([(r"/echo", Echo)])
        srv = TimedServer(app, idle_timeout=1.0, body_timeout=1.5)
        srv.listen(port, "127.0.0.1")
        return srv

    srv = cr_loop.run(start())
    yield srv, port

    async def stop() -> None:
        srv.stop()
        await srv.close_all_connections()

    cr_loop.run(stop())


def test_a_body_trickling_in_is_cut_at_its_deadline_not_kept_alive_by_each_byte(server):
    _, port = server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        started = time.monotonic()
        try:
            for _ in range(20):  # a byte every 0.25 s: 5 s in all, were it let through
                sock.sendall(b"x")
                time.sleep(0.25)
        except OSError:
            pass
        waited = time.monotonic() - started + closed_within(sock, 6)
    assert 1.4 <= waited < 3.5


def test_an_idle_keep_alive_connection_is_closed_and_answered_requests_leave_no_deadline(server):
    srv, port = server
    for _ in range(3):
        r = post(f"http://127.0.0.1:{port}/echo", b"12345")
        assert (r.status, r.body) == (200, b"5")
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        # The answered request left the connection waiting for its next request's head.
        assert 0.9 <= closed_within(sock, 6) < 2.5
    time.sleep(1.2)  # one sweep later, nothing is left behind
    assert srv.deadlines == {}
