"""The README's runnable command blocks run, and its claims about files hold."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.procs import CLI

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _checked_commands() -> list[str]:
    block = README.split("<!-- commands: run in tests/test_readme.py -->", 1)[1]
    body = block.split("```sh", 1)[1].split("```", 1)[0]
    return [line.strip() for line in body.splitlines() if line.strip()]


def _manifest_variables() -> set[str]:
    """Every environment variable an example manifest refers to."""
    found: set[str] = set()
    for path in (ROOT / "manifests").glob("*.yaml"):
        found |= set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", path.read_text()))
    return found


@pytest.mark.parametrize("line", _checked_commands())
def test_readme_command_runs(line: str):
    """Each line runs as written: in an environment without the variables the example
    manifests read, plus the ``NAME=value`` assignments the line starts with."""
    args = shlex.split(line)
    assigned = {}
    while args and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", args[0], re.S):
        name, _, value = args.pop(0).partition("=")
        assigned[name] = value
    assert args[0] == "connector-runtime"
    env = {k: v for k, v in os.environ.items() if k not in _manifest_variables()}
    out = subprocess.run(
        [*CLI, *args[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, **assigned},
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr


def test_first_section_has_exactly_the_two_commands():
    first = README.split("## Run it, test it", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first.splitlines() if line.strip()]
    assert commands == ["make run", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run: ", makefile, re.M) and re.search(r"^test: ", makefile, re.M)
    assert "make test" in (ROOT / ".ci/run").read_text()


def test_package_map_paths_exist():
    for path in re.findall(r"^\| `([^`]+)`", README, re.M):
        for part in path.split(", "):
            candidate = ROOT / part.strip("`")
            if "/" in part or part.endswith((".py", ".json")):
                assert (
                    candidate.exists() or (ROOT / "connector_runtime" / part.strip("`")).exists()
                ), part
