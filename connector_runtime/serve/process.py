"""Serving: listen, print the webhook URLs, stop cleanly; TLS; several worker processes.

With ``--workers N`` the command becomes a small supervisor: it starts N copies of itself
(``--worker-index i``), each binding the same port with ``SO_REUSEPORT`` so the kernel
spreads connections over them, each with its own spool shard (``DATA_DIR/shard-i``). The
supervisor forwards SIGINT/SIGTERM/SIGHUP and exits with the workers' worst exit code.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web

from connector_runtime.config.model import AdminSpec, Manifest, RuntimeSpec, TLSSpec
from connector_runtime.errors import ConnectorRuntimeError
from connector_runtime.plugins import Registry
from connector_runtime.runtime import Runtime
from connector_runtime.serve.admin import make_admin_app
from connector_runtime.serve.app import make_app
from connector_runtime.serve.deadlines import TimedServer
from connector_runtime.serve.group import WorkerGroup
from connector_runtime.serve.ops import Ops
from connector_runtime.sources.handler import DEFAULT_MAX_BODY_BYTES
from connector_runtime.spool.store import default_data_dir

log = logging.getLogger("connector_runtime")
startup_log = logging.getLogger("connector_runtime.startup")
"""The start-up lines: at INFO, and shown whatever ``--log-level`` says (they used to be
printed unconditionally, and tell where to point the sender and that the runtime serves)."""
startup_log.setLevel(logging.INFO)


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    data_dir: Path | None = None
    workers: int = 1
    worker_index: int | None = None

    @property
    def shard_dir(self) -> Path | None:
        """Where this process's spool lives (a shard of the data dir under ``--workers``)."""
        if self.worker_index is None:
            return self.data_dir
        return (self.data_dir or default_data_dir()) / f"shard-{self.worker_index}"


def load_tls(spec: TLSSpec) -> ssl.SSLContext:
    """An HTTPS server context with the certificate chain and key of ``spec``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(spec.cert_file, spec.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConnectorRuntimeError(
            f"cannot load TLS certificate {spec.cert_file} / key {spec.key_file}: {exc}"
        ) from None
    return context


def reload_tls(context: ssl.SSLContext, spec: TLSSpec) -> None:
    """SIGHUP: load renewed certificate files into the live context (new handshakes use
    them); a failed reload keeps the old certificate and logs why."""
    try:
        context.load_cert_chain(spec.cert_file, spec.key_file)
    except (OSError, ssl.SSLError) as exc:
        log.error("TLS reload failed, keeping the old certificate: %s", exc)
        return
    log.info("TLS certificate reloaded from %s", spec.cert_file)


def _listen(
    server: tornado.httpserver.HTTPServer, host: str, port: int, reuse_port: bool = False
) -> int:
    try:
        sockets = tornado.netutil.bind_sockets(port, host, reuse_port=reuse_port)
    except OSError as exc:
        raise ConnectorRuntimeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    server.add_sockets(sockets)
    return int(sockets[0].getsockname()[1])


def _server(app: tornado.web.Application, spec: RuntimeSpec, **kwargs: Any) -> TimedServer:
    return TimedServer(
        app,
        max_header_size=spec.max_header_bytes,
        idle_timeout=spec.idle_timeout,
        body_timeout=spec.body_timeout,
        xheaders=False,
        **kwargs,
    )


async def serve(manifest: Manifest, registry: Registry, options: ServeOptions) -> int:
    """Run the runtime until SIGINT/SIGTERM; return the exit code."""
    runtime = Runtime(manifest, registry, options.shard_dir)
    runtime.run_pulls = options.worker_index in (None, 0)  # one puller per connector
    await runtime.start()
    spec, admin = manifest.runtime, manifest.runtime.admin
    limit = max(
        [
            int(c.source.config.get("maxBodyBytes", DEFAULT_MAX_BODY_BYTES))
            for c in manifest.connectors
        ]
        + [DEFAULT_MAX_BODY_BYTES]
    )
    group = None
    if options.worker_index is not None and options.shard_dir is not None:
        group = WorkerGroup(options.shard_dir.parent, options.worker_index, options.workers)
    ops = Ops(runtime, group)
    admin_server: TimedServer | None = None
    first = options.worker_index in (None, 0)
    try:
        if group is not None:
            await group.start(ops.answers())
        tls = load_tls(spec.tls) if spec.tls else None
        app = make_app(runtime, ops=admin is None, group=group)
        server = _server(app, spec, ssl_options=tls, max_body_size=limit + 1024 * 1024)
        bound = _listen(server, options.host, options.port, options.worker_index is not None)
        if admin is not None and first:  # under --workers, worker 0 answers for the group
            admin_app = make_admin_app(
                runtime, token=admin.token, group=group, max_taps=admin.max_taps
            )
            admin_server = _server(admin_app, spec)
            _listen(admin_server, admin.host, admin.port)
    except ConnectorRuntimeError:
        if group is not None:
            await group.close()
        await runtime.stop()
        raise
    tune_malloc()
    tune_gc()
    if first:
        log_ops(admin)
        log_urls(runtime, options.host, bound, "https" if tls else "http")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if tls is not None and spec.tls is not None:
        loop.add_signal_handler(signal.SIGHUP, reload_tls, tls, spec.tls)
    await stop.wait()
    log.info("stopping: no new connections; finishing requests in flight")
    server.stop()
    runtime.accepting = False
    await _drain(server, runtime)
    if admin_server is not None:  # /readyz said "shutting down" there during the drain
        admin_server.stop()
        await admin_server.close_all_connections()
    if group is not None:
        await group.close()
    await runtime.stop()
    log.info("stopped")
    return 0


def log_ops(admin: AdminSpec | None) -> None:
    """Say where ``/metrics``, ``/healthz`` and ``/readyz`` are served."""
    if admin is None:
        startup_log.info(
            "no admin listener: /metrics, /healthz and /readyz are on the webhook port;"
            " the status page and the tap are off (set spec.admin.listen to have them)"
        )
        return
    guard = "; each request needs the admin token" if admin.token else ""
    startup_log.info(
        "admin listener on http://%s:%d: /metrics, /healthz, /readyz, the status page (/),"
        " /tap (not on the webhook port)%s",
        admin.host,
        admin.port,
        guard,
    )


async def _drain(
    server: tornado.httpserver.HTTPServer, runtime: Runtime, grace: float = 30.0
) -> None:
    """Let requests in flight finish (up to ``grace`` seconds), then close the connections."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while loop.time() < deadline and any(
        c.stats.requests_in_flight > 0 for c in runtime.connectors
    ):
        await asyncio.sleep(0.02)
    await server.close_all_connections()


MMAP_THRESHOLD = 4 * 1024 * 1024
TRIM_THRESHOLD = 32 * 1024 * 1024


def tune_malloc() -> bool:
    """Keep request-sized buffers in the heap (glibc only; True when applied).

    By default glibc gives blocks over 128 KiB (a batch body, a spool row) fresh pages
    from the kernel and returns freed heap tops early, so the same memory is faulted in
    again for every request: half a page fault per record in the benchmark, about a tenth
    of the CPU. Blocks up to 4 MiB now come from the heap, and up to 32 MiB of free heap
    is kept. ``MALLOC_*`` variables or ``GLIBC_TUNABLES`` in the environment win."""
    if any(k.startswith("MALLOC_") or k == "GLIBC_TUNABLES" for k in os.environ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process runs on
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(
        mallopt(m_mmap_threshold, MMAP_THRESHOLD) and mallopt(m_trim_threshold, TRIM_THRESHOLD)
    )


GC_YOUNG_THRESHOLD = 10_000
"""Allocations between young-generation collections (Python's default: 700)."""


def tune_gc() -> None:
    """Move what start-up built (modules, schemas, the catalogue) out of the collector's
    sight, so collections only walk objects made since, and collect the young generation
    every 10,000 allocations instead of 700: a request makes a few hundred objects, most
    of them gone by its end, and the default walked them several times per request (about
    a tenth of the CPU per record in the benchmark). The older generations keep Python's
    multipliers (10, 10), so full collections stay frequent: far higher thresholds let
    cycles holding failed request bodies pile up (108 MiB over a 90-second target outage
    with 50,000/20/20)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)


PROXY_NOTE = (
    "behind a reverse proxy or load balancer the public URL differs: give the sender"
    " (for Auth0, the stream's Payload URL) https://<public host>/<connector> instead"
)


def log_urls(runtime: Runtime, host: str, port: int, scheme: str) -> None:
    """Log each connector's webhook URL (fields connector, source, target, url), then that
    behind a proxy the public URL differs, then ``listening on`` (last: the runtime serves)."""
    shown = host if host not in ("0.0.0.0", "::", "") else socket.gethostname()  # noqa: S104
    for c in runtime.connectors:
        url = f"{scheme}://{shown}:{port}{c.base_path}"
        source, target = c.spec.source.type, c.spec.target.type
        fields = {"connector": c.spec.name, "source": source, "target": target, "url": url}
        startup_log.info(
            "connector %s: %s -> %s: webhook URL %s",
            c.spec.name,
            source,
            target,
            url,
            extra={"fields": fields},
        )
    startup_log.info(PROXY_NOTE)
    where = {"host": host, "port": port, "scheme": scheme}
    startup_log.info("listening on %s:%d", host, port, extra={"fields": where})


RESTART_DELAY_MAX = 30.0
"""Seconds at most between restarts of a worker that keeps dying."""
QUICK_EXIT = 10.0
"""A worker that exits sooner than this after its start failed to start."""
MAX_QUICK_EXITS = 5
"""Failed starts in a row after which the supervisor gives up and stops every worker."""


def supervise(argv: Sequence[str], workers: int) -> int:
    """Run ``workers`` copies of this command and keep them running.

    Signals are forwarded (SIGINT/SIGTERM stop everything, SIGHUP reloads certificates). A
    worker that dies is started again on its own shard, so what it acknowledged is
    delivered by its successor; after :data:`MAX_QUICK_EXITS` failed starts in a row the
    supervisor stops the others and exits with that worker's code."""
    command = [sys.executable, "-m", "connector_runtime.cli", *argv]
    children: dict[int, subprocess.Popen[bytes]] = {}
    stopping: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        if signum != signal.SIGHUP:
            stopping.append(signum)
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    started: dict[int, float] = {}
    quick_exits = dict.fromkeys(range(workers), 0)
    restart_at: dict[int, float] = {}

    def start(index: int) -> None:
        children[index] = subprocess.Popen([*command, "--worker-index", str(index)])
        started[index] = time.monotonic()

    for index in range(workers):
        if not stopping:
            start(index)
    failed: int | None = None
    while not stopping and failed is None:
        time.sleep(0.2)
        now = time.monotonic()
        for index, child in list(children.items()):
            code = child.poll()
            if code is None or stopping or index in restart_at:
                continue
            quick = now - started[index] < QUICK_EXIT
            quick_exits[index] = quick_exits[index] + 1 if quick else 0
            if quick_exits[index] >= MAX_QUICK_EXITS:
                log.error("worker %d failed to start %d times; stopping", index, MAX_QUICK_EXITS)
                failed = code or 3
                break
            delay = min(RESTART_DELAY_MAX, 0.5 * 2 ** quick_exits[index])
            log.error("worker %d exited with code %d; starting it again", index, code)
            restart_at[index] = now + delay
        for index, when in list(restart_at.items()):
            if now >= when and not stopping and failed is None:
                del restart_at[index]
                start(index)
    if failed is not None:
        forward(signal.SIGTERM, None)
    codes = [child.wait() for child in children.values()]
    if failed is not None:
        return failed
    return max(codes, key=abs)
