"""The CloudEvents NATS protocol binding as the ``nats`` target uses it (pure functions).

- subjects: a template such as ``auth0.{connector}.{code}`` is parsed once
  (:func:`parse_subject`), rendered per event (:func:`render_subject`), and turned into the
  wildcard pattern a stream must take (:func:`subject_pattern_of`);
- messages: :func:`encode` gives the payload and headers of an event in ``binary`` mode
  (attributes as ``ce-`` headers, the data as the payload) or ``structured`` mode (the JSON
  event format), with ``Nats-Msg-Id`` = the event id either way.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from connector_runtime.events import (
    STRUCTURED_CONTENT_TYPE,
    AttributeValue,
    Event,
    is_extension_name,
    to_structured,
)
from connector_runtime.nats.connection import MSG_ID_HEADER

__all__ = ["encode", "parse_subject", "render_subject", "subject_pattern_of", "subject_token"]


# -- subjects ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    name: str


_PLACEHOLDER: Final = re.compile(r"\{([^{}]*)\}")
_BAD_LITERAL: Final = re.compile(r"[\s*>{}\x00-\x1f\x7f]")
_NOT_IN_TOKEN: Final = re.compile(r"[\s.*>\x00-\x1f\x7f]")


@functools.lru_cache(maxsize=64)
def parse_subject(template: str) -> tuple[str | _Field, ...]:
    """Split a subject template into literal text and placeholders; ValueError if invalid."""
    parts: list[str | _Field] = []
    pos = 0
    for match in _PLACEHOLDER.finditer(template):
        parts.append(template[pos : match.start()])
        name = match.group(1)
        if name not in ("connector", "code") and not is_extension_name(name):
            raise ValueError(
                f"unknown placeholder {{{name}}} (use {{connector}}, {{code}} or an attribute"
                " name such as {type})"
            )
        parts.append(_Field(name))
        pos = match.end()
    parts.append(template[pos:])
    for part in parts:
        if isinstance(part, str) and (bad := _BAD_LITERAL.search(part)):
            raise ValueError(f"{bad.group()!r} is not allowed in a subject outside a placeholder")
    if "" in subject_pattern_of(parts).split("."):
        raise ValueError("a subject cannot have an empty token (leading, trailing or '..')")
    return tuple(p for p in parts if p != "")


def subject_pattern_of(template: str | Sequence[str | _Field]) -> str:
    """The template with every token holding a placeholder replaced by ``*``."""
    parts = parse_subject(template) if isinstance(template, str) else template
    text = "".join("\x00" if isinstance(p, _Field) else p for p in parts)
    return ".".join("*" if "\x00" in token else token for token in text.split("."))


def subject_token(value: str) -> str:
    """``value`` made fit for one subject token: forbidden characters become ``_``."""
    return _NOT_IN_TOKEN.sub("_", value) or "_"


def render_subject(template: str, attributes: Mapping[str, AttributeValue], connector: str) -> str:
    """The subject of an event with ``attributes`` published by ``connector``."""
    out: list[str] = []
    for part in parse_subject(template):
        if isinstance(part, str):
            out.append(part)
            continue
        if part.name == "connector":
            value: AttributeValue | None = connector
        elif part.name == "code":
            value = str(attributes.get("type", "")).rsplit(".", 1)[-1]
        else:
            value = attributes.get(part.name)
        if isinstance(value, bool):
            value = "true" if value else "false"
        out.append(subject_token("" if value is None else str(value)))
    return "".join(out)


# -- messages ---------------------------------------------------------------------------


def encode(event: Event, mode: str) -> tuple[bytes, dict[str, str]]:
    """Payload and headers of the NATS message for ``event`` (``Nats-Msg-Id`` included)."""
    if mode == "structured":
        return to_structured(event), {
            "content-type": STRUCTURED_CONTENT_TYPE,
            MSG_ID_HEADER: event.id,
        }
    headers: dict[str, str] = {}
    for name, value in event.peek().items():
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        headers["content-type" if name == "datacontenttype" else "ce-" + name] = text
    headers[MSG_ID_HEADER] = event.id
    return event.data or b"", headers
