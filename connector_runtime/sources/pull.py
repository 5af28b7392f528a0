"""Running pull sources: one supervised task per connector whose source type has ``pull``.

:class:`PullRunner` starts the source's task with the connector's last committed checkpoint
(:mod:`connector_runtime.spool.checkpoints`), restarts it with backoff when it raises, and
cancels it when the runtime stops. Its state and the problems the source reports through
:class:`~connector_runtime.records.PullStatus` show in ``/readyz`` and ``/metrics``.

A failure is logged as one line an operator can act on (the exception's type, its text and
where it was raised) and its traceback at debug level; both, and every problem reason, go
through :func:`~connector_runtime.config.secrets.redact_text` with the connector's secret
values first, so a plugin that quotes its credentials in an error leaks them nowhere, also
in a runtime embedded without the CLI's redacting log filter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import PurePath
from typing import Any

from connector_runtime.config.secrets import Redactor, redact_text
from connector_runtime.errors import ConnectorRuntimeError
from connector_runtime.observe.stats import ConnectorStats
from connector_runtime.records import Ingest, PullContext, PullTask
from connector_runtime.spool import checkpoints
from connector_runtime.spool.store import Spool

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 60.0
HEALTHY_RUN = 60.0
"""A task that ran this long before failing is restarted after INITIAL_BACKOFF again."""
STATES = ("running", "backoff", "stopped")
MAX_ERROR_TEXT = 500
"""Characters of an exception's text that the failure line keeps."""


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
                self._log_failure(exc, backoff)
                self.stats.pull_state = "backoff"
                await asyncio.sleep(backoff)
                backoff = min(MAX_BACKOFF, backoff * 2)
                continue
            self.stats.pull_state = "stopped"
            self.log.info("pull source finished")
            return

    def _log_failure(self, exc: Exception, backoff: float) -> None:
        clean = self.clean
        kind = type(exc).__name__
        try:
            text = " ".join(clean(str(exc)).split()) or "(no message)"
        except Exception:  # a plugin's exception whose __str__ raises
            text = "(its text cannot be shown)"
        if len(text) > MAX_ERROR_TEXT:
            text = text[:MAX_ERROR_TEXT] + "…"
        self.log.error(
            "pull source failed (%s: %s, raised at %s); restarting in %gs",
            kind,
            text,
            raised_at(exc),
            backoff,
            extra={"fields": {"connector": self.connector, "error_type": kind}},
        )
        if not isinstance(exc, ConnectorRuntimeError) and self.log.isEnabledFor(logging.DEBUG):
            # not one of ours: likely a bug in the source, so where it happened matters
            self.log.debug(
                "pull source failure, traceback:\n%s",
                clean("".join(traceback.format_exception(exc)).rstrip()),
            )

    async def stop(self) -> None:
        """Cancel the task and wait for it (a submit under way commits all or nothing)."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        self.stats.pull_state = "stopped"


def raised_at(exc: BaseException) -> str:
    """``file.py:12 in function``: the innermost frame of ``exc``'s traceback."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "an unknown place"
    last = frames[-1]
    return f"{PurePath(last.filename).name}:{last.lineno} in {last.name}"


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
    return PullContext(connector, config, default_source, ingest, None, status, log)
