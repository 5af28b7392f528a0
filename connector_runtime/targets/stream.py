"""The ``stdout`` and ``file`` targets: one structured CloudEvent JSON document per line."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any

from connector_runtime.errors import DeliveryError
from connector_runtime.events import Event, to_structured
from connector_runtime.hookspecs import hookimpl
from connector_runtime.records import SendResult, TargetContext, TargetType

STDOUT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "stdout target",
    "type": "object",
    "additionalProperties": False,
    "properties": {},
}

FILE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "file target",
    "type": "object",
    "required": ["path"],
    "additionalProperties": False,
    "properties": {
        "path": {"type": "string", "minLength": 1, "description": "File to append to."},
        "fsync": {
            "type": "boolean",
            "default": False,
            "description": "fsync after every write, so an accepted event survives power loss.",
        },
    },
}


class StreamTarget:
    """Writes events as JSON lines to a binary stream."""

    max_batch = 1000

    def __init__(self, stream: IO[bytes] | None, path: str | None, fsync: bool) -> None:
        self._stream = stream
        self._path = path
        self._fsync = fsync

    async def start(self) -> None:
        if self._path is not None and self._stream is None:
            try:
                self._stream = open(self._path, "ab")  # noqa: SIM115 - closed in close()
            except OSError as exc:
                raise DeliveryError(f"cannot open {self._path}: {exc.strerror}") from None

    async def send(self, events: Sequence[Event]) -> SendResult:
        stream = self._stream
        if stream is None:
            raise DeliveryError("target not started")
        payload = b"".join(to_structured(e) + b"\n" for e in events)
        try:
            stream.write(payload)
            stream.flush()
            if self._fsync:
                await asyncio.to_thread(os.fsync, stream.fileno())
        except OSError as exc:
            raise DeliveryError(f"write failed: {exc.strerror or exc}") from None
        return SendResult()

    async def close(self) -> None:
        if self._path is not None and self._stream is not None:
            self._stream.close()
            self._stream = None


def create_stdout(config: Mapping[str, Any], ctx: TargetContext) -> StreamTarget:
    return StreamTarget(sys.stdout.buffer, None, False)


def create_file(config: Mapping[str, Any], ctx: TargetContext) -> StreamTarget:
    return StreamTarget(None, str(config["path"]), bool(config.get("fsync", False)))


@hookimpl
def register_target_types(register: Any) -> None:
    register(
        TargetType(
            name="stdout",
            config_schema=STDOUT_SCHEMA,
            create=create_stdout,
            description="Print each event as one structured CloudEvent JSON line",
        )
    )
    register(
        TargetType(
            name="file",
            config_schema=FILE_SCHEMA,
            create=create_file,
            description="Append each event as one structured CloudEvent JSON line to a file",
        )
    )
