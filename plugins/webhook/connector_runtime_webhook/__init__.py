"""The ``webhook`` source type: any signed webhook (or CloudEvents request) as CloudEvents.

Installed as its own distribution (``connector-runtime-webhook``) and found by the runtime
through the entry point ``webhook`` in the group ``connector_runtime``. It implements two
hooks:

- ``register_source_types``: the ``webhook`` source type (config schema, routes, checks);
- ``event_filter``: for ``webhook`` connectors whose config lists ``types``, a predicate
  keeping events whose type is listed or starts with a listed ``prefix*``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from importlib.resources import files
from typing import Any, Final

from connector_runtime import ConnectorSpec, Event, EventPredicate, SourceType, hookimpl, is_rfc3339

from connector_runtime_webhook.attributes import (
    DEFAULT_TYPE,
    RESERVED,
    AttributeMap,
    AttributeProblem,
    compile_attributes,
    parse_pointer,
)
from connector_runtime_webhook.auth import (
    ALGORITHMS,
    ENCODINGS,
    AuthFailure,
    make_auth,
    sign,
    signature_matches,
)
from connector_runtime_webhook.handler import Plan, WebhookHandler, compile_plan, routes
from connector_runtime_webhook.parse import FORMATS, ParseError, split_body

__all__ = [
    "ALGORITHMS",
    "CONFIG_SCHEMA",
    "DEFAULT_TYPE",
    "ENCODINGS",
    "FORMATS",
    "NAME",
    "SOURCE_TYPE",
    "AttributeMap",
    "AttributeProblem",
    "AuthFailure",
    "ParseError",
    "Plan",
    "WebhookHandler",
    "check_config",
    "compile_attributes",
    "compile_plan",
    "event_filter",
    "make_auth",
    "make_type_predicate",
    "register_source_types",
    "routes",
    "sign",
    "signature_matches",
    "split_body",
]

NAME: Final = "webhook"

CONFIG_SCHEMA: Final[Mapping[str, Any]] = json.loads(
    files(__package__).joinpath("config.schema.json").read_text(encoding="utf-8")
)

_AUTH_KEYS: Final[Mapping[str, frozenset[str]]] = {
    "hmac": frozenset(
        {"header", "secret", "algorithm", "encoding", "prefix", "format", "signed", "timestamp"}
    ),
    "token": frozenset({"header", "value"}),
    "basic": frozenset({"username", "password"}),
    "none": frozenset(),
}


def check_config(config: Mapping[str, Any]) -> Sequence[tuple[str, str]]:
    """Checks the schema cannot express: auth keys per type, templates, pointers, names."""
    problems = _auth_problems(config.get("auth"))
    for name, place in (config.get("attributes") or {}).items():
        problems += _place_problems(f"attributes.{name}", place)
        if name == "time" and "value" in place and not is_rfc3339(place["value"]):
            problems.append(("attributes.time.value", "not an RFC 3339 timestamp"))
        if name == "time" and "prefix" in place:
            problems.append(("attributes.time.prefix", "does not apply to 'time'"))
    for name, place in (config.get("extensions") or {}).items():
        if name in RESERVED:
            problems.append((f"extensions.{name}", f"{name!r} is not an extension attribute"))
        problems += _place_problems(f"extensions.{name}", place)
    for index, pattern in enumerate(config.get("types") or ()):
        if "*" in pattern[:-1]:
            problems.append((f"types[{index}]", "'*' may only end an entry (a prefix)"))
    return problems


def _auth_problems(auth: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    if not auth:
        return []
    kind = auth["type"]
    problems = [
        (f"auth.{key}", f"does not apply to auth type {kind!r}")
        for key in sorted(auth)
        if key != "type" and key not in _AUTH_KEYS[kind]
    ]
    if kind != "hmac":
        return problems
    stripe = auth.get("format") == "stripe"
    stamp = auth.get("timestamp")
    template = auth.get("signed", "{timestamp}.{body}" if stripe else "{body}")
    if "{body}" not in template:
        problems.append(("auth.signed", "must contain {body}"))
    if stripe and stamp and "header" in stamp:
        problems.append(
            ("auth.timestamp.header", "does not apply to format 'stripe' (it uses 't=')")
        )
    elif not stripe and stamp is not None and "header" not in stamp:
        problems.append(("auth.timestamp", "missing required key 'header'"))
    timed = stripe or bool(stamp and "header" in stamp)
    if "{timestamp}" in template and not timed:
        problems.append(("auth.signed", "uses {timestamp} but no timestamp is configured"))
    elif timed and "{timestamp}" not in template:
        problems.append(
            ("auth.signed", "must contain {timestamp}: an unsigned timestamp stops no replay")
        )
    return problems


def _place_problems(path: str, place: Mapping[str, Any]) -> list[tuple[str, str]]:
    if "pointer" not in place:
        return []
    try:
        parse_pointer(place["pointer"])
    except ValueError as exc:
        return [(f"{path}.pointer", str(exc))]
    return []


SOURCE_TYPE: Final = SourceType(
    name=NAME,
    config_schema=CONFIG_SCHEMA,
    routes=routes,
    description=(
        "Any webhook (HMAC, token or Basic auth; JSON object, array or JSON Lines; "
        "or CloudEvents as they are): one CloudEvent per JSON object"
    ),
    check_config=check_config,
)


def make_type_predicate(patterns: Sequence[str]) -> EventPredicate:
    """A predicate keeping events whose type is in ``patterns`` or starts with a ``prefix*``."""
    exact = frozenset(p for p in patterns if not p.endswith("*"))
    prefixes = tuple(p[:-1] for p in patterns if p.endswith("*"))

    def keep(event: Event) -> bool:
        kind = event.get("type")
        return kind in exact or (isinstance(kind, str) and kind.startswith(prefixes))

    return keep


@hookimpl
def register_source_types(register: Callable[[SourceType], None]) -> None:
    """Contribute the ``webhook`` source type."""
    register(SOURCE_TYPE)


@hookimpl
def event_filter(connector: ConnectorSpec) -> EventPredicate | None:
    """The ``types`` filter of a ``webhook`` connector; ``None`` for any other connector."""
    if connector.source.type != NAME:
        return None
    patterns = connector.source.config.get("types")
    if not patterns:
        return None
    return make_type_predicate([p for p in patterns if isinstance(p, str)])
