"""Building the distributions the way ``make dist`` does, and a runtime installed from them.

:func:`build_dists` runs the Makefile's own ``dist`` target into a folder of the test's
(with this interpreter's environment as the Makefile's ``BIN``, and the Makefile told not
to remake that environment). :func:`delivery` is one Auth0 delivery in JSON Lines.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTIONS = ("connector_runtime", "connector_runtime_auth0", "connector_runtime_webhook")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what points Python at the checkout's packages."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONSTARTUP")
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.update(extra)
    return env


def build_dists(out: Path) -> dict[str, Path]:
    """``make dist DIST=out``; returns the wheel of each distribution by its name."""
    if shutil.which("make") is None:
        raise RuntimeError("make is not installed")
    run = subprocess.run(
        [
            "make",
            "-C",
            str(ROOT),
            "-o",
            ".venv/.installed",  # the environment running the tests is the one to use
            "dist",
            f"DIST={out}",
            f"BIN={Path(sys.executable).parent}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=clean_env(),
    )
    if run.returncode != 0:
        raise RuntimeError(f"make dist failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}")
    wheels = {}
    for name in DISTRIBUTIONS:
        [wheel] = out.glob(f"{name}-*.whl")
        [_sdist] = out.glob(f"{name}-*.tar.gz")
        wheels[name] = wheel
    return wheels


def delivery(*log_ids: str) -> bytes:
    """An Auth0 Log Streams delivery (JSON Lines) with one successful-login record per id."""
    lines = [
        json.dumps(
            {
                "log_id": log_id,
                "data": {"type": "s", "date": "2025-03-14T09:26:53.589Z", "log_id": log_id},
            }
        )
        for log_id in log_ids
    ]
    return ("\n".join(lines) + "\n").encode()


def post(url: str, body: bytes, token: str | None = None, timeout: float = 10) -> tuple[int, str]:
    """POST ``body`` as JSON; returns the status and the answer's text."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = token
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return answer.status, answer.read().decode()
