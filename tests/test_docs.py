"""The plugin guide (docs/writing-plugins.md) matches the contract and its code runs.

- every hook in hookspecs.py has a ``### `` heading with its exact signature in the guide,
  and a test named ``test_<hook>`` somewhere under tests/;
- every snippet in the guide equals the marked region of its source file, every marked
  region is shown, and every Python/YAML/TOML block of the guide is such a snippet;
- the example plugin (docs/examples/echo_plugin) runs end to end as an installed plugin,
  and its own tests pass.

A region in a source file is marked with comment lines ``# snippet: NAME`` and
``# end snippet: NAME``; the guide includes it as::

    <!-- snippet: docs/examples/echo_plugin/echo.py#NAME -->
    ```python
    ...
    ```
    <!-- /snippet -->

After changing an example, ``python tests/test_docs.py`` rewrites the guide's snippets.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from connector_runtime.plugins import build_registry
from connector_runtime.testing import RecordingTarget, RunningRuntime, post

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "writing-plugins.md"
HOOKSPECS = ROOT / "connector_runtime" / "hookspecs.py"
EXAMPLE = ROOT / "docs" / "examples" / "echo_plugin"

_INCLUDE = re.compile(
    r"<!-- snippet: (?P<path>[^#\s]+)#(?P<name>[\w-]+) -->\n"
    r"```(?P<lang>\w*)\n(?P<body>.*?)```\n<!-- /snippet -->",
    re.DOTALL,
)
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.DOTALL | re.MULTILINE)
_MARKER = re.compile(r"^\s*# (end )?snippet: ([\w-]+)\s*$")
_CHECKED_LANGUAGES = {"python", "yaml", "toml"}


@dataclass(frozen=True)
class Include:
    path: str
    name: str
    lang: str
    body: str


def includes(text: str) -> list[Include]:
    return [Include(m["path"], m["name"], m["lang"], m["body"]) for m in _INCLUDE.finditer(text)]


def regions(path: Path) -> dict[str, str]:
    """Every marked region of a file: lines between its markers, other markers left out,
    blank lines at either end dropped, dedented."""
    open_regions: dict[str, list[str]] = {}
    found: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        marker = _MARKER.match(line)
        if marker is None:
            for lines in open_regions.values():
                lines.append(line)
            continue
        end, name = marker.groups()
        if end:
            assert name in open_regions, f"{path}:{number}: end of region {name!r} never opened"
            body = "\n".join(open_regions.pop(name)).strip("\n")
            found[name] = textwrap.dedent(body) + "\n"
        else:
            assert name not in open_regions and name not in found, (
                f"{path}:{number}: region {name!r} opened twice"
            )
            open_regions[name] = []
    assert not open_regions, f"{path}: regions never closed: {sorted(open_regions)}"
    return found


def _names_hookspec(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "hookspec"


def hook_signatures() -> dict[str, str]:
    """``name -> "name(args) -> return"`` for every hookspec, as written in hookspecs.py."""
    tree = ast.parse(HOOKSPECS.read_text(encoding="utf-8"))
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and any(
            _names_hookspec(d.func if isinstance(d, ast.Call) else d) for d in node.decorator_list
        ):
            returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
            found[node.name] = f"{node.name}({ast.unparse(node.args)}){returns}"
    return found


def sync_guide() -> bool:
    """Rewrite the guide's snippets from their sources; True when something changed."""
    text = GUIDE.read_text(encoding="utf-8")

    def replace(match: re.Match[str]) -> str:
        body = regions(ROOT / match["path"])[match["name"]]
        return (
            f"<!-- snippet: {match['path']}#{match['name']} -->\n"
            f"```{match['lang']}\n{body}```\n<!-- /snippet -->"
        )

    new = _INCLUDE.sub(replace, text)
    if new != text:
        GUIDE.write_text(new, encoding="utf-8")
    return new != text


# -- the contract is documented and tested ------------------------------------------------


def test_hookspecs_are_found():
    from connector_runtime import hookspecs

    declared = {
        name
        for name in dir(hookspecs)
        if hasattr(getattr(hookspecs, name), f"{hookspecs.PROJECT}_spec")
    }
    assert declared == set(hook_signatures()), "hook_signatures() misses a hookspec"
    assert declared, "no hookspecs found"


@pytest.mark.parametrize("hook", sorted(hook_signatures()))
def test_every_hook_has_a_heading_with_its_exact_signature(hook):
    signature = hook_signatures()[hook]
    headings = [
        line[4:].strip().strip("`").strip()
        for line in GUIDE.read_text(encoding="utf-8").splitlines()
        if line.startswith("### ")
    ]
    assert signature in headings, f"docs/writing-plugins.md needs the heading ### `{signature}`"


@pytest.mark.parametrize("hook", sorted(hook_signatures()))
def test_every_hook_has_a_test_named_after_it(hook):
    pattern = re.compile(rf"^\s*(async\s+)?def test_{hook}\b", re.MULTILINE)
    tests = [p for p in (ROOT / "tests").rglob("*.py") if pattern.search(p.read_text("utf-8"))]
    assert tests, f"no test named test_{hook} under tests/"


# -- the snippets are the code that runs ----------------------------------------------------


def test_the_guide_has_snippets():
    found = includes(GUIDE.read_text(encoding="utf-8"))
    assert len(found) >= 5
    assert {i.path for i in found} >= {"docs/examples/echo_plugin/echo.py"}


@pytest.mark.parametrize(
    "include",
    includes(GUIDE.read_text(encoding="utf-8")),
    ids=lambda i: f"{i.path}#{i.name}",
)
def test_snippet_equals_its_source(include):
    source = ROOT / include.path
    assert source.is_file(), f"snippet source {include.path} does not exist"
    marked = regions(source)
    assert include.name in marked, f"{include.path} has no region {include.name!r}"
    assert include.body == marked[include.name], (
        f"snippet {include.path}#{include.name} differs from its source;"
        " run `python tests/test_docs.py` to rewrite the guide's snippets"
    )


def test_every_marked_region_is_shown():
    shown = {(i.path, i.name) for i in includes(GUIDE.read_text(encoding="utf-8"))}
    for source in sorted(EXAMPLE.rglob("*")):
        if source.is_file() and source.suffix in {".py", ".toml", ".yaml"}:
            rel = source.relative_to(ROOT).as_posix()
            for name in regions(source):
                assert (rel, name) in shown, f"region {rel}#{name} is not in the guide"


def test_every_code_block_of_a_checked_language_is_a_snippet():
    text = GUIDE.read_text(encoding="utf-8")
    snippet_bodies = {i.body for i in includes(text)}
    for match in _FENCE.finditer(text):
        lang, body = match.groups()
        if lang in _CHECKED_LANGUAGES:
            assert body in snippet_bodies, f"a ```{lang} block is not a tested snippet:\n{body}"


def test_regions_are_read_exactly(tmp_path):
    source = tmp_path / "x.py"
    source.write_text(
        "a = 1\n# snippet: outer\n\nclass A:\n    # snippet: inner\n    x = 1\n"
        "    # end snippet: inner\n    y = 2\n\n# end snippet: outer\n"
    )
    assert regions(source) == {
        "outer": "class A:\n    x = 1\n    y = 2\n",
        "inner": "x = 1\n",
    }
    source.write_text("# snippet: open\nx = 1\n")
    with pytest.raises(AssertionError, match="never closed"):
        regions(source)


# -- the example plugin runs -----------------------------------------------------------------

TOKEN = "Bearer example-token-0123"


def wait_for_lines(path: Path, count: int, timeout: float = 20) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            lines = path.read_text(encoding="utf-8").splitlines()
            if len(lines) >= count:
                return [json.loads(line) for line in lines]
        time.sleep(0.02)
    raise AssertionError(f"{path} did not get {count} lines")


@pytest.mark.slow
def test_example_plugin_end_to_end_as_an_installed_plugin(
    throwaway_plugin: Callable[[str, str], Path],
    runtime_factory: Callable[..., RunningRuntime],
    recording_target: RecordingTarget,
    tmp_path: Path,
):
    throwaway_plugin("echo", (EXAMPLE / "echo.py").read_text(encoding="utf-8"))
    registry = build_registry()
    assert not [b for b in registry.broken if b.name == "echo"], registry.broken
    assert "echo" in registry.source_types and "echo-file" in registry.target_types

    # the example manifest, as written, served as `connector-runtime run` would serve it
    out = tmp_path / "events.jsonl"
    documents = list(yaml.safe_load_all((EXAMPLE / "manifest.yaml").read_text()))
    runtime = runtime_factory(documents, env={"ECHO_TOKEN": TOKEN, "ECHO_OUT": str(out)})
    url = runtime.connector_url("echo")
    headers = {"Authorization": TOKEN, "Content-Type": "text/plain"}
    body = "order 1 shipped\nnothing to see\norder 2 paid\n"
    answer = post(url, body, headers)
    assert answer.status == 200, answer.body
    assert answer.json() == {"accepted": 2, "filtered": 1, "duplicates": 0}
    assert post(url, body, headers).json() == {"accepted": 0, "filtered": 1, "duplicates": 2}
    assert post(url, body, {"Content-Type": "text/plain"}).status == 401
    assert post(url, "{}", {**headers, "Content-Type": "application/json"}).status == 415
    events = wait_for_lines(out, 2)
    assert [e["data"] for e in events] == ["order 1 shipped", "order 2 paid"]
    assert {e["type"] for e in events} == {"com.example.echo.line"}
    assert events[0]["source"] == "urn:connector-runtime:connector:echo"

    # the CLI sees it too (the throwaway plugin is on PYTHONPATH for subprocesses)
    cli = [sys.executable, "-m", "connector_runtime.cli"]
    listed = subprocess.run([*cli, "plugins"], capture_output=True, text=True, timeout=60)
    assert "echo 0.0.1: source echo, target echo-file" in listed.stdout, listed
    checked = subprocess.run(
        [*cli, "validate", str(EXAMPLE / "manifest.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ECHO_TOKEN": TOKEN},
    )
    assert checked.returncode == 0, checked.stderr
    assert TOKEN not in checked.stdout + checked.stderr


@pytest.mark.slow
def test_example_plugin_tests_pass():
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE)],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " failed" not in run.stdout


if __name__ == "__main__":
    print("rewrote docs/writing-plugins.md" if sync_guide() else "snippets are up to date")


# -- the public façade (issue 14) -------------------------------------------------------

_INTERNAL_IMPORT = re.compile(
    r"(?:from|import)\s+connector_runtime\.(?!testing\b|conformance\b)([a-z_][\w.]*)"
    r"|connector_runtime\.(?!testing\b|conformance\b)([a-z_]+)\.[A-Za-z_]"
)


def _public_only_files() -> list[Path]:
    files = [
        *ROOT.glob("plugins/*/connector_runtime_*/**/*.py"),
        *ROOT.glob("plugins/*/tests/**/*.py"),
        *ROOT.glob("connector_runtime/**/scaffold_template/**/*.tmpl"),
        *ROOT.glob("docs/**/*.py"),
        *ROOT.glob("docs/**/*.md"),
    ]
    assert len(files) > 30
    return sorted(files)


def test_plugins_templates_and_docs_use_only_the_public_facade():
    """Plugins, the scaffold's templates and the docs import names exported by
    ``connector_runtime`` (plus ``.testing`` and ``.conformance``), never an internal
    module, so internal modules can move without breaking a plugin."""
    found = []
    for path in _public_only_files():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = _INTERNAL_IMPORT.search(line)
            if match:
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []


def test_every_name_the_facade_exports_exists():
    import connector_runtime

    missing = [n for n in connector_runtime.__all__ if not hasattr(connector_runtime, n)]
    assert missing == []
