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

For Auth0 Event Streams: :func:`stream_event` (a CloudEvent as Auth0 sends it, as exact JSON
text) and :class:`FakeEventStream`, a sender over real sockets that retries, backs off and
drops like Auth0's webhook delivery does.

Nothing here needs pytest or a running runtime. :class:`FakeTenant`, a fake Auth0 tenant
serving ``/oauth/token``, ``/api/v2/logs`` and ``/api/v2/log-streams/{id}`` on a loopback
port, and the sender of its log streams live beside this module in
:mod:`connector_runtime_auth0.fake_tenant` and :mod:`connector_runtime_auth0.fake_sender`
(they need the runtime's test kit).
"""

from __future__ import annotations

import base64
import http.client
import json
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BACKOFF",
    "DISABLE_AFTER",
    "DROP",
    "TENANT",
    "Delivery",
    "FakeEventStream",
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
    "stream_event",
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


# -- Auth0 Event Streams -----------------------------------------------------------------

STREAM_TENANT = "acme-test"
STREAM_ID = "est_Qm9ndXNTdHJlYW0wMDAwMDE"


def stream_event(
    n: int,
    event_type: str = "user.created",
    *,
    tenant: str = STREAM_TENANT,
    purpose: str | None = None,
    spec_key: str = "specversion",
) -> bytes:
    """The exact JSON text of one Event Streams CloudEvent, as Auth0 documents it.

    ``n`` makes the id (``evt_`` and 22 letters and digits) and the user; ``purpose="test"``
    marks a test delivery (``a0purpose``); ``spec_key="spec_version"`` spells the version as
    one of Auth0's examples does.
    """
    event: dict[str, Any] = {
        "id": f"evt_{n:022d}",
        spec_key: "1.0",
        "type": event_type,
        "source": f"urn:auth0:{tenant}.eu.auth0.com",
        "time": f"2025-02-01T12:{n // 60 % 60:02d}:{n % 60:02d}.123Z",
        "a0tenant": tenant,
        "a0stream": STREAM_ID,
    }
    if purpose is not None:
        event["a0purpose"] = purpose
    head = json.dumps(event, separators=(",", ":"))[:-1]
    data = (
        '{"object":{"user_id":"auth0|' + f"{n:024x}" + '","email":"user' + str(n) + '@example.com",'
        '"email_verified":false,"logins_count":9007199254740993,"name":"Rowan Bell"}}'
    )
    return (head + ',"data":' + data + "}").encode()


BACKOFF = (1.0, 2.0, 4.0)
"""Auth0's waits between the four attempts of one delivery, in seconds."""
DISABLE_AFTER = (500, 5000)
"""Auth0 disables a stream after 500 consecutive failed deliveries, or with 5,000 failed
in all (https://auth0.com/docs/customize/events/event-testing-observability-and-failure-recovery)."""


@dataclass
class Delivery:
    """What became of one event: every status answered (0: no answer), and the outcome."""

    body: bytes
    statuses: list[int] = field(default_factory=list)
    retry_after: list[str | None] = field(default_factory=list)
    outcome: str = "pending"
    """``delivered`` (a 2xx), ``dropped`` (a 4xx: never retried) or ``failed`` (attempts
    used up: listed for redelivery, as the Management API's failed deliveries are)."""


@dataclass
class FakeEventStream:
    """An Auth0 Event Streams webhook sender, over real sockets.

    Each event is one POST of ``Content-Type: application/json`` with the stream's
    ``Authorization`` header; up to ``attempts`` (4) attempts, waiting ``BACKOFF`` times
    ``time_scale`` between them (0 in tests: the order of events is what matters, not the
    waits); a 2xx delivers, a 4xx drops the event at once, anything else (a 5xx, no
    answer) is retried. Deliveries that used up their attempts wait in :attr:`failed`
    until :meth:`redeliver`. :meth:`send` can repeat and reorder events, as Auth0 may.

    After ``disable_after[0]`` deliveries in a row that were not delivered, or with
    ``disable_after[1]`` failed, the stream is disabled (:attr:`enabled` false): Auth0 sends
    nothing to a disabled stream, so later events are listed as failed without an attempt
    (an assumption: the docs say only that the Redelivery API then processes failed
    events). :meth:`redeliver` still works; :meth:`enable` turns the stream on again.
    """

    url: str
    authorization: str
    attempts: int = 4
    time_scale: float = 1.0
    timeout: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    deliveries: list[Delivery] = field(default_factory=list)
    disable_after: tuple[int, int] = DISABLE_AFTER
    enabled: bool = True
    _in_a_row: int = field(default=0, repr=False)

    @classmethod
    def bearer(cls, url: str, token: str, **options: Any) -> FakeEventStream:
        return cls(url, f"Bearer {token}", **options)

    @classmethod
    def basic(cls, url: str, username: str, password: str, **options: Any) -> FakeEventStream:
        pair = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        return cls(url, f"Basic {pair}", **options)

    @property
    def failed(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.outcome == "failed"]

    @property
    def dropped(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.outcome == "dropped"]

    def send(
        self,
        bodies: Sequence[bytes],
        *,
        duplicates: Iterable[int] = (),
        shuffle: int | None = None,
    ) -> list[Delivery]:
        """Deliver ``bodies`` one by one; the indexes in ``duplicates`` are sent twice, and
        ``shuffle`` (a seed) sends them in a random order."""
        order = list(range(len(bodies))) + list(duplicates)
        if shuffle is not None:
            random.Random(shuffle).shuffle(order)  # noqa: S311 (a test order, not a secret)
        return [self.deliver(bodies[i]) for i in order]

    def deliver(self, body: bytes) -> Delivery:
        """One event, through its attempts."""
        delivery = Delivery(body)
        self.deliveries.append(delivery)
        if not self.enabled:
            delivery.outcome = "failed"
            return delivery
        self._attempt(delivery)
        self._in_a_row = 0 if delivery.outcome == "delivered" else self._in_a_row + 1
        consecutive, total = self.disable_after
        if self._in_a_row >= consecutive or len(self.failed) >= total:
            self.enabled = False
        return delivery

    def enable(self) -> None:
        """Enable a disabled stream again; Auth0 allows it only with fewer than
        ``disable_after[1]`` failed deliveries (redeliver them first)."""
        if len(self.failed) >= self.disable_after[1]:
            raise ValueError(f"{len(self.failed)} failed deliveries: redeliver them first")
        self.enabled, self._in_a_row = True, 0

    def redeliver(self) -> list[Delivery]:
        """Send every failed delivery again (the Management API's ``redeliver``)."""
        again = self.failed
        for delivery in again:
            self._attempt(delivery)
        return again

    def _attempt(self, delivery: Delivery) -> None:
        for attempt in range(self.attempts):
            if attempt:
                self.sleep(BACKOFF[min(attempt, len(BACKOFF)) - 1] * self.time_scale)
            status, retry_after = self._post(delivery.body)
            delivery.statuses.append(status)
            delivery.retry_after.append(retry_after)
            if 200 <= status < 300:
                delivery.outcome = "delivered"
                return
            if 400 <= status < 500:
                delivery.outcome = "dropped"
                return
        delivery.outcome = "failed"

    def _post(self, body: bytes) -> tuple[int, str | None]:
        _, _, rest = self.url.partition("://")
        hostport, _, path = rest.partition("/")
        host, _, port = hostport.partition(":")
        conn = http.client.HTTPConnection(host, int(port or 80), timeout=self.timeout)
        headers = {"Content-Type": "application/json", "Authorization": self.authorization}
        try:
            conn.request("POST", "/" + path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            return response.status, response.getheader("Retry-After")
        except OSError:
            return 0, None  # refused, reset, timed out: no answer, so a retry
        finally:
            conn.close()
