"""The ``nats`` target: CloudEvents into a NATS JetStream stream, one PubAck per event.

Each event is published to a subject rendered from a template (``auth0.{connector}.{code}``)
in one of the CloudEvents NATS binding's content modes (both in :mod:`.binding`):

- ``binary``: every attribute but ``datacontenttype`` as a ``ce-<name>`` header,
  ``datacontenttype`` as ``content-type``, the data as the payload;
- ``structured``: the JSON event format as the payload, ``content-type:
  application/cloudevents+json``.

Every message carries ``Nats-Msg-Id`` = the event id, so JetStream drops a second copy that
arrives within the stream's duplicate window (a retry after a lost PubAck, or the same
Auth0 batch delivered to another runtime replica). An event counts as delivered only when
its PubAck arrived, and only then does the dispatcher remove it from the spool.

Publishes of one ``send`` run concurrently, at most ``maxInFlight`` unacknowledged at a
time for the whole target. Lost connections, timeouts, "no responders" and JetStream 5xx
answers (e.g. while a stream elects a leader) are transient: the events are retried.
JetStream 4xx answers, a payload over the server's limit, a subject outside the stream and
a missing stream under ``create: false`` are permanent: the events are dead-lettered. The
code of a JetStream error answer to a publish (HTTP's numbers: 400, 503, ...) goes into the
result as the events' ``status``; JetStream gives no Retry-After.

The connection is made in the background with unlimited reconnects, so a NATS that is down
when the runtime starts delays deliveries (they retry) but neither start-up nor requests.
Deployment (replicas, an R3 stream) and the duplicate window are described in docs/nats.md.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

import nats.js.errors
from nats.js import JetStreamContext, api

from connector_runtime.config.checks import parse_duration
from connector_runtime.errors import DeliveryError
from connector_runtime.events import Event
from connector_runtime.hookspecs import hookimpl
from connector_runtime.nats.binding import encode, render_subject, subject_pattern_of
from connector_runtime.nats.connection import (
    Connection,
    auth_options,
    classify,
    ensure_stream,
    subject_matches,
)
from connector_runtime.records import SendResult, TargetContext, TargetType

MAX_BATCH: Final = 500
STREAM_RECHECK: Final = 30.0
"""Seconds after "no stream answered" before the stream is looked up again."""
_SUBJECT_CACHE_SIZE: Final = 4096

_DURATION: Final[dict[str, Any]] = {
    "oneOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)$"},
    ]
}

CONFIG_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "nats target",
    "type": "object",
    "required": ["servers", "subject", "stream"],
    "additionalProperties": False,
    "properties": {
        "servers": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "pattern": "^(nats|tls)://[^\\s]+$"},
            "description": "NATS server URLs (nats:// or tls://); any one of them is enough "
            "to join the cluster. Give credentials with user/password or token, not in URLs.",
        },
        "subject": {
            "type": "string",
            "minLength": 1,
            "description": "Subject template, e.g. 'auth0.{connector}.{code}'. Placeholders: "
            "{connector}, any CloudEvent attribute ({type}, {source}, {subject}, ...) and "
            "{code}, the last dot-separated part of 'type'. In a value, characters a subject "
            "token cannot hold (whitespace, '.', '*', '>') become '_'; a missing or empty "
            "value becomes '_'.",
        },
        "mode": {
            "enum": ["binary", "structured"],
            "default": "binary",
            "description": "CloudEvents NATS content mode: attributes as ce- headers (binary) "
            "or the JSON event format as the payload (structured).",
        },
        "stream": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "description": "The JetStream stream that stores the events.",
            "properties": {
                "name": {
                    "type": "string",
                    "pattern": "^[A-Za-z0-9_-]{1,255}$",
                    "description": "Stream name; every publish expects this stream to store it.",
                },
                "subjects": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "pattern": "^[^\\s]+$"},
                    "description": "Subjects of a stream created here; default: the subject "
                    "template with every token holding a placeholder replaced by '*'.",
                },
                "replicas": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 5,
                    "default": 1,
                    "description": "Copies of each message in the cluster (3 for production).",
                },
                "retention": {
                    "enum": ["limits", "interest", "workqueue"],
                    "default": "limits",
                    "description": "JetStream retention policy of a stream created here.",
                },
                "maxAge": {
                    **_DURATION,
                    "description": "Seconds (or a duration string) messages are kept; "
                    "0 or absent: no limit.",
                },
                "duplicateWindow": {
                    **_DURATION,
                    "default": 120,
                    "description": "Seconds (or a duration string) within which a second "
                    "message with the same event id is dropped. It must cover the longest "
                    "time between two deliveries of one event (see docs/nats.md).",
                },
                "create": {
                    "type": "boolean",
                    "default": True,
                    "description": "Create the stream when it is missing (an existing stream "
                    "is never changed). false: only check that it exists.",
                },
            },
        },
        "credentials": {
            "type": "string",
            "minLength": 1,
            "x-secret": True,
            "description": "Path of a .creds file (JWT and NKey seed); needs the nkeys package.",
        },
        "token": {
            "type": "string",
            "minLength": 1,
            "x-secret": True,
            "description": "Authentication token.",
        },
        "user": {"type": "string", "minLength": 1, "description": "User name (with password)."},
        "password": {
            "type": "string",
            "minLength": 1,
            "x-secret": True,
            "description": "Password of user.",
        },
        "timeout": {
            "oneOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)$"},
            ],
            "default": 5,
            "description": "Seconds (or a duration string) to wait for one PubAck; keep it "
            "below the connector's delivery timeout.",
        },
        "maxInFlight": {
            "type": "integer",
            "minimum": 1,
            "maximum": 65536,
            "default": 256,
            "description": "Publishes awaiting their PubAck at once; 1 keeps the stream in "
            "spool order.",
        },
    },
    "dependentRequired": {"user": ["password"], "password": ["user"]},
}


# -- the target --------------------------------------------------------------------------


class NATSTarget:
    """Publishes CloudEvents to JetStream and waits for each PubAck."""

    max_batch = MAX_BATCH
    max_in_flight = 4
    """``send`` calls at once: enough to keep ``maxInFlight`` publishes going while the
    progress of earlier calls is recorded (a repeat is dropped by ``Nats-Msg-Id`` anyway)."""

    def __init__(self, config: Mapping[str, Any], ctx: TargetContext) -> None:
        self.connector = ctx.connector
        self.log = ctx.log
        self.servers = [str(s) for s in config["servers"]]
        self.template = str(config["subject"])
        self.mode = str(config.get("mode", "binary"))
        self.timeout = parse_duration(config.get("timeout", 5))
        stream = dict(config["stream"])
        self.stream = str(stream["name"])
        self.create = bool(stream.get("create", True))
        self.stream_config = api.StreamConfig(
            name=self.stream,
            subjects=list(stream.get("subjects") or [subject_pattern_of(self.template)]),
            retention=api.RetentionPolicy(stream.get("retention", "limits")),
            max_age=parse_duration(stream.get("maxAge", 0)) or None,
            duplicate_window=parse_duration(stream.get("duplicateWindow", 120)),
            num_replicas=int(stream.get("replicas", 1)),
            storage=api.StorageType.FILE,
        )
        self.duplicates = 0
        """PubAcks that said JetStream already had the message (dropped as a repeat)."""
        self._slots = asyncio.Semaphore(int(config.get("maxInFlight", 256)))
        self._conn = Connection(
            self.servers,
            f"connector-runtime {self.connector}",
            self.timeout,
            auth_options(
                config.get("credentials"),
                config.get("token"),
                config.get("user"),
                config.get("password"),
            ),
            self.log,
            on_connect=self._on_connect,
        )
        self._stream_subjects: tuple[str, ...] | None = None
        self._stream_lock = asyncio.Lock()
        self._recheck_at = 0.0
        self._in_stream: dict[str, bool] = {}
        self._closed = False

    # -- life cycle

    async def start(self) -> None:
        """Connect (in the background) and ensure the stream; wait at most ``timeout``."""
        await self._conn.start()

    async def _on_connect(self, js: JetStreamContext) -> None:
        try:
            await self._stream_ready(js)
        except DeliveryError as exc:
            self.log.warning("stream %s not ready: %s", self.stream, exc.reason)

    async def close(self) -> None:
        """Stop connecting; drain and close the connection.

        The runtime closes a target after its dispatcher finished the attempt in flight, so
        no PubAck is outstanding here."""
        self._closed = True
        await self._conn.close()

    # -- the stream

    def _stream_known(self) -> tuple[str, ...] | None:
        subjects = self._stream_subjects
        if subjects is not None and self._recheck_at and time.monotonic() >= self._recheck_at:
            return None
        return subjects

    async def _stream_ready(self, js: JetStreamContext) -> tuple[str, ...]:
        """The stream's subjects, creating the stream first if allowed and missing.

        Looked up once, and again (at most every ``STREAM_RECHECK`` seconds) after no stream
        answered a publish: it may have been deleted, or a leader may just be missing."""
        subjects = self._stream_known()
        if subjects is not None:
            return subjects
        async with self._stream_lock:
            subjects = self._stream_known()
            if subjects is None:
                self._recheck_at = 0.0
                try:
                    subjects = await self._ensure_stream(js)
                except DeliveryError as exc:
                    if exc.permanent:
                        self._stream_subjects = None
                    else:
                        self._recheck_at = time.monotonic() + STREAM_RECHECK
                    raise
                self._stream_subjects = subjects
                self._in_stream.clear()
            return subjects

    async def _ensure_stream(self, js: JetStreamContext) -> tuple[str, ...]:
        info = await ensure_stream(js, self.stream_config, self.create, self.timeout, self.log)
        subjects = tuple(info.config.subjects or [self.stream])
        pattern = subject_pattern_of(self.template)
        if not any(subject_matches(s, pattern) for s in subjects):
            self.log.warning(
                "stream %s (subjects %s) does not take every subject of %s",
                self.stream,
                ", ".join(subjects),
                self.template,
            )
        return subjects

    def _subject_in_stream(self, subject: str, subjects: tuple[str, ...]) -> bool:
        known = self._in_stream.get(subject)
        if known is None:
            if len(self._in_stream) >= _SUBJECT_CACHE_SIZE:
                self._in_stream.clear()
            known = self._in_stream[subject] = any(subject_matches(s, subject) for s in subjects)
        return known

    # -- sending

    async def send(self, events: Sequence[Event]) -> SendResult:
        js = self._conn.js
        if self._closed:
            raise DeliveryError("nats target closed")
        if js is None or not self._conn.connected:
            raise DeliveryError(self._conn.why_not())
        subjects = await self._stream_ready(js)
        results = await asyncio.gather(*(self._publish(js, subjects, e) for e in events))
        rejected: dict[int, str] = {}
        retry: dict[int, str] = {}
        status: dict[int, int] = {}
        for i, (permanent, reason, code) in enumerate(results):
            if reason is not None:
                (rejected if permanent else retry)[i] = reason
            if code is not None:
                status[i] = code
        return SendResult(rejected=rejected, retry=retry, status=status)

    async def _publish(
        self, js: JetStreamContext, subjects: tuple[str, ...], event: Event
    ) -> tuple[bool, str | None, int | None]:
        """(permanent?, the reason it failed, JetStream's error code) for one event."""
        subject = render_subject(self.template, event.peek(), self.connector)
        if not self._subject_in_stream(subject, subjects):
            why = f"subject {subject} is not in stream {self.stream} ({', '.join(subjects)})"
            return True, why, None
        payload, headers = encode(event, self.mode)
        async with self._slots:
            if not self._conn.connected:  # fail fast instead of buffering while reconnecting
                return False, self._conn.why_not("reconnecting"), None
            try:
                ack = await js.publish(
                    subject, payload, timeout=self.timeout, stream=self.stream, headers=headers
                )
            except Exception as exc:
                if isinstance(exc, nats.js.errors.NoStreamResponseError) and not self._recheck_at:
                    self._recheck_at = time.monotonic() + STREAM_RECHECK
                code = exc.code if isinstance(exc, nats.js.errors.APIError) else None
                return (*classify(exc, self.timeout), code)
        if ack.duplicate:
            self.duplicates += 1
        return False, None, None


# -- registration --------------------------------------------------------------------------


def check_config(config: Mapping[str, Any]) -> Sequence[tuple[str, str]]:
    """Checks beyond the schema: the subject template, the stream's subjects and windows."""
    problems: list[tuple[str, str]] = []
    template = str(config.get("subject", ""))
    try:
        pattern = subject_pattern_of(template)
    except ValueError as exc:
        return [("subject", f"{template!r}: {exc}")]
    stream = config.get("stream", {})
    subjects = stream.get("subjects")
    if subjects and not any(subject_matches(s, pattern) for s in subjects):
        problems.append(
            ("stream.subjects", f"no subject covers {pattern} (the subject template {template})")
        )
    window = parse_duration(stream.get("duplicateWindow", 120))
    max_age = parse_duration(stream.get("maxAge", 0))
    if max_age and window > max_age:
        problems.append(
            ("stream.duplicateWindow", f"{window:g}s is longer than maxAge ({max_age:g}s)")
        )
    if "credentials" in config and importlib.util.find_spec("nkeys") is None:
        problems.append(("credentials", "a credentials file needs the nkeys package installed"))
    return problems


def create(config: Mapping[str, Any], ctx: TargetContext) -> NATSTarget:
    return NATSTarget(config, ctx)


@hookimpl
def register_target_types(register: Any) -> None:
    register(
        TargetType(
            name="nats",
            config_schema=CONFIG_SCHEMA,
            create=create,
            description="Publish CloudEvents to a NATS JetStream stream (deduplicated by id)",
            check_config=check_config,
        )
    )
