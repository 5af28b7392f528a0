"""Running pull sources: one supervised task per connector whose source type has ``pull``.

:class:`PullRunner` starts the source's task with the connector's last committed checkpoint
(:mod:`connector_runtime.spool.checkpoints`), restarts it with backoff when it raises, and
cancels it when the runtime stops. Its state and the problems the source reports through
:class:`~connector_runtime.records.PullStatus` show in ``/readyz`` and ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from connector_runtime.observe.stats import ConnectorStats
from connector_runtime.records import Ingest, PullContext, PullTask
from connector_runtime.spool import checkpoints
from connector_runtime.spool.store import Spool

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 60.0
HEALTHY_RUN = 60.0
"""A task that ran this long before failing is restarted after INITIAL_BACKOFF again."""
STATES = ("running", "backoff", "stopped")


class Status:
    """A connector's :class:`~connector_runtime.records.PullStatus`."""

    def __init__(self, stats: ConnectorStats, log: logging.Logger) -> None:
        self.stats = stats
        self.log = log

    def problem(self, kind: str, reason: str) -> None:
        self.stats.pull_errors[kind] += 1
        if reason != self.stats.pull_problem:
            self.log.warning("pull source: %s", reason)
        self.stats.pull_problem = reason

    def ok(self) -> None:
        if self.stats.pull_problem is not None:
            self.log.info("pull source recovered")
        self.stats.pull_problem = None


class PullRunner:
    """Runs one connector's pull task until :meth:`stop`."""

    def __init__(
        self,
        connector: str,
        task: PullTask,
        context: PullContext,
        spool: Spool,
        stats: ConnectorStats,
        log: logging.Logger,
    ) -> None:
        self.connector = connector
        self.task = task
        self.context = context
        self.spool = spool
        self.stats = stats
        self.log = log
        self._runner: asyncio.Task[None] | None = None

    async def prepare(self) -> None:
        """Create the checkpoints table (before the first task reads it)."""
        await self.spool.run(checkpoints.create)

    def start(self) -> None:
        self._runner = asyncio.get_running_loop().create_task(self._supervise())

    async def _supervise(self) -> None:
        backoff = INITIAL_BACKOFF
        name = self.connector
        while True:
            self.stats.pull_state = "running"
            started = time.monotonic()
            try:
                checkpoint = await self.spool.aread(lambda conn: checkpoints.read(conn, name))
                await self.task(replace(self.context, checkpoint=checkpoint, log=self.log))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stats.pull_restarts += 1
                if time.monotonic() - started >= HEALTHY_RUN:
                    backoff = INITIAL_BACKOFF
                self.log.error(
                    "pull source failed (%s: %s); restarting in %gs",
                    type(exc).__name__,
                    exc,
                    backoff,
                )
                self.stats.pull_state = "backoff"
                await asyncio.sleep(backoff)
                backoff = min(MAX_BACKOFF, backoff * 2)
                continue
            self.stats.pull_state = "stopped"
            self.log.info("pull source finished")
            return

    async def stop(self) -> None:
        """Cancel the task and wait for it (a submit under way commits all or nothing)."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        self.stats.pull_state = "stopped"


def make_context(
    connector: str,
    config: Mapping[str, Any],
    default_source: str,
    ingest: Ingest,
    stats: ConnectorStats,
    log: logging.Logger,
) -> PullContext:
    """The template context (``checkpoint`` is filled in at each start)."""
    status = Status(stats, log)
    return PullContext(connector, config, default_source, ingest, None, status, log, stats)
