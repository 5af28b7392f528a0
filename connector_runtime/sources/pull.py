"""Running pull sources: one supervised task per connector whose source type has ``pull``.

:class:`PullRunner` starts the source's task with the connector's last committed checkpoint
(:mod:`connector_runtime.spool.checkpoints`), restarts it with backoff when it raises, and
cancels it when the runtime stops. Its state and the problems the source reports through
:class:`~connector_runtime.records.PullStatus` show in ``/readyz`` and ``/metrics``.

A failure is logged by :func:`~connector_runtime.sources.supervise.log_failure`; it, and
every problem reason, go through :func:`~connector_runtime.config.secrets.redact_text` with
the connector's secret values first, so a plugin that quotes its credentials in an error
leaks them nowhere, also in a runtime embedded without the CLI's redacting log filter.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from connector_runtime.config.secrets import Redactor, redact_text
from connector_runtime.observe.stats import ConnectorStats
from connector_runtime.records import Ingest, PullContext, PullTask
from connector_runtime.sources.supervise import cancel, log_failure, supervise
from connector_runtime.spool import checkpoints
from connector_runtime.spool.store import Spool

STATES = ("running", "backoff", "stopped")


class Status:
    """A connector's :class:`~connector_runtime.records.PullStatus`."""

    def __init__(
        self, stats: ConnectorStats, log: logging.Logger, clean: Callable[[str], str] = str
    ) -> None:
        self.stats = stats
        self.log = log
        self.clean = clean

    def problem(self, kind: str, reason: str) -> None:
        reason = self.clean(reason)
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
        clean: Callable[[str], str] = str,
    ) -> None:
        self.connector = connector
        self.clean = clean
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
        name = self.connector

        async def attempt() -> None:
            checkpoint = await self.spool.aread(lambda conn: checkpoints.read(conn, name))
            await self.task(replace(self.context, checkpoint=checkpoint, log=self.log))

        def failed(exc: Exception, backoff: float) -> None:
            self.stats.pull_restarts += 1
            fields = {"connector": name}
            log_failure(self.log, "pull source", exc, backoff, self.clean, fields)

        def state(now: str) -> None:
            self.stats.pull_state = now

        await supervise(attempt, failed, state)
        self.log.info("pull source finished")

    async def stop(self) -> None:
        """Cancel the task and wait for it (a submit under way commits all or nothing)."""
        runner, self._runner = self._runner, None
        await cancel(runner)
        self.stats.pull_state = "stopped"


def redacting(secrets: Iterable[str]) -> Callable[[str], str]:
    """What :class:`Status` and :class:`PullRunner` pass text through: ``secrets`` (the
    connector's secret values) and credentials hidden (:func:`redact_text`)."""
    redactor = Redactor(secrets)
    return lambda text: redact_text(text, redactor)


def make_context(
    connector: str,
    config: Mapping[str, Any],
    default_source: str,
    ingest: Ingest,
    stats: ConnectorStats,
    log: logging.Logger,
    clean: Callable[[str], str] = str,
) -> PullContext:
    """The template context (``checkpoint`` is filled in at each start)."""
    status = Status(stats, log, clean)
    return PullContext(connector, config, default_source, ingest, None, status, log, stats)
