"""The Tornado handler of a ``webhook`` connector.

:class:`connector_runtime.SourceHandler` answers everything around the body (method,
size, Content-Type, handing over, the JSON answer). This handler adds, in request order:

1. :meth:`WebhookHandler.authorize`: the headers half of the ``auth`` check (401);
2. :meth:`WebhookHandler.verify_body`: the body half (the signature, 401);
3. :meth:`WebhookHandler.events`: either the CloudEvents the request already is, or one
   event per JSON object of the body (400).

The connector's config is compiled once, in :func:`routes`, into a :class:`Plan` that every
request shares.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from connector_runtime import (
    Event,
    RequestRejected,
    Route,
    SourceContext,
    SourceHandler,
    is_json_like,
    media_type,
)

from connector_runtime_webhook.attributes import AttributeMap, AttributeProblem, compile_attributes
from connector_runtime_webhook.auth import Auth, AuthFailure, Presented, make_auth
from connector_runtime_webhook.parse import ParseError, split_body
from connector_runtime_webhook.passthrough import (
    BATCH,
    STRUCTURED,
    from_batch,
    from_binary,
    from_structured,
)

__all__ = ["Plan", "WebhookHandler", "compile_plan", "routes"]

BASIC_CHALLENGE: Final = 'Basic realm="connector-runtime", charset="UTF-8"'


@dataclass(frozen=True)
class Plan:
    """A ``webhook`` connector's config, compiled for the request path."""

    auth: Auth
    format: str
    attributes: AttributeMap
    accept_cloudevents: bool = True

    def mode(self, mtype: str, headers: Mapping[str, str]) -> str:
        """``structured``, ``batch`` or ``binary`` for CloudEvents requests, else ``plain``."""
        if self.accept_cloudevents:
            if mtype == STRUCTURED:
                return "structured"
            if mtype == BATCH:
                return "batch"
            if "ce-specversion" in headers:
                return "binary"
        return "plain"


def compile_plan(config: Mapping[str, Any], default_source: str) -> Plan:
    """Compile a validated config (defaults filled in)."""
    return Plan(
        auth=make_auth(config.get("auth")),
        format=str(config.get("format", "auto")),
        attributes=compile_attributes(
            config.get("attributes"), config.get("extensions"), default_source
        ),
        accept_cloudevents=bool(config.get("acceptCloudEvents", True)),
    )


class WebhookHandler(SourceHandler):
    """``POST /<connector>``: a signed webhook (or CloudEvents) in, CloudEvents out."""

    TOKEN_KEY = None  # credentials live under ``auth``, checked below
    plan: Plan

    def initialize(self, ctx: SourceContext, **options: Any) -> None:
        super().initialize(ctx, **options)
        self.plan = options["plan"]
        self._presented = Presented()

    def authorize(self) -> None:
        try:
            self._presented = self.plan.auth.check_headers(self.request.headers, time.time())
        except AuthFailure as exc:
            raise self._unauthorized(exc.reason) from None

    def verify_body(self, body: bytes) -> None:
        if self.plan.auth.needs_body:
            try:
                self.plan.auth.check_body(self._presented, body)
            except AuthFailure as exc:
                raise self._unauthorized(exc.reason) from None

    def _unauthorized(self, reason: str) -> RequestRejected:
        challenge = {"WWW-Authenticate": BASIC_CHALLENGE} if self.plan.auth.kind == "basic" else {}
        return RequestRejected(401, reason, headers=challenge)

    def accepts_content_type(self, mtype: str) -> bool:
        # In binary mode the body is the event's data, of whatever type the sender says.
        return self.plan.mode(mtype, self.request.headers) == "binary" or is_json_like(mtype)

    def events(self, body: bytes) -> Sequence[Event]:
        headers = self.request.headers
        content_type = headers.get("Content-Type")
        try:
            mode = self.plan.mode(media_type(content_type), headers)
            if mode == "structured":
                return [from_structured(body)]
            if mode == "batch":
                return from_batch(body)
            if mode == "binary":
                return [from_binary(headers.get_all(), content_type, body)]
            elements, _ = split_body(body, self.plan.format)
            request = self.plan.attributes.for_request(headers)
            return [request.event(e.data, e.label, i) for i, e in enumerate(elements)]
        except (ParseError, AttributeProblem) as exc:
            raise RequestRejected(400, str(exc)) from None


def routes(ctx: SourceContext) -> Sequence[Route]:
    """The routes of one ``webhook`` connector: its base path only."""
    plan = compile_plan(ctx.config, ctx.default_source)
    return [("", WebhookHandler, {"ctx": ctx, "plan": plan})]
