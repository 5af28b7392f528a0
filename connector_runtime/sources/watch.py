"""Running a connector's watchers (:attr:`~connector_runtime.records.SourceType.watchers`):
background tasks beside its routes or its pull task, supervised like a pull task.

:class:`Reporter` is the :class:`~connector_runtime.records.WatchStatus` a watcher reports
through; what it reports lands in the connector's
:class:`~connector_runtime.observe.stats.WatchHealth`, which ``/readyz`` (as warnings),
``/metrics`` and the status page read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Mapping
from typing import Any

from connector_runtime.observe.stats import Family, WatchHealth
from connector_runtime.records import WatchContext, Watcher
from connector_runtime.sources.pull import HEALTHY_RUN, INITIAL_BACKOFF, MAX_BACKOFF

PREFIX = "connector_runtime_"
_NAME = re.compile(r"[a-z][a-z0-9_]*")


class Reporter:
    """One watcher's :class:`~connector_runtime.records.WatchStatus`."""

    def __init__(self, connector: str, watcher: str, health: WatchHealth) -> None:
        self.connector = connector
        self.watcher = watcher
        self.health = health

    def report(self, state: str, warning: str | None = None) -> None:
        self.health.states[self.watcher] = state
        if warning is None:
            self.health.warnings.pop(self.watcher, None)
        else:
            self.health.warnings[self.watcher] = warning

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
    ) -> None:
        self.watcher = watcher
        self.health = health
        self.log = log
        reporter = Reporter(connector, watcher.name, health)
        self.context = WatchContext(connector, config, reporter, log)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._supervise())

    async def _supervise(self) -> None:
        backoff, name = INITIAL_BACKOFF, self.watcher.name
        while True:
            started = time.monotonic()
            try:
                await self.watcher.run(self.context)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.health.restarts[name] += 1
                if time.monotonic() - started >= HEALTHY_RUN:
                    backoff = INITIAL_BACKOFF
                self.log.error(
                    "watcher %s failed (%s: %s); starting it again in %gs",
                    name,
                    type(exc).__name__,
                    exc,
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(MAX_BACKOFF, backoff * 2)
                continue
            self.log.info("watcher %s finished", name)
            return

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
