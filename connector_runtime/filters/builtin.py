"""The built-in ``event_filter``: a connector's ``spec.filters`` (Subscriptions API dialects).

Registered as a plugin like any other, so the runtime's own filters take the same path as
a source's filter. Expressions are compiled once, when the connector starts; a CESQL
expression that errors for an event filters it out and is reported through ``on_error``.
"""

from __future__ import annotations

from collections.abc import Callable

from connector_runtime.config.model import ConnectorSpec
from connector_runtime.filters.cesql import CesqlError
from connector_runtime.filters.subscription import compile_filters
from connector_runtime.hookspecs import hookimpl
from connector_runtime.records import EventPredicate


@hookimpl
def event_filter(
    connector: ConnectorSpec, on_error: Callable[[str], None]
) -> EventPredicate | None:
    if not connector.filters:
        return None

    def report(source: str, errors: list[CesqlError]) -> None:
        on_error(f"{source!r}: {errors[0]}")

    compiled = compile_filters(list(connector.filters), report, base_path="/spec/filters")
    return lambda event: compiled(event.peek())
