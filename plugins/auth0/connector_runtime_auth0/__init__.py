"""The Auth0 source types: ``auth0`` (Custom Webhook log streams), ``auth0-logs`` (the
Management API's logs, pulled by checkpoint), ``auth0-events`` (Event Streams webhooks,
CloudEvents as sent) and ``auth0-events-pull`` (the same events read from the Events API's
Server-Sent Events by offset).

Installed as its own distribution (``connector-runtime-auth0``), found by the runtime through
the entry point ``auth0`` in the group ``connector_runtime``. It implements these hooks:

- ``register_source_types``: the four source types (config schema, routes or the pull
  task, checks); ``auth0`` and ``auth0-logs`` map records to the same CloudEvents
  (:mod:`connector_runtime_auth0.puller` for the pull);
- ``event_filter``: for ``auth0`` and ``auth0-logs`` connectors whose config lists
  ``events``, a predicate that keeps events whose type code or filter category is listed;
  for ``auth0-events`` and ``auth0-events-pull`` ones, events whose type is listed or in a
  listed ``family.*``;
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
    parse_duration,
)

from connector_runtime_auth0.catalogue import (
    CATEGORIES,
    category_of,
    closest,
    is_known,
    unknown_names,
)
from connector_runtime_auth0.events_puller import pull as pull_events
from connector_runtime_auth0.events_puller import start_query
from connector_runtime_auth0.eventstreams import EVENT_STREAM_TYPES, parse_cloudevents
from connector_runtime_auth0.handler import Auth0Handler, parse_offline, routes
from connector_runtime_auth0.logs_api import start_checkpoint
from connector_runtime_auth0.mapping import CATEGORY_ATTRIBUTE, TYPE_PREFIX, to_event
from connector_runtime_auth0.parse import FORMATS, ParseError, Record, parse_body
from connector_runtime_auth0.pii import PRESETS, expand
from connector_runtime_auth0.puller import pull
from connector_runtime_auth0.stream_health import check_watch_config, watchers
from connector_runtime_auth0.streams import (
    EventsHandler,
    check_events_config,
    events_routes,
    keeps,
    parse_events_offline,
)

__all__ = [
    "CATEGORIES",
    "CONFIG_SCHEMA",
    "EVENTS_CONFIG_SCHEMA",
    "EVENTS_PULL_CONFIG_SCHEMA",
    "EVENTS_PULL_SOURCE_TYPE",
    "EVENTS_SOURCE_TYPE",
    "EVENT_STREAM_TYPES",
    "FORMATS",
    "LOGS_CONFIG_SCHEMA",
    "LOGS_SOURCE_TYPE",
    "PRESETS",
    "SOURCE_TYPE",
    "Auth0Handler",
    "EventsHandler",
    "ParseError",
    "Record",
    "category_of",
    "check_config",
    "closest",
    "event_filter",
    "event_transform",
    "make_predicate",
    "parse_body",
    "parse_cloudevents",
    "register_source_types",
    "to_event",
]

NAME: Final = "auth0"
LOGS_NAME: Final = "auth0-logs"
EVENTS_NAME: Final = "auth0-events"
EVENTS_PULL_NAME: Final = "auth0-events-pull"


def _schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(files(__package__).joinpath(name).read_text("utf-8"))
    return loaded


def _with_watch(schema: dict[str, Any], credentials: Mapping[str, Any] | None) -> dict[str, Any]:
    """``schema`` with the stream health keys (``watch.schema.json``) and, for a source
    without credentials of its own, ``managementApi`` built from ``auth0-logs``'s."""
    properties = dict(schema["properties"])
    if credentials is not None:
        properties["managementApi"] = {
            "description": "The Management API credentials of a machine-to-machine application"
            " with the scope read:log_streams (and update:log_streams for resumeSuspended),"
            " used only by watchStream.",
            "type": "object",
            "properties": dict(credentials),
            "required": ["domain", "clientId", "clientSecret"],
            "additionalProperties": False,
        }
    properties.update(_schema("watch.schema.json")["properties"])
    return {**schema, "properties": properties}


_LOGS = _schema("logs.schema.json")
_CREDENTIALS = ("domain", "clientId", "clientSecret", "requestTimeout")
CONFIG_SCHEMA: Final[Mapping[str, Any]] = _with_watch(
    _schema("config.schema.json"),
    {
        **{k: _LOGS["properties"][k] for k in _CREDENTIALS},
        "clientId": {
            **_LOGS["properties"]["clientId"],
            "description": "The client id of a machine-to-machine application authorised for"
            " the Management API.",
        },
    },
)
LOGS_CONFIG_SCHEMA: Final[Mapping[str, Any]] = _with_watch(_LOGS, None)
EVENTS_CONFIG_SCHEMA: Final[Mapping[str, Any]] = _schema("events.schema.json")
EVENTS_PULL_CONFIG_SCHEMA: Final[Mapping[str, Any]] = _schema("events_pull.schema.json")


def _event_names(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``events`` entries that are neither a known code nor a known category."""
    events = config.get("events") or ()
    return list(unknown_names(events, is_known, closest, "event type or category"))


def check_config(config: Mapping[str, Any]) -> Sequence[tuple[str, str]]:
    """Report unknown ``events`` entries, and a ``watchStream`` without ``managementApi``."""
    return _event_names(config) + check_watch_config(config, "managementApi" in config)


def _pull_checks(
    config: Mapping[str, Any],
    start: Callable[[str], object],
    durations: Sequence[str],
) -> list[tuple[str, str]]:
    """``startFrom`` must be something ``start`` takes, and the ``durations`` parse."""
    problems = []
    try:
        start(config.get("startFrom", "now"))
    except ValueError as exc:
        problems.append(("startFrom", str(exc)))
    for key in durations:
        if key in config:
            try:
                parse_duration(config[key])
            except ValueError as exc:
                problems.append((key, str(exc)))
    return problems


def check_logs_config(config: Mapping[str, Any]) -> Sequence[tuple[str, str]]:
    """``events`` as for ``auth0``; ``startFrom`` and the durations must parse."""
    durations = ("pollInterval", "settle", "requestTimeout")
    return [
        *_event_names(config),
        *check_watch_config(config, True),  # its own credentials serve the watcher
        *_pull_checks(config, start_checkpoint, durations),
    ]


def check_events_pull_config(config: Mapping[str, Any]) -> Sequence[tuple[str, str]]:
    """``events`` as for ``auth0-events``; ``startFrom`` and the durations must parse."""
    durations = ("idleTimeout", "requestTimeout")
    return [*check_events_config(config), *_pull_checks(config, start_query, durations)]


SOURCE_TYPE: Final = SourceType(
    name=NAME,
    config_schema=CONFIG_SCHEMA,
    routes=routes,
    description="Auth0 log streams (Custom Webhook): one CloudEvent per log record",
    check_config=check_config,
    parse_offline=parse_offline,
    watchers=watchers,
)

LOGS_SOURCE_TYPE: Final = SourceType(
    name=LOGS_NAME,
    config_schema=LOGS_CONFIG_SCHEMA,
    routes=lambda ctx: [],
    description="Auth0 logs pulled from the Management API by checkpoint (no public endpoint)",
    check_config=check_logs_config,
    pull=pull,
    watchers=watchers,
)

EVENTS_SOURCE_TYPE: Final = SourceType(
    name=EVENTS_NAME,
    config_schema=EVENTS_CONFIG_SCHEMA,
    routes=events_routes,
    description="Auth0 Event Streams (webhook): CloudEvents as Auth0 sends them",
    check_config=check_events_config,
    parse_offline=parse_events_offline,
)

EVENTS_PULL_SOURCE_TYPE: Final = SourceType(
    name=EVENTS_PULL_NAME,
    config_schema=EVENTS_PULL_CONFIG_SCHEMA,
    routes=lambda ctx: [],
    description="Auth0 Events read from the Events API (Server-Sent Events) by offset",
    check_config=check_events_pull_config,
    pull=pull_events,
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
    """Contribute the ``auth0``, ``auth0-logs``, ``auth0-events`` and ``auth0-events-pull``
    source types."""
    register(SOURCE_TYPE)
    register(LOGS_SOURCE_TYPE)
    register(EVENTS_SOURCE_TYPE)
    register(EVENTS_PULL_SOURCE_TYPE)


@hookimpl
def event_filter(connector: ConnectorSpec) -> EventPredicate | None:
    """The ``events`` filter of an ``auth0``, ``auth0-logs``, ``auth0-events`` or
    ``auth0-events-pull`` connector; ``None`` for any other connector."""
    if connector.source.type not in (NAME, LOGS_NAME, EVENTS_NAME, EVENTS_PULL_NAME):
        return None
    names = connector.source.config.get("events")
    if not names:
        return None
    listed = [name for name in names if isinstance(name, str)]
    cloudevents = connector.source.type in (EVENTS_NAME, EVENTS_PULL_NAME)
    return keeps(listed) if cloudevents else make_predicate(listed)


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
