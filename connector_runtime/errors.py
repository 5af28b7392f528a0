"""Domain errors of the runtime.

Every error the runtime raises on purpose derives from ``ConnectorRuntimeError``;
the CLI is the only place that turns them into one-line messages and exit codes.

    ConnectorRuntimeError
    ├── ManifestError        a manifest cannot be read or is invalid (holds every problem)
    ├── PluginError          a plugin failed to load or answered a hook wrongly
    ├── DeliveryError        a target did not accept events
    │   └── (transient / permanent, see ``DeliveryError.permanent``)
    ├── SpoolError           the durable spool cannot be opened or written
    └── Unavailable          the runtime cannot take a request now (becomes 503 + Retry-After)

Messages never contain secret values: manifest problems are rendered after redaction.
"""

from __future__ import annotations

from dataclasses import dataclass


class ConnectorRuntimeError(Exception):
    """Base class of every error the runtime raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest: where it is and what is wrong."""

    file: str
    connector: str | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.connector:
            where += f": connector {self.connector}"
        if self.path:
            where += f": {self.path}"
        return f"{where}: {self.message}"


class ManifestError(ConnectorRuntimeError):
    """A manifest is unreadable or invalid; ``problems`` lists every finding."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class PluginError(ConnectorRuntimeError):
    """A plugin could not be loaded or broke the contract."""


class DeliveryError(ConnectorRuntimeError):
    """A target did not accept events.

    ``permanent`` means retrying the same events cannot succeed (the target rejected them,
    e.g. HTTP 400); otherwise the failure is transient (connection refused, 5xx, timeout).
    ``status`` is the target's status code when it answered one (e.g. 400, 503): the
    dead letters of these events record it. ``retry_after`` is how many seconds the target
    asked to wait before the next try (e.g. HTTP ``Retry-After`` on a 429 or 503): the
    dispatcher waits at least that long, up to the connector's ``maxBackoff``. Both are
    optional, the ``reason`` stays one line for people.
    """

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.status = status
        self.retry_after = retry_after


class SpoolError(ConnectorRuntimeError):
    """The durable spool cannot be opened or written; ``cause`` says why in a few words
    (``no space left on device``), for answers that name the spool themselves."""

    def __init__(self, message: str, cause: str | None = None) -> None:
        super().__init__(message)
        self.cause = cause or message


class Unavailable(ConnectorRuntimeError):
    """The runtime cannot take this request now; the client should retry after a while."""

    def __init__(self, reason: str, retry_after: int = 5) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = max(1, int(retry_after))
