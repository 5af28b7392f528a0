"""``connector-runtime top ADMIN_URL``: the connectors at a glance, refreshed every second,
like ``vector top``. It reads the admin listener's ``/status.json`` (the numbers of
``/metrics``). On a terminal each frame replaces the last; through a pipe one frame is
printed per interval, separated by a blank line. Ctrl-C ends it (exit 0)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import IO, Any

from connector_runtime.cli.tap import AdminError, open_admin

CLEAR = "\x1b[H\x1b[2J"
COLUMNS = (
    ("CONNECTOR", "name", "<", 16),
    ("SOURCE>TARGET", "types", "<", 18),
    ("ACCEPTED", "accepted", ">", 10),
    ("ACC/S", "accepted_rate", ">", 8),
    ("DELIVERED", "delivered", ">", 10),
    ("DEL/S", "delivered_rate", ">", 8),
    ("DEPTH", "depth", ">", 8),
    ("OLDEST", "oldest", ">", 7),
    ("DEAD", "dead_letters", ">", 6),
    ("RETRIES", "retries", ">", 8),
)


def add_parser(sub: Any) -> None:
    top = sub.add_parser("top", help="the connectors at a glance, refreshed every second")
    top.add_argument("admin_url", metavar="ADMIN_URL", help="e.g. http://127.0.0.1:9090")
    top.add_argument("--interval", type=float, default=1.0, help="seconds between frames")
    top.add_argument("--frames", type=int, default=0, help="stop after N frames (0: never)")


def fetch(url: str) -> dict[str, Any]:
    response = open_admin(url, "/status.json", timeout=5.0)
    try:
        data: dict[str, Any] = json.loads(response.read())
    except (OSError, ValueError) as exc:
        raise AdminError(f"{url}/status.json: unreadable answer: {exc}") from None
    finally:
        response.close()
    return data


def _rate(now: int, before: int | None, seconds: float, minute: float) -> str:
    if before is None or seconds <= 0:
        return f"{minute:.1f}"
    return f"{max(0, now - before) / seconds:.1f}"


def frame(status: dict[str, Any], previous: dict[str, Any] | None, seconds: float) -> str:
    """One screen of ``status``; rates per second since ``previous`` (``seconds`` ago), or
    over the last minute for the first frame."""
    before = {c["name"]: c for c in (previous or {}).get("connectors", [])}
    ready = "ready" if status["ready"] else "NOT READY"
    workers = f"  {status['workers']} workers" if status["workers"] > 1 else ""
    lines = [
        f"connector-runtime {status['version']}  {ready}  up {status['uptime_seconds']}s"
        f"{workers}  taps {status['taps']['attached']}/{status['taps']['max']}"
        f"  {time.strftime('%H:%M:%S')}",
        "",
        " ".join(f"{title:{align}{width}}" for title, _, align, width in COLUMNS),
    ]
    notes = []
    for c in status["connectors"]:
        old = before.get(c["name"], {})
        row = {
            **c,
            "types": f"{c['source']}>{c['target']}",
            "accepted_rate": _rate(
                c["accepted"], old.get("accepted"), seconds, c["accepted_per_second"]
            ),
            "delivered_rate": _rate(
                c["delivered"], old.get("delivered"), seconds, c["delivered_per_second"]
            ),
            "oldest": f"{c['oldest_age_seconds']:.0f}s",
        }
        lines.append(
            " ".join(f"{str(row[key])[:width]:{align}{width}}" for _, key, align, width in COLUMNS)
        )
        notes += [f"  {c['name']}: not ready: {r}" for r in c["reasons"]]
        notes += [f"  {c['name']}: warning: {w}" for w in c["warnings"]]
        notes += [f"  {c['name']}: watching {w['state']}" for w in c["watch"]]
        notes += [f"  {c['name']}: {e['time']} {e['level']}: {e['message']}" for e in c["errors"]]
    if status["reasons"] and not notes:
        notes = [f"  not ready: {r}" for r in status["reasons"]]
    if notes:
        lines += ["", "readiness, watched, last warnings and errors:", *notes[:12]]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace, out: IO[str] | None = None) -> int:
    out = out or sys.stdout
    if args.interval <= 0 or args.frames < 0:
        raise AdminError("--interval must be above 0 and --frames 0 or more", 2)
    tty = out.isatty()
    previous: dict[str, Any] | None = None
    last = time.monotonic()
    status = fetch(args.admin_url)  # the first look fails loudly (exit 3)
    shown = 0
    try:
        while True:
            now = time.monotonic()
            text = frame(status, previous, now - last)
            out.write(CLEAR + text if tty else ("\n" if shown else "") + text)
            out.flush()
            shown += 1
            if args.frames and shown >= args.frames:
                return 0
            previous, last = status, now
            time.sleep(args.interval)
            try:
                status = fetch(args.admin_url)
            except AdminError as exc:  # keep trying: the runtime may be restarting
                status = {**previous, "ready": False, "reasons": [str(exc)]}
    except KeyboardInterrupt:
        return 0
