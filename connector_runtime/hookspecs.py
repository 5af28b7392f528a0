"""The plugin contract: every hook a plugin may implement.

Plugins are Python distributions with an entry point in the group ``connector_runtime``
whose object (usually a module) carries functions marked with :data:`hookimpl`. The
runtime's own sources, targets and filters are registered the same way.

Hooks are always called with keyword arguments. An implementation may accept any subset of
a hook's arguments, so adding an argument later breaks no plugin. None of the hooks is
``firstresult``: every plugin that answers contributes.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from connector_runtime.config.model import ConnectorSpec
from connector_runtime.records import EventPredicate, EventTransform, SourceType, TargetType

PROJECT = "connector_runtime"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_source_types(register: Callable[[SourceType], None]) -> None:
    """Contribute source types.

    Called once when the plugin manager is built, before any manifest is read.

    :param register: call it once per :class:`~connector_runtime.records.SourceType` the
        plugin provides. A name already taken by another plugin is reported as a conflict
        and the second registration ignored. A source type is a webhook source (its
        ``routes``), a *pull source* (its ``pull``: a task the runtime starts per connector
        with the last committed checkpoint, cancels on SIGTERM and restarts with backoff
        when it raises; its ``ctx.ingest.submit(events, checkpoint=...)`` commits events
        and checkpoint in one spool transaction; ``ack: durable`` and the local spool only;
        :attr:`~connector_runtime.records.SourceType.pull` has the exact semantics), or
        both. Either may add *watchers* (its ``watchers``: background tasks per connector,
        supervised like a pull task and run by worker 0 alone, that report through
        ``ctx.status`` a state line for the status page, ``/readyz`` warnings that leave
        the runtime ready, and gauges and counters of their own;
        :attr:`~connector_runtime.records.SourceType.watchers` has the exact semantics).
    :return: nothing; the return value is ignored.
    """


@hookspec
def register_target_types(register: Callable[[TargetType], None]) -> None:
    """Contribute target types.

    Called once when the plugin manager is built, before any manifest is read.

    :param register: call it once per :class:`~connector_runtime.records.TargetType`.
        Its targets answer each ``send`` with a :class:`~connector_runtime.records.SendResult`
        (or raise :class:`~connector_runtime.errors.DeliveryError`): a one-line reason per
        failed event, and as fields, both optional, the target's ``status`` (recorded with
        a dead letter) and its ``retry_after`` in seconds (the next try waits at least that
        long, up to ``retry.maxBackoff``). Nothing is ever parsed out of a reason.
    :return: nothing; the return value is ignored.
    """


@hookspec
def event_filter(
    connector: ConnectorSpec, on_error: Callable[[str], None]
) -> EventPredicate | None:
    """Take part in deciding which of a connector's events are passed on.

    Called once per connector when the runtime starts (never per event), after the manifest
    has been validated.

    :param connector: the connector's validated spec; ``connector.source.type`` and
        ``connector.source.config`` tell a plugin whether the connector is one of its own.
    :param on_error: call it with a one-line reason when evaluating the predicate for an
        event failed (the event is then filtered out); the runtime counts these in metrics.
    :return: a predicate ``(event) -> bool`` run on every event of this connector, or
        ``None`` to take no part. An event is passed on only when every returned predicate
        answers True. Predicates must be pure and fast: they run on the request path.
    """


@hookspec
def event_transform(
    connector: ConnectorSpec, on_error: Callable[[str], None]
) -> EventTransform | None:
    """Take part in changing a connector's events before they are stored or delivered.

    Called once per connector when the runtime starts (never per event), after the manifest
    has been validated and after ``event_filter``. The returned functions run on every event
    the filters passed, before dedupe and the ack policy, in the order the plugins were
    registered (the runtime's own ``spec.transforms`` first).

    :param connector: the connector's validated spec.
    :param on_error: call it with a one-line reason for a problem worth counting that does
        not stop the event (e.g. a value replaced by null); the runtime counts it in metrics.
    :return: a function ``(event) -> event`` or ``None`` to take no part. It may return the
        same event or a new one, with other ``data`` or attributes, but never another ``id``
        or ``source`` (the dedupe key): the runtime then filters the event out and counts a
        transform error, as it does when the function raises. Return the event itself when
        nothing changed, so its encoding is kept.
    """
