"""The ``auth0`` source type: Auth0 Custom Webhook log streams as CloudEvents.

Installed as its own distribution (``connector-runtime-auth0``), found by the runtime through
the entry point ``auth0`` in the group ``connector_runtime``. It implements two hooks:

- ``register_source_types``: the ``auth0`` source type (config schema, routes, checks);
- ``event_filter``: for ``auth0`` connectors whose config lists ``events``, a predicate that
  keeps events whose type code or filter category is listed;
- ``event_transform``: for ``auth0`` connectors whose config has ``pii``, the preset's
  transforms (:mod:`.pii`), built from the runtime's own operations.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from importlib.resources import files
from typing import Any, Final

from connector_runtime import (
    ConnectorSpec,
    Event,
    EventPredicate,
    EventTransform,
    SourceType,
    build_transform,
    hookimpl,
)

from connector_runtime_auth0.catalogue import CATEGORIES, category_of, closest, is_known
from connector_runtime_auth0.handler import Auth0Handler, parse_offline, routes
from connector_runtime_auth0.mapping import CATEGORY_ATTRIBUTE, TYPE_PREFIX, to_event
from connector_runtime_auth0.parse import FORMATS, ParseError, Record, parse_body
from connector_runtime_auth0.pii import PRESETS, expand

__all__ = [
    "CATEGORIES",
    "CONFIG_SCHEMA",
    "FORMATS",
    "PRESETS",
    "SOURCE_TYPE",
    "Auth0Handler",
    "ParseError",
    "Record",
    "category_of",
    "check_config",
    "closest",
    "event_filter",
    "event_transform",
    "make_predicate",
    "parse_body",
    "register_source_types",
    "to_event",
]

NAME: Final = "auth0"

CONFIG_SCHEMA: Final[Mapping[str, Any]] = json.loads(
    files(__package__).joinpath("config.schema.json").read_text(encoding="utf-8")
)


def check_config(config: Mapping[str, Any]) -> Sequence[tuple[str, str]]:
    """Report ``events`` entries that are neither a known code nor a known category."""
    problems: list[tuple[str, str]] = []
    for index, name in enumerate(config.get("events") or ()):
        if not isinstance(name, str) or is_known(name):
            continue
        message = f"unknown event type or category {name!r}"
        suggestions = closest(name)
        if suggestions:
            message += f" (closest: {', '.join(suggestions)})"
        problems.append((f"events[{index}]", message))
    return problems


SOURCE_TYPE: Final = SourceType(
    name=NAME,
    config_schema=CONFIG_SCHEMA,
    routes=routes,
    description="Auth0 log streams (Custom Webhook): one CloudEvent per log record",
    check_config=check_config,
    parse_offline=parse_offline,
)


def make_predicate(names: Sequence[str]) -> EventPredicate:
    """A predicate keeping events whose code or category is among ``names``.

    A name that is a known category stands for the category; any other name is a code
    (known or not). An event of an unknown code has no category, so it passes only when its
    code is listed.
    """
    types = frozenset(TYPE_PREFIX + name for name in names if name not in CATEGORIES)
    cats = frozenset(name for name in names if name in CATEGORIES)

    def keep(event: Event) -> bool:
        attributes = event.peek()
        return attributes["type"] in types or attributes.get(CATEGORY_ATTRIBUTE) in cats

    return keep


@hookimpl
def register_source_types(register: Callable[[SourceType], None]) -> None:
    """Contribute the ``auth0`` source type."""
    register(SOURCE_TYPE)


@hookimpl
def event_filter(connector: ConnectorSpec) -> EventPredicate | None:
    """The ``events`` filter of an ``auth0`` connector; ``None`` for any other connector."""
    if connector.source.type != NAME:
        return None
    names = connector.source.config.get("events")
    if not names:
        return None
    return make_predicate([name for name in names if isinstance(name, str)])


@hookimpl
def event_transform(
    connector: ConnectorSpec, on_error: Callable[[str], None]
) -> EventTransform | None:
    """The ``pii`` preset of an ``auth0`` connector; ``None`` for any other connector."""
    if connector.source.type != NAME or "pii" not in connector.source.config:
        return None
    pii = connector.source.config["pii"]
    return build_transform(
        expand(pii["preset"], pii["key"]), on_error, base_path="/spec/source/config/pii"
    )
