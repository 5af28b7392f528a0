"""Building the plugin manager and the registry of source and target types.

:func:`make_plugin_manager` registers the built-in plugins and, unless told otherwise, every
entry point in the group ``connector_runtime``. Each entry point is loaded and checked on
its own: one that fails to import, implements a hook that does not exist, or raises from a
hook is listed in :attr:`Registry.broken` with its reason, and the others carry on.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from connector_runtime import hookspecs
from connector_runtime._version import __version__
from connector_runtime.config.model import ConnectorSpec
from connector_runtime.records import EventPredicate, EventTransform, SourceType, TargetType

BUILTIN_PLUGINS: tuple[str, ...] = (
    "connector_runtime.targets.http.target",
    "connector_runtime.targets.stream",
    "connector_runtime.nats.target",
    "connector_runtime.filters.builtin",
    "connector_runtime.transforms.builtin",
)
ENTRY_POINT_GROUP = hookspecs.PROJECT
RUNTIME_DISTRIBUTION = "connector-runtime"
"""The distribution the built-in plugins come with."""


@dataclass(frozen=True)
class BrokenPlugin:
    name: str
    reason: str


@dataclass
class PluginInfo:
    name: str
    version: str
    builtin: bool
    source_types: list[str] = field(default_factory=list)
    target_types: list[str] = field(default_factory=list)
    distribution: str = ""
    """The installed distribution that provides the plugin ('' for one added in code)."""


@dataclass
class Registry:
    """What the installed plugins provide."""

    plugin_manager: pluggy.PluginManager
    source_types: dict[str, SourceType] = field(default_factory=dict)
    target_types: dict[str, TargetType] = field(default_factory=dict)
    plugins: list[PluginInfo] = field(default_factory=list)
    broken: list[BrokenPlugin] = field(default_factory=list)

    def named_event_filters(
        self, connector: ConnectorSpec, on_error: Callable[[str], None] = lambda reason: None
    ) -> list[tuple[str, EventPredicate]]:
        """Like :meth:`event_filters`, with the name of the plugin each predicate came from."""
        found: list[tuple[str, EventPredicate]] = []
        for impl in self.plugin_manager.hook.event_filter.get_hookimpls():
            predicate = _call(impl, connector=connector, on_error=on_error)
            if predicate is not None:
                found.append((impl.plugin_name, predicate))
        return found

    def event_filters(
        self, connector: ConnectorSpec, on_error: Callable[[str], None] = lambda reason: None
    ) -> list[EventPredicate]:
        """Every predicate the plugins return for this connector (see ``event_filter``)."""
        return [p for _, p in self.named_event_filters(connector, on_error)]

    def named_event_transforms(
        self, connector: ConnectorSpec, on_error: Callable[[str], None] = lambda reason: None
    ) -> list[tuple[str, EventTransform]]:
        """Every transform the plugins return for this connector (see ``event_transform``),
        with the name of its plugin, in registration order."""
        found: list[tuple[str, EventTransform]] = []
        for impl in self.plugin_manager.hook.event_transform.get_hookimpls():
            transform = _call(impl, connector=connector, on_error=on_error)
            if transform is not None:
                found.append((impl.plugin_name, transform))
        return found


def _call(impl: pluggy.HookImpl, **kwargs: Any) -> Any:
    return impl.function(*[kwargs[name] for name in impl.argnames])


def make_plugin_manager(
    load_entry_points: bool = True, extra: Iterable[tuple[str, object]] = ()
) -> tuple[pluggy.PluginManager, list[BrokenPlugin], dict[str, tuple[str, str]]]:
    """Build a plugin manager with the built-ins, ``extra`` plugins and the entry points.

    Returns the manager, the plugins that could not be registered, and the version and the
    distribution of each registered plugin by name (a built-in one has the runtime's).
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    broken: list[BrokenPlugin] = []
    versions: dict[str, tuple[str, str]] = {}
    for module_name in BUILTIN_PLUGINS:
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            broken.append(BrokenPlugin(module_name, f"import failed: {_describe(exc)}"))
            continue
        if _register(pm, module, module_name, broken):
            versions[module_name] = (__version__, RUNTIME_DISTRIBUTION)
    for name, plugin in extra:
        if _register(pm, plugin, name, broken):
            versions[name] = ("local", "")
    if load_entry_points:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not take the host down
                broken.append(BrokenPlugin(ep.name, f"import failed: {_describe(exc)}"))
                continue
            if _register(pm, plugin, ep.name, broken):
                dist = ep.dist
                versions[ep.name] = (dist.version, dist.name) if dist else ("unknown", "")
    return pm, broken, versions


def _register(
    pm: pluggy.PluginManager, plugin: object, name: str, broken: list[BrokenPlugin]
) -> bool:
    try:
        pm.register(plugin, name=name)
        pm.check_pending()
    except Exception as exc:
        if pm.is_registered(plugin):
            pm.unregister(plugin)
        broken.append(BrokenPlugin(name, _describe(exc)))
        return False
    return True


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def build_registry(
    load_entry_points: bool = True, extra: Iterable[tuple[str, object]] = ()
) -> Registry:
    """Build the plugin manager and collect every source and target type it offers."""
    pm, broken, versions = make_plugin_manager(load_entry_points, extra)
    registry = Registry(plugin_manager=pm, broken=broken)
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        version, distribution = versions.get(name, ("unknown", ""))
        info = PluginInfo(name, version, name in BUILTIN_PLUGINS, distribution=distribution)
        ok = _collect(
            pm,
            plugin,
            name,
            "register_source_types",
            registry.source_types,
            info.source_types,
            registry.broken,
        ) and _collect(
            pm,
            plugin,
            name,
            "register_target_types",
            registry.target_types,
            info.target_types,
            registry.broken,
        )
        if ok:
            registry.plugins.append(info)
    return registry


def _collect(
    pm: pluggy.PluginManager,
    plugin: object,
    plugin_name: str,
    hook_name: str,
    into: dict[str, Any],
    names: list[str],
    broken: list[BrokenPlugin],
) -> bool:
    impls = [i for i in getattr(pm.hook, hook_name).get_hookimpls() if i.plugin is plugin]
    wanted = SourceType if hook_name == "register_source_types" else TargetType
    offered: list[Any] = []
    register: Callable[[Any], None] = offered.append
    try:
        for impl in impls:
            _call(impl, register=register)
        for item in offered:
            if not isinstance(item, wanted):
                raise TypeError(f"{hook_name} registered {item!r}, not a {wanted.__name__}")
    except Exception as exc:
        broken.append(BrokenPlugin(plugin_name, f"hook {hook_name} failed: {_describe(exc)}"))
        pm.unregister(plugin)
        return False
    for item in offered:
        if item.name in into:
            broken.append(
                BrokenPlugin(plugin_name, f"{wanted.__name__} {item.name!r} is already provided")
            )
            continue
        into[item.name] = item
        names.append(item.name)
    return True
