"""``connector-runtime --version`` and what ``plugins`` says about versions and origins."""

from __future__ import annotations

import importlib.metadata
import json

from connector_runtime import __version__
from connector_runtime.cli.versions import installed_plugins, plugin_rows, version_text
from connector_runtime.plugins import build_registry
from tests.procs import cli


def dist_version(name: str) -> str:
    return importlib.metadata.version(name)


def test_version_prints_the_runtime_and_every_installed_plugin():
    out = cli("--version")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"connector-runtime {__version__}"
    assert f"plugin auth0 {dist_version('connector-runtime-auth0')} (connector-runtime-auth0)" in (
        lines
    )
    assert (
        f"plugin webhook {dist_version('connector-runtime-webhook')} (connector-runtime-webhook)"
        in lines
    )
    assert out.stdout.strip() == version_text()


def test_version_lists_a_plugin_that_fails_to_import_without_importing_it(throwaway_plugin):
    throwaway_plugin("cr_kaput", "raise RuntimeError('kaput on import')\n")
    assert any(p.name == "cr_kaput" and p.version == "0.0.1" for p in installed_plugins())
    out = cli("--version")
    assert out.returncode == 0 and "plugin cr_kaput 0.0.1 (cr_kaput)" in out.stdout
    assert "kaput" not in out.stderr


def test_plugins_marks_the_built_in_types_as_part_of_the_runtime():
    out = cli("plugins")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == (
        f"connector-runtime {__version__} (built in):"
        " target http, target stdout, target file, target nats"
    )
    assert (
        "auth0 0.1.0: source auth0, source auth0-logs, source auth0-events,"
        " source auth0-events-pull (connector-runtime-auth0)" in lines
    )
    assert "connector_runtime." not in out.stdout  # no internal module names
    data = json.loads(cli("plugins", "--json").stdout)
    [runtime] = [p for p in data["plugins"] if p["builtin"]]
    assert runtime == {
        "name": "connector-runtime",
        "version": __version__,
        "distribution": "connector-runtime",
        "builtin": True,
        "sourceTypes": [],
        "targetTypes": ["http", "stdout", "file", "nats"],
    }
    by_name = {p["name"]: p for p in data["plugins"]}
    assert by_name["webhook"]["distribution"] == "connector-runtime-webhook"
    assert by_name["webhook"]["version"] == dist_version("connector-runtime-webhook")


def test_a_plugin_added_in_code_has_no_distribution():
    from connector_runtime import hookimpl

    class Local:
        @hookimpl
        def register_source_types(self, register):
            pass

    rows = plugin_rows(build_registry(load_entry_points=False, extra=[("local-one", Local())]))
    assert [r.name for r in rows] == ["connector-runtime", "local-one"]
    assert rows[1].text() == "local-one local: filters only"
