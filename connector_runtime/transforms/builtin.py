"""The built-in ``event_transform``: a connector's ``spec.transforms``.

Registered as a plugin like any other, so the runtime's own transforms take the same path
as a plugin's (the Auth0 plugin's ``pii`` presets compile to the same operations). The list
is compiled once, when the connector starts; the manifest checks have already compiled it
once, so it cannot fail here.
"""

from __future__ import annotations

from collections.abc import Callable

from connector_runtime.config.model import ConnectorSpec
from connector_runtime.hookspecs import hookimpl
from connector_runtime.records import EventTransform
from connector_runtime.transforms.ops import compile_transforms, make_transform


@hookimpl
def event_transform(
    connector: ConnectorSpec, on_error: Callable[[str], None]
) -> EventTransform | None:
    if not connector.transforms:
        return None
    return make_transform(compile_transforms(list(connector.transforms)), on_error)
