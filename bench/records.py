"""Auth0-style log records for the benchmark: made-up but shaped like the real thing.

Each record is one JSON Lines element ``{"log_id": …, "data": {…}}`` of about 1 KB, with
the fields an Auth0 log event carries (``date``, ``type``, ``client_id``, ``client_name``,
``ip``, ``user_agent``, ``details``, ``user_id``, ``user_name``, ``hostname``, ``log_id``, …).
Every value is invented here: tenants, clients, users, addresses.

Records are rendered once into *templates*: the JSON text split around the two places the
log id goes. Building a body then only joins bytes, so the generator stays cheap next to the
system it measures, and every record of a run gets its own log id (a per-run prefix plus a
counter, so a rerun against the same data dir is not a redelivery).

The bench manifest (``bench/manifest.yaml``) keeps the categories in :data:`KEPT_EVENTS`;
records of :data:`FILTERED_TYPE` are dropped by that filter.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass

import orjson

KEPT_TYPES: tuple[tuple[str, int], ...] = (
    # (event type code, weight): mostly logins and token exchanges, as on a busy tenant.
    ("s", 30),
    ("seacft", 25),
    ("ssa", 10),
    ("f", 4),
    ("fp", 6),
    ("fu", 3),
    ("sapi", 8),
    ("fapi", 2),
    ("slo", 6),
    ("ss", 3),
    ("scp", 2),
    ("sv", 1),
)
KEPT_EVENTS: tuple[str, ...] = (
    "auth.login.success",
    "auth.login.fail",
    "auth.token_exchange.success",
    "auth.silent_auth.success",
    "management.success",
    "management.fail",
    "auth.logout.success",
    "auth.signup.success",
    "user.success",
)
"""The ``events`` list of the bench manifest's auth0 source."""
FILTERED_TYPE = "api_limit"
"""A code whose category (``system.notification``) the bench manifest does not keep."""

_PLACEHOLDER = "@@LOG_ID@@"
_HOSTNAME = "bench-tenant.eu.auth0.example"
_CLIENTS = (
    ("k3Vd9qWm2ZsXc8PbN4tYh7LfR1aGe5Uj", "Storefront Web"),
    ("Q8wErT5yU1iO9pAs3dF7gH2jK6lZ4xCv", "Storefront iOS"),
    ("mN7bV4cX1zL8kJ5hG2fD9sA6pO3iU0yT", "Partner Portal"),
    ("aS2dF5gH8jK1lQ4wE7rT0yU3iO6pZ9xC", "Internal Admin"),
)
_CONNECTIONS = (
    ("Username-Password-Authentication", "con_Xa81LmQp2RtZ5vBn", "auth0", "database"),
    ("google-oauth2", "con_Pq72NcVb4MxZ1aLs", "google-oauth2", "social"),
    ("corp-saml", "con_Hd95KtRw3YeU6iOp", "samlp", "enterprise"),
)
_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "okhttp/4.12.0",
)
_DESCRIPTIONS = {
    "f": "Wrong email or password.",
    "fp": "Wrong email or password.",
    "fu": "Wrong email or password.",
    "fapi": "Insufficient scope, expected any of: update:users",
    "api_limit": "Global per second default group limit has been reached",
}


@dataclass(frozen=True)
class Template:
    """One record's JSON text around its two log id slots; ``kept`` unless filtered."""

    head: bytes
    middle: bytes
    tail: bytes
    kept: bool


def _record(rng: random.Random, code: str, index: int) -> dict[str, object]:
    client_id, client_name = rng.choice(_CLIENTS)
    connection, connection_id, strategy, strategy_type = rng.choice(_CONNECTIONS)
    user = rng.randrange(10**6)
    ip = f"198.51.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    stamp = 1_717_200_000 + index * 37 + rng.randrange(30)
    date = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + f".{rng.randrange(1000):03d}Z"
    details: dict[str, object] = {
        "initiatedAt": stamp * 1000,
        "completedAt": stamp * 1000 + rng.randrange(50, 4000),
        "elapsedTime": rng.randrange(50, 4000),
        "session_id": f"{rng.getrandbits(128):032x}",
        "stats": {"loginsCount": rng.randrange(1, 900)},
        "prompts": [
            {
                "name": "prompt-authenticate",
                "completedAt": stamp * 1000 + rng.randrange(10, 2000),
                "connection": connection,
                "connection_id": connection_id,
                "strategy": strategy,
                "identity": str(user),
                "stats": {"loginsCount": rng.randrange(1, 900)},
                "elapsedTime": rng.randrange(10, 2000),
            },
        ],
    }
    if code in ("sapi", "fapi"):
        details = {
            "request": {
                "method": rng.choice(("patch", "post", "delete")),
                "path": f"/api/v2/users/auth0|{user:024x}",
                "channel": "api",
                "ip": ip,
                "auth": {"user": {}, "strategy": "jwt", "credentials": {"scopes": ["read:users"]}},
            },
            "response": {"statusCode": 200 if code == "sapi" else 403, "body": {}},
        }
    record: dict[str, object] = {
        "date": date,
        "type": code,
        "description": _DESCRIPTIONS.get(code, ""),
        "connection": connection,
        "connection_id": connection_id,
        "client_id": client_id,
        "client_name": client_name,
        "ip": ip,
        "user_agent": rng.choice(_AGENTS),
        "details": details,
        "hostname": _HOSTNAME,
        "user_id": f"auth0|{user:024x}",
        "user_name": f"user{user}@example.org",
        "strategy": strategy,
        "strategy_type": strategy_type,
        "$event_schema": {"version": "1.0.0"},
        "log_id": _PLACEHOLDER,
    }
    return {"log_id": _PLACEHOLDER, "data": record}


def make_templates(count: int = 256, seed: int = 1) -> tuple[list[Template], list[Template]]:
    """``count`` kept templates (weighted over :data:`KEPT_TYPES`) and a few filtered ones."""
    rng = random.Random(seed)
    codes = [code for code, _ in KEPT_TYPES]
    weights = [weight for _, weight in KEPT_TYPES]
    kept = [_template(_record(rng, rng.choices(codes, weights)[0], i), True) for i in range(count)]
    filtered = [_template(_record(rng, FILTERED_TYPE, i), False) for i in range(16)]
    return kept, filtered


def _template(record: dict[str, object], kept: bool) -> Template:
    head, middle, tail = orjson.dumps(record).split(_PLACEHOLDER.encode())
    return Template(head, middle, tail, kept)


def run_prefix() -> bytes:
    """30 digits unique to this run: ``9002``, the start time in ns, the process id."""
    return b"9002%020d%06d" % (time.time_ns(), os.getpid() % 10**6)


BODY_SHAPES = 64


class BodyMaker:
    """Builds JSON Lines bodies of ``batch`` records, a ``filter_share`` of them filtered.

    There are :data:`BODY_SHAPES` pre-rendered bodies ("shapes", each a random mix of the
    templates). A log id is 56 digits like Auth0's: the run prefix (30), the body number
    (20) and the record's index in the body (6). Only the body number changes from body to
    body, so a shape is kept split where it goes and a body is one ``bytes.join`` with the
    number as separator: a few microseconds for 100 records.
    """

    def __init__(self, batch: int, filter_share: float, seed: int = 7) -> None:
        rng = random.Random(seed)
        kept_templates, filtered_templates = make_templates()
        prefix = run_prefix()
        self.batch = batch
        self.shapes: list[tuple[list[bytes], int]] = []
        for _ in range(BODY_SHAPES):
            parts: list[bytes] = []
            rest = b""
            kept = 0
            for index in range(batch):
                if filter_share and rng.random() < filter_share:
                    t = rng.choice(filtered_templates)
                else:
                    t = rng.choice(kept_templates)
                    kept += 1
                suffix = b"%06d" % index
                parts.append(rest + t.head + prefix)
                parts.append(suffix + t.middle + prefix)
                rest = suffix + t.tail + b"\n"
            parts.append(rest)
            self.shapes.append((parts, kept))
        self.counter = 0

    def body(self) -> tuple[bytes, int]:
        """A new body and how many of its records pass the bench filter."""
        self.counter += 1
        parts, kept = self.shapes[self.counter % BODY_SHAPES]
        return (b"%020d" % self.counter).join(parts), kept


def sample_data() -> list[bytes]:
    """The ``data`` objects of the kept templates with a fixed log id (binary CE bodies)."""
    kept, _ = make_templates()
    out = []
    for t in kept:
        element = orjson.loads(t.head + b"X" + t.middle + b"X" + t.tail)
        out.append(orjson.dumps(element["data"]))
    return out


if __name__ == "__main__":
    maker = BodyMaker(100, 0.3)
    body, kept = maker.body()
    lines = body.splitlines()
    print(
        f"{len(lines)} records, {kept} kept, {len(body)} bytes, {len(body) / len(lines):.0f} B/rec"
    )
    print(lines[0][:400].decode())
