"""Sending events to a target once, and sorting out what happened to each."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from connector_runtime.config.secrets import redact_urls
from connector_runtime.errors import DeliveryError
from connector_runtime.events import Event
from connector_runtime.records import Target


@dataclass
class Attempt:
    """What one delivery attempt of a list of events came to."""

    rejected: list[tuple[Event, str]] = field(default_factory=list)
    rejected_at: dict[int, str] = field(default_factory=dict)
    """Indexes (into the events given) the target rejected for good, with the reason."""
    retry: dict[int, str] = field(default_factory=dict)
    """Indexes (into the events given) that failed transiently, with the reason."""


async def attempt(target: Target, events: Sequence[Event]) -> Attempt:
    """Send ``events`` in chunks of ``target.max_batch``, concurrently; never raises for
    a target failure: every event ends up accepted, rejected or to be retried."""
    size = max(1, target.max_batch)
    chunks = [events[i : i + size] for i in range(0, len(events), size)]
    results = await asyncio.gather(*(_one(target, chunk) for chunk in chunks))
    out = Attempt()
    for n, (chunk_rejected, chunk_retry) in enumerate(results):
        base = n * size
        out.rejected.extend((chunks[n][i], reason) for i, reason in chunk_rejected.items())
        out.rejected_at.update({base + i: reason for i, reason in chunk_rejected.items()})
        out.retry.update({base + i: reason for i, reason in chunk_retry.items()})
    return out


async def _one(target: Target, chunk: Sequence[Event]) -> tuple[dict[int, str], dict[int, str]]:
    try:
        result = await target.send(chunk)
    except DeliveryError as exc:
        every = dict.fromkeys(range(len(chunk)), redact_urls(exc.reason))
        return (every, {}) if exc.permanent else ({}, every)
    # Reasons become logs, last_error and dead-letter reasons: no credentials of a URL a
    # target quoted in them (only failed events have one).
    return (
        {i: redact_urls(r) for i, r in result.rejected.items()},
        {i: redact_urls(r) for i, r in result.retry.items()},
    )
