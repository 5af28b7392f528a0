"""HTTP/1.1 connections that answer every request in the JSON error contract, and close
without resetting the client.

Tornado's own connection answers a framing mistake (a Content-Length that is not a
non-negative integer, Content-Length together with Transfer-Encoding, a body declared over
its hard limit, a malformed header line) with a bare ``400 Bad Request`` and no body, and
drops a connection whose header block is too long without any answer. :class:`Connection`
checks the framing as soon as the header block is parsed and answers such a request itself
(``{"error": ...}``, ``X-Request-Id``, ``Connection: close``) before any body byte is read;
:class:`ServerConnection` answers an over-long header block with 431.

Closing: when a request is answered before its body was read (the token is wrong, the body
is declared too large, the framing is broken), the client may still be sending. Closing a
socket with unread bytes makes the kernel send a reset, and a client that is still writing
then sees "connection reset" instead of the answer. :class:`Lingerer` closes politely: it
keeps a duplicate of the socket, shuts down the sending side (the client gets the answer and
then end-of-file), reads and discards what still comes for at most :data:`LINGER_SECONDS`
and :data:`LINGER_BYTES`, and then closes. Nothing read there is kept: an unanswered body
costs a 64 KiB read buffer while it drains, never its size.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import orjson
from tornado import httputil, iostream
from tornado.http1connection import HTTP1Connection, HTTP1ServerConnection
from tornado.ioloop import IOLoop

from connector_runtime.sources.handler import new_request_id

log = logging.getLogger("connector_runtime.serve.app")

LINGER_SECONDS = 5.0
"""How long a connection answered before its body was read keeps draining that body."""
LINGER_BYTES = 4 * 1024 * 1024
"""How much of such a body is read (and discarded) before the connection is closed anyway."""
MAX_LINGERING = 1024
"""Connections draining at once; past that, a connection is closed straight away."""

_REASONS = {
    400: "Bad Request",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
}


@dataclass
class Lingerer:
    """Closes answered connections without resetting them (see the module's docstring)."""

    seconds: float = LINGER_SECONDS
    max_bytes: int = LINGER_BYTES
    limit: int = MAX_LINGERING
    draining: dict[int, _Draining] = field(default_factory=dict)

    def take(self, sock: socket.socket | None) -> None:
        """Drain ``sock``'s connection after its owner closes it (call before the close)."""
        if sock is None or len(self.draining) >= self.limit:
            return
        try:
            fd = os.dup(sock.fileno())
        except OSError:
            return
        dup = socket.socket(fileno=fd)
        try:
            dup.setblocking(False)
            dup.shutdown(socket.SHUT_WR)  # the answer was written: end-of-file follows it
        except OSError:
            dup.close()
            return
        loop = IOLoop.current()
        timer = loop.call_later(self.seconds, self._end, fd)
        self.draining[fd] = _Draining(dup, timer)
        loop.add_handler(fd, self._readable, IOLoop.READ)

    def _readable(self, fd: int, _events: int) -> None:
        entry = self.draining.get(fd)
        if entry is None:
            return
        while True:
            try:
                data = entry.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                break
            entry.read += len(data)
            if not data or entry.read > self.max_bytes:
                break
        self._end(fd)

    def _end(self, fd: int) -> None:
        entry = self.draining.pop(fd, None)
        if entry is None:
            return
        loop = IOLoop.current()
        loop.remove_handler(fd)
        loop.remove_timeout(entry.timer)
        entry.sock.close()


@dataclass
class _Draining:
    sock: socket.socket
    timer: object
    read: int = 0


def error_bytes(status: int, detail: str, request_id: str) -> bytes:
    """A complete HTTP/1.1 error answer in the JSON contract, closing the connection."""
    body = orjson.dumps({"error": detail})
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"X-Request-Id: {request_id}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def framing_problem(headers: httputil.HTTPHeaders, max_body: int) -> tuple[int, str] | None:
    """Why the body framing of a request cannot be honoured (status, reason), or None."""
    chunked = "Transfer-Encoding" in headers
    if "Content-Length" in headers:
        if chunked:
            return 400, "Content-Length and Transfer-Encoding together"
        values = {v.strip() for v in headers["Content-Length"].split(",")}
        if len(values) != 1:
            return 400, "conflicting Content-Length values"
        value = values.pop()
        if not value.isascii() or not value.isdigit():
            return 400, "Content-Length is not a non-negative integer"
        if int(value) > max_body:
            return 413, f"body larger than {max_body} bytes"
    elif chunked and headers["Transfer-Encoding"].strip().lower() != "chunked":
        return 501, "Transfer-Encoding other than chunked"
    return None


def origin_form(start_line: str) -> str:
    """The request line with an absolute-form target (``POST http://host/path``, which
    RFC 9112 obliges servers to accept) rewritten to origin form (``POST /path``)."""
    method, _, rest = start_line.partition(" ")
    target, _, version = rest.rpartition(" ")
    if not target[:8].lower().startswith(("http://", "https://")):
        return start_line
    parts = urllib.parse.urlsplit(target)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return f"{method} {path} {version}"


class Connection(HTTP1Connection):
    """One request on a server connection: framing checked before the application sees
    the request, polite closing after an early answer."""

    def __init__(
        self,
        stream: iostream.IOStream,
        params: Any,
        context: object,
        lingerer: Lingerer,
        max_body: int,
    ) -> None:
        super().__init__(stream, False, params, context)
        self.lingerer = lingerer
        self.max_body = max_body
        self.headers_read = False
        self.problem: tuple[int, str] | None = None
        """A framing mistake found in the header block: :meth:`refuse` answers it."""
        self._linger = False

    def _parse_headers(self, data: bytes) -> tuple[str, httputil.HTTPHeaders]:
        self.headers_read = True
        try:
            start_line, headers = super()._parse_headers(data)
            start_line = origin_form(start_line)
            httputil.parse_request_start_line(start_line)
        except httputil.HTTPInputError:
            self.problem = (400, "malformed request line or header")
            return "GET / HTTP/1.1", httputil.HTTPHeaders({"Connection": "close"})
        self.problem = framing_problem(headers, self.max_body)
        if self.problem is not None:  # no body is read: the answer closes the connection
            headers.pop("Content-Length", None)
            headers.pop("Transfer-Encoding", None)
        return start_line, headers

    def refuse(self) -> None:
        """Answer the framing problem found in the header block and close."""
        assert self.problem is not None
        status, detail = self.problem
        request_id = new_request_id()
        log.info("request %s: %d %s", request_id, status, detail)
        body = orjson.dumps({"error": detail})
        headers = httputil.HTTPHeaders(
            {
                "Content-Type": "application/json",
                "Content-Length": str(len(body)),
                "X-Request-Id": request_id,
                "Connection": "close",
            }
        )
        self._linger = True
        self.write_headers(
            httputil.ResponseStartLine("HTTP/1.1", status, _REASONS[status]), headers, body
        )
        self.finish()

    def _finish_request(self, future: asyncio.Future[None] | None) -> None:
        if (
            self._disconnect_on_finish
            and (self._linger or not self._read_finished)
            and self.stream is not None
            and not self.stream.closed()
        ):
            self.lingerer.take(self.stream.socket)  # answered before the body: drain it
        super()._finish_request(future)


class ServerConnection(HTTP1ServerConnection):
    """A TCP connection's request loop, built on :class:`Connection`; a header block over
    the limit gets a 431 answer instead of a silent close."""

    def __init__(
        self,
        stream: iostream.IOStream,
        params: Any,
        context: object,
        lingerer: Lingerer,
        max_body: int,
    ) -> None:
        super().__init__(stream, params, context)
        self.lingerer = lingerer
        self.max_body = max_body
        self.current: Connection | None = None
        # The stream closes itself when a header block outgrows its read limit; answer
        # first (the only place that sees it happen).
        stream.close = self._close_stream  # type: ignore[method-assign]

    async def _server_request_loop(self, delegate: httputil.HTTPServerConnectionDelegate) -> None:
        try:
            while True:
                conn = self.current = Connection(
                    self.stream, self.params, self.context, self.lingerer, self.max_body
                )
                request_delegate = delegate.start_request(self, conn)
                try:
                    ret = await conn.read_response(request_delegate)
                except (
                    iostream.StreamClosedError,
                    iostream.UnsatisfiableReadError,
                    asyncio.CancelledError,
                ):
                    return
                except Exception:
                    log.exception("serving a connection failed")
                    conn.close()
                    return
                if not ret:
                    return
                await asyncio.sleep(0)
        finally:
            self.stream.__dict__.pop("close", None)  # no cycle left behind
            delegate.on_close(self)

    def _close_stream(self, exc_info: Any = False) -> None:
        stream = self.stream
        current = self.current
        if (
            isinstance(exc_info, iostream.UnsatisfiableReadError)
            and not stream.closed()
            and current is not None
            and not current.headers_read
        ):
            request_id = new_request_id()
            limit = self.params.max_header_size
            detail = f"request headers larger than {limit} bytes"
            log.info("request %s: 431 %s", request_id, detail)
            with contextlib.suppress(OSError):
                stream.socket.send(error_bytes(431, detail, request_id))
            self.lingerer.take(stream.socket)
        type(stream).close(stream, exc_info)
