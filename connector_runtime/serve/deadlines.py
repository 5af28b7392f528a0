"""The HTTP server: idle and body deadlines kept by one sweep a second, and connections
that answer every request (:mod:`connector_runtime.serve.connection`).

Tornado enforces ``idle_connection_timeout`` (waiting for a request's headers) and
``body_timeout`` (reading its body) by wrapping each read in a timeout future; at thousands
of requests a second those wrappers are a measurable share of a core. :class:`TimedServer`
switches them off and keeps the same two deadlines in a dict instead: set when a request
starts and when its headers arrived, cleared once its body is read, and checked by a
periodic callback that closes every connection past its deadline. A deadline fires within
a second of being due.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import tornado.httpserver
from tornado import httputil, iostream
from tornado.http1connection import HTTP1Connection
from tornado.ioloop import PeriodicCallback

from connector_runtime.serve.connection import Connection, Lingerer, ServerConnection

log = logging.getLogger("connector_runtime.serve.app")

SWEEP_EVERY = 1.0
"""Seconds between looks at the deadlines."""


class TimedServer(tornado.httpserver.HTTPServer):
    """``HTTPServer`` with ``idle_timeout`` and ``body_timeout`` kept by a sweep."""

    def initialize(  # type: ignore[override]
        self, *args: Any, idle_timeout: float, body_timeout: float, **kwargs: Any
    ) -> None:
        super().initialize(*args, **kwargs)
        self.conn_params.header_timeout = None  # our sweep keeps it, not a future per read
        self.conn_params.body_timeout = None
        self.idle_timeout = idle_timeout
        self.body_timeout = body_timeout
        self.deadlines: dict[HTTP1Connection, tuple[float, str]] = {}
        """Requests whose headers or body are still being read: (deadline, what)."""
        self._sweeper: PeriodicCallback | None = None
        self.lingerer = Lingerer()

    def handle_stream(self, stream: iostream.IOStream, address: tuple[Any, ...]) -> None:
        context = tornado.httpserver._HTTPRequestContext(
            stream, address, self.protocol, self.trusted_downstream
        )
        limit = self.conn_params.max_body_size or 100 * 1024 * 1024
        conn = ServerConnection(stream, self.conn_params, context, self.lingerer, limit)
        self._connections.add(conn)
        conn.start_serving(self)

    def start_request(
        self, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> httputil.HTTPMessageDelegate:
        if self._sweeper is None:
            self._sweeper = PeriodicCallback(self._sweep_now, SWEEP_EVERY * 1000)
            self._sweeper.start()
        delegate = super().start_request(server_conn, request_conn)
        if not isinstance(request_conn, HTTP1Connection):
            return delegate
        self.deadlines[request_conn] = (time.monotonic() + self.idle_timeout, "headers")
        return _Timed(delegate, request_conn, self)

    def _sweep_now(self) -> None:
        self.sweep()

    def sweep(self, now: float | None = None) -> int:
        """Close the connections past their deadline; returns how many."""
        stamp = time.monotonic() if now is None else now
        closed = 0
        for conn, (deadline, what) in list(self.deadlines.items()):
            stream = conn.stream
            if stream is None or stream.closed():
                del self.deadlines[conn]
            elif stamp >= deadline:
                del self.deadlines[conn]
                log.info("closed a connection from %s: %s not read in time", conn.context, what)
                stream.close()
                closed += 1
        return closed

    async def close_all_connections(self) -> None:
        if self._sweeper is not None:
            self._sweeper.stop()
            self._sweeper = None
        await super().close_all_connections()


class _Timed(httputil.HTTPMessageDelegate):
    """Passes one request through, moving its deadline as it is read."""

    __slots__ = ("conn", "delegate", "server")

    def __init__(
        self, delegate: httputil.HTTPMessageDelegate, conn: HTTP1Connection, server: TimedServer
    ) -> None:
        self.delegate = delegate
        self.conn = conn
        self.server = server

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Any:
        conn = self.conn
        if isinstance(conn, Connection) and conn.problem is not None:
            self.server.deadlines.pop(conn, None)
            self.delegate = _Answered()
            conn.refuse()
            return None
        server = self.server
        server.deadlines[conn] = (time.monotonic() + server.body_timeout, "body")
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Any:
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        self.server.deadlines.pop(self.conn, None)
        self.delegate.finish()

    def on_connection_close(self) -> None:
        self.server.deadlines.pop(self.conn, None)
        self.delegate.on_connection_close()


class _Answered(httputil.HTTPMessageDelegate):
    """Stands in for the application after the connection answered a request itself."""
