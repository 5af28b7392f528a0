"""Personal values inside text: the HMAC every hashing operation writes, and the patterns
``emails`` and ``userIds`` find inside strings (through objects and lists).

- An e-mail address: a dot in the domain, enough for log text.
- An Auth0 user id: ``<provider>|<id>`` (``auth0|5f7c8ec7…``, ``google-oauth2|1234``,
  ``samlp|corp|ann@example.com``; https://auth0.com/docs/manage-users/user-accounts/identify-users),
  the ``|`` also written ``%7C`` as in a URL; and, in a Management API path, the segment
  after ``/users/`` (``/api/v2/users/{id}/roles``) and the provider's own id after
  ``/identities/{provider}/`` (https://auth0.com/docs/api/management/v2/users), in a text
  that holds a ``|`` or a ``%7`` (where an id can be). The hash
  is of the id with its ``%`` escapes read (``auth0%7Cabc`` hashes as ``auth0|abc``), so
  it is the hash of the record's ``user_id``: joins still work.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import unquote

CACHED: Final = 4096
"""How many HMAC results a key keeps (about 0.2 KB each)."""

EMAIL: Final = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
_SEGMENT = r"[^/?#&\s\"'<>]+"
_PART = r"[^/?#&\s\"'<>|,;]*[^/?#&\s\"'<>|,;.:)\]]"  # not ending a sentence
USER_ID: Final = re.compile(
    rf"(?<=/users/)(?P<segment>{_SEGMENT})"
    rf"|(?<=/identities/)(?P<provider>{_SEGMENT}/)(?P<own>{_SEGMENT})"
    rf"|(?:(?<![\w.%|-])|(?<=%[0-9A-Fa-f]{{2}}))(?P<id>[A-Za-z0-9][\w.-]*(?:\||%7[Cc]){_PART}(?:(?:\||%7[Cc]){_PART})*)"
)
USER_ID_NEEDLES: Final = (b"|", b"%7")
"""Text that a member must hold for a user id to be in it: a text with neither is left as
it is (an Auth0 user id always has its provider and a ``|``)."""


class Mac:
    """HMAC-SHA256 (RFC 2104) with the key's two padded states hashed once: per value, two
    copies and two updates (``hmac.new(...).copy()`` costs about twice as much, and
    ``hmac.digest`` more still for short values). The last :data:`CACHED` results are
    kept: user ids, e-mail addresses and the like repeat from event to event."""

    __slots__ = ("_cache", "_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        padded = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))
        self._cache: dict[str, str] = {}

    def __repr__(self) -> str:  # never the key
        return "Mac()"

    def hex(self, text: str) -> str:
        cache = self._cache
        found = cache.get(text)
        if found is not None:
            return found
        inner = self._inner.copy()
        inner.update(text.encode("utf-8", "surrogatepass"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        if len(cache) >= CACHED:
            cache.clear()  # cheaper than keeping an order, and as good for a stream
        found = cache[text] = outer.hexdigest()
        return found


def in_strings(value: Any, sub: Callable[[str], str]) -> Any:
    """``value`` with ``sub`` applied to every string at or under it: the value itself when
    nothing changed, else a copy of each object and list on the way to a change."""
    if type(value) is str:
        new = sub(value)
        return value if new == value else new
    if isinstance(value, dict | list):
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        out = None
        for key, item in pairs:
            if type(item) is str or isinstance(item, dict | list):
                new = in_strings(item, sub)
                if new is not item:
                    if out is None:
                        out = value.copy()
                    out[key] = new
        return value if out is None else out
    return value


def email_sub(mac: Mac | None) -> Callable[[str], str]:
    """Replace every e-mail address in a text by its hash, or ``<email>`` without ``mac``."""

    def replace(found: re.Match[str]) -> str:
        return "<email>" if mac is None else mac.hex(found.group())

    def sub(text: str) -> str:
        return EMAIL.sub(replace, text) if "@" in text else text

    return sub


def user_id_sub(mac: Mac | None) -> Callable[[str], str]:
    """Replace every user id in a text by its hash, or ``<user_id>`` without ``mac``."""

    def hidden(found: str) -> str:
        return "<user_id>" if mac is None else mac.hex(unquote(found))

    def replace(found: re.Match[str]) -> str:
        if found.group("own") is not None:
            return found.group("provider") + hidden(found.group("own"))
        return hidden(found.group())

    def sub(text: str) -> str:
        if "|" in text or "%7" in text:
            return USER_ID.sub(replace, text)
        return text

    return sub
