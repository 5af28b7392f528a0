"""The records plugins contribute and the interfaces the runtime hands them.

A plugin registers :class:`SourceType` and :class:`TargetType` records through the hooks in
:mod:`connector_runtime.hookspecs`. At start-up the runtime builds, for each connector, a
:class:`SourceContext` (what the source's request handlers work with) and a
:class:`TargetContext` (what a target is created with).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tornado.web import RequestHandler

from connector_runtime.events import Event
from connector_runtime.sources.guard import RequestGuard

JSONSchema = Mapping[str, Any]
Route = tuple[str, type[RequestHandler], dict[str, Any]]
"""A Tornado route relative to the connector's base path: (pattern, handler, kwargs).

The pattern ``""`` is the base path itself (``/<connector>``); ``"/status"`` becomes
``/<connector>/status``. ``kwargs`` reach the handler's ``initialize()``."""

ConfigCheck = Callable[[Mapping[str, Any]], Sequence[tuple[str, str]]]
"""Checks beyond the JSON Schema: returns (JSON path, message) pairs, empty when fine."""


@dataclass(frozen=True)
class Outcome:
    """What became of the events of one request."""

    accepted: int
    filtered: int
    duplicates: int

    def as_dict(self) -> dict[str, int]:
        return {"accepted": self.accepted, "filtered": self.filtered, "duplicates": self.duplicates}


class Ingest(Protocol):
    """The runtime's entry point for a source's events (one per connector)."""

    async def submit(
        self, events: Sequence[Event], *, request_id: str = "", checkpoint: str | None = None
    ) -> Outcome:
        """Filter, dedupe and hand over ``events`` as one unit, per the connector's ack policy.

        Returns when the events are as safe as the policy promises; raises
        :class:`~connector_runtime.errors.Unavailable` when they could not be taken (the
        handler answers 503 with Retry-After, and nothing of the request was acknowledged).

        ``checkpoint`` (pull sources only, see :class:`PullContext`): an opaque string
        committed in the same spool transaction as ``events``, also when every one of them
        was filtered out or a duplicate. Either both are committed or neither is.
        """
        ...


class SourceCounts(Protocol):
    """Where a source counts events it treats apart (``/metrics``)."""

    def count(self, kind: str, outcome: str, n: int = 1) -> None:
        """Count ``n`` events: ``connector_runtime_source_events_total{kind, outcome}``
        grows by ``n``. ``kind`` says what sets them apart (``test`` for a sender's test
        deliveries), ``outcome`` what became of them (``passed``, ``dropped``); both short
        label values."""
        ...


class _NoCounts:
    def count(self, kind: str, outcome: str, n: int = 1) -> None:
        return None


NO_COUNTS: SourceCounts = _NoCounts()
"""Counts nothing (a context built outside a running runtime)."""


@dataclass(frozen=True)
class SourceContext:
    """Everything a source's handlers need, handed to them through ``initialize()``."""

    connector: str
    config: Mapping[str, Any]
    base_path: str
    default_source: str
    ingest: Ingest
    log: logging.Logger
    guard: RequestGuard | None = None
    """Access, admission control and counters; ``SourceHandler`` applies it."""
    counts: SourceCounts = NO_COUNTS
    """Counters for events the source treats apart (see :class:`SourceCounts`)."""


class PullStatus(Protocol):
    """How a pull source reports its health (readiness and metrics)."""

    def problem(self, kind: str, reason: str) -> None:
        """The source cannot make progress now: ``reason`` (one line, no secret) becomes a
        ``/readyz`` reason (``connector <name>: <reason>``) and is logged when it changes;
        ``connector_runtime_pull_errors_total{kind=...}`` counts one. ``kind`` is a short
        label value (``auth``, ``rate_limited``, ``unavailable``, ...)."""
        ...

    def ok(self) -> None:
        """The source made progress: its ``/readyz`` reason, if any, is cleared."""
        ...


@dataclass(frozen=True)
class PullContext:
    """What a pull source's task runs with (see :attr:`SourceType.pull`)."""

    connector: str
    config: Mapping[str, Any]
    default_source: str
    ingest: Ingest
    """Hand events over with ``await ingest.submit(events, checkpoint=...)``."""
    checkpoint: str | None
    """The last checkpoint committed for this connector, ``None`` before the first one."""
    status: PullStatus
    log: logging.Logger
    counts: SourceCounts = NO_COUNTS
    """Counters for events the source treats apart (see :class:`SourceCounts`)."""


PullTask = Callable[[PullContext], Awaitable[None]]
"""A pull source's long-running task; :attr:`SourceType.pull` documents its contract."""


class WatchStatus(Protocol):
    """How a watcher reports what it sees (``/readyz`` warnings, metrics, the status page)."""

    def report(self, state: str, warning: str | None = None) -> None:
        """What the watcher sees now: ``state``, one line for the status page (e.g.
        ``log stream lst_1: active``); ``warning``, one line (no secret) shown in
        ``/readyz`` as ``connector <name>: <warning>`` under ``warnings`` while it lasts,
        *without* making the runtime not ready; ``None`` clears it. Log changes yourself."""
        ...

    def gauge(self, name: str, documentation: str, labels: Mapping[str, str], value: float) -> None:
        """Set a sample of the gauge ``connector_runtime_<name>`` (``name``: lower-case
        letters, digits and ``_``), labelled with ``connector`` and ``labels``."""
        ...

    def count(
        self, name: str, documentation: str, labels: Mapping[str, str], amount: float = 1
    ) -> None:
        """Add ``amount`` to the counter ``connector_runtime_<name>_total``, labelled like
        :meth:`gauge`'s samples."""
        ...


@dataclass(frozen=True)
class WatchContext:
    """What a watcher's task runs with (see :attr:`SourceType.watchers`)."""

    connector: str
    config: Mapping[str, Any]
    status: WatchStatus
    log: logging.Logger


WatchTask = Callable[[WatchContext], Awaitable[None]]
"""A watcher's long-running task; :attr:`SourceType.watchers` documents its contract."""


@dataclass(frozen=True)
class Watcher:
    """A background task of one connector, beside its routes or its pull task."""

    name: str
    """Short, unique within the connector: in logs and metrics (``watch`` label)."""
    run: WatchTask


@dataclass(frozen=True)
class SourceType:
    """A kind of source a plugin provides (e.g. ``auth0``).

    ``routes`` is called once per connector of this type and returns the Tornado routes to
    mount under the connector's base path. ``check_config`` adds checks a JSON Schema cannot
    express (e.g. "unknown event code, did you mean …").
    """

    name: str
    config_schema: JSONSchema
    routes: Callable[[SourceContext], Sequence[Route]]
    description: str = ""
    check_config: ConfigCheck | None = None
    parse_offline: Callable[[bytes, SourceContext], Sequence[Event]] | None = None
    """Optional: turn a delivery body into events without a request (``filter test``);
    raise ``ValueError`` with a one-line reason for a body the source would refuse."""
    pull: PullTask | None = None
    """Optional: a *pull source*, a coroutine function the runtime runs as one task per
    connector (``routes`` may then return ``[]``).

    - Started once the spool is open and the connector's delivery runs, with a
      :class:`PullContext` whose ``checkpoint`` is the last one committed.
    - It fetches events and hands them over with ``await ctx.ingest.submit(events,
      checkpoint=c)``: the events and ``c`` are committed in one spool transaction, so a
      restart (also after ``kill -9``) resumes right after the last committed batch. On
      :class:`~connector_runtime.errors.Unavailable` nothing was committed: wait
      ``retry_after`` and submit the same batch again.
    - Cancelled (``asyncio.CancelledError``) when the runtime stops, before the spool
      closes; a cancelled submit committed all or nothing.
    - When it raises, the runtime logs the error (type, text, where it was raised; the
      traceback at debug level; secrets redacted), counts a restart and runs it again with
      a fresh context after a backoff (1 s doubling to 60 s; back to 1 s once it ran a
      minute). Returning ends it for good (state ``stopped``).
    - Pull sources require ``delivery.ack: durable`` and the local spool: ``validate``
      refuses ``received`` and ``delivered`` (no transaction holds the checkpoint) and
      ``delivery.spool: nats``.
    """
    watchers: Callable[[Mapping[str, Any]], Sequence[Watcher]] | None = None
    """Optional: background tasks of a connector (a webhook or a pull source), given its
    validated config; ``[]`` for none. E.g. watching the sender's side of a webhook.

    - Started with the connector's pull task (under ``--workers``, by worker 0 alone), with
      a :class:`WatchContext`; cancelled when the runtime stops, before the spool closes.
    - Supervised like a pull task: when one raises, the runtime logs it, counts
      ``connector_runtime_watch_restarts_total{connector,watch}`` and runs it again after
      1 s doubling to 60 s. Returning ends it for good.
    - It reports through ``ctx.status`` (:class:`WatchStatus`): a state line for the status
      page, a ``/readyz`` *warning* that leaves the runtime ready (what it watches is not
      what this process serves), and gauges and counters of its own.
    """


@dataclass(frozen=True)
class SendResult:
    """A target's answer for the events of one ``send`` call, by index.

    Indexes in neither map were accepted. ``rejected`` events failed for good (they go to
    the dead-letter store with the reason); ``retry`` events failed transiently and are sent
    again later. The reasons are one line each, for people, e.g. ``"HTTP 400: missing
    field"``; the runtime never reads a fact out of them. Facts go in the fields below, both
    optional (a target that has neither leaves them out):

    - ``status``: the target's status code for failed events that got one, by the same
      index (e.g. ``{0: 400}``). A dead letter records it in its ``status`` column
      (``dlq list`` shows it); without one the column is empty.
    - ``retry_after``: seconds the target asked to wait before it is tried again (e.g. an
      HTTP ``Retry-After`` on a 429 or 503). It concerns the target, not an event: the
      events to retry wait at least that long, never less than the computed backoff and
      never more than the connector's ``retry.maxBackoff``.
    """

    rejected: Mapping[int, str] = field(default_factory=dict)
    retry: Mapping[int, str] = field(default_factory=dict)
    status: Mapping[int, int] = field(default_factory=dict)
    retry_after: float | None = None


class Target(Protocol):
    """A running target: created per connector, started before the server listens."""

    max_batch: int
    """How many events one ``send`` call may carry at most.

    A target may also have ``max_in_flight``: how many ``send`` calls may be under way at
    once (1 when it has none). What a crash can make the runtime send again is at most
    ``max_in_flight`` calls' events: those whose answer had not been recorded yet."""

    async def start(self) -> None: ...

    async def send(self, events: Sequence[Event]) -> SendResult:
        """Deliver ``events``; return which of them failed, and how.

        Raise :class:`~connector_runtime.errors.DeliveryError` when the whole call failed:
        ``permanent=False`` for transient failures (connection refused, 5xx, timeout),
        ``permanent=True`` when the target rejected all of them for good; its ``status``
        and ``retry_after`` then hold for every event of the call.
        """
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class TargetContext:
    """What a target is created with besides its validated config."""

    connector: str
    log: logging.Logger


@dataclass(frozen=True)
class TargetType:
    """A kind of target (``http``, ``stdout``, ``file``, …)."""

    name: str
    config_schema: JSONSchema
    create: Callable[[Mapping[str, Any], TargetContext], Target]
    description: str = ""
    check_config: ConfigCheck | None = None


EventPredicate = Callable[[Event], bool]
"""Decides whether an event is passed on (True) or filtered out (False)."""
EventTransform = Callable[[Event], Event]
"""What an ``event_transform`` hook returns: the event, changed or not (never its ``id`` or
``source``); raising filters the event out."""
