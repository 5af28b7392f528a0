"""The last warnings and errors per connector, with their times, for the status page.

A logging handler on the root logger keeps the last few records at WARNING or above of each
connector's logger (``connector_runtime.<connector>``). It runs the same redacting filters
as the handlers already installed (secrets never reach it) and does nothing for records
below WARNING: nothing on the request path."""

from __future__ import annotations

import logging
from collections import deque

KEEP = 5
MAX_MESSAGE = 300


class RecentErrors(logging.Handler):
    """Keeps the last :data:`KEEP` warnings and errors of each connector in ``names``."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.prefix = "connector_runtime."
        self.by_connector: dict[str, deque[tuple[float, str, str]]] = {
            n: deque(maxlen=KEEP) for n in names
        }

    def emit(self, record: logging.LogRecord) -> None:
        name = record.name
        if not name.startswith(self.prefix):
            return
        kept = self.by_connector.get(name[len(self.prefix) :])
        if kept is not None:
            message = record.getMessage().splitlines()[0][:MAX_MESSAGE] if record.msg else ""
            kept.append((record.created, record.levelname.lower(), message))

    def install(self) -> RecentErrors:
        """Attach to the root logger, behind the redacting filters its handlers have."""
        root = logging.getLogger()
        for handler in root.handlers:
            for f in handler.filters:
                if f not in self.filters:
                    self.addFilter(f)
        root.addHandler(self)
        return self

    def uninstall(self) -> None:
        logging.getLogger().removeHandler(self)

    def snapshot(self) -> dict[str, list[tuple[float, str, str]]]:
        """Per connector, its last warnings and errors: (unix time, level, message)."""
        return {n: list(kept) for n, kept in self.by_connector.items()}
