"""Follow one Auth0 delivery through the runtime's modules and count the hops.

Starts an in-process runtime (the testing kit's) with one ``auth0`` connector, ``ack:
durable`` and a batch ``http`` target, warms it with one delivery, then records every Python
call made in the runtime's and the Auth0 plugin's modules (all threads) while one more
delivery of two records goes from the socket to the target. Consecutive calls in the same
module are one stay; a hop is a move from one module to another. Prints the modules in the
order they were first entered, the number of hops, and how many hops went back into a
module already visited.

    python bench/hops.py            # this checkout
    ../other/.venv/bin/python bench/hops.py   # another version, for a before/after

Not part of ``make test``: it reads the code's shape, not its behaviour.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from types import FrameType
from typing import Any

from connector_runtime.testing import (
    LoopThread,
    RecordingTarget,
    connector_doc,
    post,
    start_runtime,
)

PREFIXES = ("connector_runtime", "connector_runtime_auth0")


def body(prefix: str) -> bytes:
    lines = []
    for i in range(2):
        log_id = f"{prefix}{i:06d}"
        data = {"type": "s", "date": "2025-01-01T00:00:00Z", "user_id": "auth0|x", "log_id": log_id}
        lines.append(json.dumps({"log_id": log_id, "data": data}))
    return ("\n".join(lines) + "\n").encode()


def main() -> None:
    loop = LoopThread()
    target = RecordingTarget(loop).start()
    doc = connector_doc(
        "a0",
        "auth0",
        {},
        {"type": "http", "config": {"url": target.url, "mode": "batch"}},
        delivery={"ack": "durable"},
    )
    running = start_runtime(loop, [doc])
    url = running.connector_url("a0")
    assert post(url, body("90001")).status == 200
    target.wait_for(2)

    trail: list[str] = []
    lock = threading.Lock()

    def profile(frame: FrameType, event: str, _arg: Any) -> None:
        if event != "call":
            return
        module = frame.f_globals.get("__name__", "")
        if module.startswith(PREFIXES) and not module.startswith("connector_runtime.testing"):
            with lock:
                if not trail or trail[-1] != module:
                    trail.append(module)

    spool = running.runtime.spool
    assert spool is not None

    def in_writer(on: Any) -> Any:
        def job(_conn: Any) -> None:
            sys.setprofile(on)

        return spool.run(job)

    threading.setprofile(profile)
    sys.setprofile(profile)
    loop.run(_set_profile(profile))
    loop.run(in_writer(profile))
    assert post(url, body("90002")).status == 200
    target.wait_for(4)
    time.sleep(0.5)  # the settle after the target's answer
    loop.run(in_writer(None))
    loop.run(_set_profile(None))
    sys.setprofile(None)
    threading.setprofile(None)  # type: ignore[arg-type]

    seen: list[str] = []
    back = 0
    for module in trail:
        if module in seen:
            back += 1
        else:
            seen.append(module)
    print(f"{len(seen)} modules, {len(trail) - 1} hops, {back} of them back into a module")
    for module in seen:
        print("  ", module)
    stages = [_stage(m) for m in trail]
    path = [s for i, s in enumerate(stages) if i == 0 or s != stages[i - 1]]
    print(f"by folder: {len(set(path))} folders or top-level modules, {len(path) - 1} hops")
    print("  ", " > ".join(path))
    running.stop()
    target.stop()
    loop.close()


def _stage(module: str) -> str:
    """The folder (or top-level module) of the runtime a module belongs to."""
    if module.startswith("connector_runtime_auth0"):
        return "auth0"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


async def _set_profile(profile: Any) -> None:
    sys.setprofile(profile)


if __name__ == "__main__":
    main()
