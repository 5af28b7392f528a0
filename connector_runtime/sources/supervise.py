"""Supervising a connector's long-running tasks (pull tasks and watchers): run, restart
with backoff when they raise, report what failed in one line an operator can act on.

The failure line names the exception's type, its text (on one line, cut at
``MAX_ERROR_TEXT``) and where it was raised; the traceback follows at debug level for an
exception that is not one of the runtime's own (likely a bug in the plugin). Both pass
through the connector's ``clean`` (secret values and credentials hidden) first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import PurePath
from typing import Any

from connector_runtime.errors import ConnectorRuntimeError

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 60.0
HEALTHY_RUN = 60.0
"""A task that ran this long before failing is restarted after INITIAL_BACKOFF again."""
MAX_ERROR_TEXT = 500
"""Characters of an exception's text that the failure line keeps."""


async def supervise(
    attempt: Callable[[], Awaitable[None]],
    failed: Callable[[Exception, float], None],
    state: Callable[[str], None] = lambda _: None,
) -> None:
    """Await ``attempt()`` until it returns; each time it raises, call ``failed(exc,
    backoff)``, wait ``backoff`` seconds (1 s doubling to 60 s, back to 1 s after a run of a
    minute) and start it again. ``state`` hears ``running``, ``backoff`` and ``stopped``."""
    backoff = INITIAL_BACKOFF
    while True:
        state("running")
        started = time.monotonic()
        try:
            await attempt()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if time.monotonic() - started >= HEALTHY_RUN:
                backoff = INITIAL_BACKOFF
            failed(exc, backoff)
            state("backoff")
            await asyncio.sleep(backoff)
            backoff = min(MAX_BACKOFF, backoff * 2)
            continue
        state("stopped")
        return


def log_failure(
    log: logging.Logger,
    what: str,
    exc: Exception,
    backoff: float,
    clean: Callable[[str], str],
    fields: dict[str, Any],
) -> None:
    """Log ``<what> failed (<type>: <text>, raised at <where>); restarting in <n>s``."""
    kind = type(exc).__name__
    try:
        text = " ".join(clean(str(exc)).split()) or "(no message)"
    except Exception:  # a plugin's exception whose __str__ raises
        text = "(its text cannot be shown)"
    if len(text) > MAX_ERROR_TEXT:
        text = text[:MAX_ERROR_TEXT] + "…"
    log.error(
        "%s failed (%s: %s, raised at %s); restarting in %gs",
        what,
        kind,
        text,
        raised_at(exc),
        backoff,
        extra={"fields": {**fields, "error_type": kind}},
    )
    if not isinstance(exc, ConnectorRuntimeError) and log.isEnabledFor(logging.DEBUG):
        # not one of ours: likely a bug in the plugin, so where it happened matters
        log.debug(
            "%s failure, traceback:\n%s",
            what,
            clean("".join(traceback.format_exception(exc)).rstrip()),
        )


def raised_at(exc: BaseException) -> str:
    """``file.py:12 in function``: the innermost frame of ``exc``'s traceback."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "an unknown place"
    last = frames[-1]
    return f"{PurePath(last.filename).name}:{last.lineno} in {last.name}"


async def cancel(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` (if any) and wait until it has stopped."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
