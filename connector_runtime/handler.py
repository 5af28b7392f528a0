"""A base Tornado handler for webhook sources.

:class:`SourceHandler` does what every webhook source needs, so a plugin's handler only
parses its body into events: POST only (405), a body limit (413, checked against
Content-Length before the body is read and again while it streams), an Authorization token
compared in constant time (401), accepted Content-Types (415), a request id, one-line JSON
error bodies, and handing events to the runtime (200 with counts, or 503 + Retry-After).
"""

from __future__ import annotations

import hmac
import json
import uuid
from collections.abc import Sequence
from typing import Any

from tornado.web import HTTPError, RequestHandler, stream_request_body

from connector_runtime.errors import Unavailable
from connector_runtime.events import Event
from connector_runtime.records import SourceContext

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
JSON_CONTENT_TYPES = frozenset(
    {
        "application/json",
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
        "application/x-jsonlines",
        "application/jsonlines",
        "application/json-seq",
        "application/cloudevents+json",
        "application/cloudevents-batch+json",
    }
)


class RequestRejected(HTTPError):
    """A client error with a one-line reason for the response body (no secrets inside)."""

    def __init__(self, status: int, detail: str, *, retry_after: int | None = None) -> None:
        super().__init__(status, "%s", detail)
        self.detail = detail
        self.retry_after = retry_after


def media_type(header: str | None) -> str:
    """The lower-cased media type of a Content-Type header, without parameters."""
    return (header or "").split(";", 1)[0].strip().lower()


def is_json_like(mtype: str) -> bool:
    """True for JSON, JSON Lines and text media types (and an absent Content-Type)."""
    return (
        not mtype
        or mtype in JSON_CONTENT_TYPES
        or mtype.startswith("text/")
        or mtype.endswith("+json")
    )


@stream_request_body
class SourceHandler(RequestHandler):
    """Base class for a source's webhook endpoint. Subclasses implement :meth:`events`."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")

    ctx: SourceContext
    max_body_bytes: int
    token: str | None

    def initialize(self, ctx: SourceContext) -> None:
        self.ctx = ctx
        self.max_body_bytes = int(ctx.config.get("maxBodyBytes", DEFAULT_MAX_BODY_BYTES))
        token = ctx.config.get("token")
        self.token = token if isinstance(token, str) and token else None
        self._chunks: list[bytes] = []
        self._size = 0
        self._too_large = False
        self.request_id = ""

    # -- what subclasses provide ------------------------------------------------------

    def events(self, body: bytes) -> Sequence[Event]:
        """Turn the request body into events, or raise :class:`RequestRejected` (400)."""
        raise NotImplementedError

    def authorize(self) -> None:
        """Check the credentials; the default compares the ``token`` config in constant time."""
        if self.token is None:
            return
        given = self.request.headers.get("Authorization", "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, self.token.encode("utf-8")):
            raise RequestRejected(401, "missing or wrong Authorization token")

    def accepts_content_type(self, mtype: str) -> bool:
        return is_json_like(mtype)

    # -- the request path -------------------------------------------------------------

    def prepare(self) -> None:
        self.request_id = self.request.headers.get("X-Request-Id") or uuid.uuid4().hex
        if self.request.method != "POST":
            raise RequestRejected(405, f"method {self.request.method} not allowed; use POST")
        length = self.request.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            self._too_large = True

    def data_received(self, chunk: bytes) -> None:
        if self._too_large:
            return
        self._size += len(chunk)
        if self._size > self.max_body_bytes:
            self._too_large = True
            self._chunks.clear()
            return
        self._chunks.append(chunk)

    async def post(self) -> None:
        self.authorize()
        if self._too_large:
            raise RequestRejected(413, f"body larger than {self.max_body_bytes} bytes")
        mtype = media_type(self.request.headers.get("Content-Type"))
        if not self.accepts_content_type(mtype):
            raise RequestRejected(415, f"unsupported Content-Type {mtype!r}")
        body = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks = []
        events = self.events(body)
        try:
            outcome = await self.ctx.ingest.submit(events, request_id=self.request_id)
        except Unavailable as exc:
            raise RequestRejected(503, exc.reason, retry_after=exc.retry_after) from None
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(outcome.as_dict()))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, RequestRejected):
            detail = exc.detail
            if exc.retry_after is not None:
                self.set_header("Retry-After", str(exc.retry_after))
        elif status_code >= 500:
            detail = "internal error"
        else:
            detail = self._reason
        if status_code == 405:
            self.set_header("Allow", "POST")
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": detail}))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, RequestRejected):
            self.ctx.log.info(
                "request %s rejected: %d %s", self.request_id, value.status_code, value.detail
            )
            return
        super().log_exception(typ, value, tb)
