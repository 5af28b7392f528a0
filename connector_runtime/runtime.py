"""Putting a validated manifest to work: spool, targets, pipelines, dispatchers, routes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from connector_runtime.config.model import ConnectorSpec, Manifest
from connector_runtime.delivery.dispatcher import Dispatcher
from connector_runtime.errors import SpoolError
from connector_runtime.events import Event
from connector_runtime.ingest.dedupe import SpoolDedupe
from connector_runtime.ingest.handoffs import (
    DeliveredHandoff,
    DrainRate,
    DurableHandoff,
    Quota,
    ReceivedHandoff,
)
from connector_runtime.ingest.pipeline import Handoff, Pipeline, combine
from connector_runtime.nats import spool as nats_spool
from connector_runtime.observe.metrics import Metrics
from connector_runtime.observe.stats import ConnectorStats
from connector_runtime.plugins import Registry
from connector_runtime.records import Route, SourceContext, Target, TargetContext
from connector_runtime.sources.guard import RequestGuard, parse_networks
from connector_runtime.sources.pull import PullRunner, make_context, redacting
from connector_runtime.sources.watch import WatchRunner
from connector_runtime.spool import seen
from connector_runtime.spool.queues import BatchQueue, MemoryQueue, SpoolQueue, dead_letter_job
from connector_runtime.spool.store import Spool, default_data_dir
from connector_runtime.spool.tables import count_dead_letters
from connector_runtime.transforms.chain import chain_transforms

log = logging.getLogger("connector_runtime")

MEMORY_QUEUE_DEFAULT_EVENTS = 100_000
"""``ack: received`` keeps events in RAM; without a quota it takes at most this many."""
ROTATE_EVERY = 60.0
DEAD_LETTERS_RECOUNT = 10.0
"""Seconds a count of the dead letters is reused (``dlq`` commands change the table from
outside); dead letters this process stores are counted again at the next scrape."""


def default_source(connector: str) -> str:
    """The CloudEvents ``source`` of a connector whose config names none (stable per name)."""
    return f"urn:connector-runtime:connector:{connector}"


class SpoolDeadLetter:
    """Dead letters of ``ack: delivered`` go to the spool's dead-letter table."""

    def __init__(self, spool: Spool, connector: str) -> None:
        self.spool = spool
        self.connector = connector

    async def store(self, rejected: Sequence[tuple[Event, str, int | None]]) -> None:
        """Store ``rejected``: (event, reason, the target's status) each."""
        await self.spool.run(dead_letter_job(self.connector, rejected))


@dataclass
class ConnectorRuntime:
    """One connector at run time."""

    spec: ConnectorSpec
    target: Target
    pipeline: Pipeline
    stats: ConnectorStats
    handoff: Handoff
    queue: BatchQueue | None = None
    dispatcher: Dispatcher | None = None
    rate: DrainRate = field(default_factory=DrainRate)
    routes: list[Route] = field(default_factory=list)
    pull: PullRunner | None = None
    watchers: list[WatchRunner] = field(default_factory=list)

    @property
    def base_path(self) -> str:
        return "/" + self.spec.name

    def refusing(self) -> str | None:
        """Why this connector's hand-off would refuse events now, or its pull source
        cannot make progress (readiness)."""
        return self.handoff.refusing() or self.stats.pull_problem

    def warnings(self) -> list[str]:
        """What its watchers warn about (``/readyz`` shows it; readiness stays)."""
        return list(self.stats.watch.warnings.values())


@dataclass
class Parts:
    """What one connector's ack policy is made of: the hand-off the pipeline gives events
    to, where events wait (a queue, and the dispatcher that empties it), and the dedupe the
    pipeline asks first. One factory below builds each policy."""

    handoff: Handoff
    rate: DrainRate
    queue: BatchQueue | None = None
    dispatcher: Dispatcher | None = None
    dedupe: SpoolDedupe | None = None


@dataclass(frozen=True)
class Needs:
    """What every factory may use."""

    spec: ConnectorSpec
    target: Target
    spool: Spool
    stats: ConnectorStats
    log: logging.Logger

    @property
    def dedupe_key(self) -> str:
        """Whose dedupe window: the connector's own, or its ``dedupe.scope``'s (a name no
        connector can have, as connector names have no colon)."""
        scope = self.spec.delivery.dedupe_scope
        return f"scope:{scope}" if scope else self.spec.name

    def dispatcher(self, queue: BatchQueue) -> Dispatcher:
        d = self.spec.delivery
        return Dispatcher(
            self.spec.name, queue, self.target, d.retry, d.timeout, self.log, self.stats
        )


async def durable(n: Needs) -> Parts:
    """Events committed to the local spool before the 2xx; the dispatcher delivers."""
    d, rate = n.spec.delivery, DrainRate()
    queue = SpoolQueue(n.spool, n.spec.name)
    await asyncio.to_thread(queue.load_depth)
    dispatcher = n.dispatcher(queue)
    dedupe = d.dedupe_max_entries > 0  # looked up inside the spool's append
    handoff = DurableHandoff(
        n.spool, queue, Quota(d), rate, dispatcher.wake, dedupe=dedupe, dedupe_key=n.dedupe_key
    )
    return Parts(handoff, rate, queue, dispatcher)


async def received(n: Needs) -> Parts:
    """Events wait in memory after the 2xx (lost on a crash)."""
    d, rate = n.spec.delivery, DrainRate()
    queue = MemoryQueue(n.spool, n.spec.name)
    dispatcher = n.dispatcher(queue)
    quota = Quota(d, MEMORY_QUEUE_DEFAULT_EVENTS)
    handoff = ReceivedHandoff(queue, quota, rate, dispatcher.wake)
    dedupe = SpoolDedupe(n.spool, n.dedupe_key, wait=False) if d.dedupe_max_entries else None
    return Parts(handoff, rate, queue, dispatcher, dedupe)


async def delivered(n: Needs) -> Parts:
    """No queue: the 2xx waits for the target's answer."""
    d, name = n.spec.delivery, n.spec.name
    dead = SpoolDeadLetter(n.spool, name)
    handoff = DeliveredHandoff(n.target, d.timeout, n.stats, n.log, dead)
    dedupe = SpoolDedupe(n.spool, n.dedupe_key) if d.dedupe_max_entries else None
    return Parts(handoff, DrainRate(), dedupe=dedupe)


async def nats_spooled(n: Needs) -> Parts:
    """A JetStream stream is the spool (and does the dedupe); ``ack: durable`` only."""
    rate = DrainRate()
    handoff, queue, dispatcher = await nats_spool.build(
        n.spec, n.target, n.spool, n.stats, rate, n.log
    )
    return Parts(handoff, rate, queue, dispatcher)


FACTORIES: dict[str, Callable[[Needs], Awaitable[Parts]]] = {
    "durable": durable,
    "received": received,
    "delivered": delivered,
}


class Runtime:
    """All connectors of a manifest: built by :meth:`start`, torn down by :meth:`stop`."""

    def __init__(
        self, manifest: Manifest, registry: Registry, data_dir: Path | None = None
    ) -> None:
        self.manifest = manifest
        self.registry = registry
        configured = manifest.runtime.data_dir
        self.data_dir = data_dir or (Path(configured) if configured else default_data_dir())
        self.connectors: list[ConnectorRuntime] = []
        self.accepting = True
        self.spool: Spool | None = None
        self.metrics = Metrics()
        self.metrics.watch(self)
        self.trusted_proxies = parse_networks(manifest.runtime.trusted_proxies)
        self._housekeeping: asyncio.Task[None] | None = None
        self.dead_letters: dict[str, int] = {}
        """Dead letters stored now per connector, as last counted (:meth:`count_dead_letters`)."""
        self._dead_counted: tuple[float, int] | None = None
        self.run_pulls = True
        """Start pull sources' tasks and watchers (under ``--workers``, worker 0 alone
        runs them)."""

    async def start(self) -> None:
        self.spool = await asyncio.to_thread(Spool, self.data_dir / "spool.db")
        for spec in self.manifest.connectors:
            self.connectors.append(await self._build(spec, self.spool))
        for c in self.connectors:
            if c.dispatcher is not None:
                c.dispatcher.start()
        for c in self.connectors:
            if c.pull is not None and self.run_pulls:
                await c.pull.prepare()
                c.pull.start()
            for w in c.watchers if self.run_pulls else ():
                w.start()
        self._housekeeping = asyncio.get_running_loop().create_task(self._housekeep())

    async def _build(self, spec: ConnectorSpec, spool: Spool) -> ConnectorRuntime:
        clog = log.getChild(spec.name)
        target_type = self.registry.target_types[spec.target.type]
        target = target_type.create(spec.target.config, TargetContext(spec.name, clog))
        await target.start()
        stats = ConnectorStats()
        self.metrics.bind(spec.name, spec.target.type, stats)

        def filter_failed(reason: str) -> None:
            stats.filter_errors += 1
            clog.debug("filter error: %s", reason)

        predicate = combine(self.registry.event_filters(spec, filter_failed))

        def transform_failed(reason: str) -> None:
            stats.transform_errors += 1
            clog.debug("transform error: %s", reason)

        transform = chain_transforms(
            self.registry.named_event_transforms(spec, transform_failed), transform_failed
        )
        needs = Needs(spec, target, spool, stats, clog)
        factory = nats_spooled if spec.delivery.spool == "nats" else FACTORIES[spec.delivery.ack]
        parts = await factory(needs)
        pipeline = Pipeline(spec.name, predicate, parts.dedupe, parts.handoff, stats, transform)
        source_type = self.registry.source_types[spec.source.type]
        ctx = SourceContext(
            connector=spec.name,
            config=spec.source.config,
            base_path="/" + spec.name,
            default_source=default_source(spec.name),
            ingest=pipeline,
            log=clog,
            guard=RequestGuard(
                stats,
                allowed=parse_networks(spec.allowed_source_ips),
                trusted_proxies=self.trusted_proxies,
                max_bytes_in_flight=spec.max_bytes_in_flight,
                gate=self,
            ),
            counts=stats,
        )
        routes = list(source_type.routes(ctx))
        pull = None
        clean = redacting(spec.secrets)
        if source_type.pull is not None:
            pctx = make_context(
                spec.name, spec.source.config, ctx.default_source, pipeline, stats, clog, clean
            )
            pull = PullRunner(spec.name, source_type.pull, pctx, spool, stats, clog, clean)
        config = spec.source.config
        watchers = [
            WatchRunner(spec.name, w, config, stats.watch, clog, clean)
            for w in (source_type.watchers(config) if source_type.watchers else ())
        ]
        return ConnectorRuntime(
            spec,
            target,
            pipeline,
            stats,
            parts.handoff,
            parts.queue,
            parts.dispatcher,
            parts.rate,
            routes,
            pull,
            watchers,
        )

    def readiness(self) -> list[str]:
        """Why the runtime should not get traffic now (empty when ready)."""
        reasons = []
        if not self.accepting:
            reasons.append("shutting down")
        if self.spool is not None:
            reasons.extend(self.spool.readiness())
        for c in self.connectors:
            why = c.refusing()
            if why:
                reasons.append(f"connector {c.spec.name}: {why}")
        return reasons

    def warnings(self) -> list[str]:
        """What ``/readyz`` reports without being not ready (watchers' warnings)."""
        return [f"connector {c.spec.name}: {w}" for c in self.connectors for w in c.warnings()]

    async def count_dead_letters(self) -> None:
        """Count the dead letters again (before a scrape) when the count is older than
        :data:`DEAD_LETTERS_RECOUNT` or this process stored some since."""
        stored = sum(c.stats.dead_lettered for c in self.connectors)
        last = self._dead_counted
        now = time.monotonic()
        if self.spool is None or (
            last is not None and last[1] == stored and now - last[0] < DEAD_LETTERS_RECOUNT
        ):
            return
        try:
            self.dead_letters = await self.spool.aread(count_dead_letters)
        except SpoolError as exc:  # the gauge keeps its last value
            log.warning("counting the dead letters failed: %s", exc)
            return
        self._dead_counted = (now, stored)

    async def _housekeep(self) -> None:
        """Sample drain rates every second; while the spool cannot be written, probe
        whether it can again; rotate the dedupe window when due (looked at every minute,
        or four times per window when that is shorter)."""
        window = min((c.delivery.dedupe_window for c in self.manifest.connectors), default=0)
        every = min(ROTATE_EVERY, max(1.0, window / 4))
        last_rotation = 0.0
        while True:
            await asyncio.sleep(1.0)
            for c in self.connectors:
                if c.dispatcher is not None:
                    c.rate.sample(c.stats.delivered)
            if self.spool is not None and self.spool.readiness():
                await asyncio.to_thread(self.spool.probe)
            if self.spool is not None and time.monotonic() - last_rotation > every:
                last_rotation = time.monotonic()
                await self._rotate(self.spool)

    async def _rotate(self, spool: Spool) -> None:
        """Rotate the dedupe window's generations when the new one is due
        (:mod:`connector_runtime.spool.seen`)."""
        window = max((c.delivery.dedupe_window for c in self.manifest.connectors), default=0)
        limit = max((c.delivery.dedupe_max_entries for c in self.manifest.connectors), default=0)
        started, new_ids = await spool.aread(
            lambda conn: (seen.started(conn), seen.count_new(conn))
        )
        now = time.time()
        if not seen.due(started, new_ids, window, limit, now):
            return
        try:
            await spool.run(lambda conn: seen.rotate(conn, now))
        except SpoolError as exc:  # e.g. the disk is full: /readyz says so already
            log.error("rotating the dedupe window failed: %s", exc)
            return
        except Exception:
            log.exception("rotating the dedupe window failed")
            return
        log.info("dedupe window rotated: %d ids now in the old generation", new_ids)

    async def stop(self) -> None:
        """Stop taking events, let dispatchers finish their attempt, close everything."""
        self.accepting = False
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        for c in self.connectors:  # before the spool closes: a submit commits all or nothing
            if c.pull is not None:
                await c.pull.stop()
            for w in c.watchers:
                await w.stop()
        for c in self.connectors:
            if c.dispatcher is not None:
                await c.dispatcher.stop()
        for c in self.connectors:
            await c.target.close()
        if self.spool is not None:
            await asyncio.to_thread(self.spool.close)
