"""What the ``nats`` target and the NATS spool share: the connection, error sorting, streams.

- :class:`Connection`: a NATS connection made in the background with unlimited
  reconnects, so a NATS that is down at start-up delays work but neither start-up nor
  requests; it logs disconnects and reconnects once each;
- :func:`classify`: ``(permanent, one-line reason)`` for an exception of a JetStream call;
- :func:`ensure_stream`: look a stream up, creating it when allowed and missing;
  :func:`subject_matches`: whether a stream subject takes a subject.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext, api

from connector_runtime.config.secrets import redact_url, redact_urls
from connector_runtime.errors import DeliveryError

MSG_ID_HEADER: Final = "Nats-Msg-Id"
RECONNECT_WAIT: Final = 1
"""Seconds between connection attempts to the same server."""
DRAIN_TIMEOUT: Final = 5.0


def classify(exc: BaseException, timeout: float, awaited: str = "PubAck") -> tuple[bool, str]:
    """``(permanent, one-line reason)`` for an exception a JetStream request raised."""
    if isinstance(exc, nats.js.errors.APIError):
        code = exc.code
        reason = f"JetStream {code if code is not None else 'error'}: {exc.description or '?'}"
        if exc.err_code:
            reason += f" (err_code {exc.err_code})"
        transient = code is None or code in (408, 429) or code >= 500
        return not transient, reason
    if isinstance(exc, nats.js.errors.NoStreamResponseError):
        return False, "no JetStream stream answered (no leader yet, or JetStream is off)"
    if isinstance(exc, nats.errors.MaxPayloadError):
        return True, "message exceeds the server's maximum payload (max_payload)"
    if isinstance(exc, nats.errors.BadSubjectError | nats.errors.BadHeaderError):
        return True, f"invalid message: {type(exc).__name__}"
    if isinstance(exc, TimeoutError):  # nats.errors.TimeoutError too
        return False, f"no {awaited} within {timeout:g}s"
    text = redact_urls(" ".join(str(exc).split()))
    return False, f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def subject_matches(pattern: str, subject: str) -> bool:
    """True when every subject ``subject`` stands for (it may hold ``*`` tokens) also
    matches ``pattern`` (a stream subject with ``*`` and ``>`` wildcards)."""
    want = pattern.split(".")
    have = subject.split(".")
    for i, part in enumerate(want):
        if part == ">":
            return len(have) > i
        if i >= len(have) or (part != "*" and part != have[i]):
            return False
    return len(want) == len(have)


def auth_options(
    credentials: str | None = None,
    token: str | None = None,
    user: str | None = None,
    password: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments of ``Client.connect`` for the given credentials."""
    options: dict[str, Any] = {}
    if credentials:
        options["user_credentials"] = credentials
    if token:
        options["token"] = token
    if user:
        options["user"] = user
        options["password"] = password
    return options


def server_of(nc: Client) -> str:
    url = nc.connected_url
    return f"{url.hostname}:{url.port}" if url is not None else "?"


class Connection:
    """One NATS connection, made in the background and kept up until :meth:`close`.

    ``on_connect(js)`` runs once after the first successful connect (to set up streams);
    it should log its own failures, which never stop the connection.
    """

    def __init__(
        self,
        servers: list[str],
        name: str,
        timeout: float,
        auth: dict[str, Any],
        log: logging.Logger,
        on_connect: Callable[[JetStreamContext], Awaitable[None]] | None = None,
    ) -> None:
        self.servers = servers
        self.name = name
        self.timeout = timeout
        self.log = log
        self.nc = Client()
        self.js: JetStreamContext | None = None
        self.last_error: str | None = None
        self.closed = False
        self._auth = auth
        self._on_connect = on_connect
        self._connecting: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self.js is not None and self.nc.is_connected

    def why_not(self, default: str = "connecting") -> str:
        """Why there is no connection, for messages: ``not connected to NATS: …``."""
        return f"not connected to NATS: {self.last_error or default}"

    async def start(self) -> None:
        """Start connecting; wait at most ``timeout`` for it (then go on in the background)."""
        if self._connecting is None:
            self._connecting = asyncio.get_running_loop().create_task(
                self._connect(), name=f"nats connect {self.name}"
            )
        try:
            await asyncio.wait_for(asyncio.shield(self._connecting), self.timeout)
        except TimeoutError:
            self.log.warning(
                "NATS at %s not reachable yet (%s); retrying until it is",
                ", ".join(map(redact_url, self.servers)),
                self.last_error or "connecting",
            )

    async def _connect(self) -> None:
        try:
            await self.nc.connect(
                servers=self.servers,
                name=self.name,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=RECONNECT_WAIT,
                connect_timeout=max(1, round(self.timeout)),
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
                **self._auth,
            )
        except Exception as exc:  # the client gave up (e.g. a bad credentials file)
            self.last_error = classify(exc, self.timeout)[1]
            self.log.error("cannot connect to NATS: %s", self.last_error)
            return
        js = self.nc.jetstream(timeout=self.timeout)
        self.js = js
        self.last_error = None
        self.log.info("connected to NATS at %s", server_of(self.nc))
        if self._on_connect is not None:
            await self._on_connect(js)

    async def _on_error(self, exc: Exception) -> None:
        reason = classify(exc, self.timeout)[1]
        if reason != self.last_error:
            self.log.warning("NATS: %s", reason)
        self.last_error = reason

    async def _on_disconnected(self) -> None:
        if not self.closed:
            self.log.warning("disconnected from NATS; reconnecting")

    async def _on_reconnected(self) -> None:
        self.last_error = None
        self.log.info("reconnected to NATS at %s", server_of(self.nc))

    async def close(self) -> None:
        """Stop connecting; drain (acks and publishes still buffered go out) and close."""
        self.closed = True
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
            await asyncio.gather(self._connecting, return_exceptions=True)
        nc = self.nc
        if nc.is_connected:
            try:
                await asyncio.wait_for(nc.drain(), DRAIN_TIMEOUT)
            except Exception as exc:  # closing anyway
                self.log.debug("draining the NATS connection failed: %s", exc)
        if not nc.is_closed:
            try:
                await nc.close()
            except Exception as exc:  # e.g. the server went away meanwhile: closed anyway
                self.log.debug("closing the NATS connection failed: %s", exc)


async def ensure_stream(
    js: JetStreamContext,
    config: api.StreamConfig,
    create: bool,
    timeout: float,
    log: logging.Logger,
) -> api.StreamInfo:
    """The stream named in ``config``, created from ``config`` when missing and ``create``.

    An existing stream is never changed. Raises :class:`DeliveryError`: permanent when the
    stream is missing and may not be created (or JetStream refused), else transient."""
    name = config.name
    try:
        try:
            return await js.stream_info(str(name))
        except nats.js.errors.NotFoundError:
            if not create:
                raise DeliveryError(
                    f"stream {name} does not exist (and stream.create is false)", permanent=True
                ) from None
            info = await js.add_stream(config)
            log.info("created stream %s", name)
            return info
    except DeliveryError:
        raise
    except Exception as exc:
        permanent, reason = classify(exc, timeout, "answer")
        raise DeliveryError(f"stream {name}: {reason}", permanent=permanent) from None
