"""Auth0 log records of our own making, and deliveries in Auth0's three Content Formats,
for the tests of this plugin, of the runtime, and of anything else that needs Auth0 input.

Every tenant, person, address and id here is made up. Two ways to build records:

- as Python objects: :func:`record` (one delivery element as a dict) and :func:`batch`
  (``n`` of them), made into bodies by :func:`jsonl`, :func:`array` and
  :func:`logs_object`;
- as exact JSON text: :func:`data_text` (a record's ``data`` object), :func:`element` and
  :func:`sample_batch` (a realistic mix of codes), made into bodies by :func:`as_lines`,
  :func:`as_array` and :func:`as_object`; for checking that ``data`` is handed through byte
  for byte.

Nothing here needs pytest or a running runtime. :class:`FakeTenant`, a fake Auth0 tenant
serving ``/oauth/token`` and ``/api/v2/logs`` on a loopback port,, lives beside
this module in :mod:`connector_runtime_auth0.fake_tenant` (it needs the runtime's test kit).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "DROP",
    "TENANT",
    "array",
    "as_array",
    "as_lines",
    "as_object",
    "batch",
    "data_text",
    "element",
    "jsonl",
    "logs_object",
    "record",
    "sample_batch",
]

# -- records as Python objects -----------------------------------------------------------


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


def batch(n: int, prefix: str = "9002025", code: str = "s") -> list[dict[str, Any]]:
    """``n`` records of type ``code`` with the log ids ``<prefix>000000``, ``<prefix>000001``..."""
    return [record(f"{prefix}{i:06d}", code=code) for i in range(n)]


def jsonl(records: list[dict[str, Any]], newline: str = "\n", final: bool = True) -> bytes:
    """A JSON Lines body (Auth0's ``JSON Lines`` Content Format)."""
    body = newline.join(json.dumps(r, separators=(",", ":")) for r in records)
    return (body + (newline if final else "")).encode()


def array(records: list[dict[str, Any]]) -> bytes:
    """A JSON Array body."""
    return json.dumps(records).encode()


def logs_object(records: list[dict[str, Any]]) -> bytes:
    """A JSON Object body: ``{"logs": [...]}``."""
    return json.dumps({"logs": records}).encode()


# -- records as exact JSON text ----------------------------------------------------------

TENANT = "https://acme-test.eu.auth0.com/"


def data_text(code: str, log_id: str, **fields: Any) -> bytes:
    """The compact JSON text of a plausible ``data`` object of type ``code``."""
    data: dict[str, Any] = {
        "date": "2024-05-14T09:31:07.412Z",
        "type": code,
        "description": "",
        "connection": "Username-Password-Authentication",
        "connection_id": "con_Xq3Lr8PzT1vYw2Ab",
        "client_id": "k2Vd8Qm1Rz7Ue4Tn0Pa9Ls6Hj3Bc5Wx",
        "client_name": "Acme Portal",
        "ip": "203.0.113.24",
        "user_agent": "Firefox 125.0.0 / Linux 0.0.0",
        "details": {"prompts": [], "initiatedAt": 1715679067001, "completedAt": 1715679067398},
        "hostname": "acme-test.eu.auth0.com",
        "user_id": "auth0|6643a2c1f0e9d87b5c4a3210",
        "user_name": "rowan.bell@example.com",
        "strategy": "auth0",
        "strategy_type": "database",
        "log_id": log_id,
        "tenant_name": "acme-test",
    }
    data.update(fields)
    for key in [k for k, v in data.items() if v is _DROP]:
        del data[key]
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


_DROP = object()
DROP: Any = _DROP
"""Pass as a field's value to :func:`data_text` to leave the field out."""


def element(log_id: str | None, data: bytes) -> bytes:
    """One delivery element: ``{"log_id": …, "data": …}`` (no ``log_id`` when None)."""
    head = b"" if log_id is None else b'{"log_id":' + json.dumps(log_id).encode() + b","
    return (head or b"{") + b'"data":' + data + b"}"


def sample_batch() -> list[tuple[str, str, bytes]]:
    """(log id, code, data text) for a small realistic batch of mixed outcomes."""
    ids = [f"900202405140931074120000000000000000000000000000000{i:05d}" for i in range(6)]
    return [
        (ids[0], "s", data_text("s", ids[0], description="Successful login")),
        (
            ids[1],
            "fp",
            data_text(
                "fp",
                ids[1],
                description="Wrong email or password.",
                details={"error": {"message": "Wrong email or password."}},
            ),
        ),
        (
            ids[2],
            "f",
            data_text(
                "f",
                ids[2],
                description="Callback URL mismatch. https://portal.example.com/cb is not allowed",
                user_id=DROP,
                user_name=DROP,
                scope=["openid", "profile"],
            ),
        ),
        (
            ids[3],
            "sapi",
            data_text(
                "sapi",
                ids[3],
                description="Update a log stream",
                details={
                    "request": {
                        "method": "patch",
                        "path": "/api/v2/log-streams/lst_0000000000012345",
                        "body": {"sink": {"httpContentFormat": "JSONLINES"}},
                    },
                    "response": {"statusCode": 200, "body": {"status": "active"}},
                },
            ),
        ),
        (
            ids[4],
            "seacft",
            data_text("seacft", ids[4], description="Authorization Code for Access Token"),
        ),
        (ids[5], "slo", data_text("slo", ids[5], description="User successfully logged out")),
    ]


def as_lines(elements: list[tuple[str, str, bytes]], end: bytes = b"\n") -> bytes:
    """A JSON Lines body of ``elements`` (as :func:`sample_batch` returns them)."""
    return b"".join(element(log_id, data) + end for log_id, _, data in elements)


def as_array(elements: list[tuple[str, str, bytes]]) -> bytes:
    """A JSON Array body of ``elements``."""
    return b"[" + b",".join(element(log_id, data) for log_id, _, data in elements) + b"]"


def as_object(elements: list[tuple[str, str, bytes]]) -> bytes:
    """A JSON Object body of ``elements``: ``{"logs": [...]}``."""
    return b'{"logs":' + as_array(elements) + b"}"
