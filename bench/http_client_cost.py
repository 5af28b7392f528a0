"""CPU per POST of the ``http`` target's client, in this process, against a local server.

The server runs in a child process pinned to the last CPU (this one to the first): a minimal
Tornado app answering 200 with no body, or with ``--server counting`` the raw-asyncio
counting target ``bench/target.py`` (so that the server is not the limit). Each variant
sends ``--requests`` binary-mode CloudEvents POSTs over ``--connections`` kept-alive
connections; the CPU time of this process (user and system, ``getrusage``) is divided by
the requests. Medians of ``--rounds``. Variants:

- ``aiohttp``: ``ClientSession.post`` + ``read``, configured as the target used to be (for
  comparison; skipped when aiohttp is not installed);
- ``pool``: :class:`connector_runtime.targets.http.client.ConnectionPool`, with
  ``to_binary`` and the target's ``RequestHead`` rendering each request;
- ``target``: ``HTTPTarget.send`` in binary mode, in calls of ``max_batch`` events like the
  dispatcher makes (one call at a time: the wall rate is lower than with the dispatcher).

System time is mostly the loopback TCP stack (the server's side of it included) and is
about the same for every variant; user time is what the client code costs.

Run: .venv/bin/python bench/http_client_cost.py [--requests 20000] [--server counting]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

try:  # only for the comparison; the target no longer uses it
    import aiohttp
except ImportError:
    aiohttp = None

from connector_runtime.events import Event, make_event, to_binary
from connector_runtime.records import TargetContext
from connector_runtime.targets.http.client import ConnectionPool
from connector_runtime.targets.http.target import HTTPTarget, RequestHead

SERVER = """
import sys, asyncio, tornado.web
class H(tornado.web.RequestHandler):
    def post(self): self.set_status(200)
async def main():
    tornado.web.Application([(r"/.*", H)]).listen(int(sys.argv[1]), "127.0.0.1")
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def sample_events(n: int) -> list[Event]:
    return [
        make_event(
            id=f"e{i:012d}",
            source="https://bench-tenant.eu.auth0.example/",
            type="com.auth0.log.s",
            data=b'{"type":"s","user_id":"auth0|user1","ip":"10.0.0.1"}',
            subject=f"auth0|user{i % 977}",
            time="2025-03-14T09:26:53.589Z",
            extensions={"auth0category": "auth.login.success"},
        )
        for i in range(n)
    ]


async def fan_out(n: int, width: int, one: Callable[[int], Awaitable[None]]) -> None:
    indexes = iter(range(n))

    async def worker() -> None:
        for i in indexes:
            await one(i)

    await asyncio.gather(*(worker() for _ in range(width)))


async def run_aiohttp(url: str, events: list[Event], width: int) -> None:
    if aiohttp is None:
        raise ImportError("aiohttp is not installed")
    connector = aiohttp.TCPConnector(limit=width, keepalive_timeout=30)
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=10),
        skip_auto_headers=("Accept-Encoding",),
    ) as session:

        async def one(i: int) -> None:
            ce, body = to_binary(events[i])
            headers = {"User-Agent": "connector-runtime/0.1", **ce}
            async with session.post(url, data=body, headers=headers, allow_redirects=False) as r:
                await r.read()
                assert r.status == 200

        await fan_out(len(events), width, one)


async def run_pool(url: str, events: list[Event], width: int) -> None:
    request = RequestHead("POST", url, {"User-Agent": "connector-runtime/0.1"})
    pool = ConnectionPool(request.host, request.port, max_connections=width, timeout=10)

    async def one(i: int) -> None:
        ce, body = to_binary(events[i])
        content_type = ce.pop("Content-Type", None)
        response = await pool.request(request.render(content_type, ce, len(body)), body)
        assert response.status == 200

    try:
        await fan_out(len(events), width, one)
    finally:
        await pool.close()


async def run_target(url: str, events: list[Event], width: int) -> None:
    config = {"url": url, "mode": "binary", "maxConnections": width}
    target = HTTPTarget(config, TargetContext("bench", logging.getLogger("bench")))
    await target.start()
    try:
        step = target.max_batch
        for start in range(0, len(events), step):
            result = await target.send(events[start : start + step])
            assert not result.rejected and not result.retry, result
    finally:
        await target.close()


VARIANTS = {"aiohttp": run_aiohttp, "pool": run_pool, "target": run_target}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=20_000)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--server", choices=("tornado", "counting"), default="tornado")
    args = p.parse_args()
    with socket.socket() as s, socket.socket() as c:
        s.bind(("127.0.0.1", 0))
        c.bind(("127.0.0.1", 0))
        port, control = s.getsockname()[1], c.getsockname()[1]
    cpus = sorted(os.sched_getaffinity(0))
    command = [sys.executable, "-c", SERVER, str(port)]
    if args.server == "counting":
        target = os.path.join(os.path.dirname(os.path.abspath(__file__)), "target.py")
        command = [sys.executable, target, "--port", str(port), "--control-port", str(control)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip()
        if len(cpus) > 1:
            os.sched_setaffinity(server.pid, {cpus[-1]})
            os.sched_setaffinity(0, {cpus[0]})
        url = f"http://127.0.0.1:{port}/events"
        events = sample_events(args.requests)
        for name in args.variants.split(","):
            samples = []
            for _ in range(args.rounds):
                before, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
                try:
                    asyncio.run(VARIANTS[name](url, events, args.connections))
                except ImportError as exc:
                    print(f"{name:8} skipped: {exc}")
                    break
                after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - wall
                user = (after.ru_utime - before.ru_utime) / args.requests * 1e6
                system = (after.ru_stime - before.ru_stime) / args.requests * 1e6
                samples.append((user, system, args.requests / wall))
            if samples:
                user, system, rate = (statistics.median(s[i] for s in samples) for i in range(3))
                print(
                    f"{name:8} {user:6.1f} µs user + {system:5.1f} µs system CPU per POST"
                    f"   {rate:8,.0f} POST/s wall"
                )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
