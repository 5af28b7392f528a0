"""A target's status and Retry-After travel as fields, from the answer to the dispatcher:
a real HTTP target answering a real receiver, a real dispatcher over a real SQLite spool.
What is measured is the next attempt the dispatcher scheduled (the spool row's
``next_attempt``) and the dead-letter row's ``status``, never the time things took."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from email.utils import formatdate
from pathlib import Path

import pytest

from connector_runtime import SendResult
from connector_runtime.config.model import RetrySpec
from connector_runtime.delivery.dispatcher import Dispatcher
from connector_runtime.events import Event, make_event
from connector_runtime.observe.stats import ConnectorStats
from connector_runtime.records import Target, TargetContext
from connector_runtime.spool.queues import SpoolQueue
from connector_runtime.spool.store import Spool
from connector_runtime.targets.http.target import create as create_http_target
from connector_runtime.testing import LoopThread, RecordingTarget

LOG = logging.getLogger("test.target_facts")


def one_row(tmp_path: Path, events: int = 2) -> tuple[Spool, SpoolQueue]:
    spool = Spool(tmp_path / "spool.db")
    batch = [make_event(id=f"e{i}", source="/s", type="t", data=b"{}") for i in range(events)]
    spool.submit(spool.append_job("c", batch, True)).result(5)
    queue = SpoolQueue(spool, "c")
    queue.load_depth()
    return spool, queue


def one_step(
    cr_loop: LoopThread,
    queue: SpoolQueue,
    target: Target,
    retry: RetrySpec = RetrySpec(),  # noqa: B008 - frozen
) -> None:
    """One dispatcher step: one attempt of the queue's head, settled in the spool."""

    async def scenario() -> None:
        await target.start()
        dispatcher = Dispatcher("c", queue, target, retry, 10.0, LOG, ConnectorStats())
        try:
            assert await dispatcher.step()
            await dispatcher.stop()
        finally:
            await target.close()

    cr_loop.run(scenario())


def http_target(url: str, mode: str) -> Target:
    return create_http_target({"url": url, "mode": mode}, TargetContext("c", LOG))


def scheduled(spool: Spool) -> tuple[float, int]:
    """The head row's next attempt (epoch seconds) and its attempts so far."""
    return spool.read(
        lambda c: c.execute("SELECT next_attempt, attempts FROM batches ORDER BY seq").fetchone()
    )


def dead_letters(spool: Spool) -> list[tuple[str, int | None, str]]:
    return spool.read(
        lambda c: c.execute(
            "SELECT event_id, status, reason FROM dead_letters ORDER BY event_id"
        ).fetchall()
    )


def in_seconds(seconds: float) -> str:
    return formatdate(time.time() + seconds, usegmt=True)  # an HTTP-date (IMF-fixdate)


@pytest.mark.parametrize("mode", ["binary", "batch"])
@pytest.mark.parametrize("status", [503, 429])
@pytest.mark.parametrize("header", ["7", "in 9 s"])
def test_retry_after_of_a_503_or_429_delays_the_next_attempt_at_least_that_long(
    tmp_path: Path,
    cr_loop: LoopThread,
    recording_target: RecordingTarget,
    mode: str,
    status: int,
    header: str,
):
    """``Retry-After: 7`` (delta-seconds) or an HTTP-date 9 s ahead (whole seconds, so at
    least 8 s once formatted): the retry is scheduled at least 7 s after the attempt, where
    the initial backoff alone would give at most 0.5 s."""
    spool, queue = one_row(tmp_path)
    recording_target.status = status
    recording_target.headers = {"Retry-After": in_seconds(9) if header == "in 9 s" else header}
    before = time.time()
    one_step(cr_loop, queue, http_target(recording_target.url, mode))
    next_attempt, attempts = scheduled(spool)
    assert attempts == 1
    assert next_attempt - before >= 7.0
    assert next_attempt - before <= 10.0
    spool.close()


@pytest.mark.parametrize("mode", ["binary", "batch"])
def test_without_retry_after_the_computed_backoff_applies(
    tmp_path: Path, cr_loop: LoopThread, recording_target: RecordingTarget, mode: str
):
    spool, queue = one_row(tmp_path)
    recording_target.status = 503
    one_step(cr_loop, queue, http_target(recording_target.url, mode))
    after = time.time()
    next_attempt, attempts = scheduled(spool)
    assert attempts == 1
    assert next_attempt - after <= 0.5  # initialBackoff 500ms, with "equal jitter"
    spool.close()


@pytest.mark.parametrize("header", ["120", "in 120 s"])
def test_retry_after_beyond_max_backoff_waits_max_backoff(
    tmp_path: Path, cr_loop: LoopThread, recording_target: RecordingTarget, header: str
):
    spool, queue = one_row(tmp_path)
    recording_target.status = 503
    recording_target.headers = {"Retry-After": in_seconds(120) if header != "120" else "120"}
    before = time.time()
    retry = RetrySpec(max_backoff=30.0)
    one_step(cr_loop, queue, http_target(recording_target.url, "binary"), retry)
    after = time.time()
    next_attempt, _ = scheduled(spool)
    assert before + 30.0 <= next_attempt <= after + 30.0
    spool.close()


@pytest.mark.parametrize("header", ["0", "soon", "-3", "Sun, 06 Nov 1994 08:49:37 GMT"])
def test_a_retry_after_of_nothing_or_nonsense_leaves_the_computed_backoff(
    tmp_path: Path, cr_loop: LoopThread, recording_target: RecordingTarget, header: str
):
    spool, queue = one_row(tmp_path)
    recording_target.status = 503
    recording_target.headers = {"Retry-After": header}
    one_step(cr_loop, queue, http_target(recording_target.url, "binary"))
    after = time.time()
    next_attempt, _ = scheduled(spool)
    assert next_attempt - after <= 0.5
    spool.close()


def test_retry_after_of_another_status_is_not_honoured(
    tmp_path: Path, cr_loop: LoopThread, recording_target: RecordingTarget
):
    """Only 429 and 503 say when to come back; a 500's Retry-After is not believed."""
    spool, queue = one_row(tmp_path)
    recording_target.status = 500
    recording_target.headers = {"Retry-After": "7"}
    one_step(cr_loop, queue, http_target(recording_target.url, "binary"))
    after = time.time()
    assert scheduled(spool)[0] - after <= 0.5
    spool.close()


@pytest.mark.parametrize("mode", ["binary", "batch"])
def test_a_400_is_a_dead_letter_with_status_400(
    tmp_path: Path, cr_loop: LoopThread, recording_target: RecordingTarget, mode: str
):
    spool, queue = one_row(tmp_path)
    recording_target.status = 400
    one_step(cr_loop, queue, http_target(recording_target.url, mode))
    assert dead_letters(spool) == [
        ("e0", 400, "HTTP 400: rejected by test target"),
        ("e1", 400, "HTTP 400: rejected by test target"),
    ]
    assert scheduled(spool) is None  # nothing left to retry
    spool.close()


def test_exhausted_attempts_keep_the_last_status(
    tmp_path: Path, cr_loop: LoopThread, recording_target: RecordingTarget
):
    spool, queue = one_row(tmp_path, events=1)
    recording_target.status = 503
    one_step(cr_loop, queue, http_target(recording_target.url, "binary"), RetrySpec(attempts=1))
    assert dead_letters(spool) == [
        ("e0", 503, "gave up after 1 attempts: HTTP 503: rejected by test target")
    ]
    spool.close()


class Answering:
    """A plugin's target (not HTTP): answers every call with ``result``."""

    max_batch = 10

    def __init__(self, result: SendResult) -> None:
        self.result = result

    async def start(self) -> None:
        pass

    async def send(self, events: Sequence[Event]) -> SendResult:
        return self.result

    async def close(self) -> None:
        pass


def test_a_plugin_target_gives_status_and_retry_after_as_fields(
    tmp_path: Path, cr_loop: LoopThread
):
    spool, queue = one_row(tmp_path)
    answer = SendResult(
        rejected={0: "refused"}, retry={1: "busy"}, status={0: 451, 1: 503}, retry_after=7.0
    )
    before = time.time()
    one_step(cr_loop, queue, Answering(answer))
    assert dead_letters(spool) == [("e0", 451, "refused")]
    assert scheduled(spool)[0] - before >= 7.0
    spool.close()


def test_a_reason_is_never_parsed_for_a_status(tmp_path: Path, cr_loop: LoopThread):
    """A reason that reads like an HTTP answer gives no status: the field does."""
    spool, queue = one_row(tmp_path, events=1)
    one_step(cr_loop, queue, Answering(SendResult(rejected={0: "HTTP 400: looks like one"})))
    assert dead_letters(spool) == [("e0", None, "HTTP 400: looks like one")]
    spool.close()
