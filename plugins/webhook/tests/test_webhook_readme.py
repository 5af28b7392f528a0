"""The README's examples work: every config snippet validates, every validate command runs."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from connector_runtime import build_registry, load_manifest
from connector_runtime.testing import connector_doc, write_manifest

PLUGIN = Path(__file__).resolve().parent.parent
ROOT = PLUGIN.parent.parent
README = (PLUGIN / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, re.DOTALL)
CONFIGS = [text for lang, text in BLOCKS if lang == "yaml"]
COMMANDS = [
    line
    for lang, text in BLOCKS
    if lang == "sh"
    for line in text.splitlines()
    if "connector-runtime validate" in line
]


def test_the_readme_has_examples():
    assert len(CONFIGS) >= 5
    assert len(COMMANDS) == 2


@pytest.mark.parametrize("snippet", CONFIGS, ids=[f"yaml-{i}" for i in range(len(CONFIGS))])
def test_config_snippets_validate(snippet, tmp_path):
    config = yaml.safe_load(snippet)
    doc = connector_doc("readme", "webhook", config, {"type": "stdout"})
    manifest = load_manifest([write_manifest([doc], tmp_path)], build_registry(), env={})
    assert manifest.connectors[0].source.type == "webhook"


@pytest.mark.parametrize("command", COMMANDS)
def test_validate_commands_run(command):
    argv = shlex.split(command)
    argv[0] = str(Path(sys.executable).parent / Path(argv[0]).name)
    done = subprocess.run(argv, check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok: ")
