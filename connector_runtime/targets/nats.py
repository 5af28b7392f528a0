"""The ``nats`` target: CloudEvents into a NATS JetStream stream, one PubAck per event.

Each event is published to a subject rendered from a template (``auth0.{connector}.{code}``)
in one of the CloudEvents NATS binding's content modes:

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
a missing stream under ``create: false`` are permanent: the events are dead-lettered.

The connection is made in the background with unlimited reconnects, so a NATS that is down
when the runtime starts delays deliveries (they retry) but neither start-up nor requests.
Deployment (replicas, an R3 stream) and the duplicate window are described in docs/nats.md.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext, api

from connector_runtime.errors import DeliveryError
from connector_runtime.events import (
    STRUCTURED_CONTENT_TYPE,
    AttributeValue,
    Event,
    is_extension_name,
    to_structured,
)
from connector_runtime.hookspecs import hookimpl
from connector_runtime.manifest import parse_duration
from connector_runtime.records import SendResult, TargetContext, TargetType

MSG_ID_HEADER: Final = "Nats-Msg-Id"
MAX_BATCH: Final = 500
RECONNECT_WAIT: Final = 1
"""Seconds between connection attempts to the same server."""
DRAIN_TIMEOUT: Final = 5.0
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


# -- subjects (pure) ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    name: str


_PLACEHOLDER: Final = re.compile(r"\{([^{}]*)\}")
_BAD_LITERAL: Final = re.compile(r"[\s*>{}\x00-\x1f\x7f]")
_NOT_IN_TOKEN: Final = re.compile(r"[\s.*>\x00-\x1f\x7f]")


@functools.lru_cache(maxsize=64)
def parse_subject(template: str) -> tuple[str | _Field, ...]:
    """Split a subject template into literal text and placeholders; ValueError if invalid."""
    parts: list[str | _Field] = []
    pos = 0
    for match in _PLACEHOLDER.finditer(template):
        parts.append(template[pos : match.start()])
        name = match.group(1)
        if name not in ("connector", "code") and not is_extension_name(name):
            raise ValueError(
                f"unknown placeholder {{{name}}} (use {{connector}}, {{code}} or an attribute"
                " name such as {type})"
            )
        parts.append(_Field(name))
        pos = match.end()
    parts.append(template[pos:])
    for part in parts:
        if isinstance(part, str) and (bad := _BAD_LITERAL.search(part)):
            raise ValueError(f"{bad.group()!r} is not allowed in a subject outside a placeholder")
    if "" in subject_pattern_of(parts).split("."):
        raise ValueError("a subject cannot have an empty token (leading, trailing or '..')")
    return tuple(p for p in parts if p != "")


def subject_pattern_of(template: str | Sequence[str | _Field]) -> str:
    """The template with every token holding a placeholder replaced by ``*``."""
    parts = parse_subject(template) if isinstance(template, str) else template
    text = "".join("\x00" if isinstance(p, _Field) else p for p in parts)
    return ".".join("*" if "\x00" in token else token for token in text.split("."))


def subject_token(value: str) -> str:
    """``value`` made fit for one subject token: forbidden characters become ``_``."""
    return _NOT_IN_TOKEN.sub("_", value) or "_"


def render_subject(template: str, attributes: Mapping[str, AttributeValue], connector: str) -> str:
    """The subject of an event with ``attributes`` published by ``connector``."""
    out: list[str] = []
    for part in parse_subject(template):
        if isinstance(part, str):
            out.append(part)
            continue
        if part.name == "connector":
            value: AttributeValue | None = connector
        elif part.name == "code":
            value = str(attributes.get("type", "")).rsplit(".", 1)[-1]
        else:
            value = attributes.get(part.name)
        if isinstance(value, bool):
            value = "true" if value else "false"
        out.append(subject_token("" if value is None else str(value)))
    return "".join(out)


def subject_matches(pattern: str, subject: str) -> bool:
    """True when every subject ``subject`` stands for (it may hold ``*`` tokens) also
    matches ``pattern`` (a stream subject with ``*`` and ``>`` wildcards)."""
    want = pattern.split(".")
    have = subject.split(".")
    for i, part in enumerate(want):
        if part == ">":
            return len(have) > i
        if i >= len(have) or (part != "*" and part != have[i]):
            return False
    return len(want) == len(have)


# -- encoding and errors (pure) ----------------------------------------------------------


def encode(event: Event, mode: str) -> tuple[bytes, dict[str, str]]:
    """Payload and headers of the NATS message for ``event`` (``Nats-Msg-Id`` included)."""
    if mode == "structured":
        return to_structured(event), {
            "content-type": STRUCTURED_CONTENT_TYPE,
            MSG_ID_HEADER: event.id,
        }
    headers: dict[str, str] = {}
    for name, value in event.attributes.items():
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        headers["content-type" if name == "datacontenttype" else "ce-" + name] = text
    headers[MSG_ID_HEADER] = event.id
    return event.data or b"", headers


def classify(exc: BaseException, timeout: float, awaited: str = "PubAck") -> tuple[bool, str]:
    """``(permanent, one-line reason)`` for an exception a JetStream request raised."""
    if isinstance(exc, nats.js.errors.APIError):
        code = exc.code
        reason = f"JetStream {code if code is not None else 'error'}: {exc.description or '?'}"
        if exc.err_code:
            reason += f" (err_code {exc.err_code})"
        transient = code is None or code in (408, 429) or code >= 500
        return not transient, reason
    if isinstance(exc, nats.js.errors.NoStreamResponseError):
        return False, "no JetStream stream answered (no leader yet, or JetStream is off)"
    if isinstance(exc, nats.errors.MaxPayloadError):
        return True, "message exceeds the server's maximum payload (max_payload)"
    if isinstance(exc, nats.errors.BadSubjectError | nats.errors.BadHeaderError):
        return True, f"invalid message: {type(exc).__name__}"
    if isinstance(exc, TimeoutError):  # nats.errors.TimeoutError too
        return False, f"no {awaited} within {timeout:g}s"
    text = " ".join(str(exc).split())
    return False, f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- the target --------------------------------------------------------------------------


class NATSTarget:
    """Publishes CloudEvents to JetStream and waits for each PubAck."""

    max_batch = MAX_BATCH

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
        self._auth: dict[str, Any] = {}
        if "credentials" in config:
            self._auth["user_credentials"] = str(config["credentials"])
        if "token" in config:
            self._auth["token"] = str(config["token"])
        if "user" in config:
            self._auth["user"] = str(config["user"])
            self._auth["password"] = str(config["password"])
        self.duplicates = 0
        """PubAcks that said JetStream already had the message (dropped as a repeat)."""
        self._slots = asyncio.Semaphore(int(config.get("maxInFlight", 256)))
        self._nc = Client()
        self._js: JetStreamContext | None = None
        self._stream_subjects: tuple[str, ...] | None = None
        self._stream_lock = asyncio.Lock()
        self._recheck_at = 0.0
        self._in_stream: dict[str, bool] = {}
        self._connecting: asyncio.Task[None] | None = None
        self._last_error: str | None = None
        self._closed = False

    # -- life cycle

    async def start(self) -> None:
        """Connect (in the background) and ensure the stream; wait at most ``timeout``."""
        if self._connecting is None:
            self._connecting = asyncio.get_running_loop().create_task(
                self._connect(), name=f"nats connect {self.connector}"
            )
        try:
            await asyncio.wait_for(asyncio.shield(self._connecting), self.timeout)
        except TimeoutError:
            self.log.warning(
                "NATS at %s not reachable yet (%s); deliveries retry until it is",
                ", ".join(self.servers),
                self._last_error or "connecting",
            )

    async def _connect(self) -> None:
        try:
            await self._nc.connect(
                servers=self.servers,
                name=f"connector-runtime {self.connector}",
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=RECONNECT_WAIT,
                connect_timeout=max(1, round(self.timeout)),
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
                **self._auth,
            )
        except Exception as exc:  # the client gave up (e.g. a bad credentials file)
            self._last_error = classify(exc, self.timeout)[1]
            self.log.error("cannot connect to NATS: %s", self._last_error)
            return
        self._js = self._nc.jetstream(timeout=self.timeout)
        self._last_error = None
        self.log.info("connected to NATS at %s", _server_of(self._nc))
        try:
            await self._stream_ready(self._js)
        except DeliveryError as exc:
            self.log.warning("stream %s not ready: %s", self.stream, exc.reason)

    async def _on_error(self, exc: Exception) -> None:
        reason = classify(exc, self.timeout)[1]
        if reason != self._last_error:
            self.log.warning("NATS: %s", reason)
        self._last_error = reason

    async def _on_disconnected(self) -> None:
        if not self._closed:
            self.log.warning("disconnected from NATS; reconnecting")

    async def _on_reconnected(self) -> None:
        self._last_error = None
        self.log.info("reconnected to NATS at %s", _server_of(self._nc))

    async def close(self) -> None:
        """Stop connecting; drain and close the connection.

        The runtime closes a target after its dispatcher finished the attempt in flight, so
        no PubAck is outstanding here."""
        self._closed = True
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
            await asyncio.gather(self._connecting, return_exceptions=True)
        nc = self._nc
        if nc.is_connected:
            try:
                await asyncio.wait_for(nc.drain(), DRAIN_TIMEOUT)
            except Exception as exc:  # closing anyway
                self.log.debug("draining the NATS connection failed: %s", exc)
        if not nc.is_closed:
            await nc.close()

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
        try:
            try:
                info = await js.stream_info(self.stream)
            except nats.js.errors.NotFoundError:
                if not self.create:
                    raise DeliveryError(
                        f"stream {self.stream} does not exist (and stream.create is false)",
                        permanent=True,
                    ) from None
                info = await js.add_stream(self.stream_config)
                self.log.info("created stream %s", self.stream)
        except DeliveryError:
            raise
        except Exception as exc:
            permanent, reason = classify(exc, self.timeout, "answer")
            raise DeliveryError(f"stream {self.stream}: {reason}", permanent=permanent) from None
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
        js = self._js
        if self._closed:
            raise DeliveryError("nats target closed")
        if js is None or not self._nc.is_connected:
            raise DeliveryError(f"not connected to NATS: {self._last_error or 'connecting'}")
        subjects = await self._stream_ready(js)
        results = await asyncio.gather(*(self._publish(js, subjects, e) for e in events))
        rejected: dict[int, str] = {}
        retry: dict[int, str] = {}
        for i, (permanent, reason) in enumerate(results):
            if reason is not None:
                (rejected if permanent else retry)[i] = reason
        return SendResult(rejected=rejected, retry=retry)

    async def _publish(
        self, js: JetStreamContext, subjects: tuple[str, ...], event: Event
    ) -> tuple[bool, str | None]:
        subject = render_subject(self.template, event.attributes, self.connector)
        if not self._subject_in_stream(subject, subjects):
            return True, f"subject {subject} is not in stream {self.stream} ({', '.join(subjects)})"
        payload, headers = encode(event, self.mode)
        async with self._slots:
            if not self._nc.is_connected:  # fail fast instead of buffering while reconnecting
                return False, f"not connected to NATS: {self._last_error or 'reconnecting'}"
            try:
                ack = await js.publish(
                    subject, payload, timeout=self.timeout, stream=self.stream, headers=headers
                )
            except Exception as exc:
                if isinstance(exc, nats.js.errors.NoStreamResponseError) and not self._recheck_at:
                    self._recheck_at = time.monotonic() + STREAM_RECHECK
                return classify(exc, self.timeout)
        if ack.duplicate:
            self.duplicates += 1
        return False, None


def _server_of(nc: Client) -> str:
    url = nc.connected_url
    return f"{url.hostname}:{url.port}" if url is not None else "?"


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
