"""The catalogue of Auth0 log event type codes, loaded once from ``catalogue.json``.

Each code (``s``, ``fp``, ``sapi``, …) has a name, a description, a status (``current`` or
``legacy``) and the log stream filter category Auth0 files it under (``auth.login.fail``,
``user.success``, …), or ``None`` where Auth0 documents none. ``tools/build_catalogue.py``
derives the JSON file from the shared event-type list.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from importlib.resources import files
from types import MappingProxyType

import msgspec


class EventType(msgspec.Struct, frozen=True, kw_only=True):
    """One Auth0 log event type."""

    code: str
    name: str
    category: str | None
    status: str
    description: str | None


def _load() -> tuple[EventType, ...]:
    raw = files(__package__).joinpath("catalogue.json").read_bytes()
    return msgspec.json.decode(raw, type=tuple[EventType, ...])


EVENT_TYPES: Mapping[str, EventType] = MappingProxyType({t.code: t for t in _load()})
"""Every known event type, by code."""

CATEGORIES: frozenset[str] = frozenset(t.category for t in EVENT_TYPES.values() if t.category)
"""Every log stream filter category that at least one known code belongs to."""

_CATEGORY_OF: dict[str, str | None] = {code: t.category for code, t in EVENT_TYPES.items()}
_NAMES: tuple[str, ...] = tuple(sorted(EVENT_TYPES.keys() | CATEGORIES))


def category_of(code: str) -> str | None:
    """The filter category of ``code``; ``None`` for unknown codes and uncategorised ones."""
    return _CATEGORY_OF.get(code)


def is_known(name: str) -> bool:
    """True when ``name`` is a known event type code or filter category."""
    return name in _CATEGORY_OF or name in CATEGORIES


def closest(name: str, limit: int = 3) -> list[str]:
    """Known codes and categories that look like ``name``, best first (for suggestions)."""
    # Codes are often one to three letters, where one wrong letter halves the similarity
    # ratio; a lower cut-off there still suggests ``s``/``ss`` for ``sx``, while longer
    # names keep difflib's default so that ``login`` is not "close" to ``slo``.
    cutoff = 0.5 if len(name) <= 3 else 0.6
    return difflib.get_close_matches(name, _NAMES, n=limit, cutoff=cutoff)


def unknown_names(
    names: Iterable[object],
    known: Callable[[str], bool],
    nearest: Callable[[str], list[str]],
    what: str,
) -> list[tuple[str, str]]:
    """``(events[i], message)`` for each listed name that ``known`` rejects, with the
    closest known ones; shared by the source types' ``events`` checks."""
    problems: list[tuple[str, str]] = []
    for index, name in enumerate(names):
        if not isinstance(name, str) or known(name):
            continue
        message = f"unknown {what} {name!r}"
        suggestions = nearest(name)
        if suggestions:
            message += f" (closest: {', '.join(suggestions)})"
        problems.append((f"events[{index}]", message))
    return problems
