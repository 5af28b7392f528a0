"""Manifests: loading, substitution, validation messages, secrets, published schemas."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from pathlib import Path

import pytest

from connector_runtime.config.manifest import load_manifest, manifest_schema, parse_duration
from connector_runtime.errors import ManifestError
from connector_runtime.plugins import build_registry
from tests.procs import CLI, cli

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = build_registry()

GOOD = """\
apiVersion: connector-runtime/v1
kind: Connector
metadata:
  name: auth0-prod
spec:
  source:
    type: auth0
    config:
      token: ${AUTH0_STREAM_TOKEN}
      events: [s, f, auth.signup.fail]
  target:
    type: http
    config: {url: "${TARGET_URL:-http://127.0.0.1:31081}", mode: binary}
---
apiVersion: connector-runtime/v1
kind: Runtime
spec:
  listen: {host: 127.0.0.1, port: "${PORT:-8080}"}
"""


def write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ManifestError) as info:
        load_manifest([write(tmp_path, text)], REGISTRY, env=env or {})
    return [str(p) for p in info.value.problems]


def test_a_good_manifest_loads_into_frozen_specs(tmp_path: Path):
    m = load_manifest([write(tmp_path, GOOD)], REGISTRY, env={"AUTH0_STREAM_TOKEN": "tok-12345678"})
    (c,) = m.connectors
    assert c.name == "auth0-prod"
    assert c.source.config["token"] == "tok-12345678"
    assert c.source.config["format"] == "auto"  # schema default filled in
    assert c.target.config["url"] == "http://127.0.0.1:31081"
    assert c.delivery.ack == "durable"
    assert m.runtime.port == 8080
    assert "tok-12345678" in m.secrets
    with pytest.raises(AttributeError):
        c.name = "other"  # type: ignore[misc]


def test_unset_variable_names_the_variable_and_where(tmp_path: Path):
    (p,) = problems(tmp_path, GOOD)
    assert "m.yaml: connector auth0-prod: spec.source.config.token" in p
    assert "AUTH0_STREAM_TOKEN is not set" in p


def test_unknown_source_type_lists_the_installed_ones(tmp_path: Path):
    text = GOOD.replace("type: auth0", "type: okta")
    (p,) = problems(tmp_path, text, {"AUTH0_STREAM_TOKEN": "tok-12345678"})
    assert "spec.source.type: unknown source type 'okta' (installed: auth0" in p


def test_unknown_event_code_suggests_the_closest(tmp_path: Path):
    text = GOOD.replace("[s, f, auth.signup.fail]", "[s, fx, auth.signup.fial]")
    found = problems(tmp_path, text, {"AUTH0_STREAM_TOKEN": "tok-12345678"})
    assert any("spec.source.config.events[1]" in p and "'fx'" in p for p in found)
    assert any("events[2]" in p and "auth.signup.fail" in p for p in found)


def test_schema_errors_name_file_connector_path_and_value(tmp_path: Path):
    text = GOOD.replace("mode: binary", "mode: carrier-pigeon")
    (p,) = problems(tmp_path, text, {"AUTH0_STREAM_TOKEN": "tok-12345678"})
    assert p.startswith(f"{tmp_path / 'm.yaml'}: connector auth0-prod: spec.target.config.mode")
    assert "'carrier-pigeon'" in p


def test_secret_values_never_appear_in_messages(tmp_path: Path):
    text = GOOD.replace("${AUTH0_STREAM_TOKEN}", "s3cr3t7")
    (p,) = problems(tmp_path, text)
    assert "s3cr3t7" not in p
    assert p.endswith("spec.source.config.token: value <redacted> is shorter than 8 characters")


def test_unknown_keys_and_reserved_names(tmp_path: Path):
    text = GOOD.replace("name: auth0-prod", "name: metrics").replace(
        "  source:", "  sauce: 1\n  source:"
    )
    found = problems(tmp_path, text, {"AUTH0_STREAM_TOKEN": "tok-12345678"})
    assert any("metadata.name" in p and "'metrics'" in p for p in found)
    assert any("unknown key 'sauce'" in p for p in found)


def test_invalid_yaml_points_at_the_line(tmp_path: Path):
    (p,) = problems(tmp_path, "kind: Connector\n  bad: [\n")
    assert "invalid YAML: line" in p


def test_duplicate_connector_names_across_files(tmp_path: Path):
    env = {"AUTH0_STREAM_TOKEN": "tok-12345678"}
    one = write(tmp_path, GOOD, "one.yaml")
    two = write(tmp_path, GOOD.split("---", maxsplit=1)[0], "two.yaml")
    with pytest.raises(ManifestError) as info:
        load_manifest([one, two], REGISTRY, env=env)
    assert "name already used by a connector in" in str(info.value)


def test_defaults_escape_and_file_references(tmp_path: Path):
    secret = tmp_path / "token.txt"
    secret.write_text("from-a-file-123\n")
    text = GOOD.replace("${AUTH0_STREAM_TOKEN}", "${file:" + str(secret) + "}")
    m = load_manifest([write(tmp_path, text)], REGISTRY, env={})
    assert m.connectors[0].source.config["token"] == "from-a-file-123"
    text = GOOD.replace("${AUTH0_STREAM_TOKEN}", "$${LITERAL}-12345678")
    m = load_manifest([write(tmp_path, text)], REGISTRY, env={})
    assert m.connectors[0].source.config["token"] == "${LITERAL}-12345678"


def test_a_required_variable_names_itself_where_it_is_used_and_the_message(tmp_path: Path):
    required = "${AUTH0_STREAM_TOKEN:?the Authorization Token of the Auth0 log stream}"
    text = GOOD.replace("${AUTH0_STREAM_TOKEN}", required)
    for env, state in (({}, "is not set"), ({"AUTH0_STREAM_TOKEN": ""}, "is empty")):
        (p,) = problems(tmp_path, text, env)
        assert p == (
            f"{tmp_path / 'm.yaml'}: connector auth0-prod: spec.source.config.token:"
            f" environment variable AUTH0_STREAM_TOKEN {state}:"
            " the Authorization Token of the Auth0 log stream"
        )
    token = "0123456789abcdef0123456789abcdef"
    m = load_manifest([write(tmp_path, text)], REGISTRY, env={"AUTH0_STREAM_TOKEN": token})
    assert m.connectors[0].source.config["token"] == token
    # without a message, and inside a longer string
    text = GOOD.replace("${AUTH0_STREAM_TOKEN}", "Bearer ${AUTH0_STREAM_TOKEN:?}")
    (p,) = problems(tmp_path, text)
    assert p.endswith(
        "spec.source.config.token: environment variable AUTH0_STREAM_TOKEN is not set"
    )


@pytest.mark.parametrize(
    ("reference", "env", "value"),
    [
        ("${T}", {"T": "tok-12345678"}, "tok-12345678"),
        ("${T:-tok-default}", {}, "tok-default"),
        ("${T:-tok-default}", {"T": "tok-12345678"}, "tok-12345678"),
        ("${T:-a:?b-12345678}", {}, "a:?b-12345678"),  # the first operator counts
        ("${T:?a:-b}", {"T": "tok-12345678"}, "tok-12345678"),
        ("$${T:?x}-12345678", {}, "${T:?x}-12345678"),
    ],
)
def test_substitution_forms(tmp_path: Path, reference: str, env: dict[str, str], value: str):
    text = GOOD.replace("${AUTH0_STREAM_TOKEN}", reference)
    m = load_manifest([write(tmp_path, text)], REGISTRY, env=env)
    assert m.connectors[0].source.config["token"] == value


def test_a_malformed_reference_is_named(tmp_path: Path):
    text = GOOD.replace("${AUTH0_STREAM_TOKEN}", "${1TOKEN:?x}")
    (p,) = problems(tmp_path, text)
    assert p.endswith("spec.source.config.token: '${1TOKEN:?x}' is not a valid reference")


@pytest.mark.parametrize(
    ("text", "seconds"), [(5, 5.0), ("500ms", 0.5), ("30s", 30.0), ("2h", 7200.0), ("7d", 604800.0)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


EXAMPLE_ENV = {
    "AUTH0_STREAM_TOKEN": "an-example-token-of-32-characters",
    "AUTH0_EVENT_STREAM_TOKEN": "an-example-event-stream-token-32ch",
    "TARGET_AUTHORIZATION": "Bearer an-example-target-token",
    "AUTH0_CLIENT_SECRET": "an-example-client-secret",
}
"""What the example manifests require (``${VAR:?…}``): a real deployment sets these."""


@pytest.mark.parametrize("path", sorted((ROOT / "manifests").glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_manifest_validates(path: Path):
    out = cli("validate", str(path), env=EXAMPLE_ENV)
    assert out.returncode == 0, out.stderr
    assert "ok:" in out.stdout
    assert "warning" not in out.stderr or path.name == "auth0.yaml", out.stderr
    manifest = load_manifest([path], REGISTRY, env=EXAMPLE_ENV)
    for c in manifest.connectors:  # an allow-list that allows everything only looks safe
        networks = [ipaddress.ip_network(n, strict=False) for n in c.allowed_source_ips]
        assert all(n.prefixlen > 0 for n in networks), c.allowed_source_ips


def test_the_production_example_has_no_fallback_token():
    env = {k: v for k, v in os.environ.items() if k not in EXAMPLE_ENV}
    env["TARGET_AUTHORIZATION"] = EXAMPLE_ENV["TARGET_AUTHORIZATION"]
    out = subprocess.run(
        [*CLI, "validate", "manifests/auth0-prod.yaml"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr.splitlines() == [
        "error: manifests/auth0-prod.yaml: connector auth0-prod: spec.source.config.token:"
        " environment variable AUTH0_STREAM_TOKEN is not set: set it to the Authorization Token"
        " of the Auth0 log stream, a random string of 32+ characters (openssl rand -base64 32)"
    ]
    env.pop("TARGET_AUTHORIZATION")
    env["AUTH0_STREAM_TOKEN"] = EXAMPLE_ENV["AUTH0_STREAM_TOKEN"]
    out = subprocess.run(
        [*CLI, "validate", "manifests/auth0-prod.yaml"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert out.returncode == 1
    (line,) = out.stderr.splitlines()
    assert (
        "spec.target.config.headers.Authorization: environment variable TARGET_AUTHORIZATION"
        in line
    )


def test_published_schemas_equal_the_packaged_ones():
    published = ROOT / "schemas"
    assert json.loads((published / "manifest.schema.json").read_text()) == manifest_schema()
    for name, t in {**REGISTRY.source_types, **REGISTRY.target_types}.items():
        path = published / f"{name}.config.schema.json"
        assert path.exists(), f"schemas/{path.name} missing: run make schemas"
        assert json.loads(path.read_text()) == t.config_schema, f"{path.name} is stale"


def test_type_schemas_are_valid_json_schema():
    import jsonschema

    for t in [*REGISTRY.source_types.values(), *REGISTRY.target_types.values()]:
        jsonschema.validators.validator_for(t.config_schema).check_schema(t.config_schema)
    jsonschema.Draft202012Validator.check_schema(manifest_schema())
