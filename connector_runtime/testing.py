"""A kit for testing connectors and plugins through real parts (also a pytest plugin).

Everything here runs for real: servers listen on loopback ports, requests go over sockets.
An asyncio loop runs in a background thread (:class:`LoopThread`) so tests stay plain
synchronous functions:

- :class:`RecordingTarget`: a CloudEvents HTTP receiver that records what it is sent in
  binary, structured and batch mode, decoded with the ``cloudevents`` SDK as the reference,
  and answers with a status you choose (to play a target that is down or rejects events);
- :func:`start_runtime`: serves manifest documents in-process and gives the base URL;
- :func:`post`: an HTTP request over a real socket, returning status, headers and JSON.

Fixtures (when installed, pytest picks them up via the ``pytest11`` entry point):
``cr_loop``, ``recording_target``, ``runtime_factory``.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import tornado.httpserver
import tornado.web
import yaml
from cloudevents.core.bindings.http import HTTPMessage, from_binary, from_structured
from cloudevents.core.formats.json import JSONFormat

from connector_runtime.config.manifest import load_manifest
from connector_runtime.plugins import Registry, build_registry
from connector_runtime.runtime import Runtime
from connector_runtime.serve.app import make_app
from connector_runtime.serve.deadlines import TimedServer

T = TypeVar("T")

# The conformance suite is assertion code run by plugin test suites: give it pytest's
# detailed assertion messages.
pytest.register_assert_rewrite("connector_runtime.conformance")


class LoopThread:
    """An asyncio event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def closed_within(sock: socket.socket, seconds: float) -> float:
    """Seconds until the server closed ``sock`` (a reset counts as closed); raises
    ``TimeoutError`` past ``seconds``."""
    sock.settimeout(seconds)
    started = time.monotonic()
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def post(
    url: str,
    body: bytes | str = b"",
    headers: Mapping[str, str] | None = None,
    method: str = "POST",
    timeout: float = 30,
) -> Response:
    """Send one HTTP request over a new connection and read the whole answer."""
    scheme, _, rest = url.partition("://")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    conn_cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(host, int(port) if port else None, timeout=timeout)
    data = body.encode() if isinstance(body, str) else body
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    try:
        conn.request(
            method, "/" + path, body=data if method != "GET" else None, headers=all_headers
        )
        resp = conn.getresponse()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def wait_healthy(base_url: str, timeout: float = 20) -> None:
    """Wait until ``base_url/healthz`` answers 200 (a runtime started as a process)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if post(base_url + "/healthz", method="GET", timeout=2).status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{base_url} did not become healthy in {timeout:g}s")
        time.sleep(0.05)


@dataclass
class Received:
    """One event as the recording target decoded it."""

    attributes: dict[str, Any]
    data: Any
    mode: str
    headers: dict[str, str] = field(default_factory=dict)
    """The HTTP request's headers, lower-cased names (raw, as sent)."""
    body: bytes = b""
    """The HTTP request's body as sent (the whole array in batch mode)."""

    @property
    def id(self) -> str:
        return str(self.attributes["id"])


@dataclass
class RecordingTarget:
    """A real CloudEvents HTTP receiver on a loopback port."""

    loop: LoopThread
    port: int = 0
    events: list[Received] = field(default_factory=list)
    requests: int = 0
    respond: Callable[[Received], int] | None = None
    """Decides the status per event (first event of a batch); default 200."""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    """Headers of every answer that is not a 2xx (e.g. ``{"Retry-After": "7"}``)."""
    delay: float = 0.0
    """Seconds each answer is held back after its events were recorded (a slow target:
    its requests are in flight meanwhile)."""
    _server: tornado.httpserver.HTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.events]

    def start(self) -> RecordingTarget:
        self.port = self.port or free_port()
        target = self

        class Handler(tornado.web.RequestHandler):
            async def post(self) -> None:
                target.requests += 1
                got = decode_request(dict(self.request.headers), self.request.body)
                status = target.status
                if target.respond is not None and got:
                    status = max(target.respond(e) for e in got)
                if 200 <= status < 300:
                    target.events.extend(got)
                if target.delay:
                    await asyncio.sleep(target.delay)
                self.set_status(status)
                if not 200 <= status < 300:
                    for name, value in target.headers.items():
                        self.set_header(name, value)
                self.finish("" if status < 300 else "rejected by test target")

        async def listen() -> tornado.httpserver.HTTPServer:
            server = tornado.httpserver.HTTPServer(tornado.web.Application([(r"/.*", Handler)]))
            server.listen(self.port, "127.0.0.1")
            return server

        self._server = self.loop.run(listen())
        return self

    def stop(self) -> None:
        if self._server is not None:
            server = self._server
            self._server = None

            async def close() -> None:
                server.stop()
                await server.close_all_connections()

            self.loop.run(close())

    def wait_for_ids(self, ids: set[str], timeout: float = 20) -> set[str]:
        """Wait until every id in ``ids`` arrived (redeliveries do not count twice); return
        the ids still missing when the time ran out (empty on success)."""
        deadline = time.monotonic() + timeout
        while True:
            missing = ids - {e.id for e in list(self.events)}
            if not missing or time.monotonic() >= deadline:
                return missing
            time.sleep(0.02)

    def wait_for(self, count: int, timeout: float = 20) -> list[Received]:
        """Wait until at least ``count`` events arrived; return them."""
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.events)


def decode_request(headers: Mapping[str, str], body: bytes) -> list[Received]:
    """Decode a CloudEvents HTTP request in any mode with the ``cloudevents`` SDK."""
    lower = {k.lower(): v for k, v in headers.items()}
    ctype = lower.get("content-type", "").split(";")[0].strip()
    fmt = JSONFormat()
    if ctype == "application/cloudevents-batch+json":
        events = [fmt.read(None, json.dumps(item).encode()) for item in json.loads(body)]
        mode = "batch"
    elif ctype == "application/cloudevents+json":
        events = [from_structured(HTTPMessage(lower, body), fmt)]
        mode = "structured"
    else:
        events = [from_binary(HTTPMessage(lower, body), fmt)]
        mode = "binary"
    return [Received(dict(e.get_attributes()), e.get_data(), mode, lower, body) for e in events]


@dataclass
class RunningRuntime:
    """A runtime serving manifest documents in-process on a loopback port."""

    runtime: Runtime
    server: tornado.httpserver.HTTPServer
    port: int
    loop: LoopThread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connector_url(self, name: str) -> str:
        return f"{self.url}/{name}"

    def stop(self) -> None:
        async def close() -> None:
            self.server.stop()
            await self.server.close_all_connections()
            await self.runtime.stop()

        self.loop.run(close())


def write_manifest(documents: Sequence[Mapping[str, Any]], directory: Path) -> Path:
    """Write documents as one multi-document YAML file; return its path."""
    path = directory / "manifest.yaml"
    path.write_text(yaml.safe_dump_all(list(documents), sort_keys=False))
    return path


def connector_doc(
    name: str,
    source_type: str,
    source_config: Mapping[str, Any],
    target: Mapping[str, Any],
    delivery: Mapping[str, Any] | None = None,
    filters: Sequence[Mapping[str, Any]] | None = None,
    transforms: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """A ``kind: Connector`` document (``transforms`` is ``spec.transforms``)."""
    spec: dict[str, Any] = {
        "source": {"type": source_type, "config": dict(source_config)},
        "target": dict(target),
    }
    if delivery:
        spec["delivery"] = dict(delivery)
    if filters:
        spec["filters"] = list(filters)
    if transforms:
        spec["transforms"] = list(transforms)
    return {
        "apiVersion": "connector-runtime/v1",
        "kind": "Connector",
        "metadata": {"name": name},
        "spec": spec,
    }


def start_runtime(
    loop: LoopThread,
    documents: Sequence[Mapping[str, Any]],
    registry: Registry | None = None,
    directory: Path | None = None,
    env: Mapping[str, str] | None = None,
    data_dir: Path | None = None,
) -> RunningRuntime:
    """Validate ``documents`` like ``connector-runtime run`` does and serve them.

    The spool lives in ``data_dir`` (default: ``data`` under ``directory``, a new temporary
    folder unless given); start again with the same ``data_dir`` to play a restart.
    """
    where = directory or Path(tempfile.mkdtemp(prefix="cr-test-"))
    reg = registry or build_registry()
    manifest = load_manifest([write_manifest(documents, where)], reg, env=env or {})
    port = free_port()

    async def boot() -> RunningRuntime:
        runtime = Runtime(manifest, reg, data_dir or where / "data")
        await runtime.start()
        server = TimedServer(
            make_app(runtime), max_body_size=64 << 20, idle_timeout=60.0, body_timeout=60.0
        )
        server.listen(port, "127.0.0.1")
        return RunningRuntime(runtime, server, port, loop)

    return loop.run(boot())


def make_plugin_dist(directory: Path, name: str, code: str, version: str = "0.0.1") -> Path:
    """Write a throwaway installed plugin into ``directory``: a module ``name`` holding
    ``code`` and a ``.dist-info`` whose entry point (group ``connector_runtime``) names it.

    Put ``directory`` on ``sys.path`` (or ``PYTHONPATH`` for a subprocess) and the plugin
    manager finds it like any installed plugin. Returns ``directory``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.py").write_text(code)
    info = directory / f"{name}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[connector_runtime]\n{name} = {name}\n")
    return directory


# -- pytest fixtures ------------------------------------------------------------------


@pytest.fixture
def throwaway_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], Path]:
    """``throwaway_plugin(name, code)``: install a one-module plugin for this test only.

    The module is importable and its entry point visible (``sys.path`` and ``PYTHONPATH``
    both point at it until the test ends), so ``build_registry()`` and CLI subprocesses
    load it like an installed plugin."""
    import importlib
    import os
    import sys

    where = tmp_path / "throwaway-plugins"

    def install(name: str, code: str) -> Path:
        make_plugin_dist(where, name, code)
        if str(where) not in sys.path:
            monkeypatch.syspath_prepend(str(where))
            old = os.environ.get("PYTHONPATH")
            monkeypatch.setenv("PYTHONPATH", str(where) + (os.pathsep + old if old else ""))
        importlib.invalidate_caches()
        return where

    return install


@pytest.fixture(scope="session")
def cr_loop() -> Iterator[LoopThread]:
    """A background asyncio loop shared by the session's servers."""
    loop = LoopThread()
    yield loop
    loop.close()


@pytest.fixture
def recording_target(cr_loop: LoopThread) -> Iterator[RecordingTarget]:
    """A started :class:`RecordingTarget`; stopped after the test."""
    target = RecordingTarget(cr_loop).start()
    yield target
    target.stop()


@pytest.fixture
def runtime_factory(cr_loop: LoopThread, tmp_path: Path) -> Iterator[Callable[..., RunningRuntime]]:
    """``runtime_factory(documents, **kwargs) -> RunningRuntime``, stopped after the test.

    Each runtime gets its own folder (and spool) unless ``data_dir=`` is passed."""
    started: list[RunningRuntime] = []

    def factory(documents: Sequence[Mapping[str, Any]], **kwargs: Any) -> RunningRuntime:
        where = tmp_path / f"runtime-{len(started)}"
        where.mkdir()
        running = start_runtime(cr_loop, documents, directory=where, **kwargs)
        started.append(running)
        return running

    yield factory
    for running in started:
        running.stop()
