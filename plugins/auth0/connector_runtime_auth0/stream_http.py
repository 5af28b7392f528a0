"""One long-lived HTTP/1.1 GET whose body is read as it arrives, with an idle timeout: what
an Server-Sent Events client needs and Tornado's client cannot do (it has no idle timeout
for a streamed body, and cannot abandon a request under way).

:func:`open_stream` connects (TLS for ``https``, verifying the certificate and host name),
sends the request, and reads the status line and headers; :meth:`Stream.chunks` yields the
body's bytes (``Transfer-Encoding: chunked`` decoded, otherwise until the server closes)
and raises :class:`Idle` when none came for ``idle`` seconds. Proxies are not supported.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

__all__ = ["Broken", "Idle", "Stream", "open_stream"]

MAX_HEAD: Final = 64 * 1024
READ: Final = 64 * 1024


class Idle(Exception):
    """No byte arrived for the idle timeout."""


class Broken(Exception):
    """The connection failed or the answer broke HTTP/1.1's framing; one line, no secret."""


@dataclass
class Stream:
    status: int
    headers: Mapping[str, str]
    """Header names in lower case."""
    _reader: asyncio.StreamReader
    _writer: asyncio.StreamWriter

    async def chunks(self, idle: float) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive; ends when the body does (a cut connection in
        the middle of a chunked body raises :class:`Broken`)."""
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            async for data in self._chunked(idle):
                yield data
            return
        while True:
            data = await self._read(self._reader.read(READ), idle)
            if not data:
                return
            yield data

    async def _chunked(self, idle: float) -> AsyncIterator[bytes]:
        while True:
            line = await self._read(self._reader.readline(), idle)
            if not line.endswith(b"\n"):
                raise Broken("the connection closed in the middle of the answer")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise Broken("the answer's chunked framing is broken") from None
            if size == 0:
                return
            left = size
            while left:
                data = await self._read(self._reader.read(min(left, READ)), idle)
                if not data:
                    raise Broken("the connection closed in the middle of the answer")
                left -= len(data)
                yield data
            if await self._read(self._reader.readline(), idle) not in (b"\r\n", b"\n"):
                raise Broken("the answer's chunked framing is broken")

    async def body(self, limit: int, timeout: float) -> bytes:
        """The whole (short) body of an error answer, at most ``limit`` bytes."""
        out = b""
        with contextlib.suppress(Idle, Broken):
            async for data in self.chunks(timeout):
                out += data
                if len(out) >= limit:
                    break
        return out[:limit]

    @staticmethod
    async def _read(step: Awaitable[bytes], idle: float) -> bytes:
        try:
            return await asyncio.wait_for(step, idle)
        except TimeoutError:
            raise Idle() from None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise Broken(f"the connection failed: {exc.__class__.__name__}") from None

    def close(self) -> None:
        self._writer.close()


async def open_stream(url: str, headers: Mapping[str, str], timeout: float) -> Stream:
    """Send ``GET url`` and read the answer's head within ``timeout`` seconds."""
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    context = ssl.create_default_context() if secure else None
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, limit=MAX_HEAD), timeout
        )
    except TimeoutError:
        raise Broken(f"connecting to {host}:{port} timed out") from None
    except OSError as exc:
        raise Broken(f"connecting to {host}:{port} failed: {exc.strerror or exc}") from None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    authority = parts.netloc.rpartition("@")[2]
    lines = [f"GET {target} HTTP/1.1", f"Host: {authority}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    except TimeoutError:
        writer.close()
        raise Broken(f"GET {parts.path} sent no answer within {timeout:g}s") from None
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        writer.close()
        raise Broken(f"GET {parts.path} failed: {exc.__class__.__name__}") from None
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(status_line.split(" ", 2)[1])
    except (IndexError, ValueError):
        writer.close()
        raise Broken(f"GET {parts.path} answered something that is not HTTP") from None
    answer: dict[str, str] = {}
    for line in header_lines:
        name, colon, value = line.partition(":")
        if colon:
            answer[name.strip().lower()] = value.strip()
    return Stream(status, answer, reader, writer)
