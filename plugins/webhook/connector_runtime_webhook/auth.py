"""Checking who sent a webhook request (pure: headers, body and the clock come in as values).

Four kinds of ``auth`` config, each compiled once per connector by :func:`make_auth`:

- ``hmac``: a keyed hash of the body (or of a template such as ``"{timestamp}.{body}"``)
  sent in a header, optionally with a prefix (GitHub: ``X-Hub-Signature-256: sha256=<hex>``)
  and a timestamp header checked against a tolerance; ``format: stripe`` reads the timestamp
  and the ``v1`` signatures from one header (``Stripe-Signature: t=…,v1=…``);
- ``token``: a header that must carry one fixed value;
- ``basic``: HTTP Basic credentials;
- ``none``: anyone may post.

Every comparison of a secret uses :func:`hmac.compare_digest`. A failed check raises
:class:`AuthFailure` whose reason is one line and never contains a secret or what the
client sent.

The check is split in two because the body arrives after the headers:
:meth:`Auth.check_headers` runs first (credentials present, timestamp fresh; token and basic
are decided here), :meth:`Auth.check_body` runs on the complete body (the signature).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "ALGORITHMS",
    "ENCODINGS",
    "INVALID_SIGNATURE",
    "KINDS",
    "STALE_TIMESTAMP",
    "Auth",
    "AuthFailure",
    "Presented",
    "basic_header",
    "basic_matches",
    "fresh",
    "make_auth",
    "parse_stripe_header",
    "sign",
    "signature_matches",
    "signed_payload",
    "token_matches",
]

Digest = Callable[..., Any]

ALGORITHMS: Final[Mapping[str, Digest]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
}
ENCODINGS: Final = ("hex", "base64")
KINDS: Final = ("hmac", "token", "basic", "none")

INVALID_SIGNATURE: Final = "missing or invalid signature"
STALE_TIMESTAMP: Final = "timestamp outside tolerance"
INVALID_TIMESTAMP: Final = "missing or invalid timestamp"
INVALID_TOKEN: Final = "missing or invalid token"  # noqa: S105 (a message, not a secret)
INVALID_CREDENTIALS: Final = "missing or invalid credentials"

DEFAULT_TOLERANCE: Final = 300
STRIPE_TEMPLATE: Final = "{timestamp}.{body}"
BODY_TEMPLATE: Final = "{body}"

_PLACEHOLDER: Final = re.compile(r"(\{body\}|\{timestamp\})")
_TIMESTAMP: Final = re.compile(r"^\d{1,15}(\.\d{1,9})?$")


class AuthFailure(Exception):
    """The request is not authenticated; ``reason`` is one line, safe to show the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- the primitives ----------------------------------------------------------------------


def sign(secret: bytes, message: bytes, algorithm: str = "sha256", encoding: str = "hex") -> str:
    """The signature of ``message`` under ``secret``, as a sender computes it."""
    mac = hmac.new(secret, message, ALGORITHMS[algorithm]).digest()
    if encoding == "hex":
        return mac.hex()
    return base64.b64encode(mac).decode("ascii")


def signature_matches(
    secret: bytes, message: bytes, given: str, algorithm: str = "sha256", encoding: str = "hex"
) -> bool:
    """True when ``given`` is the signature of ``message``, compared in constant time.

    Hex is compared case-insensitively; base64 must be exact (padding included).
    """
    mac = hmac.new(secret, message, ALGORITHMS[algorithm]).digest()
    if encoding == "hex":
        expected = mac.hex().encode("ascii")
        presented = given.strip().lower().encode("utf-8", "replace")
    else:
        expected = base64.b64encode(mac)
        presented = given.strip().encode("utf-8", "replace")
    return hmac.compare_digest(expected, presented)


def signed_payload(template: str, body: bytes, timestamp: str | None = None) -> bytes:
    """The bytes a sender signs: ``template`` with ``{body}`` and ``{timestamp}`` filled in.

    The body goes in as it arrived (never decoded); every other character of the template
    is taken literally. ``{timestamp}`` without a timestamp raises :class:`ValueError`.
    """
    if template == BODY_TEMPLATE:
        return body
    parts: list[bytes] = []
    for piece in _PLACEHOLDER.split(template):
        if piece == "{body}":
            parts.append(body)
        elif piece == "{timestamp}":
            if timestamp is None:
                raise ValueError("the template uses {timestamp} but there is none")
            parts.append(timestamp.encode("ascii"))
        elif piece:
            parts.append(piece.encode("utf-8"))
    return b"".join(parts)


def parse_stripe_header(value: str, scheme: str = "v1") -> tuple[str | None, tuple[str, ...]]:
    """``"t=1700000000,v1=ab…,v1=cd…,v0=…"`` → ``("1700000000", ("ab…", "cd…"))``.

    Several ``v1`` entries appear while a secret is being rolled; any one of them may match.
    Entries of other schemes and malformed entries are ignored.
    """
    timestamp: str | None = None
    signatures: list[str] = []
    for item in value.split(","):
        key, sep, val = item.partition("=")
        key = key.strip()
        if not sep:
            continue
        if key == "t" and timestamp is None:
            timestamp = val.strip()
        elif key == scheme:
            signatures.append(val.strip())
    return timestamp, tuple(signatures)


def fresh(timestamp: str, now: float, tolerance: float) -> bool | None:
    """Whether epoch-seconds ``timestamp`` is within ``tolerance`` seconds of ``now``.

    ``None`` when the timestamp is not a number of seconds (``"1700000000"``, or with a
    fraction such as ``"1700000000.25"``).
    """
    if _TIMESTAMP.match(timestamp) is None:
        return None
    return abs(now - float(timestamp)) <= tolerance


def token_matches(given: str | None, expected: str) -> bool:
    """True when the header value ``given`` is exactly ``expected`` (constant time)."""
    # Header values arrive as latin-1 text; encoding back gives the bytes that were sent.
    presented = (given or "").encode("latin-1", "replace")
    return hmac.compare_digest(presented, expected.encode("utf-8"))


def basic_header(username: str, password: str) -> str:
    """The ``Authorization`` value a client sends for these credentials."""
    pair = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def basic_matches(header: str | None, username: str, password: str) -> bool:
    """True when ``header`` carries exactly these Basic credentials.

    User name and password are both compared in constant time, whichever one is wrong.
    """
    scheme, _, encoded = (header or "").strip().partition(" ")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    given_user, sep, given_password = decoded.partition(b":")
    user_ok = hmac.compare_digest(given_user, username.encode("utf-8"))
    password_ok = hmac.compare_digest(given_password, password.encode("utf-8"))
    return scheme.lower() == "basic" and bool(sep) and user_ok and password_ok


# -- compiled checks ---------------------------------------------------------------------


@dataclass(frozen=True)
class Presented:
    """What the headers of one request offered, kept for :meth:`Auth.check_body`."""

    signatures: tuple[str, ...] = ()
    timestamp: str | None = None


class Auth:
    """``auth: none``, and the interface of the others."""

    kind = "none"
    needs_body = False

    def check_headers(self, headers: Mapping[str, str], now: float) -> Presented:
        """Check what can be checked before the body; raise :class:`AuthFailure`."""
        return Presented()

    def check_body(self, presented: Presented, body: bytes) -> None:
        """Check what needs the complete body; raise :class:`AuthFailure`."""


@dataclass(frozen=True)
class TokenAuth(Auth):
    header: str
    value: str
    kind = "token"

    def check_headers(self, headers: Mapping[str, str], now: float) -> Presented:
        if not token_matches(headers.get(self.header), self.value):
            raise AuthFailure(INVALID_TOKEN)
        return Presented()


@dataclass(frozen=True)
class BasicAuth(Auth):
    username: str
    password: str
    kind = "basic"

    def check_headers(self, headers: Mapping[str, str], now: float) -> Presented:
        if not basic_matches(headers.get("Authorization"), self.username, self.password):
            raise AuthFailure(INVALID_CREDENTIALS)
        return Presented()


@dataclass(frozen=True)
class HmacAuth(Auth):
    """A keyed-hash signature over the body (see the module docstring)."""

    header: str
    secret: bytes
    algorithm: str = "sha256"
    encoding: str = "hex"
    prefix: str = ""
    template: str = BODY_TEMPLATE
    stripe: bool = False
    timestamp_header: str | None = None
    tolerance: float = DEFAULT_TOLERANCE
    kind = "hmac"
    needs_body = True

    def check_headers(self, headers: Mapping[str, str], now: float) -> Presented:
        raw = headers.get(self.header)
        if not raw:
            raise AuthFailure(INVALID_SIGNATURE)
        timestamp: str | None
        if self.stripe:
            timestamp, signatures = parse_stripe_header(raw)
            if not signatures:
                raise AuthFailure(INVALID_SIGNATURE)
        else:
            value = raw.strip()
            if not value.startswith(self.prefix):
                raise AuthFailure(INVALID_SIGNATURE)
            signatures = (value[len(self.prefix) :],)
            timestamp = headers.get(self.timestamp_header) if self.timestamp_header else None
        if self.stripe or self.timestamp_header:
            if not timestamp:
                raise AuthFailure(INVALID_TIMESTAMP)
            timestamp = timestamp.strip()
            verdict = fresh(timestamp, now, self.tolerance)
            if verdict is None:
                raise AuthFailure(INVALID_TIMESTAMP)
            if not verdict:
                raise AuthFailure(STALE_TIMESTAMP)
        return Presented(signatures, timestamp)

    def check_body(self, presented: Presented, body: bytes) -> None:
        try:
            message = signed_payload(self.template, body, presented.timestamp)
        except ValueError:
            raise AuthFailure(INVALID_SIGNATURE) from None
        # Check every candidate, so the time taken does not tell which one matched.
        matched = False
        for given in presented.signatures:
            if signature_matches(self.secret, message, given, self.algorithm, self.encoding):
                matched = True
        if not matched:
            raise AuthFailure(INVALID_SIGNATURE)


NO_AUTH: Final = Auth()


def make_auth(config: Mapping[str, Any] | None) -> Auth:
    """Compile a validated ``auth`` config (``None`` means ``none``)."""
    if not config:
        return NO_AUTH
    kind = config.get("type", "none")
    if kind == "token":
        return TokenAuth(str(config.get("header") or "Authorization"), str(config["value"]))
    if kind == "basic":
        return BasicAuth(str(config["username"]), str(config["password"]))
    if kind == "hmac":
        stripe = config.get("format") == "stripe"
        stamp = config.get("timestamp") or {}
        default_template = STRIPE_TEMPLATE if stripe else BODY_TEMPLATE
        return HmacAuth(
            header=str(config["header"]),
            secret=str(config["secret"]).encode("utf-8"),
            algorithm=str(config.get("algorithm") or "sha256"),
            encoding=str(config.get("encoding") or "hex"),
            prefix=str(config.get("prefix") or ""),
            template=str(config.get("signed") or default_template),
            stripe=stripe,
            timestamp_header=stamp.get("header") if not stripe else None,
            tolerance=float(stamp.get("tolerance", DEFAULT_TOLERANCE)),
        )
    return NO_AUTH
