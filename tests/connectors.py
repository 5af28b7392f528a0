"""Connector documents shared by tests in several folders."""

from __future__ import annotations

from typing import Any

from connector_runtime.testing import RecordingTarget, connector_doc


def doc(
    target: RecordingTarget, ack: str = "durable", mode: str = "batch", **delivery: Any
) -> dict[str, Any]:
    """One auth0 connector ``a0`` (no token) into ``target`` over ``http``, with a 2 s timeout
    and fast retries (50 ms to 200 ms); ``delivery`` adds to its ``spec.delivery``."""
    return connector_doc(
        "a0",
        "auth0",
        {},
        {"type": "http", "config": {"url": target.url, "mode": mode, "timeout": 2}},
        delivery={
            "ack": ack,
            "retry": {"initialBackoff": "50ms", "maxBackoff": "200ms"},
            **delivery,
        },
    )
