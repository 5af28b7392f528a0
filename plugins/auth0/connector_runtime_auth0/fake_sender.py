"""A fake tenant's Custom Webhook log stream, sending: what Auth0 does with a
:class:`~.fake_tenant.FakeLogStream`'s records, over real sockets, with time compressed.

:class:`LogStreamSender` runs on the test kit's :class:`~connector_runtime.testing.LoopThread`
and follows Auth0's documentation of log streams
(https://auth0.com/docs/customize/log-streams and
https://auth0.com/docs/customize/log-streams/custom-log-streams):

- Records are sent as they are written: from the moment the sender starts ("now"), or from
  a Starting Cursor (``start_from``); every ``interval`` the records written since the last
  batch become batches of at most ``batch_size``.
- One HTTP POST per batch to the stream's Payload URL, with the stream's Authorization
  Token verbatim in ``Authorization`` (no ``Bearer`` added) and its Content Type, whatever
  the Content Format (JSON Lines, JSON Array or JSON Object): the header does not tell them
  apart.
- Each element is ``{"log_id": ..., "data": {...}}``; ``data`` is the record as the
  Management API shows it without ``_id`` and without the fields the API shows as null,
  which the stream leaves out.
- At least once: up to three attempts per batch (``retry_delay`` apart); when all fail, an
  error in the stream's Health view (:attr:`LogStreamSender.health`), and the process
  restarts for the errored batch (``restart_delay`` later) until it goes through.
  ``duplicate_every`` sends every n-th delivered batch once more, later.
- Order is not guaranteed: ``shuffle`` (a seed) orders each batch at random, and picks
  the next batch at random among those waiting.
- A stream that failed to reach its server for 7 consecutive days (``pause_after``
  seconds here) is paused by Auth0: the Management API then shows it ``suspended``.
- A stream that is not ``active`` (``paused`` by a user, ``suspended`` by Auth0) sends
  nothing, and what is written meanwhile is never sent by it, nor what was waiting when
  it stopped: set active again (by a test, or ``PATCH /api/v2/log-streams/{id}``), it goes
  on with the records written from then on. That gap is what the Management API's logs
  (an ``auth0-logs`` connector) fill.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import deque
from dataclasses import dataclass, field

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from connector_runtime_auth0.fake_tenant import FakeLogStream, FakeTenant
from connector_runtime_auth0.logs_api import start_checkpoint
from connector_runtime_auth0.testing import as_array, as_lines, as_object

__all__ = ["HealthEntry", "LogStreamSender", "stream_body", "stream_data"]

# "We attempt to deliver the log to your server up to three times", then an error in the
# stream's Health view, and the process restarts for errored logs until the problem is
# resolved ("Delivery attempts"):
# https://auth0.com/docs/customize/log-streams
# https://auth0.com/docs/customize/log-streams/custom-log-streams
ATTEMPTS = 3
"""Attempts per batch before an error shows in the Health view."""

Written = tuple[str, float, bytes]
"""A tenant record: (log_id, date as epoch seconds, its JSON text as the API answers it)."""


def stream_data(api_record: bytes) -> bytes:
    """A record's ``data`` as a stream sends it: the Management API's record without
    ``_id`` and without the (top-level) fields the API shows as null. Compact JSON, keys in
    their order, numbers as written (Python's integers keep every digit)."""
    doc = json.loads(api_record)
    kept = {k: v for k, v in doc.items() if k != "_id" and v is not None}
    return json.dumps(kept, separators=(",", ":"), ensure_ascii=False).encode()


def stream_body(elements: list[tuple[str, bytes]], content_format: str) -> bytes:
    """The body of one batch of ``(log_id, data)`` in a stream's Content Format: JSON Lines
    (one element per line), a JSON array, or a JSON object ``{"logs": [...]}`` (the shape
    the ``auth0`` source reads for that format)."""
    triples = [(log_id, "", data) for log_id, data in elements]
    if content_format not in _BODIES:
        raise ValueError(f"unknown content format {content_format!r}")
    return _BODIES[content_format](triples)


_BODIES = {"JSONLINES": as_lines, "JSONARRAY": as_array, "JSONOBJECT": as_object}


@dataclass
class HealthEntry:
    """One line of the stream's Health view."""

    at: float
    """``time.monotonic()`` when it was logged."""
    kind: str
    """``error`` (a batch failed its three attempts) or ``suspended``."""
    records: int
    statuses: list[int]
    """What each attempt got: an HTTP status, or 0 for no answer (refused, timed out)."""


@dataclass
class _Batch:
    records: list[Written]
    repeat: bool = False


@dataclass
class LogStreamSender:
    """Sends ``stream``'s records as ``tenant`` writes them; :meth:`start`, :meth:`stop`.

    The counters (``batches``, ``attempts``, ``failures``, ``delivered``, ``repeats``) and
    the lists (``delivered_ids``, ``dropped_ids``, ``health``) are for tests to read.
    """

    tenant: FakeTenant
    stream: FakeLogStream
    batch_size: int = 100
    interval: float = 0.05
    """Seconds between two looks at what was written (Auth0 sends within moments)."""
    retry_delay: float = 0.05
    """Seconds between the attempts of one batch (Auth0 does not document them)."""
    restart_delay: float = 0.2
    """Seconds between an error in the Health view and restarting the errored batch."""
    pause_after: float = 7 * 86400.0
    """Seconds of failing to reach the server before Auth0 suspends the stream (7 days;
    a test gives a second or two)."""
    timeout: float = 5.0
    duplicate_every: int = 0
    """Send every n-th delivered batch once more, later (0: never)."""
    shuffle: int | None = None
    """A seed: records within a batch, and batches, in a random order (None: as written)."""
    start_from: str | None = None
    """A Starting Cursor (a log_id, an RFC 3339 time or ``earliest``): the records after it
    that the tenant holds are sent first. None: only what is written from the start on."""

    batches: int = 0
    """Batches delivered (a 2xx), repeats included."""
    attempts: int = 0
    failures: int = 0
    """Attempts that got no answer or one that is not a 2xx."""
    delivered: int = 0
    """Records in delivered batches, repeats included."""
    repeats: int = 0
    """Batches sent once more after they were delivered (``duplicate_every``)."""
    delivered_ids: list[str] = field(default_factory=list)
    dropped_ids: list[str] = field(default_factory=list)
    """Records the stream never sends: written, or waiting, while it was not active."""
    health: list[HealthEntry] = field(default_factory=list)

    _written: deque[Written] = field(default_factory=deque)
    _pending: list[_Batch] = field(default_factory=list)
    _failing_since: float | None = None
    _sent: int = 0
    _busy: _Batch | None = None
    _rng: random.Random = field(default_factory=random.Random)
    _task: asyncio.Task[None] | None = None
    _http: AsyncHTTPClient | None = None

    @property
    def idle(self) -> bool:
        """Nothing written waits to be sent or is being sent (repeats included)."""
        return not self._written and not self._pending and self._busy is None

    def start(self) -> LogStreamSender:
        self._rng = random.Random(self.shuffle)  # noqa: S311  (a test order, not a secret)
        if self.start_from is not None:
            cursor = start_checkpoint(self.start_from)
            self._written.extend(r for r in self.tenant.records if r[0] > cursor)
        self.tenant.on_write.append(self._on_write)

        async def begin() -> None:
            self._http = AsyncHTTPClient(force_instance=True)
            self._task = asyncio.ensure_future(self._run())

        self.tenant.loop.run(begin())
        return self

    def stop(self) -> None:
        if self._on_write in self.tenant.on_write:
            self.tenant.on_write.remove(self._on_write)
        task, http = self._task, self._http
        self._task = self._http = None

        async def end() -> None:
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            if http is not None:
                http.close()

        self.tenant.loop.run(end())

    def _on_write(self, records: list[Written]) -> None:
        # Called on the writer's thread; a deque's append is atomic. Auth0 sends each log as
        # it is triggered; a stream that is not active sends nothing of it:
        # https://auth0.com/docs/customize/log-streams
        if self.stream.status == "active":
            self._written.extend(records)
        else:
            self.dropped_ids.extend(r[0] for r in records)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if self.stream.status != "active":
                self._drop_all()
                continue
            self._cut()
            while self._pending and self.stream.status == "active":
                pick = self._rng.randrange(len(self._pending)) if self.shuffle is not None else 0
                batch = self._busy = self._pending.pop(pick)
                if await self._deliver(batch):
                    self._after_delivery(batch)
                elif self.stream.status != "active":
                    self._pending.append(batch)
                    self._drop_all()
                else:
                    self._pending.insert(0, batch)  # errored: restarted until it goes through
                    self._busy = None
                    await asyncio.sleep(self.restart_delay)
                    self._check_pause()
                self._busy = None
                self._cut()

    def _cut(self) -> None:
        """The records written since the last batch, as batches."""
        taken: list[Written] = []
        while self._written:
            taken.append(self._written.popleft())
        for i in range(0, len(taken), self.batch_size):
            chunk = taken[i : i + self.batch_size]
            if self.shuffle is not None:
                # "logs may not display in the exact order in which they occurred":
                # https://auth0.com/docs/customize/log-streams
                self._rng.shuffle(chunk)
            self._pending.append(_Batch(chunk))

    def _drop_all(self) -> None:
        self._cut()
        self.dropped_ids.extend(r[0] for b in self._pending if not b.repeat for r in b.records)
        self._pending.clear()
        self._failing_since = None

    def _after_delivery(self, batch: _Batch) -> None:
        self.batches += 1
        self.delivered += len(batch.records)
        self.delivered_ids.extend(r[0] for r in batch.records)
        if batch.repeat:
            self.repeats += 1
            return
        self._sent += 1
        # "We guarantee logs are delivered at least once":
        # https://auth0.com/docs/customize/log-streams
        if self.duplicate_every and self._sent % self.duplicate_every == 0:
            self._pending.append(_Batch(batch.records, repeat=True))

    async def _deliver(self, batch: _Batch) -> bool:
        """Up to three attempts; True once one got a 2xx."""
        elements = [(lid, stream_data(doc)) for lid, _, doc in batch.records]
        body = stream_body(elements, self.stream.content_format)
        statuses: list[int] = []
        for attempt in range(ATTEMPTS):
            if attempt:
                await asyncio.sleep(self.retry_delay)
            if self.stream.status != "active":
                return False
            status = await self._post(body)
            self.attempts += 1
            statuses.append(status)
            if 200 <= status < 300:
                self._failing_since = None
                return True
            self.failures += 1
            if self._failing_since is None:
                self._failing_since = time.monotonic()
            if self._check_pause():
                return False
        self.health.append(HealthEntry(time.monotonic(), "error", len(batch.records), statuses))
        return False

    def _check_pause(self) -> bool:
        """Suspend the stream once it failed for ``pause_after`` seconds on end."""
        # "If we fail to reach your server for 7 consecutive days, we'll automatically pause
        # the stream ... and then resume the stream manually":
        # https://auth0.com/docs/customize/log-streams; the Management API shows that state
        # as "suspended", "paused" being a user's:
        # https://auth0.com/docs/api/management/v2/log-streams/get-log-streams-by-id
        since = self._failing_since
        if since is None or time.monotonic() - since < self.pause_after:
            return False
        self.stream.set_status("suspended", "auth0")
        self.health.append(HealthEntry(time.monotonic(), "suspended", 0, []))
        self._drop_all()
        return True

    async def _post(self, body: bytes) -> int:
        assert self._http is not None
        # Authorization Token: "Set in the Authorization header of the request if provided"
        # (as entered); Content Type: "The media type of the payload", the same for every
        # Content Format: https://auth0.com/docs/customize/log-streams/custom-log-streams
        headers = {"Content-Type": self.stream.content_type}
        if self.stream.authorization:
            headers["Authorization"] = self.stream.authorization
        request = HTTPRequest(
            self.stream.endpoint,
            method="POST",
            body=body,
            headers=headers,
            request_timeout=self.timeout,
            connect_timeout=self.timeout,
        )
        try:
            response = await self._http.fetch(request, raise_error=False)
        except (HTTPClientError, OSError):
            return 0
        return 0 if response.code == 599 else response.code
