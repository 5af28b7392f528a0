"""Every plugin's ``event_transform`` for one connector, chained, with the runtime's guard.

The chain runs on a request's events after the filters and before dedupe: each transform
in turn, in the order the plugins were registered (the runtime's ``spec.transforms``
first). A transform that raises, returns something that is not an event, or changes the
event's ``id`` or ``source`` (the dedupe key) filters that event out; ``failed`` is told
why in one line naming the plugin, and the runtime counts it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from connector_runtime.events import Event
from connector_runtime.records import EventTransform

Batch = Callable[[list[Event]], list[Event]]


def chain_transforms(
    named: Sequence[tuple[str, EventTransform]], failed: Callable[[str], None]
) -> Batch | None:
    """One function over a request's events, or None when no plugin takes part (the
    pipeline then does no per-event work at all)."""
    if not named:
        return None
    steps = tuple(named)

    def run(events: list[Event]) -> list[Event]:
        out: list[Event] = []
        for event in events:
            done = _one(steps, event, failed)
            if done is not None:
                out.append(done)
        return out

    return run


def _one(
    steps: tuple[tuple[str, EventTransform], ...], event: Event, failed: Callable[[str], None]
) -> Event | None:
    key = (event.get("id"), event.get("source"))
    for plugin, transform in steps:
        try:
            result = transform(event)
        except Exception as exc:  # a plugin's failure costs one event, never the request
            failed(f"{plugin}: {_describe(exc)}")
            return None
        if not isinstance(result, Event):
            failed(f"{plugin}: returned {type(result).__name__}, not an Event")
            return None
        if (result.get("id"), result.get("source")) != key:
            failed(f"{plugin}: a transform may not change the event's 'id' or 'source'")
            return None
        event = result
    return event


def _describe(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
