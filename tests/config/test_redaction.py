"""Issue 13 point 6: credentials in URLs never reach validate output, logs or dead letters."""

from __future__ import annotations

import http.server
import io
import json
import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from connector_runtime_auth0.testing import batch, jsonl

from connector_runtime.config.checks import schema_problems
from connector_runtime.config.secrets import (
    RedactingFilter,
    Redactor,
    redact_text,
    redact_url,
    redact_urls,
)
from connector_runtime.observe.logs import JSONFormatter
from connector_runtime.testing import connector_doc, free_port, post
from tests.procs import RuntimeProcess, cli, write_manifest

SECRETS = ("s3cret", "k3y")


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:s3cret@host:1/x?api_key=k3y", "http://***@host:1/x?api_key=***"),
        ("https://host/x?a=1&b=&flag#frag", "https://host/x?a=***&b=***&***#***"),
        ("nats://tok@h:4222", "nats://***@h:4222"),
        ("http://u:p@ss@host/x", "http://***@host/x"),
        ("user:s3cret@host/x", "***@host/x"),
        ("http://host:8080/plain", "http://host:8080/plain"),
        ("http://[::1", "http://[::1"),
    ],
)
def test_redact_url(url: str, shown: str):
    assert redact_url(url) == shown


def test_redact_urls_in_text():
    text = "NATS at nats://u:s3cret@a:1, tls://b:2 failed: 'http://x/?api_key=k3y' (see)"
    assert redact_urls(text) == (
        "NATS at nats://***@a:1, tls://b:2 failed: 'http://x/?api_key=***' (see)"
    )


def test_validate_never_prints_url_credentials(tmp_path: Path):
    bad_scheme = "htp://user:s3cret@127.0.0.1:1/x?api_key=k3y"
    manifest = write_manifest(
        tmp_path / "m.yaml",
        [
            connector_doc(
                "hook", "auth0", {}, {"type": "http", "config": {"url": bad_scheme, "mode": "x"}}
            ),
            connector_doc(
                "nohost",
                "auth0",
                {},
                {"type": "http", "config": {"url": "user:s3cret@127.0.0.1:1/x?api_key=k3y"}},
            ),
            connector_doc(
                "bus",
                "auth0",
                {},
                {
                    "type": "nats",
                    "config": {
                        "servers": ["http://user:s3cret@127.0.0.1:1?api_key=k3y"],
                        "subject": "a.{code}",
                        "stream": {"name": "S"},
                    },
                },
            ),
        ],
    )
    result = cli("validate", str(manifest))
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert leaks(out) == [], out
    assert "connector hook: spec.target.config.url: 'htp://***@127.0.0.1:1/x?api_key=***'" in out
    assert "connector hook: spec.target.config.mode: 'x' is not one of" in out
    assert "connector nohost: spec.target.config.url: '***@127.0.0.1:1/x?api_key=***'" in out
    assert "connector bus: spec.target.config.servers[0]: 'http://***@127.0.0.1:1?api_key=***'" in (
        out
    )
    assert "Traceback" not in out


def test_validate_names_the_keys_of_alternatives_and_shows_no_secret_inside_them(
    tmp_path: Path,
):
    """auth0-events takes exactly one of ``token`` and ``basicAuth``: both or neither gets
    a message naming the keys, never the config (which holds the secrets)."""
    both = {"token": "tok-s3cret-0123", "basicAuth": {"username": "u", "password": "pw-k3y-0123"}}
    docs = [
        connector_doc(name, "auth0-events", config, {"type": "http", "config": {"url": "x:"}})
        for name, config in (("both", both), ("neither", {}))
    ]
    result = cli("validate", str(write_manifest(tmp_path / "m.yaml", docs)))
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert leaks(out) == [], out
    for name in ("both", "neither"):
        assert f"connector {name}: spec.source.config: set exactly one of 'token', 'basicAuth'" in (
            out
        )


def test_an_object_quoted_in_a_schema_message_has_its_secrets_redacted():
    schema = {
        "type": "object",
        "properties": {"key": {"type": "string", "x-secret": True}, "name": {"type": "string"}},
        "maxProperties": 1,
    }
    [(path, message)] = schema_problems(schema, {"key": "s3cret", "name": "n"})
    assert path == "" and "s3cret" not in message
    assert '"key": "<redacted>"' in message and '"name": "n"' in message


class _EchoingTarget(http.server.BaseHTTPRequestHandler):
    """Rejects every POST with a reason that quotes a URL with credentials."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b"cannot forward to http://admin:s3cret@upstream/in?api_key=k3y"
        self.send_response(400)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_running_runtime_logs_and_stores_no_url_credentials(tmp_path: Path):
    closed = free_port()
    echo = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoingTarget)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    try:
        _run_with_url_credentials(tmp_path, closed, echo.server_port)
    finally:
        echo.shutdown()
        echo.server_close()


def _run_with_url_credentials(tmp_path: Path, closed: int, echo_port: int) -> None:
    retry = {"retry": {"initialBackoff": "50ms", "maxBackoff": "200ms"}}
    docs = [
        connector_doc(
            "down",
            "auth0",
            {},
            {
                "type": "http",
                "config": {"url": f"http://user:s3cret@127.0.0.1:{closed}/x?api_key=k3y"},
            },
            delivery=retry,
        ),
        connector_doc(
            "bus",
            "auth0",
            {},
            {
                "type": "nats",
                "config": {
                    "servers": [f"nats://user:s3cret@127.0.0.1:{closed}?api_key=k3y"],
                    "subject": "a.{code}",
                    "stream": {"name": "S"},
                    "timeout": 1,
                },
            },
            delivery=retry,
        ),
        connector_doc(
            "echo",
            "auth0",
            {},
            {"type": "http", "config": {"url": f"http://127.0.0.1:{echo_port}/"}},
            delivery=retry,
        ),
    ]
    manifest = write_manifest(tmp_path / "m.yaml", docs)
    data = tmp_path / "data"
    proc = RuntimeProcess(manifest, data).start()
    try:
        for name in ("down", "bus", "echo"):
            assert post(f"{proc.url}/{name}", jsonl(batch(2, prefix=name))).status == 200
        deadline = time.monotonic() + 30
        wanted = ("connector_runtime.down", "connector_runtime.bus", "dead-lettered")
        while not all(w in proc.log() for w in wanted):
            assert time.monotonic() < deadline, proc.log()
            time.sleep(0.1)
        assert "NATS at nats://***@127.0.0.1" in proc.log()
    finally:
        assert proc.terminate() == 0
    log = proc.log()
    assert leaks(log) == [], log
    dead = cli("dlq", "list", "--json", "--data-dir", str(data))
    reasons = [row["reason"] for row in json.loads(dead.stdout)]
    assert reasons and all("http://***@upstream/in?api_key=***" in r for r in reasons), reasons
    conn = sqlite3.connect(data / "spool.db")
    errors = [e for (e,) in conn.execute("SELECT last_error FROM batches") if e]
    conn.close()
    assert errors and leaks(" ".join(errors)) == [], errors


def test_redact_text_hides_configured_values_authorization_credentials_and_url_secrets():
    text = (
        "token endpoint refused client secret s3cret-value-42 at "
        "https://t.example/oauth/token?client_secret=s3cret-value-42; "
        "sent Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload and basic dXNlcjpwYXNz"
    )
    assert redact_text(text, Redactor(["s3cret-value-42"])) == (
        "token endpoint refused client secret <redacted> at "
        "https://t.example/oauth/token?client_secret=***<redacted>; "  # values first, then URLs
        "sent Authorization: Bearer *** and basic ***"
    )
    assert redact_text("a Bearer token was refused", Redactor()) == "a Bearer token was refused"


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_logged_exception_shows_no_secret(fmt: str):
    """``log.exception``: the traceback (text format) and its last line (JSON's ``error``)
    go through the same redaction as the message."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter() if fmt == "json" else logging.Formatter("%(message)s"))
    handler.addFilter(RedactingFilter(Redactor(["hunter2-secret"])))
    logger = logging.getLogger(f"test-redaction-{fmt}")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise RuntimeError("login with hunter2-secret failed at http://h/x?key=k3y")
        except RuntimeError:
            logger.exception("step failed for hunter2-secret")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "hunter2-secret" not in out and "k3y" not in out
    assert "RuntimeError: login with <redacted> failed at http://h/x?key=***" in out
    if fmt == "json":
        line = json.loads(out)
        assert line["msg"] == "step failed for <redacted>"
        assert line["error"] == "RuntimeError: login with <redacted> failed at http://h/x?key=***"
    else:
        assert "Traceback (most recent call last)" in out
