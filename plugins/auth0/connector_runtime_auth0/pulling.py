"""What both pull tasks (:mod:`.puller`, ``auth0-logs``; :mod:`.events_puller`,
``auth0-events-pull``) share besides the Management API client (:mod:`.management`):

- :class:`Backoff`: 1 s doubling to 60 s with jitter; refused credentials and missing
  scopes (a person has to act, so ask seldom) 5 s to 5 min; a fresh token refused again
  waits likewise instead of asking at once;
- :func:`submit`: events and their checkpoint into the spool, waiting while it refuses.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Final

from connector_runtime import Event, PullContext, Unavailable

__all__ = ["AUTH_BACKOFF", "BACKOFF", "Backoff", "submit"]

BACKOFF: Final = (1.0, 60.0)
AUTH_BACKOFF: Final = (5.0, 300.0)


class Backoff:
    """How long to wait after the n-th failure in a row (:meth:`next`); :meth:`reset`
    after a success."""

    def __init__(self) -> None:
        self.failures = 0
        self.refused = 0
        """Answers in a row that refused the token (401): the first gets a new one at once."""

    def reset(self) -> None:
        self.failures = self.refused = 0

    def next(self, kind: str, delay: float | None) -> float:
        self.failures += 1
        self.refused = self.refused + 1 if kind == "auth" and delay == 0.0 else 0
        if delay is None:
            low, high = AUTH_BACKOFF if kind in ("auth", "scope") else BACKOFF
            jitter = random.uniform(0.8, 1.0)  # noqa: S311  (jitter)
            return float(min(high, low * 2 ** (self.failures - 1)) * jitter)
        if self.refused > 1:  # a fresh token refused again: a person has to act
            return float(min(AUTH_BACKOFF[1], AUTH_BACKOFF[0] * 2 ** (self.refused - 2)))
        return delay


async def submit(ctx: PullContext, events: Sequence[Event], checkpoint: str) -> None:
    """Commit ``events`` with ``checkpoint``; while the spool refuses, wait and try again."""
    while True:
        try:
            await ctx.ingest.submit(events, checkpoint=checkpoint)
            return
        except Unavailable as exc:
            ctx.status.problem("spool", f"the spool refused a batch: {exc}")
            await asyncio.sleep(max(1.0, float(exc.retry_after or 1)))
