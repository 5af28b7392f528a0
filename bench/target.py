"""A counting CloudEvents HTTP target: takes every POST, counts events, answers 200.

Raw asyncio (an ``asyncio.Protocol`` with a small HTTP/1.1 parser) so that the target is
never what limits a benchmark. What a request counts as:

- ``application/cloudevents-batch+json``: one event per top-level element, counted as the
  occurrences of ``"specversion"`` (no JSON parsing; bench records never contain that
  word), or, with ``--track-ids``, parsed with orjson;
- ``application/cloudevents+json`` (structured) or ``ce-`` headers (binary): one event.

With ``--track-ids`` the target also keeps every event id, so the count of *distinct*
events is exact and redelivered events show up as ``repeats``.

A second port, the control port, answers ``GET /count`` with JSON (events, distinct,
repeats, requests, bytes, first and last arrival on the ``time.monotonic()`` clock, which
is shared by every process on the machine), and takes ``POST /down`` (close the event port
and drop its connections: a target outage, connections refused), ``POST /up`` and
``POST /reset``. Chunked request bodies are not supported (411); the runtime's client sends
Content-Length.

To measure what the target takes on one core, run it pinned and point the load generator at
it with ``--kind ce-binary`` (``bench/run.py --scenario target-binary`` does).

    python bench/target.py --port 9000 --control-port 9001
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from typing import Any

import orjson

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
LENGTH_REQUIRED = b"HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
MAX_HEAD = 64 * 1024


class Counter:
    def __init__(self, track_ids: bool) -> None:
        self.track_ids = track_ids
        self.ids: set[str] = set()
        self.reset()

    def reset(self) -> None:
        self.events = 0
        self.requests = 0
        self.bytes = 0
        self.repeats = 0
        self.first = 0.0
        self.last = 0.0
        self.ids.clear()

    def take(self, headers: dict[bytes, bytes], body: bytes) -> None:
        ctype = headers.get(b"content-type", b"")
        if ctype.startswith(b"application/cloudevents-batch+json"):
            if self.track_ids:
                ids = [str(e["id"]) for e in orjson.loads(body)]
            else:
                n = body.count(b'"specversion"')
                ids = []
        elif ctype.startswith(b"application/cloudevents+json"):
            ids = [str(orjson.loads(body)["id"])] if self.track_ids else []
            n = 1
        else:
            ce_id = headers.get(b"ce-id")
            if ce_id is None:
                return
            ids = [ce_id.decode()] if self.track_ids else []
            n = 1
        if self.track_ids:
            n = len(ids)
            before = len(self.ids)
            self.ids.update(ids)
            self.repeats += n - (len(self.ids) - before)
        now = time.monotonic()
        if not self.first:
            self.first = now
        self.last = now
        self.events += n
        self.requests += 1
        self.bytes += len(body)

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "distinct": len(self.ids) if self.track_ids else None,
            "repeats": self.repeats if self.track_ids else None,
            "requests": self.requests,
            "bytes": self.bytes,
            "first": self.first,
            "last": self.last,
            "now": time.monotonic(),
        }


class HTTPProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive and Content-Length bodies; ``handle`` answers each request."""

    def __init__(self, server: Target, control: bool) -> None:
        self.server = server
        self.control = control
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.pending: tuple[bytes, bytes, dict[bytes, bytes], int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if not self.control:
            self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        transport = self.transport
        assert transport is not None
        while True:
            if self.pending is None:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > MAX_HEAD:
                        transport.write(BAD_REQUEST)
                        transport.close()
                    return
                lines = bytes(buf[:end]).split(b"\r\n")
                del buf[: end + 4]
                try:
                    method, path, _ = lines[0].split(b" ", 2)
                except ValueError:
                    transport.write(BAD_REQUEST)
                    transport.close()
                    return
                headers: dict[bytes, bytes] = {}
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    headers[name.strip().lower()] = value.strip()
                if b"chunked" in headers.get(b"transfer-encoding", b""):
                    transport.write(LENGTH_REQUIRED)
                    transport.close()
                    return
                self.pending = (method, path, headers, int(headers.get(b"content-length", 0)))
            method, path, headers, length = self.pending
            if len(buf) < length:
                return
            body = bytes(buf[:length])
            del buf[:length]
            self.pending = None
            transport.write(self.server.handle(self.control, method, path, headers, body))
            if headers.get(b"connection", b"").lower() == b"close":
                transport.close()
                return


class Target:
    def __init__(self, host: str, port: int, control_port: int, track_ids: bool) -> None:
        self.host = host
        self.port = port
        self.control_port = control_port
        self.counter = Counter(track_ids)
        self.connections: set[HTTPProtocol] = set()
        self.events_server: asyncio.Server | None = None

    def handle(
        self, control: bool, method: bytes, path: bytes, headers: dict[bytes, bytes], body: bytes
    ) -> bytes:
        if not control:
            if method == b"POST":
                self.counter.take(headers, body)
            return OK
        if path == b"/down":
            asyncio.get_running_loop().create_task(self.down())
        elif path == b"/up":
            asyncio.get_running_loop().create_task(self.up())
        elif path == b"/reset":
            self.counter.reset()
        answer = orjson.dumps({**self.counter.as_dict(), "up": self.events_server is not None})
        return (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (
                len(answer),
                answer,
            )
        )

    async def up(self) -> None:
        if self.events_server is None:
            loop = asyncio.get_running_loop()
            self.events_server = await loop.create_server(
                lambda: HTTPProtocol(self, False), self.host, self.port, reuse_address=True
            )

    async def down(self) -> None:
        server, self.events_server = self.events_server, None
        if server is not None:
            server.close()
            for conn in list(self.connections):
                if conn.transport is not None:
                    conn.transport.abort()
            await server.wait_closed()

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        await self.up()
        control = await loop.create_server(
            lambda: HTTPProtocol(self, True), self.host, self.control_port, reuse_address=True
        )
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print(f"target on {self.host}:{self.port}, control on :{self.control_port}", flush=True)
        await stop.wait()
        control.close()
        await self.down()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9000)
    p.add_argument("--control-port", type=int, default=9001)
    p.add_argument("--track-ids", action="store_true", help="keep ids: exact distinct counts")
    args = p.parse_args()
    asyncio.run(Target(args.host, args.port, args.control_port, args.track_ids).serve())


if __name__ == "__main__":
    main()
