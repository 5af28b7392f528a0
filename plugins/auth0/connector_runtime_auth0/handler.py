"""The Tornado handler for an Auth0 Custom Webhook log stream.

:class:`connector_runtime.SourceHandler` answers everything but the body (method,
token, size, Content-Type, handing over, the JSON answer); this handler parses the body in
the connector's content format and maps each record to a CloudEvent.
"""

from __future__ import annotations

from collections.abc import Sequence

from connector_runtime import Event, RequestRejected, Route, SourceContext, SourceHandler

from connector_runtime_auth0.mapping import Mapper
from connector_runtime_auth0.parse import ParseError, parse_body

__all__ = ["Auth0Handler", "parse_offline", "routes"]


class Auth0Handler(SourceHandler):
    """``POST /<connector>``: one Auth0 log batch in, one event per log record out."""

    _plain = False

    def events(self, body: bytes) -> Sequence[Event]:
        config = self.ctx.config
        mapper = Mapper(config.get("source") or self.ctx.default_source)
        mapper.checked_body(body)
        try:
            events = parse_body(body, config.get("format", "auto"), mapper)
        except ParseError as exc:
            raise RequestRejected(400, str(exc)) from None
        self._plain = mapper.plain
        return events

    def attribute_problem(self, events: Sequence[Event]) -> str | None:
        # Printable strings need no closer look; otherwise the full check names the culprit.
        return None if self._plain else super().attribute_problem(events)


def parse_offline(body: bytes, ctx: SourceContext) -> Sequence[Event]:
    """The events a delivery body becomes, without a request (``filter test``)."""
    mapper = Mapper(ctx.config.get("source") or ctx.default_source)
    try:
        return parse_body(body, ctx.config.get("format", "auto"), mapper)
    except ParseError as exc:
        raise ValueError(str(exc)) from None


def routes(ctx: SourceContext) -> Sequence[Route]:
    """The routes of one ``auth0`` connector: its base path only."""
    return [("", Auth0Handler, {"ctx": ctx})]
