"""Sending events to a target once, and sorting out what happened to each."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from connector_runtime.config.secrets import redact_urls
from connector_runtime.errors import DeliveryError
from connector_runtime.events import Event
from connector_runtime.records import SendResult, Target


@dataclass
class Attempt:
    """What one delivery attempt of a list of events came to. The target's facts come as
    it gave them (:class:`~connector_runtime.records.SendResult`), never read out of a
    reason."""

    rejected: list[tuple[Event, str, int | None]] = field(default_factory=list)
    """The events the target rejected for good: (event, reason, the target's status)."""
    rejected_at: dict[int, str] = field(default_factory=dict)
    """Indexes (into the events given) the target rejected for good, with the reason."""
    retry: dict[int, str] = field(default_factory=dict)
    """Indexes (into the events given) that failed transiently, with the reason."""
    status: dict[int, int] = field(default_factory=dict)
    """Indexes (into the events given) of failed events that got a status, with it."""
    retry_after: float | None = None
    """The longest wait (seconds) an answer with events to retry asked for (None: none)."""


Answered = Callable[[int, int, Mapping[int, str], Mapping[int, str]], "asyncio.Future[Any] | None"]
"""Called as each chunk is answered, with its first index (into the events given), its
length, and what the target rejected and what is to be retried (by index in the chunk).
It may return a future: the chunk's slot stays taken until that is done."""


class _Sending:
    """A slot's chunk is being sent."""


SENDING = _Sending()
Slots = list["asyncio.Future[Any] | _Sending | None"]
"""One entry per chunk that may be under way at once: free (None, or a future that is
done), :data:`SENDING`, or the future its chunk's answer waits for (see :func:`attempt`)."""


def max_in_flight(target: Target) -> int:
    """How many ``send`` calls ``target`` takes at once (its ``max_in_flight``, else 1)."""
    return max(1, int(getattr(target, "max_in_flight", 1)))


async def attempt(
    target: Target,
    events: Sequence[Event],
    slots: Slots | None = None,
    answered: Answered | None = None,
    timeout: float | None = None,
) -> Attempt:
    """Send ``events`` in chunks of ``target.max_batch``, at most ``max_in_flight(target)``
    chunks at once; never raises for a target failure: every event ends up accepted,
    rejected or to be retried.

    With ``slots`` (at least ``max_in_flight(target)``, kept from one attempt to the next),
    a chunk takes a free slot from before it is sent until it was answered and the future
    ``answered`` returned for it is done: the chunks sent and not yet recorded are never
    more than the slots. Chunks without an answer within ``timeout`` seconds are to be
    retried."""
    size = max(1, target.max_batch)
    out = Attempt()
    unanswered = set(range(0, len(events), size))
    """First indexes of the chunks without an answer."""
    starts = iter(sorted(unanswered))

    async def worker() -> None:
        for start in starts:
            # One event: a list of it (cutting a slice of encoded events per event would
            # walk the runs before it every time).
            chunk = [events[start]] if size == 1 else events[start : start + size]
            slot = -1 if slots is None else await _take(slots)
            try:
                result = await _one(target, chunk)
            finally:
                if slots is not None:
                    slots[slot] = None
            unanswered.discard(start)
            rejected, retry, status = result.rejected, result.retry, result.status
            if rejected:
                out.rejected.extend((chunk[i], why, status.get(i)) for i, why in rejected.items())
                out.rejected_at.update({start + i: reason for i, reason in rejected.items()})
            if status:
                out.status.update({start + i: code for i, code in status.items()})
            if retry:
                out.retry.update({start + i: reason for i, reason in retry.items()})
                wait = result.retry_after
                if _waits(wait) and (out.retry_after or 0.0) < wait:
                    out.retry_after = wait
            if answered is not None:
                held = answered(start, len(chunk), rejected, retry)
                if slots is not None:
                    slots[slot] = held

    workers = asyncio.gather(
        *(worker() for _ in range(min(len(unanswered), max_in_flight(target))))
    )
    try:
        await (workers if timeout is None else asyncio.wait_for(workers, timeout))
    except TimeoutError:
        reason = f"no answer within {timeout:g}s"
        for start in unanswered:
            out.retry.update(dict.fromkeys(range(start, min(start + size, len(events))), reason))
    return out


async def _take(slots: Slots) -> int:
    """Take a free slot (marked :data:`SENDING`), waiting for one if need be; there is one
    to wait for unless every slot is sending, which fewer workers than slots rule out."""
    while True:
        held = None
        for n, holder in enumerate(slots):
            if isinstance(holder, asyncio.Future):
                if not holder.done():
                    held = holder if held is None else held
                    continue
            elif holder is SENDING:
                continue
            slots[n] = SENDING
            return n
        assert held is not None, "more workers than slots"
        await _done(held)


def _done(future: asyncio.Future[Any]) -> asyncio.Future[None]:
    """A future done when ``future`` is; cancelling it (a timeout) leaves ``future`` be."""
    waiter: asyncio.Future[None] = future.get_loop().create_future()

    def wake(_: object) -> None:
        if not waiter.done():
            waiter.set_result(None)

    future.add_done_callback(wake)
    return waiter


def _waits(seconds: float | None) -> TypeGuard[float]:
    """Whether a target's ``retry_after`` asks for a wait (a plugin's may be anything)."""
    return isinstance(seconds, int | float) and seconds > 0


async def _one(target: Target, chunk: Sequence[Event]) -> SendResult:
    try:
        result = await target.send(chunk)
    except DeliveryError as exc:
        every = dict.fromkeys(range(len(chunk)), redact_urls(exc.reason))
        status = {} if exc.status is None else dict.fromkeys(every, exc.status)
        if exc.permanent:
            return SendResult(rejected=every, status=status, retry_after=exc.retry_after)
        return SendResult(retry=every, status=status, retry_after=exc.retry_after)
    # Reasons become logs, last_error and dead-letter reasons: no credentials of a URL a
    # target quoted in them (only failed events have one).
    rejected, retry = result.rejected, result.retry
    if not rejected and not retry:
        return result
    return SendResult(
        {i: redact_urls(r) for i, r in rejected.items()},
        {i: redact_urls(r) for i, r in retry.items()},
        result.status,
        result.retry_after,
    )
