"""Fixtures for the auth0 source's tests; the runtime's kit (``connector_runtime.testing``)
is loaded as a pytest plugin, so ``runtime_factory`` and ``recording_target`` come from it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from connector_runtime.testing import RecordingTarget, RunningRuntime, connector_doc


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
