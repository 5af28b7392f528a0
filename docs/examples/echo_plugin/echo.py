"""echo: the example plugin of docs/writing-plugins.md, one module with all three hooks.

- source type ``echo``: every non-blank line of a ``text/plain`` body becomes one CloudEvent;
- target type ``echo-file``: appends each event as one JSON line to a file, and rejects
  events larger than ``maxEventBytes`` (they go to the dead-letter store);
- ``event_filter``: an ``echo`` connector with ``contains`` passes on only the lines that
  contain that text;
- ``event_transform``: an ``echo`` line's e-mail addresses are replaced by ``<e-mail>``.

The guide shows this file in pieces; tests/test_docs.py keeps them equal and runs it.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from connector_runtime import (
    ConnectorSpec,
    DeliveryError,
    Event,
    EventPredicate,
    EventTransform,
    RequestRejected,
    Route,
    SendResult,
    SourceContext,
    SourceHandler,
    SourceType,
    TargetContext,
    TargetType,
    hookimpl,
    make_event,
    to_structured,
)

# snippet: source-schema
ECHO_SCHEMA: Mapping[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "echo source config",
    "type": "object",
    "properties": {
        "token": {
            "description": "The Authorization header value senders must send.",
            "type": "string",
            "minLength": 8,
            "x-secret": True,
        },
        "contains": {
            "description": "Pass on only lines containing this text.",
            "type": "string",
            "minLength": 1,
        },
    },
    "additionalProperties": False,
}
# end snippet: source-schema


# snippet: handler
class EchoHandler(SourceHandler):
    """``POST /<connector>`` with a text body: one event per non-blank line."""

    def accepts_content_type(self, mtype: str) -> bool:
        return mtype in ("", "text/plain")

    def events(self, body: bytes) -> Sequence[Event]:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise RequestRejected(400, "body is not UTF-8 text") from None
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            raise RequestRejected(400, "body has no lines")
        # The same body posted again must give the same ids, so the runtime can drop it.
        digest = hashlib.sha256(body).hexdigest()[:32]
        return [
            make_event(
                id=f"{digest}-{number}",
                source=self.ctx.default_source,
                type="com.example.echo.line",
                data=line.encode("utf-8"),
                datacontenttype="text/plain",
            )
            for number, line in enumerate(lines)
        ]


def echo_routes(ctx: SourceContext) -> Sequence[Route]:
    return [("", EchoHandler, {"ctx": ctx})]


# end snippet: handler


# snippet: register_source_types
@hookimpl
def register_source_types(register: Callable[[SourceType], None]) -> None:
    register(
        SourceType(
            name="echo",
            config_schema=ECHO_SCHEMA,
            routes=echo_routes,
            description="text lines in, one CloudEvent per line out",
        )
    )


# end snippet: register_source_types


# snippet: target
FILE_SCHEMA: Mapping[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "echo-file target config",
    "type": "object",
    "required": ["path"],
    "properties": {
        "path": {"description": "The file to append to.", "type": "string", "minLength": 1},
        "maxEventBytes": {
            "description": "Larger events are rejected for good (dead-lettered).",
            "type": "integer",
            "minimum": 1,
            "default": 65536,
        },
    },
    "additionalProperties": False,
}


class EchoFileTarget:
    """Appends each event as one structured-mode JSON line."""

    max_batch = 500

    def __init__(self, path: Path, max_event_bytes: int) -> None:
        self.path = path
        self.max_event_bytes = max_event_bytes
        self.file: BinaryIO | None = None

    async def start(self) -> None:
        self.file = self.path.open("ab")

    async def send(self, events: Sequence[Event]) -> SendResult:
        if self.file is None:
            raise DeliveryError("target not started")
        rejected: dict[int, str] = {}
        lines: list[bytes] = []
        for index, event in enumerate(events):
            line = to_structured(event)
            if len(line) > self.max_event_bytes:
                rejected[index] = f"event of {len(line)} bytes > maxEventBytes"
            else:
                lines.append(line + b"\n")
        try:
            await asyncio.to_thread(self._write, b"".join(lines))
        except OSError as exc:  # transient: the runtime retries with backoff
            raise DeliveryError(f"cannot write {self.path}: {exc.strerror}") from None
        return SendResult(rejected=rejected)

    def _write(self, data: bytes) -> None:
        assert self.file is not None
        self.file.write(data)
        self.file.flush()

    async def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def create_file_target(config: Mapping[str, Any], ctx: TargetContext) -> EchoFileTarget:
    return EchoFileTarget(Path(config["path"]), config["maxEventBytes"])


# end snippet: target


# snippet: register_target_types
@hookimpl
def register_target_types(register: Callable[[TargetType], None]) -> None:
    register(
        TargetType(
            name="echo-file",
            config_schema=FILE_SCHEMA,
            create=create_file_target,
            description="one JSON line per event, appended to a file",
        )
    )


# end snippet: register_target_types


# snippet: event_filter
@hookimpl
def event_filter(connector: ConnectorSpec) -> EventPredicate | None:
    if connector.source.type != "echo" or "contains" not in connector.source.config:
        return None  # not ours, or nothing to filter: take no part
    needle = connector.source.config["contains"].encode("utf-8")

    def keep(event: Event) -> bool:
        return needle in (event.data or b"")

    return keep


# end snippet: event_filter


# snippet: event_transform
EMAIL = re.compile(rb"[^\s@]+@[^\s@]+")


@hookimpl
def event_transform(connector: ConnectorSpec) -> EventTransform | None:
    if connector.source.type != "echo":
        return None  # not ours: take no part

    def hide_emails(event: Event) -> Event:
        data = event.data or b""
        hidden = EMAIL.sub(b"<e-mail>", data)
        if hidden == data:
            return event  # unchanged: the runtime keeps its encoding
        return Event(dict(event.peek()), hidden)  # same id and source, other data

    return hide_emails


# end snippet: event_transform
