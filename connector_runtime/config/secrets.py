"""Secret handling: which config values are secret, and redacting them from text.

A schema marks a property secret with ``"x-secret": true`` (``writeOnly: true`` counts too).
URLs may carry credentials of their own (``user:pass@``, ``?api_key=…``) whatever the
schema says: :func:`redact_url` hides them, :func:`redact_urls` does so for every URL in a
piece of text. Both are used wherever a URL can be printed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "<redacted>"
URL_REDACTED = "***"

_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`\\]+")
_AUTH_VALUE = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
"""An Authorization header's credentials quoted in a message (``Bearer eyJ…``)."""


def redact_url(url: str) -> str:
    """``url`` with its userinfo and the values of its query and fragment replaced by
    ``***``: ``http://u:p@h:1/x?key=v`` → ``http://***@h:1/x?key=***``.

    Every query value goes, not only those with secret-looking keys: there is no telling
    what a target takes its credentials in. Never raises; a string without ``scheme://``
    is read as starting with the host (a URL that lost its scheme still hides its
    credentials)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    cut = len(rest)
    for mark in "/?#":
        found = rest.find(mark)
        if found != -1:
            cut = min(cut, found)
    netloc, rest = rest[:cut], rest[cut:]
    if "@" in netloc:
        netloc = URL_REDACTED + "@" + netloc.rpartition("@")[2]
    rest, hash_mark, fragment = rest.partition("#")
    path, question, query = rest.partition("?")
    if query:
        query = "&".join(_redact_param(p) for p in query.split("&"))
    return f"{scheme}{sep}{netloc}{path}{question}{query}" + (
        hash_mark + URL_REDACTED if fragment else hash_mark
    )


def _redact_param(param: str) -> str:
    if not param:
        return param
    key, eq, _ = param.partition("=")
    return f"{key}={URL_REDACTED}" if eq else URL_REDACTED


def redact_urls(text: str) -> str:
    """``text`` with :func:`redact_url` applied to every ``scheme://…`` in it."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group()), text)


def redact_text(text: str, redactor: Redactor) -> str:
    """Everything known to be secret hidden from free text (a log line, an error): the
    configured secret values, ``Bearer``/``Basic`` credentials and credentials in URLs. A
    token a source obtained at run time is in none of the configs, so the last two
    matter."""
    text = redactor(text)
    text = _AUTH_VALUE.sub(lambda m: f"{m.group(1)} {URL_REDACTED}", text)
    return redact_urls(text)


def is_secret_schema(schema: Mapping[str, Any]) -> bool:
    return bool(schema.get("x-secret") or schema.get("writeOnly"))


def secret_paths(
    schema: Mapping[str, Any], config: Any, prefix: tuple[Any, ...] = ()
) -> set[tuple[Any, ...]]:
    """Paths (as tuples) of the values in ``config`` that ``schema`` marks secret.

    A list's items count when ``items`` is marked (each item's path), and so do marks in
    the branches of ``anyOf``/``oneOf``/``allOf``/``then``/``else`` (a token that is a
    string or a list of strings)."""
    found: set[tuple[Any, ...]] = set()
    if is_secret_schema(schema):
        found.add(prefix)
        return found
    for keyword in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(keyword, ()):
            if isinstance(branch, Mapping):
                found |= secret_paths(branch, config, prefix)
    for keyword in ("then", "else"):
        branch = schema.get(keyword)
        if isinstance(branch, Mapping):
            found |= secret_paths(branch, config, prefix)
    if isinstance(config, Mapping):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, value in config.items():
            sub = props.get(key)
            if sub is None and isinstance(extra, Mapping):
                sub = extra
            if isinstance(sub, Mapping):
                found |= secret_paths(sub, value, (*prefix, key))
    elif isinstance(config, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for i, value in enumerate(config):
                found |= secret_paths(items, value, (*prefix, i))
    return found


def values_at(config: Any, paths: Iterable[tuple[Any, ...]]) -> set[str]:
    """The string values found at ``paths`` in ``config`` (non-empty ones only)."""
    out: set[str] = set()
    for path in paths:
        node = config
        try:
            for step in path:
                node = node[step]
        except (KeyError, IndexError, TypeError):
            continue
        if isinstance(node, str) and node:
            out.add(node)
        elif isinstance(node, Mapping | list):
            out |= {v for v in _strings(node) if v}
    return out


def _strings(node: Any) -> Iterable[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


def redact_config(config: Any, paths: set[tuple[Any, ...]], prefix: tuple[Any, ...] = ()) -> Any:
    """A copy of ``config`` with the values at ``paths`` replaced by ``<redacted>``."""
    if prefix in paths:
        return REDACTED
    if isinstance(config, Mapping):
        return {k: redact_config(v, paths, (*prefix, k)) for k, v in config.items()}
    if isinstance(config, list):
        return [redact_config(v, paths, (*prefix, i)) for i, v in enumerate(config)]
    return config


class Redactor:
    """Replaces every known secret value in a piece of text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret containing another is replaced whole. Very short
        # values would redact ordinary words; a secret that short is refused by schemas.
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def add(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted(
            set(self._secrets) | {s for s in secrets if len(s) >= 4}, key=len, reverse=True
        )

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


class RedactingFilter(logging.Filter):
    """A logging filter that removes secrets (:func:`redact_text`) from every record's
    message and from the traceback of its exception."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_text(message, self.redactor)
        if clean != message:
            record.msg = clean
            record.args = None
        if record.exc_info and not record.exc_text:
            # formatters print exc_text in place of formatting exc_info again
            record.exc_text = redact_text(_plain.formatException(record.exc_info), self.redactor)
        return True


_plain = logging.Formatter()
