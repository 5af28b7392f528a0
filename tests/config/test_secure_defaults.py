"""Issue 15 part 7: secure defaults. Token lists and their rotation over a real runtime,
warnings about short tokens, secrets in lists redacted, and JSON Schema formats enforced."""

from __future__ import annotations

import json
from pathlib import Path

from connector_runtime_auth0.testing import batch, jsonl

from connector_runtime.config.checks import schema_problems
from connector_runtime.config.secrets import secret_paths, values_at
from connector_runtime.testing import RecordingTarget, connector_doc, post
from tests.procs import RuntimeProcess, cli, write_manifest

OLD = "Bearer old-token-0123456789abcdef0123456789"
NEW = "Bearer new-token-fedcba9876543210fedcba9876"
OTHER = "Bearer other-token-00000000000000000000000"


def auth0_manifest(tmp_path: Path, config: dict, url: str = "http://127.0.0.1:9/") -> Path:
    target = {"type": "http", "config": {"url": url, "mode": "batch"}}
    return write_manifest(tmp_path / "m.yaml", [connector_doc("a0", "auth0", config, target)])


def statuses(base: str, prefix: str) -> dict[str, int]:
    """The status of one delivery per token (each with its own log ids)."""
    return {
        name: post(
            f"{base}/a0",
            jsonl(batch(1, prefix=f"{prefix}{name}")),
            headers={"Authorization": value},
        ).status
        for name, value in (("old", OLD), ("new", NEW), ("other", OTHER))
    }


def test_a_token_is_rotated_without_a_failed_delivery(
    tmp_path: Path, recording_target: RecordingTarget
):
    manifest = auth0_manifest(tmp_path, {"token": [OLD, NEW]}, recording_target.url)
    data = tmp_path / "data"
    proc = RuntimeProcess(manifest, data).start()
    try:
        assert statuses(proc.url, "both") == {"old": 200, "new": 200, "other": 401}
        assert len(recording_target.wait_for(2)) == 2
    finally:
        assert proc.terminate() == 0
    auth0_manifest(tmp_path, {"token": [NEW]}, recording_target.url)
    proc = RuntimeProcess(manifest, data).start()
    try:
        assert statuses(proc.url, "new") == {"old": 401, "new": 200, "other": 401}
    finally:
        assert proc.terminate() == 0
    log = proc.log()
    assert OLD not in log and NEW not in log and OTHER not in log


def test_validate_checks_every_token_of_a_list_without_printing_any(tmp_path: Path):
    manifest = auth0_manifest(tmp_path, {"token": [NEW, "shrt"]})
    out = cli("validate", str(manifest))
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        f"error: {manifest}: connector a0: spec.source.config.token[1]:"
        " value <redacted> is shorter than 8 characters"
    ]
    for token, problem in (([], "has fewer than 1 item(s)"), ([NEW, NEW], "twice")):
        out = cli("validate", str(auth0_manifest(tmp_path, {"token": token})))
        assert out.returncode == 1 and problem in out.stderr, out.stderr
        assert "new-token" not in out.stderr


def test_validate_warns_about_short_tokens_and_never_prints_them(tmp_path: Path):
    short = "Bearer short-but-8+"  # 19 characters: allowed, but guessable in principle
    manifest = auth0_manifest(tmp_path, {"token": [NEW, short]})
    out = cli("validate", str(manifest))
    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines() == [
        f"warning: {manifest}: connector a0: spec.source.config.token[1]: the token is shorter"
        " than 32 characters; nothing limits guesses, so use a random one of 32 or more"
        " (openssl rand -base64 32)"
    ]
    assert short not in out.stderr + out.stdout
    out = cli("validate", str(auth0_manifest(tmp_path, {"token": short})))
    assert out.returncode == 0
    assert "spec.source.config.token: the token is shorter than 32 characters" in out.stderr
    out = cli("validate", str(auth0_manifest(tmp_path, {"token": NEW})))
    assert out.returncode == 0 and out.stderr == ""


def test_start_up_warns_about_a_short_token(tmp_path: Path):
    manifest = auth0_manifest(tmp_path, {"token": "Bearer short-but-8+"})
    proc = RuntimeProcess(manifest, tmp_path / "data").start()
    try:
        (line,) = [x for x in proc.log().splitlines() if "shorter than 32" in x]
    finally:
        assert proc.terminate() == 0
    warning = json.loads(line)
    assert warning["level"] == "warning"
    assert "short-but" not in proc.log()


def test_secret_lists_are_redacted_wherever_the_schema_marks_them():
    token_list = {"token": ["first-secret", "second-secret"]}
    marked_whole = {"properties": {"token": {"type": "array", "x-secret": True}}}
    marked_items = {
        "properties": {"token": {"type": "array", "items": {"type": "string", "x-secret": True}}}
    }
    in_a_branch = {
        "properties": {
            "token": {
                "anyOf": [
                    {"type": "string", "x-secret": True},
                    {"type": "array", "items": {"type": "string", "writeOnly": True}},
                ]
            }
        }
    }
    for schema in (marked_whole, marked_items, in_a_branch):
        found = values_at(token_list, secret_paths(schema, token_list))
        assert found == {"first-secret", "second-secret"}, schema
    assert values_at({"token": "one"}, secret_paths(in_a_branch, {"token": "one"})) == {"one"}


def test_json_schema_formats_are_enforced(tmp_path: Path):
    for good in ("https://example-tenant.eu.auth0.com/", "urn:auth0:example-tenant"):
        out = cli("validate", str(auth0_manifest(tmp_path, {"source": good})))
        assert out.returncode == 0, out.stderr
    manifest = auth0_manifest(tmp_path, {"source": "not a uri at all %%"})
    out = cli("validate", str(manifest))
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        f"error: {manifest}: connector a0: spec.source.config.source:"
        " 'not a uri at all %%' is not a valid uri-reference"
    ]
    schema = {"properties": {"u": {"type": "string", "format": "uri"}}}
    assert schema_problems(schema, {"u": "https://h/x"}) == []
    assert schema_problems(schema, {"u": "/relative/only"}) == [
        ("u", "'/relative/only' is not a valid uri")
    ]
