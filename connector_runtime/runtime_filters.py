"""The built-in ``event_filter``: a connector's ``spec.filters`` (Subscriptions API dialects).

Registered as a plugin like any other, so the runtime's own filters take the same path as
a source's filter; they run after it because built-ins are registered first and pluggy
calls later registrations first.
"""

from __future__ import annotations

from connector_runtime.hookspecs import hookimpl
from connector_runtime.manifest_model import ConnectorSpec
from connector_runtime.records import EventPredicate
from connector_runtime.subscription_filters import compile_filters


@hookimpl
def event_filter(connector: ConnectorSpec) -> EventPredicate | None:
    if not connector.filters:
        return None
    compiled = compile_filters(list(connector.filters))
    return lambda event: compiled(event.attributes)
