"""``spec.delivery.spool: nats``: a JetStream stream as the spool itself.

A request is answered 2xx once JetStream stored every one of its events (each publish got
its PubAck), so a runtime replica holds nothing another replica could not deliver: every
replica pulls from the same durable consumer (work-queue style) and delivers to the
connector's target.

- :class:`NatsSpoolHandoff` (``ack: durable``): publishes each event (a structured-mode
  CloudEvent in JSON, one per message) with ``Nats-Msg-Id`` = the event id, so the
  stream's duplicate window drops a redelivery whichever replica gets it; PubAcks saying
  ``duplicate`` are counted as duplicates. Any failure is a 503: a partial publish is
  harmless, the retry is deduped.
- :class:`NatsQueue` (a :class:`~connector_runtime.spool.queues.BatchQueue`): fetches messages
  from the durable pull consumer, one :class:`NatsBatch` each; settling acks delivered and
  dead-lettered ones (dead letters go to the local SQLite spool, so ``connector-runtime
  dlq`` shows them) and naks the rest with the dispatcher's backoff as the delay. The retry
  policy is ours (``max_deliver`` is unlimited). Events redriven from the dead letters (or
  left in the local spool by an earlier ``spool: local``) are moved into the stream.
- :class:`NatsDispatcher`: the usual dispatcher, polling the consumer without idling and
  closing the NATS connection when it stops.

The local ``seen`` table is not used: the stream's duplicate window is the dedupe. The
stream, the consumer and publishing are in :mod:`connector_runtime.nats.stream`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import nats.js.errors
from nats.aio.msg import Msg

from connector_runtime.config.model import ConnectorSpec
from connector_runtime.delivery.dispatcher import IDLE_POLL, Dispatcher
from connector_runtime.errors import DeliveryError, SpoolError, Unavailable
from connector_runtime.events import Event
from connector_runtime.ingest.handoffs import DrainRate, Quota
from connector_runtime.nats.connection import classify
from connector_runtime.nats.stream import SpoolStream
from connector_runtime.observe.stats import ConnectorStats
from connector_runtime.records import Target
from connector_runtime.spool import tables
from connector_runtime.spool.payloads import decode_event, event_size
from connector_runtime.spool.progress import pending
from connector_runtime.spool.queues import Mark, Settlement, dead_letter_rows
from connector_runtime.spool.store import Batch, Spool

FETCH_WAIT: Final = 0.5
"""Seconds one fetch waits for messages (the dispatcher notices a stop this often)."""
REFRESH: Final = 2.0
"""Seconds between looks at the consumer's pending counts (and at the local spool)."""
RETRY_AFTER: Final = 10
"""Retry-After (seconds) of a 503 because JetStream could not store a request's events."""
STORE_RETRY: Final = 5.0
"""Seconds before an event whose dead letter could not be stored is tried again."""


@dataclass(frozen=True)
class NatsBatch(Batch):
    """One message of the stream: a batch of one event, with its message to settle."""

    msg: Msg = field(compare=False, repr=False)


class NatsQueue:
    """The connector's events waiting in the stream, as a :class:`BatchQueue`."""

    reads_past = False  # a fetch hands out what is not acknowledged; settle acknowledges
    records_progress = False

    def __init__(self, stream: SpoolStream, spool: Spool, connector: str) -> None:
        self.stream = stream
        self.spool = spool
        self.connector = connector
        self.log = stream.log
        self.pending_events = 0
        self.pending_bytes = 0
        self.oldest: float | None = None
        self.polled = False
        """Whether the last :meth:`head` waited on the server (so the dispatcher need not)."""
        self._avg_size = 0
        self._fetch_error: str | None = None
        self._task: asyncio.Task[None] | None = None

    def added(self, events: int, size: int) -> None:
        self.pending_events += events
        self.pending_bytes += size

    async def head(self, max_events: int, after: int = 0) -> list[Batch]:
        self.polled = False
        try:
            await self.stream.ready(consumer=True)
        except DeliveryError:
            return []
        sub = self.stream.sub
        assert sub is not None
        started = time.monotonic()
        try:
            msgs = await sub.fetch(max_events, timeout=FETCH_WAIT)
        except TimeoutError:
            self.polled = time.monotonic() - started >= FETCH_WAIT / 2
            return []
        except Exception as exc:
            reason = classify(exc, FETCH_WAIT, "message")[1]
            if reason != self._fetch_error:
                self.log.warning("fetching from the NATS spool failed: %s", reason)
            self._fetch_error = reason
            if isinstance(exc, nats.js.errors.APIError) and exc.code in (404, 409):
                await self.stream.forget_consumer()  # deleted? create and bind again
            return []
        self._fetch_error = None
        batches: list[Batch] = []
        for msg in msgs:
            batch = await self._batch(msg)
            if batch is not None:
                batches.append(batch)
        if batches:
            self.oldest = min(b.created for b in batches)
        return batches

    async def _batch(self, msg: Msg) -> NatsBatch | None:
        meta = msg.metadata
        try:
            event = decode_event(msg.data)
        except Exception as exc:  # not written by a runtime; never deliverable
            self.log.error(
                "message %d on %s is not a spooled event (%s); terminated",
                meta.sequence.stream,
                msg.subject,
                exc,
            )
            try:
                await msg.term()
            except Exception as term_exc:  # it comes back after ack_wait; said again then
                self.log.debug("terminating message failed: %s", term_exc)
            return None
        return NatsBatch(
            meta.sequence.stream,
            self.connector,
            meta.timestamp.timestamp(),
            max(0, meta.num_delivered - 1),
            0.0,
            [event],
            msg,
        )

    def record(self, marks: Sequence[Mark]) -> None:
        """Nothing to record: settling acknowledges (``records_progress`` is False)."""

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        now = time.time()
        rows = [
            r for s in settlements for r in dead_letter_rows(self.connector, s.batch, s.dead, now)
        ]
        stored = True
        if rows:
            connector = self.connector

            def job(conn: sqlite3.Connection) -> None:
                tables.insert_dead_letters(conn, connector, rows)

            try:
                await self.spool.run(job)
            except SpoolError as exc:
                stored = False
                self.log.error("dead letters not stored (retried in %gs): %s", STORE_RETRY, exc)
        done = 0
        for s in settlements:
            msg = s.batch.msg if isinstance(s.batch, NatsBatch) else None
            if msg is None:
                continue
            try:
                if s.remaining:
                    await msg.nak(delay=max(0.001, s.next_attempt - now))
                elif s.dead and not stored:
                    await msg.nak(delay=STORE_RETRY)
                else:
                    await msg.ack()
                    done += 1
            except Exception as exc:  # redelivered after ack_wait instead
                self.log.warning("settling message %d failed: %s", s.batch.seq, exc)
        try:
            await self.stream.conn.nc.flush(max(1, round(self.stream.timeout)))
        except Exception as exc:
            self.log.warning("acks not confirmed by NATS (may be redelivered): %s", exc)
        self.pending_events = max(0, self.pending_events - done)
        self.pending_bytes = max(0, self.pending_bytes - done * self._avg_size)

    # -- housekeeping

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._housekeep(), name=f"nats spool {self.connector}"
        )

    async def close(self) -> None:
        """Stop housekeeping and close the connection. Unsubscribing first keeps the drain
        short: messages that reached the subscription unasked wait for nobody; JetStream
        hands them out again after ``ack_wait``."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.stream.forget_consumer()
        await self.stream.conn.close()

    async def _housekeep(self) -> None:
        while True:
            for step in (self.refresh, self.move_local):
                try:
                    await step()
                except (DeliveryError, SpoolError) as exc:
                    self.log.debug("NATS spool housekeeping: %s", exc)
                except Exception:
                    self.log.exception("NATS spool housekeeping failed")
            await asyncio.sleep(REFRESH)

    async def refresh(self) -> None:
        """Take the pending counts from the consumer (all replicas' events, not just ours)."""
        js = await self.stream.ready(consumer=True)
        spec = self.stream.spec
        try:
            consumer = await js.consumer_info(spec.stream, spec.consumer)
            stream = await js.stream_info(spec.stream)
        except Exception as exc:
            raise DeliveryError(classify(exc, self.stream.timeout, "answer")[1]) from None
        pending = (consumer.num_pending or 0) + (consumer.num_ack_pending or 0)
        state = stream.state
        self._avg_size = state.bytes // state.messages if state.messages else 0
        self.pending_events, self.pending_bytes = pending, pending * self._avg_size
        if not pending:
            self.oldest = None

    async def move_local(self) -> None:
        """Publish this connector's rows of the local spool (dead letters redriven with
        ``connector-runtime dlq redrive``, or events from before ``spool: nats``), then
        delete them. Each gets a message id of its own: the event id may still be in the
        duplicate window, and a redrive must not be dropped as a repeat."""
        connector = self.connector
        rows = await self.spool.aread(lambda c: tables.head_rows(c, connector, 0, 100).fetchall())
        for seq, *_, done, stored, seg, offset, length in rows:  # tables.HEAD_COLUMNS
            payload = await asyncio.to_thread(self.spool.payload, stored, seg, offset, length)
            events, _ = pending(payload, done)
            await self.stream.publish_all(events, [f"{e.id}:local:{seq}" for e in events])

            def job(conn: sqlite3.Connection, seq: int = seq) -> None:
                tables.delete_batches(conn, [seq])

            # shielded: close() cancels housekeeping, and the spool's writer thread must not
            # be left with a cancelled future
            await asyncio.shield(self.spool.run(job))
            self.log.info("moved %d events from the local spool into the stream", len(events))


class NatsSpoolHandoff:
    """``ack: durable`` with ``spool: nats``: 2xx only after JetStream stored the events."""

    def __init__(
        self,
        stream: SpoolStream,
        queue: NatsQueue,
        quota: Quota,
        rate: DrainRate,
        wake: asyncio.Event,
    ) -> None:
        self.stream = stream
        self.queue = queue
        self.quota = quota
        self.rate = rate
        self.wake = wake

    def refusing(self) -> str | None:
        """Why this replica should get no requests now (readiness)."""
        why = self.stream.unavailable()
        if why is not None:
            return f"NATS spool unavailable: {why}"
        return self.quota.over(self.queue.pending_events, self.queue.pending_bytes, full=True)

    async def take(self, events: list[Event], request_id: str) -> int:
        queue = self.queue
        size = sum(map(event_size, events))
        why = self.quota.over(queue.pending_events + len(events), queue.pending_bytes + size)
        if why is not None:
            excess = queue.pending_events - (self.quota.max_events or 0) + len(events)
            raise Unavailable(why, self.rate.retry_after(max(excess, len(events))))
        try:
            duplicates = await self.stream.publish_all(events)
        except DeliveryError as exc:
            raise Unavailable(f"NATS spool unavailable: {exc.reason}", RETRY_AFTER) from None
        if duplicates < len(events):
            queue.added(len(events) - duplicates, size)
            self.wake.set()
        return duplicates


class NatsDispatcher(Dispatcher):
    """The dispatcher over a :class:`NatsQueue`: a fetch waits on the server, so there is no
    idle wait after one; stopping also closes the spool's NATS connection."""

    def __init__(
        self,
        queue: NatsQueue,
        target: Target,
        spec: ConnectorSpec,
        log: logging.Logger,
        stats: ConnectorStats,
    ) -> None:
        delivery = spec.delivery
        super().__init__(spec.name, queue, target, delivery.retry, delivery.timeout, log, stats)
        self.nats_queue = queue

    def start(self) -> None:
        super().start()
        self.nats_queue.start()

    async def stop(self) -> None:
        await super().stop()
        await self.nats_queue.close()

    def _idle_wait(self) -> float:
        return 0.0 if self.nats_queue.polled else IDLE_POLL


async def build(
    spec: ConnectorSpec,
    target: Target,
    spool: Spool,
    stats: ConnectorStats,
    rate: DrainRate,
    log: logging.Logger,
) -> tuple[NatsSpoolHandoff, NatsQueue, NatsDispatcher]:
    """The hand-off, queue and dispatcher of a connector with ``spool: nats``; connects
    (waiting at most the spool's ``timeout``, then going on in the background)."""
    nats_spec = spec.delivery.nats
    if nats_spec is None:
        raise ValueError(f"connector {spec.name}: spool 'nats' without delivery.nats")
    stream = SpoolStream(spec.name, nats_spec, spec.delivery.timeout, log)
    await stream.conn.start()
    queue = NatsQueue(stream, spool, spec.name)
    if stream.conn.connected:
        with contextlib.suppress(DeliveryError):  # logged; requests get 503 until it works
            await queue.refresh()
    dispatcher = NatsDispatcher(queue, target, spec, log, stats)
    handoff = NatsSpoolHandoff(stream, queue, Quota(spec.delivery), rate, dispatcher.wake)
    return handoff, queue, dispatcher
