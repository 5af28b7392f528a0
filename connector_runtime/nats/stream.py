"""The JetStream side of ``spool: nats``: the stream, the durable consumer, publishing.

:class:`SpoolStream` connects in the background (see :class:`~connector_runtime.nats.connection.
Connection`), creates the stream (work-queue retention unless the manifest says ``limits``)
and the durable pull consumer when missing, and publishes events as structured-mode
CloudEvents (the JSON event format, ``content-type: application/cloudevents+json``), one
message each, with ``Nats-Msg-Id`` = the event id. An existing stream is never changed; the
consumer is made to match what the manifest asks (JetStream updates what it can).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Final

import nats.js.errors
from nats.js import JetStreamContext, api

from connector_runtime.config.model import NatsSpoolSpec
from connector_runtime.errors import DeliveryError
from connector_runtime.events import Event
from connector_runtime.nats.connection import (
    MSG_ID_HEADER,
    Connection,
    auth_options,
    classify,
    ensure_stream,
    subject_matches,
)
from connector_runtime.spool.payloads import encode_event

CONTENT_TYPE: Final = "application/cloudevents+json; charset=utf-8"
"""What the stream's messages hold: one structured-mode CloudEvent (JSON event format)."""
PUBLISH_SLOTS: Final = 256
"""Publishes awaiting their PubAck at once, per connector."""
MAX_ACK_PENDING: Final = 20_000


def ack_wait(timeout: float) -> float:
    """How long a fetched message stays with one replica: a fetch wait, a whole target
    attempt (at most ``timeout``) and the settling, with room to spare."""
    return 2 * timeout + 5


def stream_config(spec: NatsSpoolSpec) -> api.StreamConfig:
    return api.StreamConfig(
        name=spec.stream,
        subjects=[spec.subject],
        retention=api.RetentionPolicy(spec.retention),
        max_age=spec.max_age or None,
        duplicate_window=spec.duplicate_window,
        num_replicas=spec.replicas,
        storage=api.StorageType.FILE,
    )


def consumer_config(spec: NatsSpoolSpec, timeout: float) -> api.ConsumerConfig:
    return api.ConsumerConfig(
        name=spec.consumer,
        durable_name=spec.consumer,
        description="connector-runtime spool consumer",
        deliver_policy=api.DeliverPolicy.ALL,
        ack_policy=api.AckPolicy.EXPLICIT,
        ack_wait=ack_wait(timeout),
        max_deliver=-1,
        filter_subject=spec.subject,
        max_ack_pending=MAX_ACK_PENDING,
    )


class SpoolStream:
    """The connection, the stream and the pull subscription of one connector."""

    def __init__(
        self, connector: str, spec: NatsSpoolSpec, delivery_timeout: float, log: logging.Logger
    ) -> None:
        self.connector = connector
        self.spec = spec
        self.timeout = spec.timeout
        self.delivery_timeout = delivery_timeout
        self.log = log
        auth = auth_options(spec.credentials, spec.token, spec.user, spec.password)
        self.conn = Connection(
            list(spec.servers), f"connector-runtime {connector} spool", spec.timeout, auth, log
        )
        self.stream_ok = False
        self.sub: JetStreamContext.PullSubscription | None = None
        self.problem: str | None = None
        """Why the stream or consumer is not usable (None when it is, or not known yet)."""
        self._lock = asyncio.Lock()
        self._slots = asyncio.Semaphore(PUBLISH_SLOTS)

    def unavailable(self) -> str | None:
        if not self.conn.connected:
            return self.conn.why_not()
        return self.problem

    async def ready(self, consumer: bool) -> JetStreamContext:
        """The JetStream context once the stream (and, if asked, the subscription) exist;
        :class:`DeliveryError` when they cannot be had now."""
        js = self.conn.js
        if js is None or not self.conn.connected:
            raise DeliveryError(self.conn.why_not())
        if self.stream_ok and (self.sub is not None or not consumer):
            return js
        async with self._lock:
            try:
                if not self.stream_ok:
                    await self._ensure_stream(js)
                if consumer and self.sub is None:
                    self.sub = await self._subscribe(js)
            except DeliveryError as exc:
                if exc.reason != self.problem:
                    self.log.warning("NATS spool not ready: %s", exc.reason)
                self.problem = exc.reason
                raise
            self.problem = None
        return js

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        spec = self.spec
        info = await ensure_stream(js, stream_config(spec), True, self.timeout, self.log)
        subjects = info.config.subjects or []
        if not any(subject_matches(s, spec.subject) for s in subjects):
            raise DeliveryError(
                f"stream {spec.stream} (subjects {', '.join(subjects) or 'none'}) does not take"
                f" subject {spec.subject}",
                permanent=True,
            )
        self.stream_ok = True

    async def _subscribe(self, js: JetStreamContext) -> JetStreamContext.PullSubscription:
        spec = self.spec
        config = consumer_config(spec, self.delivery_timeout)
        try:
            try:
                await js.add_consumer(spec.stream, config)  # creates, or updates what may change
            except nats.js.errors.BadRequestError as exc:
                info = await js.consumer_info(spec.stream, spec.consumer)  # keep it, but say so
                self.log.warning(
                    "consumer %s exists with another configuration (%s); using it as it is",
                    spec.consumer,
                    exc.description,
                )
                if info.config.filter_subject not in (None, "", spec.subject):
                    raise DeliveryError(
                        f"consumer {spec.consumer} filters {info.config.filter_subject},"
                        f" not {spec.subject}",
                        permanent=True,
                    ) from None
            return await js.pull_subscribe_bind(spec.consumer, stream=spec.stream)
        except DeliveryError:
            raise
        except Exception as exc:
            reason = classify(exc, self.timeout, "answer")[1]
            raise DeliveryError(f"consumer {spec.consumer}: {reason}") from None

    async def forget_consumer(self) -> None:
        """Bind again next time (after the consumer or stream went away)."""
        sub, self.sub = self.sub, None
        self.stream_ok = False
        if sub is not None:
            try:
                await sub.unsubscribe()
            except Exception as exc:  # the connection may be gone; nothing to clean then
                self.log.debug("unsubscribing failed: %s", exc)

    async def publish(self, js: JetStreamContext, event: Event, msg_id: str | None = None) -> bool:
        """Store ``event``; True when JetStream already had its id (a duplicate)."""
        headers = {MSG_ID_HEADER: msg_id or event.id, "content-type": CONTENT_TYPE}
        async with self._slots:
            ack = await js.publish(
                self.spec.subject,
                encode_event(event),
                timeout=self.timeout,
                stream=self.spec.stream,
                headers=headers,
            )
        return bool(ack.duplicate)

    async def publish_all(self, events: Sequence[Event], msg_ids: Sequence[str] = ()) -> int:
        """Store every event; return how many were duplicates. :class:`DeliveryError` when
        any one was not stored (some others may have been)."""
        if not self.conn.connected:
            raise DeliveryError(self.conn.why_not())
        js = await self.ready(consumer=False)
        ids: list[str | None] = list(msg_ids) if msg_ids else [None] * len(events)
        results = await asyncio.gather(
            *(self.publish(js, e, i) for e, i in zip(events, ids, strict=True)),
            return_exceptions=True,
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            reason = classify(failed[0], self.timeout)[1]
            if isinstance(failed[0], nats.js.errors.NoStreamResponseError):
                self.stream_ok = False  # deleted under us? look it up again next time
            raise DeliveryError(f"{len(failed)} of {len(events)} events not stored: {reason}")
        return sum(1 for r in results if r is True)
