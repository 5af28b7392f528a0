"""The README's runnable command blocks run, and its claims about files hold."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.procs import cli

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _checked_commands() -> list[str]:
    block = README.split("<!-- commands: run in tests/test_readme.py -->", 1)[1]
    body = block.split("```sh", 1)[1].split("```", 1)[0]
    return [line.strip() for line in body.splitlines() if line.strip()]


@pytest.mark.parametrize("line", _checked_commands())
def test_readme_command_runs(line: str, monkeypatch):
    args = shlex.split(line)
    assert args[0] == "connector-runtime"
    out = cli(*args[1:], cwd=ROOT)
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
