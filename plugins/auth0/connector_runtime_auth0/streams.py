"""The ``auth0-events`` source: an Auth0 Event Streams webhook.

:class:`connector_runtime.SourceHandler` answers everything around the body; this handler
adds the stream's authorization (a bearer token or Basic credentials, compared in constant
time), parses the CloudEvents (:mod:`connector_runtime_auth0.eventstreams`), counts and
optionally drops test deliveries, and keeps one status contract: a 4xx makes Auth0 drop the
event without retrying, so one is answered only for what can never succeed (credentials, a
body that is not a CloudEvent); a transient condition is a 503 with ``Retry-After``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
from connector_runtime import (
    Event,
    EventPredicate,
    RequestRejected,
    Route,
    SourceContext,
    SourceHandler,
)

from connector_runtime_auth0.catalogue import unknown_names
from connector_runtime_auth0.eventstreams import (
    closest_type,
    is_known_type,
    parse_cloudevents,
    pass_on,
    type_matcher,
)
from connector_runtime_auth0.parse import ParseError

__all__ = [
    "EventsHandler",
    "StreamAuth",
    "check_events_config",
    "events_routes",
    "keeps",
    "make_stream_auth",
    "parse_events_offline",
]

DEFAULT_MAX_BODY: Final = 1 << 20
RETRY_AFTER: Final = 5
TRANSIENT: Final = frozenset({413})
"""Statuses the base handler answers that are not the event's fault: 503 instead."""
UNAUTHORIZED: Final = "missing or wrong credentials"


@dataclass(frozen=True)
class StreamAuth:
    """The credentials a stream must present, as bytes; compared in constant time."""

    tokens: tuple[bytes, ...] = ()
    username: bytes = b""
    password: bytes = b""

    @property
    def scheme(self) -> str:
        return "Bearer" if self.tokens else "Basic"

    def allows(self, header: str) -> bool:
        """Whether an ``Authorization`` header value carries the configured credentials."""
        scheme, _, credentials = header.strip().partition(" ")
        given = credentials.strip().encode("latin-1", "replace")
        if scheme.lower() != self.scheme.lower():
            given = b""
        if self.tokens:
            matched = False
            for token in self.tokens:  # every token compared, so timing tells none apart
                matched |= hmac.compare_digest(given, token)
            return matched and bool(given)
        try:
            decoded = base64.b64decode(given, validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        user, colon, password = decoded.partition(b":")
        good_user = hmac.compare_digest(user, self.username)
        good_password = hmac.compare_digest(password, self.password)
        return bool(colon) and good_user and good_password


def make_stream_auth(config: Mapping[str, Any]) -> StreamAuth:
    """The credentials of a validated ``auth0-events`` config."""
    token = config.get("token")
    if token:
        tokens = [token] if isinstance(token, str) else list(token)
        return StreamAuth(tokens=tuple(t.encode("utf-8") for t in tokens))
    basic = config["basicAuth"]
    return StreamAuth(
        username=basic["username"].encode("utf-8"), password=basic["password"].encode("utf-8")
    )


class EventsHandler(SourceHandler):
    """``POST /<connector>``: one CloudEvent (or an array of them) in, the same out."""

    TOKEN_KEY = None  # the stream's credentials are checked by authorize() below
    auth: StreamAuth

    def initialize(self, ctx: SourceContext, **options: Any) -> None:
        super().initialize(ctx, **options)
        self.max_body_bytes = int(ctx.config.get("maxBodyBytes", DEFAULT_MAX_BODY))
        self.auth = options["auth"]
        self._tests = 0

    def authorize(self) -> None:
        if not self.auth.allows(self.request.headers.get("Authorization", "")):
            challenge = f'{self.auth.scheme} realm="connector-runtime"'
            raise RequestRejected(401, UNAUTHORIZED, headers={"WWW-Authenticate": challenge})

    def accepts_content_type(self, mtype: str) -> bool:
        return True  # the body decides: refusing a type would make Auth0 drop the event

    def events(self, body: bytes) -> Sequence[Event]:
        try:
            events = parse_cloudevents(body)
        except ParseError as exc:
            raise RequestRejected(400, str(exc)) from None
        mode = self.ctx.config.get("testEvents", "pass")
        kept, self._tests = pass_on(events, mode, self.ctx.config.get("source"))
        if self._tests:
            self.ctx.counts.count("test", "dropped" if mode == "drop" else "passed", self._tests)
        return kept

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, RequestRejected) and exc.status_code in TRANSIENT:
            retry = RequestRejected(503, exc.detail, retry_after=RETRY_AFTER)
            kwargs["exc_info"] = (RequestRejected, retry, None)
            status_code = 503
        super().send_error(status_code, **kwargs)

    def finish(self, chunk: Any = None) -> Any:
        outcome = self._outcome
        if outcome is not None and self._tests and "test" not in outcome:
            outcome["test"] = self._tests  # also in the access log line (on_finish)
            chunk = orjson.dumps(outcome)
        return super().finish(chunk)


def events_routes(ctx: SourceContext) -> Sequence[Route]:
    """The routes of one ``auth0-events`` connector: its base path only."""
    return [("", EventsHandler, {"ctx": ctx, "auth": make_stream_auth(ctx.config)})]


def parse_events_offline(body: bytes, ctx: SourceContext) -> Sequence[Event]:
    """The events a delivery body becomes, without a request (``filter test``)."""
    try:
        return parse_cloudevents(body)
    except ParseError as exc:
        raise ValueError(str(exc)) from None


def check_events_config(config: Mapping[str, Any]) -> Sequence[tuple[str, str]]:
    """``events`` entries that name no documented type or family, with the closest ones."""
    events = config.get("events") or ()
    return unknown_names(events, is_known_type, closest_type, "Event Streams type")


def keeps(names: Sequence[str]) -> EventPredicate:
    """A predicate keeping events whose type is listed or in a listed ``family.*``."""
    exact, prefixes = type_matcher(names)

    def keep(event: Event) -> bool:
        kind = event.get("type")
        return kind in exact or (isinstance(kind, str) and kind.startswith(prefixes))

    return keep
