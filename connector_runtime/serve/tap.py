"""``GET /tap``: one connector's events, live, on the admin listener only.

``/tap?connector=NAME[&stage=accepted,delivered,dead][&filter=CESQL][&sample=N][&format=sse]``
streams a line per event: NDJSON (``application/x-ndjson``) by default, Server-Sent Events
with ``format=sse`` or ``Accept: text/event-stream``. The first line says what is tapped::

    {"tap": "auth0", "stages": ["accepted"], "worker": 0, "workers": 1}
    {"stage": "accepted", "event": {...the CloudEvent, structured JSON...}}
    {"stage": "dead", "reason": "HTTP 400: ...", "event": {...}}
    {"dropped": 120}

``accepted`` events are those a request's 2xx acknowledged (after filters and dedupe);
``delivered`` and ``dead`` those a delivery attempt settled (connectors with a queue: ack
``durable`` or ``received``). ``sample=N`` keeps one event in N (of those the filter passed).
Each client has a bounded queue (:mod:`connector_runtime.observe.tap`): what does not fit
is dropped for that client and reported in a ``dropped`` line (the total so far). Under
``--workers`` the tap shows the events of the worker that holds the admin listener
(worker 0) only; the first line says so.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import orjson
import tornado.iostream

from connector_runtime.events import Event, to_structured
from connector_runtime.filters.cesql import CesqlParseError, compile_expression
from connector_runtime.observe.tap import STAGES, Predicate, TapClient, Taps
from connector_runtime.serve.ops import Endpoint

if TYPE_CHECKING:
    from connector_runtime.runtime import Runtime
    from connector_runtime.serve.group import WorkerGroup

HEARTBEAT = 15.0
"""Seconds between keep-alive lines while nothing flows (a gone client is noticed then)."""
MAX_FILTER = 4096
MAX_SAMPLE = 1_000_000
DEFAULT_MAX_TAPS = 4


def make_taps(runtime: Runtime, max_clients: int = DEFAULT_MAX_TAPS) -> Taps:
    """A :class:`Taps` over every connector of a started ``runtime``: attaching the first
    client of a connector sets its pipeline's and dispatcher's ``tap``; detaching the last
    clears them."""
    taps = Taps(max_clients)
    for c in runtime.connectors:

        def attach(tap: Any, c: Any = c) -> None:
            c.pipeline.tap = tap
            if c.dispatcher is not None:
                c.dispatcher.tap = tap

        taps.register(c.spec.name, attach)
    return taps


def _predicate(text: str) -> Predicate:
    expression = compile_expression(text)
    return lambda event: expression.matches(event.peek())


def encode(stage: str, event: Event, reason: str | None) -> bytes:
    """One tap line (without its newline)."""
    head = b'{"stage":"' + stage.encode() + b'"'
    if reason is not None:
        head += b',"reason":' + orjson.dumps(reason)
    return head + b',"event":' + to_structured(event) + b"}"


class TapHandler(Endpoint):
    """Streams one connector's events to one client until it goes away."""

    def initialize(  # type: ignore[override]
        self,
        taps: Taps,
        runtime: Runtime,
        group: WorkerGroup | None = None,
        token: str | None = None,
    ) -> None:
        super().initialize(token=token)
        self.taps = taps
        self.runtime = runtime
        self.group = group
        self.gone = False
        self.client: TapClient | None = None

    def on_connection_close(self) -> None:
        self.gone = True
        if self.client is not None:
            self.client.ready.set()

    async def answer(self) -> None:
        opened = self._open()
        if opened is None:
            return
        name, client, sse = opened
        tap = self.taps.by_connector[name]
        tap.add(client)
        try:
            await self._stream(name, client, sse)
        except tornado.iostream.StreamClosedError:
            pass
        finally:
            tap.remove(client)

    def _open(self) -> tuple[str, TapClient, bool] | None:
        """The connector and the client the query asks for; or None after an error."""
        name = self.get_query_argument("connector", "")
        if not name:
            self._error(400, "missing query parameter 'connector'")
            return None
        connector = next((c for c in self.runtime.connectors if c.spec.name == name), None)
        if connector is None or name not in self.taps.by_connector:
            known = ", ".join(c.spec.name for c in self.runtime.connectors)
            self._error(404, f"no connector named {name!r} (connectors: {known})")
            return None
        stages = frozenset(s for s in self.get_query_argument("stage", "accepted").split(","))
        unknown = sorted(stages - set(STAGES))
        if unknown or not stages:
            self._error(400, f"stage {','.join(unknown)!r} unknown; use accepted, delivered, dead")
            return None
        if stages - {"accepted"} and connector.dispatcher is None:
            self._error(
                400,
                f"connector {name!r} delivers before it acknowledges (ack: delivered):"
                " only the stage 'accepted' can be tapped",
            )
            return None
        sample_text = self.get_query_argument("sample", "1")
        if not sample_text.isdigit() or not 1 <= int(sample_text) <= MAX_SAMPLE:
            self._error(400, f"sample {sample_text!r} is not a whole number from 1 to {MAX_SAMPLE}")
            return None
        text = self.get_query_argument("filter", "")
        predicate = None
        if text:
            if len(text) > MAX_FILTER:
                self._error(400, f"filter longer than {MAX_FILTER} characters")
                return None
            try:
                predicate = _predicate(text)
            except CesqlParseError as exc:
                self._error(400, f"filter {text!r}: {exc}")
                return None
        fmt = self.get_query_argument("format", "")
        if fmt not in ("", "ndjson", "sse"):
            self._error(400, f"format {fmt!r} unknown; use ndjson or sse")
            return None
        sse = fmt == "sse" or (
            not fmt and "text/event-stream" in self.request.headers.get("Accept", "")
        )
        if self.taps.attached >= self.taps.max_clients:
            self._error(
                429,
                f"{self.taps.max_clients} taps are attached already, the most at once"
                " (spec.admin.maxTaps)",
            )
            return None
        self.client = TapClient(stages, predicate, int(sample_text))
        return name, self.client, sse

    async def _stream(self, name: str, client: TapClient, sse: bool) -> None:
        self.set_header("Content-Type", "text/event-stream" if sse else "application/x-ndjson")
        self.set_header("Cache-Control", "no-store")
        workers = self.group.count if self.group is not None else 1
        hello = {
            "tap": name,
            "stages": [s for s in STAGES if s in client.stages],
            "worker": self.group.index if self.group is not None else 0,
            "workers": workers,
        }
        self._line(orjson.dumps(hello), "tap", sse)
        await self.flush()
        reported = 0
        while not self.gone:
            if not client.queue and client.dropped == reported:
                client.ready.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(client.ready.wait(), HEARTBEAT)
            if self.gone:
                break
            queue, sent = client.queue, 0
            while queue and sent < 500:
                stage, event, reason = queue.popleft()
                self._line(encode(stage, event, reason), stage, sse)
                sent += 1
            if client.dropped != reported:
                reported = client.dropped
                self._line(orjson.dumps({"dropped": reported}), "dropped", sse)
            if not sent and reported == client.dropped:
                self.write(b": keep-alive\n\n" if sse else b"\n")
            await self.flush()

    def _line(self, data: bytes, kind: str, sse: bool) -> None:
        if sse:
            self.write(b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n")
        else:
            self.write(data + b"\n")
