"""Real nats-server processes on loopback ports, and ways to look into their streams.

- :class:`NatsServer`: one JetStream-enabled server with its own store directory; it can be
  stopped (SIGTERM), killed (SIGKILL) and started again on the same port and store;
- :class:`NatsCluster`: three of them routed into one JetStream cluster;
- :func:`stream_messages` and friends: read a stream back with a plain nats-py client in a
  loop of their own (the runtime under test has its own loop in a thread);
- :func:`auth0_lines`: an Auth0 Custom Webhook body (JSON Lines) for given log ids.

Tests that need the binary are marked :data:`requires_nats_server`; without it they skip
with :data:`SKIP_REASON`.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import nats.js.errors
import pytest
from nats.js import api

from connector_runtime.testing import free_port

SKIP_REASON = "nats-server not installed: apt-get install nats-server"
NATS_SERVER = shutil.which("nats-server") or next(
    (p for p in ("/usr/sbin/nats-server", "/usr/local/bin/nats-server") if os.path.exists(p)),
    None,
)
requires_nats_server = pytest.mark.skipif(NATS_SERVER is None, reason=SKIP_REASON)
READY_LINE = b"Server is ready"


@dataclass
class NatsServer:
    """One nats-server with JetStream, listening on 127.0.0.1."""

    name: str
    directory: Path
    port: int = field(default_factory=free_port)
    cluster_port: int | None = None
    route_ports: list[int] = field(default_factory=list)
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.directory / f"{self.name}.log"

    def command(self) -> list[str]:
        assert NATS_SERVER is not None, SKIP_REASON
        args = [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-n", self.name]
        args += ["-js", "-sd", str(self.directory / "store"), "-l", str(self.log_file)]
        if self.cluster_port is not None:
            args += [
                "--cluster_name",
                "cr-test",
                "--cluster",
                f"nats://127.0.0.1:{self.cluster_port}",
            ]
            routes = ",".join(f"nats://127.0.0.1:{p}" for p in self.route_ports)
            args += ["--routes", routes]
        return args + self.extra_args

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, wait: bool = True) -> NatsServer:
        assert not self.running, f"{self.name} is already running"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._ready_before = self._ready_count()
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if wait:
            self.wait_ready()
        return self

    def _ready_count(self) -> int:
        try:
            return self.log_file.read_bytes().count(READY_LINE)
        except FileNotFoundError:
            return 0

    def wait_ready(self, timeout: float = 15) -> None:
        """Wait until this start of the server logged that it is ready and takes clients."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"nats-server {self.name} exited; see {self.log_file}")
            if self._ready_count() > self._ready_before and _accepts(self.port):
                return
            time.sleep(0.02)
        raise TimeoutError(f"nats-server {self.name} not ready in {timeout}s; see {self.log_file}")

    def stop(self) -> None:
        """Shut down gracefully (SIGTERM)."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """Die at once (SIGKILL): no goodbye to clients or routes, no final flush."""
        self._end(signal.SIGKILL)

    def _end(self, sig: signal.Signals) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class NatsCluster:
    """Three JetStream servers routed to each other (a cluster that survives one loss)."""

    nodes: list[NatsServer]

    @classmethod
    def create(cls, directory: Path, size: int = 3) -> NatsCluster:
        cluster_ports = [free_port() for _ in range(size)]
        nodes = [
            NatsServer(
                f"n{i + 1}",
                directory / f"n{i + 1}",
                cluster_port=cluster_ports[i],
                route_ports=[p for j, p in enumerate(cluster_ports) if j != i],
            )
            for i in range(size)
        ]
        return cls(nodes)

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    def start(self) -> NatsCluster:
        for node in self.nodes:
            node.start(wait=False)
        for node in self.nodes:
            node.wait_ready()
        wait_for_jetstream(self.urls)
        wait_for_placement(self.urls, len(self.nodes))
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()


# -- looking into streams (each call in a loop of its own) -------------------------------


@dataclass(frozen=True)
class StoredMessage:
    seq: int
    subject: str
    headers: dict[str, str]
    data: bytes


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _quiet(exc: Exception) -> None:
    """Connection errors while a node is down are expected; the client tries the next."""


async def _connect(urls: Iterable[str]) -> Any:
    return await nats.connect(
        list(urls), connect_timeout=2, max_reconnect_attempts=3, error_cb=_quiet
    )


def wait_for_jetstream(urls: list[str], timeout: float = 20) -> None:
    """Wait until JetStream answers API requests (a cluster has elected its meta leader)."""

    async def probe() -> None:
        nc = await _connect(urls)
        try:
            js = nc.jetstream(timeout=1)
            deadline = time.monotonic() + timeout
            while True:
                try:
                    await js.account_info()
                    return
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.1)
        finally:
            await nc.close()

    _run(probe())


def wait_for_placement(urls: list[str], replicas: int, timeout: float = 30) -> None:
    """Wait until the cluster can place a stream of ``replicas`` (every peer has joined the
    meta group): a fresh cluster answers API requests before that, and refuses such a
    stream with "no suitable peers for placement" (err_code 10005) meanwhile. A probe
    stream is made and deleted."""

    async def probe() -> None:
        nc = await _connect(urls)
        try:
            js = nc.jetstream(timeout=2)
            deadline = time.monotonic() + timeout
            while True:
                try:
                    await js.add_stream(
                        name="PLACEMENT_PROBE", subjects=["placement.probe"], num_replicas=replicas
                    )
                    await js.delete_stream("PLACEMENT_PROBE")
                    return
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
        finally:
            await nc.close()

    _run(probe())


def stream_messages(urls: list[str], stream: str) -> list[StoredMessage]:
    """Every message of ``stream`` in sequence order, read with an ephemeral pull consumer."""

    async def read() -> list[StoredMessage]:
        nc = await _connect(urls)
        try:
            js = nc.jetstream(timeout=5)
            total = (await js.stream_info(stream)).state.messages
            config = api.ConsumerConfig(
                ack_policy=api.AckPolicy.NONE,
                deliver_policy=api.DeliverPolicy.ALL,
                inactive_threshold=30,
            )
            sub = await js.pull_subscribe("", stream=stream, config=config)
            out: list[StoredMessage] = []
            while len(out) < total:
                for msg in await sub.fetch(min(1000, total - len(out)), timeout=5):
                    seq = msg.metadata.sequence.stream
                    out.append(StoredMessage(seq, msg.subject, dict(msg.headers or {}), msg.data))
            await sub.unsubscribe()
            return out
        finally:
            await nc.close()

    return _run(read())  # type: ignore[no-any-return]


def stream_count(urls: list[str], stream: str) -> int:
    """How many messages ``stream`` holds (0 when it does not exist yet)."""

    async def count() -> int:
        nc = await _connect(urls)
        try:
            try:
                info = await nc.jetstream(timeout=5).stream_info(stream)
            except nats.js.errors.NotFoundError:
                return 0
            return int(info.state.messages)
        finally:
            await nc.close()

    return _run(count())  # type: ignore[no-any-return]


def delete_stream(urls: list[str], stream: str) -> None:
    """Delete ``stream`` (as an operator might, under a running runtime)."""

    async def delete() -> None:
        nc = await _connect(urls)
        try:
            await nc.jetstream(timeout=5).delete_stream(stream)
        finally:
            await nc.close()

    _run(delete())


def stream_leader(urls: list[str], stream: str) -> str | None:
    """The server name of the stream's current leader (None while there is none)."""

    async def leader() -> str | None:
        nc = await _connect(urls)
        try:
            info = await nc.jetstream(timeout=5).stream_info(stream)
            return info.cluster.leader if info.cluster is not None else None
        finally:
            await nc.close()

    return _run(leader())  # type: ignore[no-any-return]


def wait_for_stream_leader(urls: list[str], stream: str, timeout: float = 30) -> str:
    """Wait until ``stream`` exists and has a leader; return the leader's server name.

    A fresh cluster answers API requests as soon as it has a meta leader, but it places a
    replicated stream only once every peer has joined ("no suitable peers for placement"
    until then); whoever creates the stream retries, so the stream appears a little later.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            leader = stream_leader(urls, stream)
        except nats.js.errors.NotFoundError:
            leader = None
        if leader:
            return leader
        if time.monotonic() > deadline:
            raise TimeoutError(f"stream {stream} has no leader after {timeout}s")
        time.sleep(0.2)


def wait_for_count(
    urls: list[str], stream: str, count: int, timeout: float = 20, settle: float = 0.0
) -> int:
    """Wait until ``stream`` holds at least ``count`` messages, then ``settle`` seconds more
    (to let any extra copies arrive); return the final count."""
    deadline = time.monotonic() + timeout
    found = stream_count(urls, stream)
    while found < count and time.monotonic() < deadline:
        time.sleep(0.05)
        found = stream_count(urls, stream)
    if settle:
        time.sleep(settle)
        found = stream_count(urls, stream)
    return found


# -- Auth0 bodies ----------------------------------------------------------------------------


def log_id(n: int, prefix: str = "9002024051409310741") -> str:
    """A made-up Auth0-style log id."""
    return f"{prefix}{n:040d}"


def auth0_data(log_id: str, code: str = "s") -> bytes:
    """The compact JSON text of a made-up Auth0 log record of type ``code``."""
    data = {
        "date": "2024-05-14T09:31:07.412Z",
        "type": code,
        "description": "Successful login" if code == "s" else "Wrong email or password.",
        "client_id": "k2Vd8Qm1Rz7Ue4Tn0Pa9Ls6Hj3Bc5Wx",
        "client_name": "Acme Portal",
        "ip": "203.0.113.24",
        "user_id": "auth0|6643a2c1f0e9d87b5c4a3210",
        "log_id": log_id,
        "tenant_name": "acme-test",
    }
    return json.dumps(data, separators=(",", ":")).encode()


def auth0_lines(ids: Iterable[str], code: str = "s") -> bytes:
    """A JSON Lines body as an Auth0 Custom Webhook log stream sends it."""
    return b"".join(
        b'{"log_id":"' + i.encode() + b'","data":' + auth0_data(i, code) + b"}\n" for i in ids
    )
