"""A Server-Sent Events parser (pure: bytes in, messages out), per the WHATWG HTML
standard's "event stream interpretation":
https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

- lines end with CRLF, LF or CR (a CR at the end of one chunk and an LF at the start of the
  next are one line end); a UTF-8 byte order mark at the start of the stream is skipped;
- a line starting with ``:`` is a comment (a heartbeat: :attr:`SSEParser.comments` counts);
- ``field: value`` (one space after the colon is dropped), or a line with no colon: the
  whole line is the field name and the value is empty;
- ``data`` lines are joined with LF; ``event`` sets the type (default ``message``); ``id``
  sets the last event id (unless it holds NUL) and persists across messages; ``retry``
  (ASCII digits only) sets the reconnection time; other fields are ignored;
- an empty line dispatches: a message with no data line is not dispatched, but its ``id``
  still becomes the last event id; what is left at the end of the stream is discarded.

``data`` stays bytes (the exact text sent, for handing JSON on byte for byte); ``id`` and
``event`` are decoded as UTF-8 with replacement, as the standard decodes the whole stream.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["Message", "SSEParser"]

_LINE_END: Final = re.compile(rb"\r\n|\r|\n")
_BOM: Final = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Message:
    """One dispatched message."""

    event: str
    data: bytes
    last_event_id: str
    """The stream's last event id when this message was dispatched ("" before any)."""


class SSEParser:
    """Feed it chunks as they arrive (:meth:`feed`); it returns the messages they end."""

    def __init__(self) -> None:
        self.last_event_id = ""
        self.retry: int | None = None
        """The reconnection time the server asked for, in milliseconds, or None."""
        self.comments = 0
        self._buffer = b""
        self._started = False
        self._after_cr = False
        self._data: list[bytes] = []
        self._event = ""
        self._id_seen = False

    @property
    def pending(self) -> int:
        """Bytes held of an unfinished message."""
        return len(self._buffer) + sum(map(len, self._data))

    def feed(self, chunk: bytes) -> list[Message]:
        if not self._started:
            self._buffer += chunk
            if len(self._buffer) < len(_BOM) and _BOM.startswith(self._buffer):
                return []
            self._started = True
            chunk, self._buffer = self._buffer.removeprefix(_BOM), b""
        if not chunk:
            return []
        if self._after_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._after_cr = False
        if not chunk:
            return []
        parts = _LINE_END.split(self._buffer + chunk)
        self._buffer = parts.pop()  # what follows the last line end (maybe b"")
        if not parts:
            return []
        self._after_cr = chunk.endswith(b"\r") and not self._buffer
        out: list[Message] = []
        for line in parts:
            if line:
                self._field(line)
                continue
            message = self._dispatch()
            if message is not None:
                out.append(message)
        return out

    def _field(self, line: bytes) -> None:
        if line[:1] == b":":
            self.comments += 1
            return
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id" and b"\0" not in value:
            self.last_event_id = value.decode("utf-8", "replace")
        elif name == b"retry" and value.isdigit() and value.isascii():
            self.retry = int(value)

    def _dispatch(self) -> Message | None:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return Message(event or "message", b"\n".join(data), self.last_event_id)
