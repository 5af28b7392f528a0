"""The hook implementations, the config schema and check, and the events filter."""

from __future__ import annotations

import logging

import jsonschema
import pluggy
import pytest
from connector_runtime import (
    DEFAULT_MAX_BODY_BYTES,
    ComponentSpec,
    ConnectorSpec,
    Outcome,
    SourceContext,
    SourceType,
    hookspecs,
    make_event,
)

import connector_runtime_auth0 as plugin
from connector_runtime_auth0.handler import Auth0Handler

SCHEMA = plugin.CONFIG_SCHEMA


class RecordingIngest:
    def __init__(self):
        self.batches = []

    async def submit(self, events, *, request_id=""):
        self.batches.append(list(events))
        return Outcome(accepted=len(events), filtered=0, duplicates=0)


def context(config=None):
    return SourceContext(
        connector="acme-auth0",
        config=config or {},
        base_path="/acme-auth0",
        default_source="/connectors/acme-auth0",
        ingest=RecordingIngest(),
        log=logging.getLogger("test.auth0"),
    )


def connector(source_type="auth0", config=None):
    return ConnectorSpec(
        name="acme-auth0",
        file="acme.yaml",
        source=ComponentSpec(type=source_type, config=config or {}),
        target=ComponentSpec(type="stdout", config={}),
    )


def plugin_manager():
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(plugin, name="auth0")
    pm.check_pending()
    return pm


def event(code, category=None):
    extensions = {"auth0category": category} if category else None
    return make_event(id="1", source="/s", type="com.auth0.log." + code, extensions=extensions)


# -- hooks -------------------------------------------------------------------------------


def test_register_source_types():
    registered: list[SourceType] = []
    plugin_manager().hook.register_source_types(register=registered.append)
    source_type, logs, events_type, events_pull = registered
    assert (events_pull.name, events_pull.pull is not None) == ("auth0-events-pull", True)
    assert list(events_pull.routes(context())) == []
    assert events_pull.config_schema["properties"]["clientSecret"]["x-secret"] is True
    assert (logs.name, logs.pull is not None, list(logs.routes(context()))) == (
        "auth0-logs",
        True,
        [],
    )
    assert logs.config_schema["properties"]["clientSecret"]["x-secret"] is True
    assert source_type.name == "auth0"
    assert events_type.name == "auth0-events"
    assert events_type.config_schema is plugin.EVENTS_CONFIG_SCHEMA
    assert source_type.config_schema is SCHEMA
    assert source_type.description
    assert source_type.check_config is plugin.check_config
    ctx = context()
    routes = source_type.routes(ctx)
    assert list(routes) == [("", Auth0Handler, {"ctx": ctx})]


def test_event_filter():
    config = {"events": ["fp", "auth.signup.fail", "brand_new_code"]}
    [predicate] = [
        p
        for p in plugin_manager().hook.event_filter(
            connector=connector(config=config), on_error=print
        )
        if p
    ]
    assert predicate(event("fp", "auth.login.fail"))  # listed code
    assert predicate(event("fs", "auth.signup.fail"))  # listed category
    assert predicate(event("brand_new_code"))  # unknown code, listed
    assert not predicate(event("f", "auth.login.fail"))  # same category as fp, not listed
    assert not predicate(event("s", "auth.login.success"))
    assert not predicate(event("another_new_code"))  # unknown, not listed: no category
    assert not predicate(event("gd_module_switch"))  # known code without a category


@pytest.mark.parametrize(
    "spec",
    [
        connector("http", {"events": ["fp"]}),  # not ours
        connector("auth0", {}),  # ours, nothing to filter
        connector("auth0", {"token": "x" * 16}),
    ],
)
def test_event_filter_takes_no_part(spec):
    assert plugin.event_filter(spec) is None
    assert plugin_manager().hook.event_filter(connector=spec, on_error=print) == []


def test_predicate_with_categories_only():
    predicate = plugin.make_predicate(["user.fail", "management.success"])
    assert predicate(event("fu", "user.fail")) is True
    assert predicate(event("sapi", "management.success")) is True
    assert predicate(event("sapi")) is False
    assert predicate(event("user.fail")) is False  # a category is not a code


# -- config ------------------------------------------------------------------------------


def test_schema_is_valid_json_schema():
    validator = jsonschema.validators.validator_for(SCHEMA)
    validator.check_schema(SCHEMA)
    assert validator is jsonschema.Draft202012Validator
    for name, prop in SCHEMA["properties"].items():
        assert prop.get("description"), name
    assert SCHEMA["properties"]["token"]["x-secret"] is True
    assert SCHEMA["properties"]["maxBodyBytes"]["default"] == DEFAULT_MAX_BODY_BYTES == 16777216
    assert SCHEMA["additionalProperties"] is False


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"token": "Bearer 0123456789abcdef"},
        {"events": ["fp", "auth.login.fail"], "format": "jsonlines", "maxBodyBytes": 1048576},
        {"source": "https://acme-test.eu.auth0.com/", "format": "auto"},
    ],
)
def test_schema_accepts(config):
    jsonschema.Draft202012Validator(SCHEMA).validate(config)


@pytest.mark.parametrize(
    "config",
    [
        {"token": "short"},
        {"token": 12345678},
        {"events": []},
        {"events": ["fp", "fp"]},
        {"events": "fp"},
        {"events": [""]},
        {"format": "xml"},
        {"maxBodyBytes": 0},
        {"maxBodyBytes": "1MB"},
        {"source": ""},
        {"tokens": "Bearer 0123456789abcdef"},
    ],
)
def test_schema_rejects(config):
    assert list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(config))


def test_check_config():
    config = {"events": ["s", "auth.login.fail", "sx", 7, "auth.login.fails", "zzzzzzzzzz"]}
    problems = plugin.check_config(config)
    assert [path for path, _ in problems] == ["events[2]", "events[4]", "events[5]"]
    assert problems[0][1].startswith("unknown event type or category 'sx' (closest: s, ")
    assert "ss" in problems[0][1]
    assert problems[1][1] == (
        "unknown event type or category 'auth.login.fails' "
        "(closest: auth.login.fail, auth.logout.fail, auth.signup.fail)"
    )
    assert problems[2][1] == "unknown event type or category 'zzzzzzzzzz'"
    assert plugin.check_config({}) == []
    assert plugin.check_config({"events": ["fp", "sapi", "user.success"]}) == []


def test_public_surface():
    for name in plugin.__all__:
        assert hasattr(plugin, name), name
