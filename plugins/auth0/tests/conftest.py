"""Fixtures for the auth0 source's tests; the runtime's kit (``connector_runtime.testing``)
is loaded as a pytest plugin, so ``runtime_factory`` and ``recording_target`` come from it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from connector_runtime.testing import RecordingTarget, RunningRuntime, connector_doc
from tests.dist_support import build_dists


@pytest.fixture
def auth0_runtime(
    runtime_factory: Callable[..., RunningRuntime], recording_target: RecordingTarget
) -> Callable[..., RunningRuntime]:
    """Start a runtime with one auth0 connector named ``a0`` posting to the recording target."""

    def start(
        config: dict[str, Any] | None = None,
        mode: str = "binary",
        ack: str = "delivered",
        **kwargs: Any,
    ) -> RunningRuntime:
        doc = connector_doc(
            "a0",
            "auth0",
            config or {},
            {"type": "http", "config": {"url": recording_target.url, "mode": mode}},
            delivery={"ack": ack},
        )
        return runtime_factory([doc], **kwargs)

    return start


@pytest.fixture(scope="session")
def dist_wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The wheels of the runtime and both plugins, built once per session by ``make dist``."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed (apt-get install make)")
    return build_dists(tmp_path_factory.mktemp("dist"))
