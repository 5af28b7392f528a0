"""The validated manifest as frozen dataclasses (what the rest of the runtime reads)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MAX_AGE = 7 * 24 * 3600.0
# Auth0 keeps retrying a failed batch and pauses the stream after 7 days of failures, so the
# same log id can come back up to 7 days after we first saw it; one more day covers clock
# skew and the time an operator takes to resume a paused stream.
DEFAULT_DEDUPE_WINDOW = 8 * 24 * 3600.0
DEFAULT_DEDUPE_MAX_ENTRIES = 10_000_000


@dataclass(frozen=True)
class ComponentSpec:
    """A source or a target: its type name and its validated config (defaults filled)."""

    type: str
    config: Mapping[str, Any]


@dataclass(frozen=True)
class RetrySpec:
    attempts: int = 0
    """0 means no limit on attempts (``max_age`` still applies)."""
    initial_backoff: float = 0.5
    max_backoff: float = 60.0
    max_age: float = DEFAULT_MAX_AGE


@dataclass(frozen=True)
class NatsSpoolSpec:
    """``delivery.nats``: the JetStream stream that is the spool (``spool: nats``)."""

    servers: tuple[str, ...]
    stream: str
    subject: str
    consumer: str
    replicas: int = 1
    retention: str = "workqueue"
    max_age: float = 0.0
    """0 means no limit."""
    duplicate_window: float = 120.0
    timeout: float = 5.0
    credentials: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    user: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class DeliverySpec:
    ack: str = "durable"
    timeout: float = 10.0
    retry: RetrySpec = field(default_factory=RetrySpec)
    max_events: int | None = None
    max_bytes: int | None = None
    dedupe_window: float = DEFAULT_DEDUPE_WINDOW
    dedupe_max_entries: int = DEFAULT_DEDUPE_MAX_ENTRIES
    dedupe_scope: str | None = None
    """``dedupe.scope``: connectors of one scope share their dedupe window."""
    spool: str = "local"
    nats: NatsSpoolSpec | None = None
    """Set exactly when ``spool`` is ``nats``."""


@dataclass(frozen=True)
class ConnectorSpec:
    """One ``kind: Connector`` document after validation."""

    name: str
    file: str
    source: ComponentSpec
    target: ComponentSpec
    delivery: DeliverySpec = field(default_factory=DeliverySpec)
    filters: tuple[Mapping[str, Any], ...] = ()
    transforms: tuple[Mapping[str, Any], ...] = ()
    """``spec.transforms``, compiled by :mod:`connector_runtime.transforms`."""
    allowed_source_ips: tuple[str, ...] = ()
    max_bytes_in_flight: int = 64 * 1024 * 1024
    secrets: frozenset[str] = frozenset()
    """The secret values in this connector's configs (for redaction)."""


@dataclass(frozen=True)
class TLSSpec:
    cert_file: str
    key_file: str


@dataclass(frozen=True)
class AdminSpec:
    """``spec.admin``: a second listener for ``/metrics``, ``/healthz`` and ``/readyz``."""

    host: str
    port: int
    token: str | None = field(default=None, repr=False)
    """When set, every admin request needs ``Authorization: Bearer <token>``."""
    max_taps: int = 4
    """Tap clients (``/tap``) attached at once, over all connectors."""


@dataclass(frozen=True)
class RuntimeSpec:
    """The optional ``kind: Runtime`` document (flags override it)."""

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: str | None = None
    tls: TLSSpec | None = None
    trusted_proxies: tuple[str, ...] = ()
    idle_timeout: float = 60.0
    body_timeout: float = 60.0
    max_header_bytes: int = 64 * 1024
    admin: AdminSpec | None = None


@dataclass(frozen=True)
class Manifest:
    connectors: tuple[ConnectorSpec, ...]
    runtime: RuntimeSpec
    files: tuple[str, ...]

    @property
    def secrets(self) -> frozenset[str]:
        out: set[str] = set()
        for c in self.connectors:
            out |= c.secrets
        admin = self.runtime.admin
        if admin is not None and admin.token:
            out.add(admin.token)
        return frozenset(out)

    def warnings(self) -> list[str]:
        """Things that are allowed but risky; printed by ``validate`` and at start-up."""
        notes = []
        for c in self.connectors:
            if c.delivery.ack == "received":
                notes.append(
                    f"{c.file}: connector {c.name}: ack policy 'received' answers before events"
                    " are stored; events waiting in memory are lost if the process crashes"
                )
        return notes
