"""The plugin as the runtime sees it: entry point, hooks, config checks, example manifests."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
from connector_runtime import (
    ComponentSpec,
    ConnectorSpec,
    ManifestError,
    build_registry,
    load_manifest,
    make_event,
)
from connector_runtime.testing import connector_doc, write_manifest

import connector_runtime_webhook
from connector_runtime_webhook import (
    CONFIG_SCHEMA,
    NAME,
    SOURCE_TYPE,
    event_filter,
    make_type_predicate,
    register_source_types,
)

MANIFESTS = sorted((Path(__file__).parent.parent / "manifests").glob("*.yaml"))
STDOUT = {"type": "stdout"}


@pytest.fixture(scope="module")
def registry():
    return build_registry()


def load(registry, tmp_path, config):
    doc = connector_doc("hooks", NAME, config, STDOUT)
    return load_manifest([write_manifest([doc], tmp_path)], registry, env={})


def problems(registry, tmp_path, config):
    with pytest.raises(ManifestError) as caught:
        load(registry, tmp_path, config)
    return [(p.path, p.message) for p in caught.value.problems]


def test_the_entry_point_registers_the_source_type(registry):
    assert registry.source_types[NAME] is SOURCE_TYPE
    assert not [b for b in registry.broken if b.name == NAME]
    info = next(p for p in registry.plugins if p.name == NAME)
    assert info.source_types == [NAME]
    assert not info.builtin


def test_register_source_types():
    found = []
    register_source_types(register=found.append)
    assert found == [SOURCE_TYPE]


def test_the_config_schema_is_a_valid_schema():
    jsonschema.Draft202012Validator.check_schema(CONFIG_SCHEMA)


def test_public_surface_is_declared():
    for name in connector_runtime_webhook.__all__:
        assert hasattr(connector_runtime_webhook, name), name


@pytest.mark.parametrize("path", MANIFESTS, ids=[p.stem for p in MANIFESTS])
def test_example_manifests_validate_without_environment(registry, path):
    manifest = load_manifest([path], registry, env={})
    [connector] = manifest.connectors
    assert connector.source.type == NAME
    assert connector.target.config["url"] == "http://127.0.0.1:31081"
    assert connector.target.config["mode"] == "binary"
    assert connector.secrets  # the signing secret is known, so it can be redacted


def test_example_manifests_take_the_secret_from_the_environment(registry):
    env = {"GITHUB_WEBHOOK_SECRET": "from-env", "STRIPE_WEBHOOK_SECRET": "whsec_env"}
    for path in MANIFESTS:
        [connector] = load_manifest([path], registry, env=env).connectors
        assert connector.source.config["auth"]["secret"] in env.values()


def test_defaults_are_filled(registry, tmp_path):
    [connector] = load(registry, tmp_path, {}).connectors
    config = connector.source.config
    assert config["format"] == "auto"
    assert config["acceptCloudEvents"] is True
    assert config["maxBodyBytes"] == 16 * 1024 * 1024


def test_each_auth_type_needs_its_keys(registry, tmp_path):
    assert problems(registry, tmp_path, {"auth": {"type": "hmac", "header": "X-Sig"}}) == [
        ("spec.source.config.auth", "missing required key 'secret'")
    ]
    assert problems(registry, tmp_path, {"auth": {"type": "basic", "username": "u"}}) == [
        ("spec.source.config.auth", "missing required key 'password'")
    ]


def test_keys_of_another_auth_type_are_named(registry, tmp_path):
    config = {"auth": {"type": "token", "value": "tok-secret", "secret": "x", "prefix": "p"}}
    assert problems(registry, tmp_path, config) == [
        ("spec.source.config.auth.prefix", "does not apply to auth type 'token'"),
        ("spec.source.config.auth.secret", "does not apply to auth type 'token'"),
    ]


@pytest.mark.parametrize(
    ("auth", "path", "message"),
    [
        ({"signed": "{timestamp}"}, "auth.signed", "must contain {body}"),
        (
            {"signed": "{timestamp}.{body}"},
            "auth.signed",
            "uses {timestamp} but no timestamp is configured",
        ),
        ({"timestamp": {"tolerance": 60}}, "auth.timestamp", "missing required key 'header'"),
        (
            {"timestamp": {"header": "X-Ts"}},
            "auth.signed",
            "must contain {timestamp}: an unsigned timestamp stops no replay",
        ),
        (
            {"format": "stripe", "timestamp": {"header": "X-Ts"}},
            "auth.timestamp.header",
            "does not apply to format 'stripe' (it uses 't=')",
        ),
    ],
)
def test_hmac_templates_and_timestamps_are_checked(registry, tmp_path, auth, path, message):
    config = {"auth": {"type": "hmac", "header": "X-Sig", "secret": "s3cr3t", **auth}}
    assert (f"spec.source.config.{path}", message) in problems(registry, tmp_path, config)


def test_places_and_extension_names_are_checked(registry, tmp_path):
    config = {
        "attributes": {
            "id": {"pointer": "/a~2"},
            "time": {"value": "noon", "prefix": "x"},
        },
        "extensions": {"subject": {"value": "x"}},
        "types": ["com.*.x"],
    }
    found = problems(registry, tmp_path, config)
    assert found == [
        (
            "spec.source.config.attributes.id.pointer",
            "JSON pointer '/a~2' has a '~' not followed by 0 or 1",
        ),
        ("spec.source.config.attributes.time.value", "not an RFC 3339 timestamp"),
        ("spec.source.config.attributes.time.prefix", "does not apply to 'time'"),
        ("spec.source.config.extensions.subject", "'subject' is not an extension attribute"),
        ("spec.source.config.types[0]", "'*' may only end an entry (a prefix)"),
    ]


def test_schema_rejects_places_with_two_sources_and_bad_extension_names(registry, tmp_path):
    found = problems(
        registry,
        tmp_path,
        {
            "attributes": {"id": {"pointer": "/id", "header": "X-Id"}},
            "extensions": {"Bad_Name": {"value": "x"}},
        },
    )
    paths = [path for path, _ in found]
    assert "spec.source.config.attributes.id" in paths
    assert "spec.source.config.extensions" in paths


def test_secrets_never_appear_in_problems(registry, tmp_path):
    config = {"auth": {"type": "hmac", "header": "H", "secret": 12345678, "value": "tok3n"}}
    found = problems(registry, tmp_path, config)
    assert found
    assert not any("12345678" in message for _, message in found)


def test_secret_values_are_known_to_the_runtime(registry, tmp_path):
    for auth, secret in [
        ({"type": "hmac", "header": "H", "secret": "hm4c-secret"}, "hm4c-secret"),
        ({"type": "token", "value": "t0ken-secret"}, "t0ken-secret"),
        ({"type": "basic", "username": "u", "password": "b4sic-secret"}, "b4sic-secret"),
    ]:
        [connector] = load(registry, tmp_path, {"auth": auth}).connectors
        assert connector.secrets == {secret}


def test_event_filter_only_for_webhook_connectors_with_types(registry, tmp_path):
    [plain] = load(registry, tmp_path, {}).connectors
    assert event_filter(connector=plain) is None
    [typed] = load(registry, tmp_path, {"types": ["com.a.*"]}).connectors
    assert event_filter(connector=typed) is not None
    assert any(p is not None for p in registry.event_filters(typed))
    other = ConnectorSpec(
        name="other",
        file="-",
        source=ComponentSpec("not-webhook", {"types": ["com.a.*"]}),
        target=ComponentSpec("stdout", {}),
    )
    assert event_filter(connector=other) is None


def test_type_predicate():
    keep = make_type_predicate(["com.acme.order.*", "com.acme.refund", "x.*"])

    def event(kind):
        return make_event(id="1", source="s", type=kind)

    assert keep(event("com.acme.order.paid"))
    assert keep(event("com.acme.order."))
    assert keep(event("com.acme.refund"))
    assert not keep(event("com.acme.refund.partial"))
    assert not keep(event("com.acme.orders"))
    assert keep(event("x.y"))
    assert make_type_predicate(["*"])(event("anything"))
