"""What is installed, by version: ``connector-runtime --version`` and the ``plugins`` listing.

``--version`` reads the entry points of the group ``connector_runtime`` without importing
them, so it answers even when a plugin is broken. :func:`plugin_rows` turns a registry into
what ``plugins`` shows: the built-in types as one row of the runtime's own distribution,
then one row per plugin with its distribution's version.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from connector_runtime._version import __version__
from connector_runtime.plugins import ENTRY_POINT_GROUP, RUNTIME_DISTRIBUTION, Registry

__all__ = ["InstalledPlugin", "VersionAction", "installed_plugins", "plugin_rows", "version_text"]


@dataclass(frozen=True)
class InstalledPlugin:
    """An entry point of the group ``connector_runtime`` and the distribution it is in."""

    name: str
    distribution: str
    version: str


def installed_plugins() -> list[InstalledPlugin]:
    """Every installed plugin entry point, sorted by name; none is imported."""
    found = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        found.append(
            InstalledPlugin(ep.name, dist.name if dist else "?", dist.version if dist else "?")
        )
    return sorted(found, key=lambda p: (p.name, p.distribution))


def version_text() -> str:
    """``connector-runtime 0.1.0`` and a line per installed plugin."""
    lines = [f"{RUNTIME_DISTRIBUTION} {__version__}"]
    lines += [f"plugin {p.name} {p.version} ({p.distribution})" for p in installed_plugins()]
    return "\n".join(lines)


class VersionAction(argparse.Action):
    """``--version``: print :func:`version_text` and exit 0 (computed only when asked)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("help", "print the runtime's version and every installed plugin's")
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        print(version_text(), file=sys.stdout)
        parser.exit(0)


@dataclass(frozen=True)
class PluginRow:
    """One line of ``plugins``: a plugin, or the runtime's built-in types together."""

    name: str
    version: str
    distribution: str
    builtin: bool
    source_types: tuple[str, ...]
    target_types: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "distribution": self.distribution,
            "builtin": self.builtin,
            "sourceTypes": list(self.source_types),
            "targetTypes": list(self.target_types),
        }

    def text(self) -> str:
        provides = [f"source {n}" for n in self.source_types]
        provides += [f"target {n}" for n in self.target_types]
        what = ", ".join(provides) or "filters only"
        if self.builtin:
            return f"{self.name} {self.version} (built in): {what}"
        origin = f" ({self.distribution})" if self.distribution else ""
        return f"{self.name} {self.version}: {what}{origin}"


def plugin_rows(registry: Registry) -> list[PluginRow]:
    """The built-in plugins as one row of the runtime, then the others in load order."""
    builtins = [p for p in registry.plugins if p.builtin]
    rows = []
    if builtins:
        rows.append(
            PluginRow(
                RUNTIME_DISTRIBUTION,
                __version__,
                RUNTIME_DISTRIBUTION,
                True,
                tuple(t for p in builtins for t in p.source_types),
                tuple(t for p in builtins for t in p.target_types),
            )
        )
    rows += [
        PluginRow(
            p.name,
            p.version,
            p.distribution,
            False,
            tuple(p.source_types),
            tuple(p.target_types),
        )
        for p in registry.plugins
        if not p.builtin
    ]
    return rows
