"""One test per hook of the contract, each through the plugin manager with a throwaway plugin.

tests/test_docs.py fails when a hook in hookspecs.py has no test named ``test_<hook>``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from connector_runtime.config.manifest import load_manifest
from connector_runtime.config.model import ComponentSpec, ConnectorSpec
from connector_runtime.errors import ManifestError
from connector_runtime.plugins import build_registry
from connector_runtime.testing import (
    RecordingTarget,
    RunningRuntime,
    connector_doc,
    post,
    write_manifest,
)

Install = Callable[[str, str], Path]

SOURCE_PLUGIN = """
from connector_runtime import RequestRejected, SourceHandler, SourceType, hookimpl, make_event

class PingHandler(SourceHandler):
    def events(self, body):
        if not body:
            raise RequestRejected(400, "empty body")
        return [make_event(id=body.decode(), source="/ping", type="test.ping")]

class StatusHandler(SourceHandler):
    def events(self, body):
        return []

def routes(ctx):
    return [("", PingHandler, {"ctx": ctx}), ("/status", StatusHandler, {"ctx": ctx})]

PING = SourceType(
    name="ping",
    config_schema={"type": "object", "properties": {}, "additionalProperties": False},
    routes=routes,
    description="a body is an event id",
)

@hookimpl
def register_source_types(register):
    register(PING)
"""

TARGET_PLUGIN = """
from connector_runtime import SendResult, TargetType, hookimpl

SENT = []

class Keep:
    max_batch = 2

    def __init__(self, config, ctx):
        self.label = config["label"]
        self.connector = ctx.connector

    async def start(self):
        pass

    async def send(self, events):
        SENT.append((self.connector, self.label, [e.id for e in events]))
        return SendResult(rejected={i: "odd" for i, e in enumerate(events) if e.id == "odd"})

    async def close(self):
        pass

@hookimpl
def register_target_types(register):
    register(TargetType(
        name="keep",
        config_schema={
            "type": "object",
            "required": ["label"],
            "properties": {"label": {"type": "string"}},
        },
        create=Keep,
    ))
"""

FILTER_PLUGIN = """
from connector_runtime import hookimpl

@hookimpl
def event_filter(connector):  # a subset of the hook's arguments
    if connector.source.type != "ping":
        return None
    blocked = connector.source.config.get("__never__", "blocked")
    return lambda event: event.id != blocked

@hookimpl(specname="event_filter")
def report_errors(connector, on_error):
    if connector.name != "careful":
        return None

    def keep(event):
        if event.id.startswith("bad"):
            on_error(f"cannot judge {event.id}")
            return False
        return True

    return keep
"""


def spec(name: str, source_type: str = "ping") -> ConnectorSpec:
    return ConnectorSpec(
        name=name,
        file="m.yaml",
        source=ComponentSpec(source_type, {}),
        target=ComponentSpec("stdout", {}),
    )


def test_register_source_types(
    throwaway_plugin: Install,
    runtime_factory: Callable[..., RunningRuntime],
    recording_target: RecordingTarget,
):
    throwaway_plugin("cr_hook_ping", SOURCE_PLUGIN)
    registry = build_registry()
    assert registry.source_types["ping"].description == "a body is an event id"
    [info] = [p for p in registry.plugins if p.name == "cr_hook_ping"]
    assert info.source_types == ["ping"] and info.target_types == []

    # the hook itself, called through the plugin manager with a register callback
    registered: list = []
    registry.plugin_manager.hook.register_source_types(register=registered.append)
    assert [s.name for s in registered if s.name == "ping"] == ["ping"]

    # its routes are mounted under the connector's base path of a real server
    target = {"type": "http", "config": {"url": recording_target.url}}
    doc = connector_doc("p1", "ping", {}, target, delivery={"ack": "delivered"})
    runtime = runtime_factory([doc], registry=registry)
    assert post(runtime.connector_url("p1"), "e-1").json()["accepted"] == 1
    assert post(runtime.connector_url("p1") + "/", "e-2").status == 200
    assert post(runtime.connector_url("p1"), "").status == 400
    assert post(runtime.connector_url("p1") + "/status", "x").json()["accepted"] == 0
    assert recording_target.ids == ["e-1", "e-2"]

    # a second plugin offering the same name is a conflict: one of the two is reported
    throwaway_plugin("cr_hook_ping_again", SOURCE_PLUGIN)
    again = build_registry()
    conflicts = [b for b in again.broken if "SourceType 'ping' is already provided" in b.reason]
    assert [b.name for b in conflicts] in (["cr_hook_ping"], ["cr_hook_ping_again"])
    assert "ping" in again.source_types


def test_register_target_types(
    throwaway_plugin: Install,
    runtime_factory: Callable[..., RunningRuntime],
    tmp_path: Path,
):
    throwaway_plugin("cr_hook_keep", TARGET_PLUGIN)
    throwaway_plugin("cr_hook_ping", SOURCE_PLUGIN)
    registry = build_registry()
    assert "keep" in registry.target_types
    registered: list = []
    registry.plugin_manager.hook.register_target_types(register=registered.append)
    assert {"keep", "http", "stdout", "file"} <= {t.name for t in registered}

    # the target's schema is applied to manifests that use it
    bad = connector_doc("k0", "ping", {}, {"type": "keep", "config": {}})
    manifest_path = write_manifest([bad], tmp_path)
    with pytest.raises(ManifestError, match="missing required key 'label'"):
        load_manifest([manifest_path], registry, env={})

    # and it is created per connector and sent events in chunks of max_batch
    import cr_hook_keep

    good = connector_doc(
        "k1",
        "ping",
        {},
        {"type": "keep", "config": {"label": "L"}},
        delivery={"ack": "delivered"},
    )
    runtime = runtime_factory([good], registry=registry)
    assert post(runtime.connector_url("k1"), "odd").json()["accepted"] == 1
    assert post(runtime.connector_url("k1"), "even").json()["accepted"] == 1
    assert cr_hook_keep.SENT == [("k1", "L", ["odd"]), ("k1", "L", ["even"])]


def test_event_filter(
    throwaway_plugin: Install,
    runtime_factory: Callable[..., RunningRuntime],
    recording_target: RecordingTarget,
):
    throwaway_plugin("cr_hook_ping", SOURCE_PLUGIN)
    throwaway_plugin("cr_hook_filter", FILTER_PLUGIN)
    registry = build_registry()
    pm = registry.plugin_manager
    errors: list[str] = []
    arguments = {"connector": spec("careful"), "on_error": errors.append}
    call = {k: v for k, v in arguments.items() if k in pm.hook.event_filter.spec.argnames}

    # called with keyword arguments; each implementation takes the subset it declares
    predicates = [p for p in pm.hook.event_filter(**call) if p is not None]
    assert len(predicates) == 2
    assert len(registry.event_filters(spec("careful"), errors.append)) == 2
    assert len(registry.event_filters(spec("plain"))) == 1
    assert registry.event_filters(spec("other", source_type="auth0")) == []

    # through a real server: predicates are ANDed, filtered events are counted, not sent
    target = {"type": "http", "config": {"url": recording_target.url}}
    doc = connector_doc("careful", "ping", {}, target, delivery={"ack": "delivered"})
    runtime = runtime_factory([doc], registry=registry)
    url = runtime.connector_url("careful")
    assert post(url, "fine").json() == {"accepted": 1, "filtered": 0, "duplicates": 0}
    assert post(url, "blocked").json() == {"accepted": 0, "filtered": 1, "duplicates": 0}
    assert post(url, "bad-1").json() == {"accepted": 0, "filtered": 1, "duplicates": 0}
    assert recording_target.ids == ["fine"]
    stats = runtime.runtime.connectors[0].stats
    assert stats.filter_errors == 1


TRANSFORM_PLUGIN = """
from connector_runtime import Event, hookimpl

@hookimpl
def event_transform(connector, on_error):
    if connector.source.type != "ping":
        return None

    def tag(event):
        if event.id == "boom":
            raise ValueError("cannot tag this one")
        if event.id == "none":
            return None
        attributes = dict(event.peek())
        attributes["tagged"] = attributes.get("stage", "plugin-only")
        if event.id == "evil":
            attributes["id"] = "other"
        if event.id == "noted":
            on_error("noted a problem, kept the event")
        return Event(attributes, event.data)

    return tag

@hookimpl(specname="event_transform")
def in_place(connector):
    if connector.name != "careful":
        return None

    def rewrite(event):
        if event.id == "sneaky":
            event.attributes["source"] = "/elsewhere"  # changes the event in place
        return event

    return rewrite
"""


def test_event_transform(
    throwaway_plugin: Install,
    runtime_factory: Callable[..., RunningRuntime],
    recording_target: RecordingTarget,
):
    throwaway_plugin("cr_hook_ping", SOURCE_PLUGIN)
    throwaway_plugin("cr_hook_transform", TRANSFORM_PLUGIN)
    registry = build_registry()
    pm = registry.plugin_manager
    arguments = {"connector": spec("careful"), "on_error": print}
    call = {k: v for k, v in arguments.items() if k in pm.hook.event_transform.spec.argnames}

    # called with keyword arguments; each implementation takes the subset it declares
    assert len([t for t in pm.hook.event_transform(**call) if t is not None]) == 2
    assert [n for n, _ in registry.named_event_transforms(spec("careful"))] == [
        "cr_hook_transform",
        "cr_hook_transform",
    ]
    assert registry.named_event_transforms(spec("other", source_type="auth0")) == []

    # through a real server: spec.transforms runs first, then the plugin's; after the filter
    target = {"type": "http", "config": {"url": recording_target.url}}
    doc = connector_doc(
        "careful",
        "ping",
        {},
        target,
        delivery={"ack": "delivered"},
        transforms=[{"set": {"attributes": {"stage": "builtin-first"}}}],
    )
    runtime = runtime_factory([doc], registry=registry)
    url = runtime.connector_url("careful")
    assert post(url, "fine").json() == {"accepted": 1, "filtered": 0, "duplicates": 0}
    assert post(url, "noted").json() == {"accepted": 1, "filtered": 0, "duplicates": 0}
    # never another id or source, never a crash: the event is filtered out and counted
    for refused in ("evil", "sneaky", "boom", "none"):
        assert post(url, refused).json() == {"accepted": 0, "filtered": 1, "duplicates": 0}
    assert recording_target.ids == ["fine", "noted"]
    assert recording_target.events[0].attributes["tagged"] == "builtin-first"
    assert recording_target.events[0].attributes["source"] == "/ping"
    stats = runtime.runtime.connectors[0].stats
    assert stats.transform_errors == 5
    assert stats.filtered == 4
