"""The load generator: Auth0-style deliveries over kept-alive HTTP/1.1 connections.

``concurrency`` senders each own one connection and send one request at a time (a closed
loop, as Auth0's senders do), for ``duration`` seconds. The client is raw asyncio streams:
a request is two writes (head, body) and a response is one ``readuntil`` plus one
``readexactly``, so the generator costs little next to what it measures.

Kinds of load:

- ``auth0`` (default): JSON Lines bodies of ``batch`` records (see :mod:`records`), a
  ``filter_share`` of them of a type the bench manifest filters out; with ``dup_share``,
  that share of requests re-sends a body that was already acknowledged (a redelivery).
- ``ce-binary``: one CloudEvent per request in HTTP binary mode (``ce-`` headers, the
  record's data as body), to measure what the counting target takes;
- ``auth0-events``: one Auth0 Event Streams CloudEvent per request (structured JSON, a
  ``user.updated`` with a user profile as ``data``), as an event stream webhook sends.

Every request's latency and status are recorded. *Expected* is the number of records that
were acknowledged (2xx), pass the filter and were not redeliveries: exactly the events the
target must receive. The result is one JSON object on stdout.

Optional pacing: ``--rate`` caps records per second; ``--max-backlog`` (with
``--count-url``) pauses sending while more than that many expected events have not reached
the target yet, so a run measures a sustained end-to-end rate instead of filling a spool.

    python bench/loadgen.py http://127.0.0.1:8080/auth0 --batch 100 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import sys
import time
from array import array
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson
from records import BodyMaker, run_prefix, sample_data

RECENT_BODIES = 64


@dataclass
class Totals:
    requests: int = 0
    ok: int = 0
    records_sent: int = 0
    records_acked: int = 0
    expected: int = 0
    duplicates_sent: int = 0
    filtered_acked: int = 0
    errors: int = 0
    reconnects: int = 0
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    sut_accepted: int = 0
    sut_filtered: int = 0
    sut_duplicates: int = 0
    latencies: array[float] = field(default_factory=lambda: array("d"))
    first_send: float = 0.0
    last_ack: float = 0.0
    stopped: float = 0.0
    paused: float = 0.0


class _Client(asyncio.Protocol):
    """The protocol under :class:`Connection`: parses responses as bytes arrive."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionResetError("connection closed by the server"))

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        end = buf.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None:
            return
        head = bytes(buf[: end + 4]).lower()
        at = head.find(b"\r\ncontent-length:")
        length = int(head[at + 17 : head.index(b"\r\n", at + 2)]) if at >= 0 else 0
        if len(buf) < end + 4 + length:
            return
        content = bytes(buf[end + 4 : end + 4 + length])
        del buf[: end + 4 + length]
        waiter, self.waiter = self.waiter, None
        waiter.set_result((int(head[9:12]), content, b"\r\nconnection: close" in head))


class Connection:
    """One kept-alive HTTP/1.1 connection, one request at a time; reconnects when closed.

    An ``asyncio.Protocol`` rather than streams: a request is one ``write`` and the
    response is parsed in ``data_received``, which keeps the generator cheap. Responses
    must carry Content-Length (Tornado's and the target's do)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.client: _Client | None = None

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        _, self.client = await loop.create_connection(_Client, self.host, self.port)

    async def request(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        if self.client is None or self.client.lost:
            await self.connect()
        client = self.client
        assert client is not None and client.transport is not None
        waiter = client.waiter = asyncio.get_running_loop().create_future()
        client.transport.write(head + body if body else head)  # one segment when small
        status, content, close = await waiter
        if close:
            self.close()
        return status, content

    def close(self) -> None:
        if self.client is not None and self.client.transport is not None:
            self.client.transport.close()
        self.client = None


class Pacer:
    """Holds senders back for ``--rate`` and ``--max-backlog``."""

    def __init__(self, rate: float, max_backlog: int, count_url: str | None) -> None:
        self.rate = rate
        self.max_backlog = max_backlog
        self.count_url = count_url
        self.scheduled = 0
        self.start = 0.0
        self.delivered = 0
        self.baseline: int | None = None
        self.open = asyncio.Event()
        self.open.set()

    async def turn(self, records: int, totals: Totals) -> None:
        if self.rate:
            due = self.start + self.scheduled / self.rate
            self.scheduled += records
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        if not self.open.is_set():
            t = time.monotonic()
            await self.open.wait()
            totals.paused += time.monotonic() - t

    async def watch(self, totals: Totals, stop: asyncio.Event) -> None:
        """Poll the target's count and open/close the gate on the backlog."""
        if not (self.max_backlog and self.count_url):
            return
        parts = urlsplit(self.count_url)
        conn = Connection(parts.hostname or "127.0.0.1", parts.port or 80)
        head = f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode()
        while not stop.is_set():
            try:
                status, content = await conn.request(head, b"")
                count = int(orjson.loads(content)["events"]) if status == 200 else None
            except (OSError, ValueError):
                conn.close()
                count = None
            if count is not None:
                if self.baseline is None:
                    self.baseline = count
                self.delivered = count - self.baseline
                if totals.expected - self.delivered > self.max_backlog:
                    self.open.clear()
                else:
                    self.open.set()
            else:
                self.open.set()
            await asyncio.sleep(0.02)
        self.open.set()
        conn.close()


class Auth0Load:
    """Request heads and bodies of Auth0 JSON Lines deliveries."""

    def __init__(self, url: str, args: argparse.Namespace) -> None:
        parts = urlsplit(url)
        self.maker = BodyMaker(args.batch, args.filter_share, seed=args.seed)
        self.dup_share = args.dup_share
        self.recent: collections.deque[tuple[bytes, int]] = collections.deque(maxlen=RECENT_BODIES)
        self.rng = random.Random(args.seed + 1)
        lines = [
            f"POST {parts.path or '/'} HTTP/1.1",
            f"Host: {parts.netloc}",
            "User-Agent: auth0-log-stream-bench/1",
            "Content-Type: application/json",
        ]
        if args.token:
            lines.append(f"Authorization: {args.token}")
        self.head = ("\r\n".join(lines) + "\r\nContent-Length: %d\r\n\r\n").encode()

    def next(self) -> tuple[bytes, bytes, int, int, bool]:
        """(head, body, records, kept records, is a redelivery)."""
        if self.dup_share and self.recent and self.rng.random() < self.dup_share:
            body, kept = self.recent[self.rng.randrange(len(self.recent))]
            return self.head % len(body), body, self.maker.batch, kept, True
        body, kept = self.maker.body()
        return self.head % len(body), body, self.maker.batch, kept, False

    def acked(self, body: bytes, kept: int, redelivery: bool) -> None:
        if self.dup_share and not redelivery:
            self.recent.append((body, kept))


class BinaryCELoad:
    """One CloudEvent per request in HTTP binary mode (what the runtime sends a target)."""

    def __init__(self, url: str, args: argparse.Namespace) -> None:
        parts = urlsplit(url)
        self.data = sample_data()
        self.prefix = run_prefix().decode()
        self.counter = 0
        self.template = (
            f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "User-Agent: connector-runtime/0.1\r\nContent-Type: application/json\r\n"
            "ce-specversion: 1.0\r\nce-id: %s\r\n"
            "ce-source: https://bench-tenant.eu.auth0.example/\r\n"
            "ce-type: com.auth0.log.s\r\nce-time: 2024-06-01T00:47:51.849Z\r\n"
            "ce-subject: auth0|00000000000000000000abcd\r\n"
            "ce-auth0category: auth.login.success\r\nContent-Length: %d\r\n\r\n"
        )

    def next(self) -> tuple[bytes, bytes, int, int, bool]:
        self.counter += 1
        body = self.data[self.counter % len(self.data)]
        head = (self.template % (f"{self.prefix}{self.counter:026d}", len(body))).encode()
        return head, body, 1, 1, False

    def acked(self, body: bytes, kept: int, redelivery: bool) -> None:
        pass


class EventStreamLoad:
    """One Auth0 Event Streams CloudEvent per request, structured (``Bearer`` token)."""

    def __init__(self, url: str, args: argparse.Namespace) -> None:
        parts = urlsplit(url)
        self.prefix = run_prefix().decode()[-22:]
        self.counter = 0
        lines = [
            f"POST {parts.path or '/'} HTTP/1.1",
            f"Host: {parts.netloc}",
            "User-Agent: auth0-event-stream-bench/1",
            "Content-Type: application/json",
        ]
        if args.token:
            lines.append(f"Authorization: {args.token}")
        self.head = ("\r\n".join(lines) + "\r\nContent-Length: %d\r\n\r\n").encode()
        self.body = (
            b'{"id":"evt_%s","specversion":"1.0","type":"user.updated",'
            b'"source":"urn:auth0:bench-tenant.eu.auth0.example","time":"2025-02-01T12:34:56.789Z",'
            b'"a0tenant":"bench-tenant","a0stream":"est_QmVuY2hTdHJlYW0wMDAwMDE",'
            b'"data":{"object":{"user_id":"auth0|%s","email":"user%d@example.com",'
            b'"email_verified":true,"name":"Bench User","nickname":"bench",'
            b'"identities":[{"connection":"Username-Password-Authentication","provider":"auth0",'
            b'"isSocial":false}],"created_at":"2025-02-01T12:00:00.000Z",'
            b'"updated_at":"2025-02-01T12:34:56.789Z","logins_count":42}}}'
        )

    def next(self) -> tuple[bytes, bytes, int, int, bool]:
        self.counter += 1
        ident = f"{self.prefix[:10]}{self.counter:012d}".encode()
        body = self.body % (ident, ident, self.counter)
        return self.head % len(body), body, 1, 1, False

    def acked(self, body: bytes, kept: int, redelivery: bool) -> None:
        pass


async def sender(
    conn: Connection,
    load: Auth0Load | BinaryCELoad | EventStreamLoad,
    pacer: Pacer,
    totals: Totals,
    stop: asyncio.Event,
) -> None:
    latencies = totals.latencies
    while not stop.is_set():
        head, body, records, kept, redelivery = load.next()
        await pacer.turn(records, totals)
        if stop.is_set():
            break
        t0 = time.monotonic()
        if not totals.first_send:
            totals.first_send = t0
        totals.requests += 1
        totals.records_sent += records
        totals.duplicates_sent += redelivery
        try:
            status, content = await conn.request(head, body)
        except OSError:
            conn.close()
            totals.errors += 1
            totals.reconnects += 1
            await asyncio.sleep(0.05)
            continue
        t1 = time.monotonic()
        latencies.append(t1 - t0)
        totals.statuses[status] += 1
        if 200 <= status < 300:
            totals.ok += 1
            totals.last_ack = t1
            totals.records_acked += records
            if not redelivery:
                totals.expected += kept
                totals.filtered_acked += records - kept
            load.acked(body, kept, redelivery)
            if content[:1] == b"{":
                try:
                    answer = orjson.loads(content)
                    totals.sut_accepted += answer.get("accepted", 0)
                    totals.sut_filtered += answer.get("filtered", 0)
                    totals.sut_duplicates += answer.get("duplicates", 0)
                except (orjson.JSONDecodeError, AttributeError):
                    pass
        elif status in (429, 503):
            await asyncio.sleep(0.01)


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    parts = urlsplit(args.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    loads = {"ce-binary": BinaryCELoad, "auth0-events": EventStreamLoad}
    load: Auth0Load | BinaryCELoad | EventStreamLoad = loads.get(args.kind, Auth0Load)(
        args.url, args
    )
    totals = Totals()
    stop = asyncio.Event()
    pacer = Pacer(args.rate, args.max_backlog, args.count_url)
    conns = [Connection(host, port) for _ in range(args.concurrency)]
    for conn in conns:  # connect first, so connection set-up is not in the first latencies
        await conn.connect()
    watcher = asyncio.create_task(pacer.watch(totals, stop))
    started = pacer.start = time.monotonic()
    tasks = [asyncio.create_task(sender(c, load, pacer, totals, stop)) for c in conns]
    asyncio.get_running_loop().call_later(args.duration, stop.set)
    await stop.wait()
    totals.stopped = time.monotonic()
    _, late = await asyncio.wait(tasks, timeout=args.grace)
    for task in late:
        task.cancel()
    await watcher
    for conn in conns:
        conn.close()
    lat = sorted(totals.latencies)
    elapsed = (totals.last_ack or totals.stopped) - (totals.first_send or started)
    return {
        "kind": args.kind,
        "batch": args.batch if args.kind == "auth0" else 1,
        "concurrency": args.concurrency,
        "duration": args.duration,
        "requests": totals.requests,
        "ok": totals.ok,
        "errors": totals.errors,
        "unfinished": len(late),
        "statuses": {str(k): v for k, v in sorted(totals.statuses.items())},
        "records_sent": totals.records_sent,
        "records_acked": totals.records_acked,
        "duplicates_sent": totals.duplicates_sent,
        "filtered_acked": totals.filtered_acked,
        "expected": totals.expected,
        "sut_accepted": totals.sut_accepted,
        "sut_filtered": totals.sut_filtered,
        "sut_duplicates": totals.sut_duplicates,
        "first_send": totals.first_send,
        "last_ack": totals.last_ack,
        "stopped": totals.stopped,
        "paused": round(totals.paused, 3),
        "ack_rate": totals.records_acked / elapsed if elapsed > 0 else 0.0,
        "request_rate": totals.ok / elapsed if elapsed > 0 else 0.0,
        "latency_ms": {
            "p50": percentile(lat, 0.50) * 1000,
            "p90": percentile(lat, 0.90) * 1000,
            "p99": percentile(lat, 0.99) * 1000,
            "max": (lat[-1] if lat else float("nan")) * 1000,
        },
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("url", help="where to POST, e.g. http://127.0.0.1:8080/auth0")
    p.add_argument("--kind", choices=["auth0", "ce-binary", "auth0-events"], default="auth0")
    p.add_argument("--batch", type=int, default=100, help="records per request (auth0)")
    p.add_argument("--concurrency", type=int, default=16, help="senders (connections)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of sending")
    p.add_argument("--filter-share", type=float, default=0.0, help="share of filtered records")
    p.add_argument("--dup-share", type=float, default=0.0, help="share of redelivered bodies")
    p.add_argument("--token", default="", help="Authorization header value")
    p.add_argument("--rate", type=float, default=0.0, help="records/s cap (0: none)")
    p.add_argument("--max-backlog", type=int, default=0, help="expected events not yet counted")
    p.add_argument("--count-url", help="the target's count endpoint (for --max-backlog)")
    p.add_argument("--grace", type=float, default=30.0, help="seconds to finish in flight")
    p.add_argument("--seed", type=int, default=7)
    return p


def main() -> None:
    args = build_parser().parse_args()
    result = asyncio.run(run(args))
    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")


if __name__ == "__main__":
    main()
