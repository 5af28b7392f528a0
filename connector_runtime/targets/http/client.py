"""A small HTTP/1.1 client on ``asyncio.Protocol``, made for the ``http`` target alone.

One origin, one request at a time per connection. :class:`ConnectionPool` keeps at most
``max_connections`` connections alive: also the bound on requests in flight. A request is
one ``transport.write`` (two for a big body, not to copy it); answers are parsed in
``data_received`` (length, chunked or up to the close; ``Connection: close`` honoured).

Errors: ``TimeoutError`` when no complete answer came within the total timeout (waiting for
a connection included), ``ConnectionError`` (refused, reset, :class:`ServerDisconnected`)
and other ``OSError`` for the network, :class:`ProtocolError` for an answer that is not
HTTP/1.x. A request that fails on a *reused* connection before a byte of the answer came
(the server closed it while idle) is sent again once, on a new connection.
"""

from __future__ import annotations

import asyncio
import math
import re
import ssl
from collections import deque
from typing import Any, NamedTuple

KEPT_BODY = 4096  # bytes of an answer's body kept (for error messages); the rest is dropped
MAX_HEAD = 64 * 1024  # longest answer head (status line and headers) or trailers accepted
IDLE_LIMIT = 30.0  # seconds idle after which a connection is closed instead of reused
BIG_BODY = 64 * 1024  # bodies above this are written after the head, not joined to it

_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _TRAILER, _UNTIL_EOF, _DONE = range(7)
_CHUNK_LINE = re.compile(rb"(?:\r\n)?([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?\r\n")


class ProtocolError(Exception):
    """The server's answer is not valid HTTP/1.x."""


class ServerDisconnected(ConnectionError):
    """The connection closed before a complete answer arrived."""


class Response(NamedTuple):
    """An answer: status, the first :data:`KEPT_BODY` bytes of the body, its media type,
    and its ``Retry-After`` header as sent (empty when none)."""

    status: int
    body: bytes
    content_type: str
    keep_alive: bool
    retry_after: str = ""


Head = tuple[int, int, int, str, bool, str]
"""What :func:`parse_head` finds in an answer's head."""


def parse_head(head: bytes) -> Head:
    """An answer's status line and headers (CRLF-separated, no final empty line) →
    (status, parser state for the body, its length, media type, keep the connection?,
    ``Retry-After`` as sent). An interim answer (1xx) gives the state ``_HEAD``: the real
    answer follows."""
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if version not in ("HTTP/1.1", "HTTP/1.0") or not code.isascii() or not code.isdigit():
        raise ProtocolError(f"bad status line {lines[0][:40]!r}")
    if code == "101":  # no protocol was asked for
        raise ProtocolError("unexpected 101 Switching Protocols")
    status = int(code)
    length: int | None = None
    coding: str | None = None
    tokens = ctype = retry_after = ""
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise ProtocolError(f"bad header line {line[:40]!r}")
        name = name.lower()
        if name == "content-length":
            value = value.strip()
            if not (value.isascii() and value.isdigit()) or length not in (None, int(value)):
                raise ProtocolError(f"bad Content-Length {value[:20]!r}")
            length = int(value)
        elif name == "transfer-encoding":
            coding = value.rsplit(",", 1)[-1].strip().lower()
        elif name == "connection":
            tokens += "," + value.lower()
        elif name == "content-type":
            ctype = value.strip()
        elif name == "retry-after":
            retry_after = value.strip()
    options = {t.strip() for t in tokens.split(",")}
    keep = "close" not in options and (version == "HTTP/1.1" or "keep-alive" in options)
    if status < 200:
        return status, _HEAD, 0, ctype, keep, ""
    if status in (204, 304) or (length == 0 and coding is None):
        return status, _DONE, 0, ctype, keep, retry_after
    if coding is not None:  # a body framed by its encoding, or by the end of the connection
        chunked = coding == "chunked"
        state = _CHUNK_SIZE if chunked else _UNTIL_EOF
        return status, state, 0, ctype, keep and chunked, retry_after
    if length is not None:
        return status, _LENGTH, length, ctype, keep, retry_after
    return status, _UNTIL_EOF, 0, ctype, False, retry_after


_HEADS: dict[bytes, Head] = {}  # targets repeat a few heads


class _Connection(asyncio.Protocol):
    """One connection: writes a request, parses its answer into the future ``pending``.
    ``idle``: in the pool's idle list; ``served``: answers so far; ``answered``: a byte of
    the current answer arrived; ``deadline``: of the request in flight."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.closed = self.idle = self.answered = False
        self.idle_since = self.deadline = 0.0
        self.served, self._keep_alive = 0, True
        self.lost: asyncio.Future[None] = pool.loop.create_future()
        self.pending: asyncio.Future[Response] | None = None
        self._buf = self._kept = b""  # unparsed rest; the body's first bytes
        self._state, self._remaining, self._status, self._ctype = _HEAD, 0, 0, ""
        self._retry_after = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.pool.connections.add(self)

    def exchange(self, head: bytes, body: bytes, deadline: float) -> asyncio.Future[Response]:
        """Write one request; the future resolves to the answer or fails."""
        self.answered = False
        transport = self.transport
        if self.closed or transport is None or transport.is_closing():
            raise ServerDisconnected("the connection closed while idle")
        self.pending = fut = self.pool.loop.create_future()
        self._state, self._buf, self._kept, self.deadline = _HEAD, b"", b"", deadline
        self.pool.watch(deadline)
        for part in (head + body,) if len(body) <= BIG_BODY else (head, body):
            transport.write(part)
        return fut

    def close(self, abort: bool = False) -> None:
        self.closed = True
        if self.transport is not None:
            (self.transport.abort if abort else self.transport.close)()

    def settle(self, outcome: Response | BaseException) -> None:
        fut, self.pending = self.pending, None
        if fut is None or fut.done():
            pass
        elif isinstance(outcome, Response):
            fut.set_result(outcome)
        else:
            fut.set_exception(outcome)

    def data_received(self, data: bytes) -> None:
        if self.pending is None:  # bytes nobody asked for: the state is unknown, retire
            return self.close()
        self.answered = True
        if self._buf:
            data, self._buf = self._buf + data, b""
        try:
            self._parse(data)
        except ProtocolError as exc:
            self.settle(exc)
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:  # at EOF too (eof_received)
        self.closed = True
        self.pool.connections.discard(self)
        if self.pending is not None:
            if self._state == _UNTIL_EOF and exc is None:
                self._finish(leftover=False)
            else:
                gone = ServerDisconnected("the server closed the connection before answering")
                self.settle(exc if isinstance(exc, OSError) else gone)
        if self.idle:
            self.pool.lost_idle(self)
        self.lost.set_result(None)

    def _parse(self, data: bytes) -> None:
        pos, end = 0, len(data)
        while True:
            state = self._state
            if state == _HEAD:
                stop = data.find(b"\r\n\r\n", pos)
                if stop < 0:
                    return self._need(data, pos, MAX_HEAD)
                head = data[pos:stop]
                if (parsed := _HEADS.get(head)) is None:
                    parsed = parse_head(head)
                    if len(_HEADS) >= 256:
                        _HEADS.clear()
                    if len(head) <= 1024:
                        _HEADS[head] = parsed
                status, state, remaining, ctype, keep, retry_after = parsed
                self._status, self._state, self._remaining = status, state, remaining
                self._ctype, self._keep_alive, self._retry_after = ctype, keep, retry_after
                pos = stop + 4
            elif state in (_LENGTH, _CHUNK_DATA):
                take = min(self._remaining, end - pos)
                if take and len(self._kept) < KEPT_BODY:
                    self._kept += data[pos : pos + min(take, KEPT_BODY - len(self._kept))]
                pos += take
                self._remaining -= take
                if self._remaining:
                    return None
                self._state = _DONE if state == _LENGTH else _CHUNK_SIZE
            elif state == _CHUNK_SIZE:  # [CRLF after the previous chunk] size [;ext] CRLF
                match = _CHUNK_LINE.match(data, pos)
                if match is None:
                    if data.find(b"\r\n", pos + 2 * data.startswith(b"\r\n", pos)) < 0:
                        return self._need(data, pos, 1024)
                    raise ProtocolError(f"bad chunk size line {data[pos : pos + 20]!r}")
                self._remaining = int(match[1], 16)
                self._state = _CHUNK_DATA if self._remaining else _TRAILER
                pos = match.end()
            elif state == _TRAILER:  # an empty line, or trailer fields and one
                stop = -2 if data.startswith(b"\r\n", pos) else data.find(b"\r\n\r\n", pos)
                if stop == -1:
                    return self._need(data, pos, MAX_HEAD)
                self._state, pos = _DONE, (pos if stop == -2 else stop + 2) + 2
            elif state == _UNTIL_EOF:
                self._kept += data[pos : pos + KEPT_BODY - len(self._kept)]
                return None
            else:  # _DONE
                return self._finish(leftover=pos < end)

    def _need(self, data: bytes, pos: int, limit: int) -> None:  # keep the rest for later
        if len(data) - pos > limit:
            raise ProtocolError(f"answer line or head over {limit} bytes")
        self._buf = data[pos:]

    def _finish(self, leftover: bool) -> None:
        self._state = _HEAD
        self.served += 1
        # Bytes past the answer were not asked for: do not reuse the connection.
        keep = self._keep_alive and not leftover
        self.settle(Response(self._status, self._kept, self._ctype, keep, self._retry_after))


class ConnectionPool:
    """At most ``max_connections`` kept-alive connections to one origin (also the bound on
    requests in flight). Create it inside the event loop that will use it."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        max_connections: int,
        timeout: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.host, self.port, self.timeout = host, port, timeout
        self.connections: set[_Connection] = set()
        tls = {"ssl": ssl_context, "server_hostname": host}
        self._tls: dict[str, Any] = tls if ssl_context is not None else {}
        self._max = max_connections
        self._slots = 0  # connections open or opening, counting slots handed to waiters
        self._idle: list[_Connection] = []
        self._waiters: deque[tuple[float, asyncio.Future[_Connection | None]]] = deque()
        self.watchdog: asyncio.TimerHandle | None = None
        self._closed = False

    async def request(self, head: bytes, body: bytes, deadline: float | None = None) -> Response:
        """Send ``head`` and ``body``; return the complete answer (errors: see above).
        ``deadline`` (on the loop's clock): when to give up; default: ``timeout`` from now."""
        if self._closed:
            raise ServerDisconnected("the connection pool is closed")
        now = self.loop.time()
        deadline = now + self.timeout if deadline is None else deadline
        if deadline <= now:  # spent by the requests before this one, in the same call
            raise TimeoutError(f"no complete answer within {self.timeout:g}s")
        conn = self._take_idle(now) if self._idle else None
        if conn is None:
            conn = await self._acquire(deadline)
        try:
            try:
                response = await conn.exchange(head, body, deadline)
            except ConnectionError:
                if not conn.served or conn.answered or self._closed:  # a new one, or too late
                    raise
                # The server closed the kept-alive connection as we sent: once more on a new
                # one, in the same slot. POSTing an event twice is safe: events carry ids and
                # delivery is at-least-once anyway, so receivers deduplicate by id.
                conn.close()
                conn = await self._connect(deadline)
                response = await conn.exchange(head, body, deadline)
        except BaseException:
            conn.close()
            self._free_slot()
            raise
        self._release(conn, response.keep_alive)
        return response

    async def close(self) -> None:
        """Close every connection; fail the callers still waiting for one."""
        self._closed = True
        if self.watchdog is not None:
            self.watchdog.cancel()
        while self._waiters:
            _, fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(ServerDisconnected("the connection pool closed"))
        self._idle.clear()
        if closing := list(self.connections):
            for conn in closing:
                conn.close()
            await asyncio.wait([conn.lost for conn in closing], timeout=2)

    def watch(self, deadline: float) -> None:
        """Have :meth:`expire` run by ``deadline``: one timer per pool, not per request."""
        if self.watchdog is None or deadline < self.watchdog.when():
            if self.watchdog is not None:
                self.watchdog.cancel()
            self.watchdog = self.loop.call_at(deadline, self.expire)

    def expire(self) -> None:
        """Fail the requests and waiters past their deadline; watch for the next one."""
        self.watchdog = None
        now, soonest = self.loop.time(), math.inf
        for conn in list(self.connections):
            if conn.pending is not None and conn.deadline <= now:
                conn.settle(TimeoutError(f"no complete answer within {self.timeout:g}s"))
                conn.close(abort=True)
            elif conn.pending is not None:
                soonest = min(soonest, conn.deadline)
        for deadline, fut in self._waiters:
            if not fut.done() and deadline <= now:
                fut.set_exception(TimeoutError(f"no free connection within {self.timeout:g}s"))
            elif not fut.done():
                soonest = min(soonest, deadline)
        if soonest < math.inf:
            self.watch(soonest)

    def lost_idle(self, conn: _Connection) -> None:  # closed while idle: the server ended it
        conn.idle = False
        if conn in self._idle:
            self._idle.remove(conn)
            self._free_slot()

    def _take_idle(self, now: float) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()  # the most recently used: the least likely to be stale
            conn.idle = False
            if now - conn.idle_since <= IDLE_LIMIT:
                return conn
            conn.close()
            self._free_slot()
        return None

    async def _acquire(self, deadline: float) -> _Connection:
        if self._slots < self._max:
            self._slots += 1
        else:
            fut: asyncio.Future[_Connection | None] = self.loop.create_future()
            self._waiters.append((deadline, fut))
            self.watch(deadline)
            try:
                conn = await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    self._release(fut.result(), True)  # handed over just as we were cancelled
                raise
            if conn is not None:  # else a freed slot was handed over: connect in it
                return conn
        try:
            return await self._connect(deadline)
        except BaseException:
            self._free_slot()
            raise

    async def _connect(self, deadline: float) -> _Connection:
        try:
            async with asyncio.timeout_at(deadline):
                _, conn = await self.loop.create_connection(
                    lambda: _Connection(self), self.host, self.port, **self._tls
                )
        except TimeoutError:
            raise TimeoutError(f"no connection within {self.timeout:g}s") from None
        if self._closed:
            conn.close()
            raise ServerDisconnected("the connection pool closed")
        return conn

    def _release(self, conn: _Connection | None, reusable: bool) -> None:  # None: a slot
        if conn is None or not reusable or conn.closed or self._closed:
            if conn is not None:
                conn.close()
            self._free_slot()
        elif (fut := self._next_waiter()) is not None:
            fut.set_result(conn)
        else:
            conn.idle, conn.idle_since = True, self.loop.time()
            self._idle.append(conn)

    def _free_slot(self) -> None:
        if (fut := self._next_waiter()) is not None:
            fut.set_result(None)  # the slot passes to the waiter
        else:
            self._slots -= 1

    def _next_waiter(self) -> asyncio.Future[_Connection | None] | None:
        while self._waiters:
            _, fut = self._waiters.popleft()
            if not fut.done():
                return fut
        return None
