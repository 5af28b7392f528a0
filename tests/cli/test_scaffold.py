"""``connector-runtime new-plugin``: what it writes, how it refuses, and that the result works.

The slow test installs a generated plugin into a fresh virtual environment and runs its own
``make test`` there. The environment gets its third-party dependencies from this one
through a ``.pth`` file that points at a folder of links to this environment's packages,
leaving out connector-runtime and its plugins, so it sees only the runtime and the plugin
the test installs; nothing is installed into the environment running the tests. Building
the two editable installs needs setuptools from the package index, as ``make test`` does.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml

from connector_runtime.cli import commands as cli
from connector_runtime.cli import scaffold

ROOT = Path(__file__).resolve().parents[2]
LONGEST = "a" + "-b2" * 13  # 40 characters, the most a name may have

EXPECTED_FILES = {
    ".gitignore",
    "Makefile",
    "README.md",
    "pyproject.toml",
    "manifests/example.yaml",
    "connector_runtime_acme_crm/__init__.py",
    "connector_runtime_acme_crm/config.schema.json",
    "connector_runtime_acme_crm/handler.py",
    "connector_runtime_acme_crm/parse.py",
    "connector_runtime_acme_crm/py.typed",
    "tests/test_conformance.py",
    "tests/test_http.py",
    "tests/test_manifest.py",
    "tests/test_parse.py",
}


def new_plugin(*argv: str) -> int:
    """Run the command through a parser built the way cli.py builds its own."""
    parser = argparse.ArgumentParser(prog="connector-runtime")
    scaffold.add_parser(parser.add_subparsers(dest="command", required=True))
    return scaffold.run(parser.parse_args(["new-plugin", *argv]))


def generate(tmp_path: Path, name: str = "acme-crm", *flags: str) -> Path:
    where = tmp_path / f"connector-runtime-{name}"
    assert new_plugin(name, "--dir", str(where), *flags) == 0
    return where


def files_under(directory: Path) -> set[str]:
    return {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}


# -- names and directories --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["acme", "acme-crm", "a1", "x2-y3-z4", LONGEST])
def test_valid_names(name):
    values = scaffold.variables(name)
    assert values["dist"] == f"connector-runtime-{name}"
    assert values["package"] == "connector_runtime_" + name.replace("-", "_")
    assert values["package"].isidentifier()


def test_derived_values():
    values = scaffold.variables("acme-crm2")
    assert values["class_name"] == "AcmeCrm2"
    assert values["env"] == "ACME_CRM2"


INVALID = ["", "Acme", "acme_crm", "-acme", "acme-", "acme--crm", "1acme", "ac me", "é"]


@pytest.mark.parametrize("name", [*INVALID, LONGEST + "x"])
def test_invalid_names_are_one_line_and_exit_1(name, tmp_path, capsys):
    assert new_plugin("--dir", str(tmp_path / "out"), "--", name) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"error: invalid plugin name {name!r}: use lower-case letters")
    assert not (tmp_path / "out").exists()


def test_writes_the_distribution_and_lists_it(tmp_path, capsys):
    where = generate(tmp_path)
    assert files_under(where) == EXPECTED_FILES
    out, err = capsys.readouterr()
    assert err == ""
    written = [
        line.removeprefix("wrote ") for line in out.splitlines() if line.startswith("wrote ")
    ]
    assert {Path(p).relative_to(where).as_posix() for p in written} == EXPECTED_FILES
    assert "make test RUNTIME=" in out


def test_default_directory_is_named_after_the_distribution(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert new_plugin("acme-crm") == 0
    assert files_under(tmp_path / "connector-runtime-acme-crm") == EXPECTED_FILES


def test_an_existing_directory_is_refused_unless_forced(tmp_path, capsys):
    where = tmp_path / "taken"
    where.mkdir()
    (where / "mine.txt").write_text("keep me")
    assert new_plugin("acme-crm", "--dir", str(where)) == 1
    _, err = capsys.readouterr()
    assert err == f"error: {where} already exists and is not empty (--force writes anyway)\n"
    assert files_under(where) == {"mine.txt"}

    assert new_plugin("acme-crm", "--dir", str(where), "--force") == 0
    assert files_under(where) == EXPECTED_FILES | {"mine.txt"}
    assert (where / "mine.txt").read_text() == "keep me"


def test_an_empty_directory_is_used(tmp_path):
    (tmp_path / "empty").mkdir()
    assert new_plugin("acme-crm", "--dir", str(tmp_path / "empty")) == 0
    assert files_under(tmp_path / "empty") == EXPECTED_FILES


def test_a_file_in_the_way_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert new_plugin("acme-crm", "--dir", str(tmp_path / "file"), "--force") == 1
    assert capsys.readouterr().err == f"error: {tmp_path / 'file'} exists and is not a directory\n"


def test_an_unwritable_place_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert new_plugin("acme-crm", "--dir", str(tmp_path / "file" / "below")) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write ") and err.count("\n") == 1
    assert "Traceback" not in err


def test_cli_wires_the_command(tmp_path, capsys):
    try:
        cli.build_parser().parse_args(["new-plugin", "acme-crm"])
    except SystemExit:
        pytest.skip("cli.py does not wire scaffold.add_parser/run yet")
    assert cli.main(["new-plugin", "acme-crm", "--dir", str(tmp_path / "p")]) == 0
    assert files_under(tmp_path / "p") == EXPECTED_FILES
    assert cli.main(["new-plugin", "Bad_Name"]) == 1


# -- what is written ---------------------------------------------------------------------------


def test_render_replaces_every_placeholder_and_refuses_unknown_ones():
    assert scaffold.render("{{name}} {{name}}/{{package}}", {"name": "n", "package": "p"}) == (
        "n n/p"
    )
    assert scaffold.render("${{{env}}_TOKEN}", {"env": "ACME"}) == "${ACME_TOKEN}"
    with pytest.raises(KeyError, match="nope"):
        scaffold.render("{{nope}}", {})


@pytest.mark.parametrize("kind", scaffold.KINDS)
def test_templates_use_known_placeholders_only(kind):
    known = set(scaffold.variables("acme"))
    for rel, template in scaffold.templates(kind):
        used = set(re.findall(r"\{\{([a-z_]+)\}\}", template.read_text(encoding="utf-8")))
        assert used <= known, f"{rel}: unknown placeholders {used - known}"


def test_generated_files_are_well_formed(tmp_path):
    where = generate(tmp_path)
    for path in where.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"\{\{\w+\}\}", text), f"{path}: a placeholder is left"
            if path.suffix == ".py":
                compile(text, str(path), "exec")

    project = tomllib.loads((where / "pyproject.toml").read_text())
    assert project["project"]["name"] == "connector-runtime-acme-crm"
    assert project["project"]["entry-points"]["connector_runtime"] == {
        "acme-crm": "connector_runtime_acme_crm"
    }
    major, minor = scaffold.__version__.split(".")[:2]
    assert project["project"]["dependencies"] == [
        f"connector-runtime>={scaffold.__version__},<{major}.{int(minor) + 1}"
    ]

    schema = json.loads((where / "connector_runtime_acme_crm/config.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["token"]["x-secret"] is True
    assert schema["properties"]["types"]["type"] == "array"

    [manifest] = yaml.safe_load_all((where / "manifests/example.yaml").read_text())
    assert manifest["spec"]["source"] == {
        "type": "acme-crm",
        "config": {"token": "${ACME_CRM_TOKEN}"},
    }

    makefile = (where / "Makefile").read_text()
    assert "RUNTIME ?=\n" in makefile  # no default: never a bare name for pip to look up
    assert "$(RUNTIME) -e '.[test]'" in makefile
    readme = (where / "README.md").read_text()
    assert "make test RUNTIME=/path/to/connector-runtime" in readme
    assert "Licensed under the Apache License, Version 2.0" in readme


def test_runtime_range_is_the_series():
    assert scaffold.runtime_range("0.1.0") == ">=0.1.0,<0.2"
    assert scaffold.runtime_range("1.4.2") == ">=1.4.2,<1.5"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize(
    "runtime", [None, "", "connector-runtime", "-e connector-runtime", "connector-runtime>=0.1"]
)
def test_make_refuses_a_runtime_that_is_not_on_disk(runtime, tmp_path):
    """pip is never asked for connector-runtime by name (dependency confusion)."""
    where = generate(tmp_path)
    venv = tmp_path / "venv"
    args = ["make", "test", f"VENV={venv}"] + ([] if runtime is None else [f"RUNTIME={runtime}"])
    run = subprocess.run(args, cwd=where, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stdout + run.stderr
    [ours] = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert ours.startswith(f"error: RUNTIME='{runtime or ''}' is not a connector-runtime")
    assert ours.endswith("make test RUNTIME=/path/to/connector-runtime")
    assert not venv.exists() and "pip" not in run.stdout


def tool(name: str) -> str:
    found = Path(sys.executable).parent / name
    return str(found) if found.exists() else name


@pytest.mark.parametrize("flags", [(), ("--pull",)], ids=["webhook", "pull"])
@pytest.mark.parametrize("name", ["acme-crm", LONGEST])
def test_generated_code_passes_ruff(name, flags, tmp_path):
    where = generate(tmp_path, name, *flags)
    for args in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        run = subprocess.run(
            [tool("ruff"), *args], cwd=where, capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.slow
@pytest.mark.parametrize("flags", [(), ("--pull",)], ids=["webhook", "pull"])
def test_generated_code_passes_mypy_strict(flags, tmp_path):
    where = generate(tmp_path, LONGEST, *flags)
    run = subprocess.run(
        [tool("mypy"), "--cache-dir", str(tmp_path / "mypy-cache")],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=120,
        # an editable install hides the runtime from mypy: point it at the sources
        env={**os.environ, "MYPYPATH": str(ROOT)},
    )
    assert run.returncode == 0, run.stdout + run.stderr


# -- the generated plugin installs, is found, and its tests pass --------------------------------


def venv_with_our_dependencies(where: Path) -> Path:
    """A new venv that sees this environment's packages except connector-runtime's own."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    ours = Path(sysconfig.get_paths()["purelib"])
    links = where / "borrowed"
    links.mkdir()
    for entry in ours.iterdir():
        name = entry.name.lower()
        if (
            name.startswith(("connector_runtime", "connector-runtime", "__editable__"))
            or name.endswith(".pth")
            or name == "__pycache__"
        ):
            continue
        (links / entry.name).symlink_to(entry)
    python = where / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "borrowed.pth").write_text(f"{links}\n")
    return python


def make_test(where: Path, venv: Path) -> dict[str, str]:
    """``make test`` of the plugin in ``where``, in a new venv at ``venv``: its tests all
    pass, the conformance suite among them. Returns the environment to run the venv in."""
    venv_with_our_dependencies(venv)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    # the generated Makefile installs the runtime from RUNTIME and the plugin, then tests
    run = subprocess.run(
        ["make", "test", f"VENV={venv}", f"RUNTIME=-e {ROOT}"],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    report = run.stdout[-6000:] + run.stderr[-3000:]
    assert run.returncode == 0, report
    assert re.search(r"\b\d+ passed\b", run.stdout), report
    assert " failed" not in run.stdout and " skipped" not in run.stdout, report
    assert "test_conformance.py" in run.stdout, report
    return env


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_generated_plugin_installs_and_its_tests_pass(tmp_path):
    where = generate(tmp_path)
    venv = tmp_path / "venv"
    env = make_test(where, venv)

    plugins = subprocess.run(
        [str(venv / "bin" / "connector-runtime"), "plugins"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert plugins.returncode == 0, plugins.stderr
    assert "acme-crm 0.1.0: source acme-crm" in plugins.stdout
    assert "BROKEN" not in plugins.stdout

    token = "Bearer scaffold-test-0123"
    validate = subprocess.run(
        [str(venv / "bin" / "connector-runtime"), "validate", "manifests/example.yaml"],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "ACME_CRM_TOKEN": token},
    )
    assert validate.returncode == 0, validate.stderr
    assert "ok: manifests/example.yaml: connector acme-crm: acme-crm -> stdout" in validate.stdout
    assert token not in validate.stdout + validate.stderr
