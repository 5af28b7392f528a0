"""``run --workers N`` serves one /metrics (and /readyz) for the whole process group: the
worker a scrape reaches asks its siblings and adds up (issue 15, part 4)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from connector_runtime_auth0.testing import batch, jsonl
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from connector_runtime.observe.merge import from_wire, merge, to_wire
from connector_runtime.serve.group import WorkerGroup
from connector_runtime.testing import connector_doc, free_port, post
from tests.procs import cli, write_manifest

TOKEN = "admin-token-for-the-workers-test"
REQUESTS, PER_REQUEST = 120, 5
K = REQUESTS * PER_REQUEST


class Group:
    """``connector-runtime run --workers 2`` in a subprocess."""

    def __init__(self, tmp_path: Path, admin: bool) -> None:
        self.port, self.admin_port = free_port(), free_port()
        self.data = tmp_path / "data"
        docs: list[dict[str, Any]] = [connector_doc("w", "auth0", {}, {"type": "stdout"})]
        if admin:
            listen = {"host": "127.0.0.1", "port": self.admin_port}
            spec = {"admin": {"listen": listen, "token": TOKEN}}
            docs.append({"apiVersion": "connector-runtime/v1", "kind": "Runtime", "spec": spec})
        manifest = write_manifest(tmp_path / "m.yaml", docs)
        self.log_path = tmp_path / "err.log"
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "connector_runtime.cli", "run", str(manifest)),
                    *("--port", str(self.port), "--workers", "2", "--data-dir", str(self.data)),
                    *("--log-format", "text"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.ops_url = f"http://127.0.0.1:{self.admin_port if admin else self.port}"
        self.headers = {"Authorization": f"Bearer {TOKEN}"} if admin else {}

    def wait_started(self, timeout: float = 30) -> None:
        """Both workers listen on the webhook port and on their sockets (so no scrape runs
        before a sibling could answer it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sockets = [self.data / f"shard-{i}" / "worker.sock" for i in (0, 1)]
            up = all(s.exists() for s in sockets) and "listening on" in self.log()
            if up and len(self.workers()) == 2 and listening(self.port) == 2:
                return
            assert self.proc.poll() is None, self.log()
            time.sleep(0.05)
        raise AssertionError(f"workers did not start: {self.log()}")

    def workers(self) -> dict[int, int]:
        """Worker index → pid."""
        out = {}
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        for pid in map(int, children.split()):
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"--worker-index" in args:
                out[int(args[args.index(b"--worker-index") + 1])] = pid
        return out

    def log(self) -> str:
        return self.log_path.read_text()

    def scrape(self) -> dict[str, Any]:
        r = post(self.ops_url + "/metrics", method="GET", headers=self.headers)
        assert r.status == 200, r.body
        return {f.name: f for f in text_string_to_metric_families(r.body.decode())}

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)


def listening(port: int) -> int:
    """Sockets listening on ``port`` (each worker binds its own, with SO_REUSEPORT)."""
    found = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            found += state == "0A" and int(local.rsplit(":", 1)[1], 16) == port
    return found


@pytest.fixture
def group_factory(tmp_path: Path) -> Iterator[Any]:
    made: list[Group] = []

    def make(admin: bool) -> Group:
        made.append(Group(tmp_path, admin))
        made[-1].wait_started()
        return made[-1]

    yield make
    for g in made:  # SIGTERM: the supervisor stops its workers (SIGKILL would orphan them)
        if g.proc.poll() is None:
            workers = list(g.workers().values())
            g.proc.send_signal(signal.SIGTERM)
            try:
                g.proc.wait(30)
            except subprocess.TimeoutExpired:
                for pid in [g.proc.pid, *workers]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                g.proc.wait(10)


def value(families: dict[str, Any], sample: str, **labels: str) -> float:
    found = [
        s.value
        for family in families.values()
        for s in family.samples
        if s.name == sample and s.labels == labels
    ]
    assert len(found) == 1, (sample, labels, found)
    return float(found[0])


def accepted(families: dict[str, Any]) -> float:
    return sum(
        s.value
        for s in families["connector_runtime_records"].samples
        if s.labels.get("outcome") == "accepted"
    )


def post_records(port: int) -> None:
    for n in range(REQUESTS):  # a new connection each: the kernel spreads them over workers
        body = jsonl(batch(PER_REQUEST, f"r{n:03d}-"))
        assert post(f"http://127.0.0.1:{port}/w", body).status == 200


def per_shard_accepted(data: Path) -> list[int]:
    return [
        json.loads(cli("spool", "stats", "--data-dir", str(data / s), "--json").stdout)[0][
            "accepted"
        ]
        for s in ("shard-0", "shard-1")
    ]


@pytest.mark.parametrize("where", ["webhook port", "admin listener"])
def test_every_scrape_counts_what_every_worker_accepted(group_factory, where: str):
    group = group_factory(admin=where == "admin listener")
    post_records(group.port)
    shards = per_shard_accepted(group.data)
    assert sum(shards) == K and all(n > 0 for n in shards), shards  # both workers took some
    seen = []
    for _ in range(20):  # on the webhook port each scrape reaches either worker
        found = group.scrape()
        seen.append(accepted(found))
        assert value(found, "connector_runtime_requests_total", connector="w", status="200") == (
            REQUESTS
        )
        count = "connector_runtime_request_duration_seconds_count"
        assert value(found, count, connector="w") == REQUESTS
        assert value(found, "connector_runtime_records_received_total", connector="w") == K
        assert value(found, "connector_runtime_workers_missing") == 0
        assert value(found, "connector_runtime_ready") == 1
        rss = found["process_resident_memory_bytes"].samples
        assert sorted(s.labels["worker"] for s in rss) == ["0", "1"]
    print(f"{where}: K={K} in {REQUESTS} requests, per shard {shards}, 20 scrapes saw {seen}")
    assert seen == [K] * 20
    ready = post(group.ops_url + "/readyz", method="GET", headers=group.headers)
    assert (ready.status, ready.json()) == (200, {"ready": True, "reasons": []})
    assert group.stop() == 0


def test_a_worker_that_does_not_answer_is_counted_and_its_share_never_subtracted(
    group_factory,
):
    group = group_factory(admin=True)
    post_records(group.port)
    worker1 = group.workers()[1]
    os.kill(worker1, signal.SIGSTOP)  # alive, holding its socket, answering nothing
    try:
        found = group.scrape()  # worker 0 serves the admin listener and asks worker 1
        assert value(found, "connector_runtime_workers_missing") == 1
        assert value(found, "connector_runtime_ready") == 0
        # Counters of the group without worker 1 would go down: they are left out instead.
        assert "connector_runtime_records" not in found
        assert "connector_runtime_request_duration_seconds" not in found
        assert value(found, "connector_runtime_spool_depth_events", connector="w") >= 0
        rss = found["process_resident_memory_bytes"].samples
        assert [s.labels["worker"] for s in rss] == ["0"]
        ready = post(group.ops_url + "/readyz", method="GET", headers=group.headers)
        assert ready.status == 503
        assert ready.json()["reasons"] == ["worker 1 did not answer"]
    finally:
        os.kill(worker1, signal.SIGCONT)
    found = group.scrape()
    assert accepted(found) == K
    assert value(found, "connector_runtime_workers_missing") == 0
    assert group.stop() == 0


def test_siblings_answer_over_unix_sockets_even_under_a_long_data_dir(tmp_path: Path):
    data = tmp_path / ("d" * 60) / ("e" * 60)  # socket paths past the kernel's 108 bytes
    assert len(str(data / "shard-0" / "worker.sock")) > 108

    async def scenario() -> tuple[Any, Any]:
        groups = [WorkerGroup(data, i, 3, timeout=0.5) for i in range(3)]
        for g in groups[:2]:  # worker 2 never starts
            await g.start({"readiness": lambda g=g: _answer([f"from {g.index}"])})
        try:
            return await groups[0].ask("readiness"), await groups[1].ask("nonsense")
        finally:
            for g in groups[:2]:
                await g.close()

    (answers, missing), (unknown, _) = asyncio.run(scenario())
    assert (answers, missing) == ({1: ["from 1"]}, [2])
    assert unknown == {0: {"error": "unknown request"}}
    assert not list(data.glob("shard-*/worker.sock"))  # removed on close


async def _answer(value: Any) -> Any:
    return value


def _family(name: str, kind: str, *samples: tuple[str, dict[str, str], float]) -> Metric:
    family = Metric(name, "help", kind)
    for sample in samples:
        family.add_sample(*sample)
    return family


def test_merge_sums_counters_combines_gauges_and_labels_process_families():
    def worker(accepted: float, age: float, ready: float, rss: float) -> list[Metric]:
        c = {"connector": "w"}
        return [
            _family(
                "connector_runtime_records",
                "counter",
                ("connector_runtime_records_total", {**c, "outcome": "accepted"}, accepted),
            ),
            _family(
                "connector_runtime_request_duration_seconds",
                "histogram",
                ("connector_runtime_request_duration_seconds_count", c, accepted),
                ("connector_runtime_request_duration_seconds_created", c, 100 + age),
            ),
            _family(
                "connector_runtime_spool_oldest_age_seconds",
                "gauge",
                ("connector_runtime_spool_oldest_age_seconds", c, age),
            ),
            _family("connector_runtime_spool_depth_events", "gauge", ("x", c, 2)),
            _family("connector_runtime_ready", "gauge", ("connector_runtime_ready", {}, ready)),
            _family(
                "connector_runtime_workers_missing",
                "gauge",
                ("connector_runtime_workers_missing", {}, 0),
            ),
            _family(
                "process_resident_memory_bytes",
                "gauge",
                ("process_resident_memory_bytes", {}, rss),
            ),
        ]

    def samples(families: list[Metric]) -> dict[tuple[str, tuple[Any, ...]], float]:
        return {(s.name, tuple(s.labels.items())): s.value for f in families for s in f.samples}

    merged = samples(merge([(0, worker(3, 5, 1, 10)), (1, worker(4, 9, 0, 20))], missing=0))
    w = (("connector", "w"),)
    assert merged == {
        ("connector_runtime_records_total", (*w, ("outcome", "accepted"))): 7,
        ("connector_runtime_request_duration_seconds_count", w): 7,
        ("connector_runtime_request_duration_seconds_created", w): 105,
        ("connector_runtime_spool_oldest_age_seconds", w): 9,
        ("x", w): 4,
        ("connector_runtime_ready", ()): 0,
        ("connector_runtime_workers_missing", ()): 0,
        ("process_resident_memory_bytes", (("worker", "0"),)): 10,
        ("process_resident_memory_bytes", (("worker", "1"),)): 20,
    }
    wire = from_wire(json.loads(json.dumps(to_wire(worker(3, 5, 1, 10)))))
    partial = samples(merge([(0, wire)], missing=1))
    assert partial == {
        ("connector_runtime_spool_oldest_age_seconds", w): 5,
        ("x", w): 2,
        ("connector_runtime_ready", ()): 0,
        ("connector_runtime_workers_missing", ()): 1,
        ("process_resident_memory_bytes", (("worker", "0"),)): 10,
    }
