"""``connector-runtime tap ADMIN_URL --connector NAME``: print a connector's events as
they flow, from the admin listener's ``/tap`` (:mod:`connector_runtime.serve.tap`).

``top`` (:mod:`connector_runtime.cli.top`) reads the same listener. The admin token, when
the runtime has one, is read from ``CONNECTOR_RUNTIME_ADMIN_TOKEN`` (never a flag: a flag
shows in ``ps``)."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import urllib.parse
from typing import IO, Any

from connector_runtime.errors import ConnectorRuntimeError

TOKEN_ENV = "CONNECTOR_RUNTIME_ADMIN_TOKEN"  # noqa: S105 (a variable's name)
TIMEOUT = 60.0
"""Seconds without a byte (the runtime sends a keep-alive line every 15)."""


class AdminError(ConnectorRuntimeError):
    """The admin listener could not be reached, or refused the request (``status``)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def add_parser(sub: Any) -> None:
    tap = sub.add_parser("tap", help="print a connector's events as they flow (admin listener)")
    tap.add_argument("admin_url", metavar="ADMIN_URL", help="e.g. http://127.0.0.1:9090")
    tap.add_argument("--connector", required=True, help="the connector's name")
    tap.add_argument("--filter", help="a CESQL expression the events must match")
    tap.add_argument("--sample", type=int, default=1, help="keep one event in N (default 1)")
    tap.add_argument(
        "--stage",
        action="append",
        choices=["accepted", "delivered", "dead"],
        help="accepted (default), delivered or dead; repeat for several",
    )
    tap.add_argument(
        "--format",
        default="json",
        choices=["json", "pretty"],
        help="json: one JSON line per event (the default); pretty: time, stage, type, id",
    )


def open_admin(url: str, path: str, timeout: float = TIMEOUT) -> http.client.HTTPResponse:
    """GET ``path`` on the admin listener at ``url``; a response with status 200, or
    :class:`AdminError` with a one-line reason."""
    parts = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AdminError(f"admin URL {url!r} is not an http:// or https:// URL", 2)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    try:
        conn = kind(parts.hostname, parts.port, timeout=timeout)
        headers = {"Accept": "application/x-ndjson, application/json"}
        token = os.environ.get(TOKEN_ENV)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request("GET", parts.path.rstrip("/") + path, headers=headers)
        response = conn.getresponse()
    except (OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise AdminError(f"cannot reach the runtime's admin listener at {url}: {reason}") from None
    if response.status != 200:
        try:
            detail = json.loads(response.read(64 * 1024))["error"]
        except (ValueError, KeyError, TypeError, OSError):
            detail = f"HTTP {response.status}"
        if response.status == 401:
            detail += f" (set {TOKEN_ENV})"
        raise AdminError(f"{url}: {detail}", response.status)
    return response


def query(args: argparse.Namespace) -> str:
    params = {"connector": args.connector, "stage": ",".join(args.stage or ["accepted"])}
    if args.filter:
        params["filter"] = args.filter
    if args.sample != 1:
        params["sample"] = str(args.sample)
    return "/tap?" + urllib.parse.urlencode(params)


def pretty(line: dict[str, Any]) -> str:
    event = line.get("event", {})
    when = str(event.get("time", ""))[11:19] or "--:--:--"
    text = f"{when} {line['stage']:<9} {event.get('type', '')} {event.get('id', '')}"
    if event.get("subject"):
        text += f" subject={event['subject']}"
    if "reason" in line:
        text += f"  ({line['reason']})"
    return text


def run(args: argparse.Namespace, out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    """Print events until the runtime closes the stream or Ctrl-C (exit 0)."""
    out, err = out or sys.stdout, err or sys.stderr
    if args.sample < 1:
        raise AdminError(f"--sample {args.sample}: must be 1 or more", 2)
    response = open_admin(args.admin_url, query(args))
    try:
        for raw in response:
            if not raw.strip():
                continue  # a keep-alive
            line = json.loads(raw)
            if "tap" in line:
                stages = ", ".join(line["stages"])
                print(f"tapping connector {line['tap']} ({stages}); Ctrl-C stops", file=err)
                err.flush()
                if line.get("workers", 1) > 1:
                    print(
                        f"note: tapping worker {line['worker']} of {line['workers']} only",
                        file=err,
                    )
            elif "dropped" in line:
                print(f"note: {line['dropped']} events dropped so far (read too slowly)", file=err)
            else:
                out.write(
                    (pretty(line) if args.format == "pretty" else raw.decode().rstrip()) + "\n"
                )
                out.flush()
    except (OSError, http.client.HTTPException) as exc:
        raise AdminError(f"the tap stream from {args.admin_url} broke: {exc}") from None
    except KeyboardInterrupt:
        return 0
    finally:
        response.close()
    print("the runtime closed the tap (it is stopping)", file=err)
    return 0
