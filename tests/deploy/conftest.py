"""Fixtures of the packaging and deployment tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.deploy.dist_support import build_dists


@pytest.fixture(scope="session")
def dist_wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The wheels of the runtime and both plugins, built once per session by ``make dist``."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed (apt-get install make)")
    return build_dists(tmp_path_factory.mktemp("dist"))
