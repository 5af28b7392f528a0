"""The worker processes of ``run --workers N`` talking to each other.

The kernel hands each connection to any worker, so a scrape of ``/metrics`` (or a probe of
``/readyz``) reaches one of them; that one asks its siblings for their part and answers
for the whole group. Each worker listens on a Unix socket in its own shard,
``DATA_DIR/shard-<i>/worker.sock`` (mode 0600: only the runtime's user can connect). A
request is one line naming what is asked (``metrics``, ``readiness``); the answer is one
JSON document, then the connection closes. Siblings are asked at once, each with a short
deadline; one that does not answer in time is reported missing, never waited for longer.

A worker answers from its event loop, reading only what it already holds (counters, queue
depths) plus a cached dead-letter count: nothing is done per request or per event for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("connector_runtime")

SOCKET_NAME = "worker.sock"
ASK_TIMEOUT = 2.0
"""Seconds a sibling has to answer (Prometheus scrapes time out after 10 s by default)."""
MAX_REQUEST = 256
UNIX_PATH_MAX = 100
"""Bytes of a socket path the kernel takes directly (108 on Linux, with margin)."""

Answer = Callable[[], Awaitable[Any]]


@contextlib.contextmanager
def _address(path: Path) -> Iterator[str]:
    """A path for ``bind``/``connect``: the path itself, or, when it is too long for a
    Unix socket address, the same file reached through ``/proc/self/fd`` and a descriptor
    of its directory (Linux)."""
    text = str(path)
    if len(os.fsencode(text)) <= UNIX_PATH_MAX or not Path("/proc/self/fd").is_dir():
        yield text
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


class WorkerGroup:
    """This worker's place among ``count`` workers whose shards are under ``data_dir``."""

    def __init__(
        self, data_dir: Path, index: int, count: int, timeout: float = ASK_TIMEOUT
    ) -> None:
        self.data_dir = data_dir
        self.index = index
        self.count = count
        self.timeout = timeout
        self._server: asyncio.Server | None = None
        self._answers: dict[str, Answer] = {}

    def socket_path(self, index: int) -> Path:
        return self.data_dir / f"shard-{index}" / SOCKET_NAME

    async def start(self, answers: Mapping[str, Answer]) -> None:
        """Listen for siblings; ``answers`` maps a request word to what computes its
        answer (JSON-ready data). Call after this worker took its shard (the spool lock),
        so a socket file left there by a killed predecessor can be replaced."""
        self._answers = dict(answers)
        path = self.socket_path(self.index)
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        with _address(path) as address:
            self._server = await asyncio.start_unix_server(self._serve, path=address)
        os.chmod(path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
            with contextlib.suppress(OSError):
                self.socket_path(self.index).unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), self.timeout)
            answer = self._answers.get(line[:MAX_REQUEST].strip().decode("ascii", "replace"))
            body = {"error": "unknown request"} if answer is None else await answer()
            writer.write(orjson.dumps({"worker": self.index, "answer": body}))
            await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the asking sibling gave up or went away: nothing to tell anyone
        except Exception:
            log.exception("answering a sibling worker failed")
        finally:
            writer.close()

    async def ask(self, request: str) -> tuple[dict[int, Any], list[int]]:
        """Every sibling's answer to ``request`` (by worker index), and the indexes of
        those that did not answer in time."""
        siblings = [i for i in range(self.count) if i != self.index]
        results = await asyncio.gather(*(self._ask_one(i, request) for i in siblings))
        answers = {i: r for i, r in zip(siblings, results, strict=True) if r is not None}
        return answers, [i for i in siblings if i not in answers]

    async def _ask_one(self, index: int, request: str) -> Any:
        try:
            return await asyncio.wait_for(self._exchange(index, request), self.timeout)
        except (OSError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            log.debug("worker %d did not answer %r: %s", index, request, exc)
            return None

    async def _exchange(self, index: int, request: str) -> Any:
        with _address(self.socket_path(index)) as address:
            reader, writer = await asyncio.open_unix_connection(address)
        try:
            writer.write(request.encode("ascii") + b"\n")
            await writer.drain()
            data = orjson.loads(await reader.read())
        finally:
            writer.close()
        return data["answer"]
