"""An unauthenticated flood beside authorised deliveries: what it costs the runtime.

Starts ``connector-runtime run`` (a connector with a token, a stdout-free ``http`` target on
a port nothing listens on, so events stay in the spool), then opens ``--connections``
connections at once, each sending a chunked body of ``--mib`` MiB without an
Authorization header, while one client posts authorised deliveries of 10 records in a
loop. Prints the runtime's RSS (from ``/proc``) before, at its peak during, and 2 s after
the flood; the answers the flood clients read back; and the authorised answers.

    python bench/flood.py                       # 300 x 15 MiB
    python bench/flood.py --connections 30      # the size that was first reported

Loopback only; every loop is bounded by the flood's size.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

TOKEN = "flood-bench-token-0123456789abcdef"
MiB = 1024 * 1024


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def status_of(sock: socket.socket) -> int:
    sock.settimeout(30)
    raw = b""
    try:
        while b"\r\n" not in raw:
            data = sock.recv(4096)
            if not data:
                break
            raw += data
    except OSError:
        pass
    return int(raw.split()[1]) if raw.startswith(b"HTTP/") else 0


def flood_one(port: int, mib: int, statuses: list[int]) -> None:
    head = b"POST /a0 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    piece = f"{MiB:x}\r\n".encode() + b"x" * MiB + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(head)
            for _ in range(mib):
                sock.sendall(piece)
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass
        statuses.append(status_of(sock))


def post(url: str, body: bytes) -> int:
    headers = {"Authorization": TOKEN, "Content-Type": "application/json"}
    request = urllib.request.Request(url, body, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def record(i: int) -> bytes:
    data = {"type": "s", "date": "2025-01-01T00:00:00Z", "description": "x" * 200}
    return json.dumps({"log_id": f"9{i:014d}", "data": data}).encode() + b"\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--mib", type=int, default=15)
    parser.add_argument("--port", type=int, default=9231)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cr-flood-"))
    manifest = work / "m.yaml"
    manifest.write_text(
        "apiVersion: connector-runtime/v1\nkind: Connector\nmetadata: {name: a0}\nspec:\n"
        f"  source: {{type: auth0, config: {{token: {TOKEN}}}}}\n"
        "  target: {type: http, config: {url: 'http://127.0.0.1:9'}}\n"
    )
    runtime = str(Path(sys.executable).parent / "connector-runtime")
    cmd = [runtime, "run", str(manifest), "--port", str(args.port), "--data-dir", str(work / "d")]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL, env={**os.environ})
    url = f"http://127.0.0.1:{args.port}/a0"
    try:
        deadline = time.monotonic() + 20
        while post(url, record(0)) != 200:
            if time.monotonic() > deadline:
                raise SystemExit("the runtime did not come up")
            time.sleep(0.1)
        time.sleep(0.5)
        baseline = rss_mib(proc.pid)
        statuses: list[int] = []
        threads = [
            threading.Thread(target=flood_one, args=(args.port, args.mib, statuses))
            for _ in range(args.connections)
        ]
        started = time.monotonic()
        for t in threads:
            t.start()
        peak, authorised, n = baseline, collections.Counter[int](), 0
        while any(t.is_alive() for t in threads):
            peak = max(peak, rss_mib(proc.pid))
            n += 1
            authorised[post(url, b"".join(record(n * 10 + i) for i in range(10)))] += 1
        for t in threads:
            t.join()
        took = time.monotonic() - started
        time.sleep(2)
        after = rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
    print(
        f"{args.connections} x {args.mib} MiB unauthenticated, chunked, in {took:.1f} s\n"
        f"RSS MiB: baseline {baseline:.1f}, peak {peak:.1f} (+{peak - baseline:.1f}),"
        f" 2 s after {after:.1f} (+{after - baseline:.1f})\n"
        f"flood answers read back: {dict(collections.Counter(statuses))}\n"
        f"authorised deliveries during the flood: {dict(authorised)}"
    )


if __name__ == "__main__":
    main()
