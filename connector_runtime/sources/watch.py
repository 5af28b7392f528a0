"""Running a connector's watchers (:attr:`~connector_runtime.records.SourceType.watchers`):
background tasks beside its routes or its pull task, supervised like a pull task.

:class:`Reporter` is the :class:`~connector_runtime.records.WatchStatus` a watcher reports
through; what it reports lands in the connector's
:class:`~connector_runtime.observe.stats.WatchHealth`, which ``/readyz`` (as warnings),
``/metrics`` and the status page read.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from connector_runtime.observe.stats import Family, WatchHealth
from connector_runtime.records import WatchContext, Watcher
from connector_runtime.sources.supervise import cancel, log_failure, supervise

PREFIX = "connector_runtime_"
_NAME = re.compile(r"[a-z][a-z0-9_]*")


class Reporter:
    """One watcher's :class:`~connector_runtime.records.WatchStatus`."""

    def __init__(
        self,
        connector: str,
        watcher: str,
        health: WatchHealth,
        clean: Callable[[str], str] = str,
    ) -> None:
        self.connector = connector
        self.watcher = watcher
        self.health = health
        self.clean = clean

    def report(self, state: str, warning: str | None = None) -> None:
        self.health.states[self.watcher] = self.clean(state)
        if warning is None:
            self.health.warnings.pop(self.watcher, None)
        else:
            self.health.warnings[self.watcher] = self.clean(warning)

    def _sample(
        self, kind: str, name: str, documentation: str, labels: Mapping[str, str]
    ) -> tuple[Family, tuple[tuple[str, str], ...]]:
        if not _NAME.fullmatch(name) or name.endswith("_total"):
            raise ValueError(f"metric name {name!r}: lower-case letters, digits and _ only")
        full = PREFIX + name
        family = self.health.families.setdefault(full, Family(kind, documentation))
        if family.kind != kind:
            raise ValueError(f"metric {full} is a {family.kind}, not a {kind}")
        key = tuple(sorted({**labels, "connector": self.connector}.items()))
        return family, key

    def gauge(self, name: str, documentation: str, labels: Mapping[str, str], value: float) -> None:
        family, key = self._sample("gauge", name, documentation, labels)
        family.samples[key] = float(value)

    def count(
        self, name: str, documentation: str, labels: Mapping[str, str], amount: float = 1
    ) -> None:
        family, key = self._sample("counter", name, documentation, labels)
        family.samples[key] = family.samples.get(key, 0.0) + amount


class WatchRunner:
    """Runs one watcher of one connector until :meth:`stop`, restarting it with backoff."""

    def __init__(
        self,
        connector: str,
        watcher: Watcher,
        config: Mapping[str, Any],
        health: WatchHealth,
        log: logging.Logger,
        clean: Callable[[str], str] = str,
    ) -> None:
        self.watcher = watcher
        self.health = health
        self.log = log
        self.clean = clean
        reporter = Reporter(connector, watcher.name, health, clean)
        self.context = WatchContext(connector, config, reporter, log)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._supervise())

    async def _supervise(self) -> None:
        name = self.watcher.name

        async def attempt() -> None:
            await self.watcher.run(self.context)

        def failed(exc: Exception, backoff: float) -> None:
            self.health.restarts[name] += 1
            fields = {"connector": self.context.connector, "watcher": name}
            log_failure(self.log, f"watcher {name}", exc, backoff, self.clean, fields)

        await supervise(attempt, failed)
        self.log.info("watcher %s finished", name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel(task)
