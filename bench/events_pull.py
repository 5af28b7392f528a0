"""Auth0 Event Streams events through the pull source (``auth0-events-pull``, the Events
API's Server-Sent Events from the kit's fake) and through the push source
(``auth0-events``, one CloudEvent per POST as Auth0 sends them), in one run.

For each path and round: a fresh ``connector-runtime run`` subprocess and data dir,
delivering in batch mode to a recording target in this process; N events (default
20,000); the wall time from start (pull) or first POST (push) until the target holds all
of them, and the runtime process's CPU (user + system, from /proc) per event. Push posts
with ``--senders`` threads over keep-alive connections. Rounds alternate the order; prints
the medians as JSON.

    .venv/bin/python bench/events_pull.py [--events 20000] [--rounds 3] [--senders 16]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from connector_runtime_auth0.fake_events_api import FakeEventsAPI
from pull_backfill import cpu_seconds, start, wait_for

from connector_runtime.testing import LoopThread, RecordingTarget, connector_doc

TOKEN = "bench-token-0123456789"


def run_pull(
    api: FakeEventsAPI, target: RecordingTarget, n: int, where: Path
) -> tuple[float, float]:
    config = {
        "domain": api.url,
        "clientId": api.tenant.client_id,
        "clientSecret": api.tenant.client_secret,
        "startFrom": "earliest",
    }
    sink = {"type": "http", "config": {"url": target.url, "mode": "batch"}}
    proc, _ = start(connector_doc("pull", "auth0-events-pull", config, sink), where)
    began, cpu0 = time.monotonic(), cpu_seconds(proc.pid)
    wait_for(target, n)
    wall, cpu = time.monotonic() - began, cpu_seconds(proc.pid) - cpu0
    proc.terminate()
    proc.wait()
    return wall, cpu


def run_push(
    bodies: list[bytes], target: RecordingTarget, senders: int, where: Path
) -> tuple[float, float]:
    sink = {"type": "http", "config": {"url": target.url, "mode": "batch"}}
    proc, port = start(connector_doc("push", "auth0-events", {"token": TOKEN}, sink), where)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}

    def send(part: list[bytes]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for body in part:
            conn.request("POST", "/push", body, headers)
            answer = conn.getresponse()
            answer.read()
            assert answer.status == 200, answer.status
        conn.close()

    threads = [threading.Thread(target=send, args=(bodies[i::senders],)) for i in range(senders)]
    began, cpu0 = time.monotonic(), cpu_seconds(proc.pid)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_for(target, len(bodies))
    wall, cpu = time.monotonic() - began, cpu_seconds(proc.pid) - cpu0
    proc.terminate()
    proc.wait()
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--senders", type=int, default=16)
    args = parser.parse_args()
    loop = LoopThread()
    api = FakeEventsAPI(loop).start()
    ids = set(api.add(args.events))
    bodies = [stored.body for stored in api.events]
    target = RecordingTarget(loop).start()
    results: dict[str, list[tuple[float, float]]] = {"pull": [], "push": []}
    exact = True
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            order = ["pull", "push"] if round_ % 2 == 0 else ["push", "pull"]
            for kind in order:
                where = Path(tmp) / f"{kind}-{round_}"
                where.mkdir()
                if kind == "pull":
                    results[kind].append(run_pull(api, target, args.events, where))
                else:
                    results[kind].append(run_push(bodies, target, args.senders, where))
                got = Counter(e.id for e in target.events)
                exact = exact and set(got) == ids and all(v == 1 for v in got.values())
                target.events.clear()
    out: dict[str, object] = {"events": args.events, "rounds": args.rounds, "each_once": exact}
    for kind, runs in results.items():
        out[f"{kind}_events_per_s"] = round(statistics.median(args.events / w for w, _ in runs))
        out[f"{kind}_cpu_us_per_event"] = round(
            statistics.median(c / args.events * 1e6 for _, c in runs), 1
        )
    print(json.dumps(out, indent=2))
    target.stop()
    api.stop()
    loop.close()


if __name__ == "__main__":
    main()
