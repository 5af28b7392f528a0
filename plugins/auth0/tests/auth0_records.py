"""Hand-written Auth0 log records for the tests (made-up tenants, people and addresses).

Each record is kept as the exact JSON text of its ``data`` object, so tests can check that
the parser hands that text through byte for byte.
"""

from __future__ import annotations

import json
from typing import Any

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


def as_lines(batch: list[tuple[str, str, bytes]], end: bytes = b"\n") -> bytes:
    return b"".join(element(log_id, data) + end for log_id, _, data in batch)


def as_array(batch: list[tuple[str, str, bytes]]) -> bytes:
    return b"[" + b",".join(element(log_id, data) for log_id, _, data in batch) + b"]"


def as_object(batch: list[tuple[str, str, bytes]]) -> bytes:
    return b'{"logs":' + as_array(batch) + b"}"
