"""Auth0-style log records of our own making, and deliveries in Auth0's three formats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[2] / "shared"
SAMPLES = SHARED / "auth0" / "samples"


def record(
    log_id: str,
    code: str = "s",
    user_id: str | None = "auth0|65a1f0c2d3e4f5a6b7c8d9e0",
    date: str = "2025-03-14T09:26:53.589Z",
    **extra: Any,
) -> dict[str, Any]:
    """One delivery element: ``{"log_id": ..., "data": {...}}``."""
    data: dict[str, Any] = {
        "date": date,
        "type": code,
        "description": "Successful login" if code == "s" else "",
        "connection": "Username-Password-Authentication",
        "connection_id": "con_Q2xmYWJjZGVmZ2hp",
        "client_id": "Zk3bP0qLw8RtY6uV2xN4mC7aS1dE9fGh",
        "client_name": "Storefront",
        "ip": "198.51.100.23",
        "user_agent": "Firefox 131.0.0 / Linux 0.0.0",
        "hostname": "example-tenant.eu.auth0.com",
        "strategy": "auth0",
        "strategy_type": "database",
        "log_id": log_id,
    }
    if user_id is not None:
        data["user_id"] = user_id
        data["user_name"] = "ada@example.org"
    data.update(extra)
    return {"log_id": log_id, "data": data}


def jsonl(records: list[dict[str, Any]], newline: str = "\n", final: bool = True) -> bytes:
    body = newline.join(json.dumps(r, separators=(",", ":")) for r in records)
    return (body + (newline if final else "")).encode()


def array(records: list[dict[str, Any]]) -> bytes:
    return json.dumps(records).encode()


def logs_object(records: list[dict[str, Any]]) -> bytes:
    return json.dumps({"logs": records}).encode()


def batch(n: int, prefix: str = "9002025", code: str = "s") -> list[dict[str, Any]]:
    return [record(f"{prefix}{i:06d}", code=code) for i in range(n)]
