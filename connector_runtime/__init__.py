"""connector-runtime: webhook sources in, CloudEvents out, through pluggable plugins.

The public surface for plugin authors: the hook marker, the records a plugin registers,
the event model and its checks, the base webhook handler and its helpers, the manifest's
model and loading, the plugin registry, the transform operations, and the errors. Plugins,
the scaffold's templates and the docs import from here (and from ``connector_runtime.testing`` and
``connector_runtime.conformance``) only; every other module is internal and may move.
"""

from connector_runtime._version import __version__
from connector_runtime.config.checks import parse_duration
from connector_runtime.config.manifest import load_manifest
from connector_runtime.config.model import ComponentSpec, ConnectorSpec
from connector_runtime.errors import (
    ConnectorRuntimeError,
    DeliveryError,
    ManifestError,
    PluginError,
    SpoolError,
    Unavailable,
)
from connector_runtime.events import (
    AttributeValue,
    Event,
    bracketed,
    is_extension_name,
    is_json_content_type,
    is_rfc3339,
    make_event,
    to_batch,
    to_binary,
    to_structured,
)
from connector_runtime.hookspecs import hookimpl
from connector_runtime.plugins import build_registry
from connector_runtime.records import (
    EventPredicate,
    EventTransform,
    Outcome,
    PullContext,
    PullStatus,
    PullTask,
    Route,
    SendResult,
    SourceContext,
    SourceType,
    Target,
    TargetContext,
    TargetType,
    WatchContext,
    Watcher,
    WatchStatus,
    WatchTask,
)
from connector_runtime.sources.handler import (
    DEFAULT_MAX_BODY_BYTES,
    RequestRejected,
    SourceHandler,
    is_json_like,
    media_type,
)
from connector_runtime.transforms.ops import TransformConfigError, build_transform
from connector_runtime.transforms.record import TransformError

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "AttributeValue",
    "ComponentSpec",
    "ConnectorRuntimeError",
    "ConnectorSpec",
    "DeliveryError",
    "Event",
    "EventPredicate",
    "EventTransform",
    "ManifestError",
    "Outcome",
    "PluginError",
    "PullContext",
    "PullStatus",
    "PullTask",
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
    "TransformConfigError",
    "TransformError",
    "Unavailable",
    "WatchContext",
    "WatchStatus",
    "WatchTask",
    "Watcher",
    "__version__",
    "bracketed",
    "build_registry",
    "build_transform",
    "hookimpl",
    "is_extension_name",
    "is_json_content_type",
    "is_json_like",
    "is_rfc3339",
    "load_manifest",
    "make_event",
    "media_type",
    "parse_duration",
    "to_batch",
    "to_binary",
    "to_structured",
]
