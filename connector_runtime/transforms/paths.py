"""The path language of ``spec.transforms``.

A path names places in an event: ``data.a.b`` (members of the JSON data), ``data.list[*].x``
(``[*]`` runs over every item of a list), ``data.list[0]`` (one item), ``data`` (the data
as a whole) or an attribute name (``subject``, ``auth0category``). A member name is letters,
digits, ``_``, ``-`` and ``$``; a name with other characters is written ``["name"]``.

:func:`parse_path` compiles a path once; :func:`places` finds, in one decoded value, every
place the path reaches that holds something other than ``null`` (a missing member, an
index past the end, or ``[*]`` over something that is no list reach nothing).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from connector_runtime.events import is_extension_name

STAR: Final = object()
"""The ``[*]`` step."""

Step = str | int | object
"""A member name, a list index, or :data:`STAR`."""

_TOKEN = re.compile(r'\.([A-Za-z0-9_$-]+)|\[(\*|\d+|"(?:[^"\\]|\\.)*")\]')
_HEAD = re.compile(r"[A-Za-z0-9_$-]+")

FIXED_ATTRIBUTES: Final = frozenset({"specversion", "id", "source", "datacontenttype"})
"""Attributes no transform may touch: the dedupe key, and what the encoding depends on."""


class PathError(ValueError):
    """A path that is not written right; the message says where."""


@dataclass(frozen=True)
class Path:
    text: str
    root: str
    """``data`` or an attribute name."""
    steps: tuple[Step, ...]
    needles: tuple[bytes, ...] = ()
    """The JSON text of each member name after the first step: a member of the data whose
    text (without escapes) lacks one of them cannot hold the place (it is not decoded)."""

    @property
    def is_data(self) -> bool:
        return self.root == "data"

    def viable(self, text: bytes) -> bool:
        """False when a member of data of this ``text`` cannot hold the place."""
        return all(n in text for n in self.needles)


def parse_path(text: str) -> Path:
    """Compile ``text``; raise :class:`PathError` with a one-line reason when it is wrong."""
    head = _HEAD.match(text)
    if head is None:
        raise PathError(f"path {text!r} must start with 'data' or an attribute name")
    root = head.group()
    steps: list[Step] = []
    at = head.end()
    while at < len(text):
        token = _TOKEN.match(text, at)
        if token is None:
            raise PathError(f"path {text!r}: cannot read {text[at:]!r} (at character {at})")
        name, index = token.group(1), token.group(2)
        if name is not None:
            steps.append(name)
        elif index == "*":
            steps.append(STAR)
        elif index.startswith('"'):
            steps.append(json.loads(index))
        else:
            steps.append(int(index))
        at = token.end()
    if root != "data":
        if steps:
            raise PathError(f"path {text!r}: an attribute has no members (only data has)")
        if not is_extension_name(root):
            raise PathError(f"path {text!r}: {root!r} is not a CloudEvents attribute name")
        if root in FIXED_ATTRIBUTES:
            raise PathError(f"path {text!r}: the {root!r} attribute cannot be transformed")
    needles = tuple(
        json.dumps(step, ensure_ascii=False).encode("utf-8")
        for step in steps[1:]
        if isinstance(step, str)
    )
    return Path(text, root, tuple(steps), needles)


Place = tuple[Any, str | int]
"""A container (dict or list) and the key or index in it that holds a value."""


def places(holder: Any, key: str | int, steps: tuple[Step, ...]) -> Iterator[Place]:
    """Every place ``steps`` reach from ``holder[key]`` whose value is not ``null``."""
    value = _at(holder, key)
    if value is None:
        return
    if not steps:
        yield holder, key
        return
    step, rest = steps[0], steps[1:]
    if step is STAR:
        if isinstance(value, list):
            for index in range(len(value)):
                yield from places(value, index, rest)
    elif isinstance(step, str):
        if isinstance(value, dict):
            yield from places(value, step, rest)
    elif isinstance(step, int) and isinstance(value, list):
        yield from places(value, step, rest)


def reach(holder: Any, key: str | int, steps: tuple[Step, ...]) -> list[Place]:
    """:func:`places` as a list; through members alone (the usual path) without a
    generator per step."""
    for at, step in enumerate(steps):
        if type(step) is not str:
            return list(places(holder, key, steps[at:]))
        value = _at(holder, key)
        if not isinstance(value, dict):
            return []
        holder, key = value, step
    return [] if _at(holder, key) is None else [(holder, key)]


def _at(holder: Any, key: str | int) -> Any:
    if isinstance(holder, dict):
        return holder.get(key)
    if isinstance(holder, list) and isinstance(key, int) and -len(holder) <= key < len(holder):
        return holder[key]
    return None
