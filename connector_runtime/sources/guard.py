"""What the runtime checks for every webhook request before a source sees its body.

:class:`RequestGuard` (one per connector, handed to source handlers in their
``SourceContext``) holds the connector's source-IP allow-list, its admission control (a cap
on request-body bytes in flight), and its counters. ``SourceHandler`` calls it; a plugin's
handler inherits all of it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from connector_runtime.observe.stats import ConnectorStats

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_MAX_BYTES_IN_FLIGHT = 64 * 1024 * 1024


class Gate(Protocol):
    @property
    def accepting(self) -> bool: ...


def parse_networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _in(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in n for n in networks)


def client_address(peer: str, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The address the request came from: the peer, unless the peer is a trusted proxy; then
    the right-most address in ``X-Forwarded-For`` that is not itself a trusted proxy."""
    if not forwarded_for or not _in(peer, trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, trusted):
            return hop
    return hops[0] if hops else peer


@dataclass
class RequestGuard:
    stats: ConnectorStats
    allowed: tuple[Network, ...] = ()
    trusted_proxies: tuple[Network, ...] = ()
    max_bytes_in_flight: int = DEFAULT_MAX_BYTES_IN_FLIGHT
    gate: Gate | None = None
    """The runtime: ``gate.accepting`` turns False when it starts stopping."""

    def allows(self, peer: str, forwarded_for: str | None) -> bool:
        """True when no allow-list is set or the client address is in it."""
        if not self.allowed:
            return True
        return _in(client_address(peer, forwarded_for, self.trusted_proxies), self.allowed)

    @property
    def accepting(self) -> bool:
        """False once the runtime is stopping: requests whose headers come later get 503."""
        return self.gate is None or self.gate.accepting

    def admit(self, size: int, own: int = 0) -> bool:
        """Reserve ``size`` more bytes in flight for a request that holds ``own`` already;
        False (nothing reserved) past the cap. A request larger than the whole cap is still
        admitted when no other request has bytes in flight."""
        held = self.stats.bytes_in_flight
        if held > own and held + size > self.max_bytes_in_flight:
            return False
        self.stats.bytes_in_flight += size
        return True

    def release(self, size: int) -> None:
        self.stats.bytes_in_flight = max(0, self.stats.bytes_in_flight - size)
