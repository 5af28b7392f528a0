"""Fixtures for the webhook plugin's tests (the kit's fixtures come from its pytest11 entry)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from connector_runtime.testing import RecordingTarget, RunningRuntime, connector_doc

CONNECTOR = "hooks"


@pytest.fixture
def webhook_runtime(
    runtime_factory: Callable[..., RunningRuntime], recording_target: RecordingTarget
) -> Callable[..., RunningRuntime]:
    """``webhook_runtime(config, ack="delivered")``: one ``webhook`` connector named ``hooks``
    posting to the recording target in binary mode."""

    def start(config: dict[str, Any] | None = None, ack: str = "delivered") -> RunningRuntime:
        doc = connector_doc(
            CONNECTOR,
            "webhook",
            config or {},
            {"type": "http", "config": {"url": recording_target.url, "mode": "binary"}},
            delivery={"ack": ack},
        )
        return runtime_factory([doc])

    return start
