"""connector-runtime: webhook sources in, CloudEvents out, through pluggable plugins.

The public surface for plugin authors: the hook marker, the records a plugin registers,
the event model, the base webhook handler and the errors.
"""

from connector_runtime._version import __version__
from connector_runtime.errors import (
    ConnectorRuntimeError,
    DeliveryError,
    ManifestError,
    PluginError,
    SpoolError,
    Unavailable,
)
from connector_runtime.events import Event, make_event, to_batch, to_binary, to_structured
from connector_runtime.handler import RequestRejected, SourceHandler
from connector_runtime.hookspecs import hookimpl
from connector_runtime.manifest_model import ConnectorSpec
from connector_runtime.records import (
    EventPredicate,
    Outcome,
    Route,
    SendResult,
    SourceContext,
    SourceType,
    Target,
    TargetContext,
    TargetType,
)

__all__ = [
    "ConnectorRuntimeError",
    "ConnectorSpec",
    "DeliveryError",
    "Event",
    "EventPredicate",
    "ManifestError",
    "Outcome",
    "PluginError",
    "RequestRejected",
    "Route",
    "SendResult",
    "SourceContext",
    "SourceHandler",
    "SourceType",
    "SpoolError",
    "Target",
    "TargetContext",
    "TargetType",
    "Unavailable",
    "__version__",
    "hookimpl",
    "make_event",
    "to_batch",
    "to_binary",
    "to_structured",
]
