"""The runtime and its plugins install like packages.

Static checks read each distribution's ``pyproject.toml`` and its code: one version, every
import declared, plugins bound to a range of runtime versions. The slow test installs the
three wheels ``make dist`` builds (not editable) into a fresh virtual environment, serves a
manifest with that environment's ``connector-runtime``, posts an Auth0 delivery and reads
the CloudEvent from a ``file`` target.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from connector_runtime import __version__
from connector_runtime.testing import free_port
from tests.deploy.dist_support import ROOT, clean_env, delivery, post

PROJECTS = {
    "connector-runtime": (ROOT, ROOT / "connector_runtime"),
    "connector-runtime-auth0": (
        ROOT / "plugins/auth0",
        ROOT / "plugins/auth0/connector_runtime_auth0",
    ),
    "connector-runtime-webhook": (
        ROOT / "plugins/webhook",
        ROOT / "plugins/webhook/connector_runtime_webhook",
    ),
}
PLUGINS = ("connector-runtime-auth0", "connector-runtime-webhook")
PYTEST_ONLY = {"testing.py", "conformance.py", "conformance_pull.py"}
"""Runtime modules only pytest loads (the kit's pytest11 entry point): they may import pytest."""


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def project_table(name: str) -> dict:
    folder, _ = PROJECTS[name]
    return tomllib.loads((folder / "pyproject.toml").read_text())["project"]


def imported_top_level(package: Path, skip: set[str] = frozenset()) -> dict[str, set[str]]:
    """Top-level names of every absolute import in a package, with the files importing them."""
    found: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        if path.name in skip:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "__future__":
                    found.setdefault(top, set()).add(path.name)
    return found


# -- one version ------------------------------------------------------------------------------


def test_the_version_is_written_once():
    project = project_table("connector-runtime")
    assert "version" not in project and "version" in project["dynamic"]
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["dynamic"]["version"] == {"attr": "connector_runtime._version.__version__"}
    assert importlib.metadata.version("connector-runtime") == __version__
    written = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "connector_runtime").rglob("*.py")
        if re.search(r"""["']0\.1(\.0)?["']""", p.read_text())
    ]
    assert written == ["connector_runtime/_version.py"]


def test_the_user_agent_carries_the_version():
    from connector_runtime.targets.http.target import USER_AGENT

    assert f"connector-runtime/{__version__}" == USER_AGENT


# -- declared dependencies --------------------------------------------------------------------


@pytest.mark.parametrize("dist", list(PROJECTS))
def test_every_distribution_declares_what_it_imports(dist):
    _, package = PROJECTS[dist]
    declared = {normalize(Requirement(r).name) for r in project_table(dist)["dependencies"]}
    owners = importlib.metadata.packages_distributions()
    skip = PYTEST_ONLY if dist == "connector-runtime" else set()
    missing = {}
    for top, files in imported_top_level(package, skip).items():
        if top == package.name:
            continue
        providers = {normalize(d) for d in owners.get(top, [top])}
        if not providers & declared:
            missing[top] = sorted(files)
    assert not missing, f"{dist} imports without declaring: {missing}"


@pytest.mark.parametrize("dist", PLUGINS)
def test_plugins_depend_on_a_range_of_runtime_versions(dist):
    [runtime] = [
        Requirement(r)
        for r in project_table(dist)["dependencies"]
        if normalize(Requirement(r).name) == "connector-runtime"
    ]
    current = Version(__version__)
    assert runtime.specifier.contains(current)
    assert not runtime.specifier.contains(Version(f"{current.major}.{current.minor + 1}.0"))
    assert not runtime.specifier.contains(Version("0.0.1"))


# -- installed from the wheels ----------------------------------------------------------------


def _manifest(path: Path, out: Path, token: str) -> Path:
    docs = [
        {
            "apiVersion": "connector-runtime/v1",
            "kind": "Connector",
            "metadata": {"name": "a0"},
            "spec": {
                "source": {"type": "auth0", "config": {"token": "${AUTH0_STREAM_TOKEN}"}},
                "target": {"type": "file", "config": {"path": str(out)}},
            },
        }
    ]
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


@pytest.mark.slow
@pytest.mark.timeout(600)  # make dist and a pip install from the index in the fixtures
def test_the_wheels_install_into_a_fresh_venv_and_serve(dist_wheels, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = clean_env()
    install = subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "install", "-q", *map(str, dist_wheels.values())],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    exe = venv / "bin" / "connector-runtime"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(exe), *args], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env
        )

    where = subprocess.run(
        [
            str(venv / "bin/python"),
            "-c",
            "import connector_runtime; print(connector_runtime.__file__)",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(venv), where  # the installed copy, not the checkout

    version = run("--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.splitlines() == [
        f"connector-runtime {__version__}",
        f"plugin auth0 {project_table('connector-runtime-auth0')['version']}"
        " (connector-runtime-auth0)",
        f"plugin webhook {project_table('connector-runtime-webhook')['version']}"
        " (connector-runtime-webhook)",
    ]
    plugins = json.loads(run("plugins", "--json").stdout)
    assert plugins["broken"] == []
    assert {p["name"]: p["distribution"] for p in plugins["plugins"]} == {
        "connector-runtime": "connector-runtime",
        "auth0": "connector-runtime-auth0",
        "webhook": "connector-runtime-webhook",
    }
    schema = run("schema", "auth0")  # package data (the config schema) came along
    assert schema.returncode == 0 and json.loads(schema.stdout)["type"] == "object"

    token = "Bearer wheel-test-token-0123456789abcdef"
    out = tmp_path / "events.jsonl"
    manifest = _manifest(tmp_path / "manifest.yaml", out, token)
    port = free_port()
    log = tmp_path / "runtime.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [str(exe), "run", str(manifest), "--port", str(port), "--data-dir", "data"],
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=tmp_path,
            env={**env, "AUTH0_STREAM_TOKEN": token},
        )
    try:
        deadline = time.monotonic() + 30
        while "listening on" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        status, answer = post(f"http://127.0.0.1:{port}/a0", delivery("90020250314"), token)
        assert status == 200 and json.loads(answer)["accepted"] == 1
        deadline = time.monotonic() + 20
        while not (out.exists() and out.read_text().endswith("\n")):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        [event] = [json.loads(line) for line in out.read_text().splitlines()]
        assert event["id"] == "90020250314"
        assert event["type"] == "com.auth0.log.s"
        assert event["specversion"] == "1.0"
        proc.terminate()
        assert proc.wait(40) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert (tmp_path / "data").is_dir()
    assert token not in log.read_text()
