"""The service files in deploy/: the systemd unit and the Kubernetes manifests.

The unit is checked by ``systemd-analyze verify`` (and its exposure by ``systemd-analyze
security --offline``), skipped with the way to install it where systemd-analyze is
missing; ``.ci/run`` installs it. Its ExecStart must parse as a ``run`` command line and
its manifest must validate. The Kubernetes files are validated offline against the
schemas of a pinned Kubernetes release (kubernetes-validate, strict: unknown fields fail),
and the connector manifests in their ConfigMaps with ``connector-runtime validate``.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from connector_runtime.cli import commands as cli
from tests.procs import cli as run_cli

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd" / "connector-runtime.service"
UNIT_MANIFEST = ROOT / "deploy" / "systemd" / "manifest.yaml"
KUBERNETES = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
STATEFUL = ROOT / "deploy" / "kubernetes" / "statefulset.yaml"
NATS_SPOOL = ROOT / "deploy" / "kubernetes" / "nats-spool.yaml"
SECRET = ROOT / "deploy" / "kubernetes" / "secret.yaml"
WORKLOADS = [STATEFUL, NATS_SPOOL]
KUBERNETES_VERSION = "1.31.0"
VENV_EXE = "/opt/connector-runtime/bin/connector-runtime"
DRAIN_SECONDS = 30  # serving._drain's grace: what every stop timeout must exceed
needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (apt-get install systemd; .ci/run installs it)",
)


def unit_settings() -> list[tuple[str, str, str]]:
    """(section, key, value) for every setting of the unit, in order (keys may repeat)."""
    section, found = "", []
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.append((section, key.strip(), value.strip()))
    return found


def setting(key: str) -> str:
    [value] = [v for s, k, v in unit_settings() if s == "Service" and k == key]
    return value


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(s|min)?", value)
    assert match, value
    return int(match.group(1)) * (60 if match.group(2) == "min" else 1)


def runnable_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this environment's connector-runtime (verify
    checks that the program exists; nothing else is changed)."""
    text = UNIT.read_text()
    assert text.count(VENV_EXE) == 1
    here = Path(sys.executable).parent / "connector-runtime"
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace(VENV_EXE, str(here)))
    return copy


# -- systemd ----------------------------------------------------------------------------------


@needs_systemd_analyze
def test_systemd_analyze_verify_passes(tmp_path):
    run = subprocess.run(
        ["systemd-analyze", "verify", str(runnable_copy(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr.strip() == "", run.stderr  # no unknown or misspelled settings either


@needs_systemd_analyze
def test_systemd_exposure_is_low(tmp_path):
    run = subprocess.run(
        [
            "systemd-analyze",
            "security",
            "--offline=yes",
            "--threshold=20",
            "--no-pager",
            str(runnable_copy(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip  (--threshold counts tenths: 20 is an exposure of 2.0 of 10)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    assert re.search(r"Overall exposure level for connector-runtime\.service: [01]\.\d", run.stdout)


def test_unit_hardening_and_timeouts():
    assert setting("DynamicUser") == "yes"
    assert setting("StateDirectory") == "connector-runtime"
    for key, value in {
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    }.items():
        assert setting(key) == value, key
    assert seconds(setting("TimeoutStopSec")) > DRAIN_SECONDS + 10
    assert setting("LoadCredential") == "auth0-token:/etc/connector-runtime/auth0-token"


def test_unit_execstart_is_a_run_command_on_the_state_directory():
    args = shlex.split(setting("ExecStart"))
    assert args[0] == VENV_EXE
    parsed = cli.build_parser().parse_args(args[1:])
    assert parsed.command == "run"
    assert parsed.manifests == ["/etc/connector-runtime/manifest.yaml"]
    assert parsed.data_dir == "/var/lib/" + setting("StateDirectory")
    assert setting("WorkingDirectory") == parsed.data_dir


def test_unit_manifest_validates_with_the_credential(tmp_path):
    credential = "/run/credentials/connector-runtime.service/auth0-token"
    text = UNIT_MANIFEST.read_text()
    assert f"${{file:{credential}}}" in text
    token = tmp_path / "auth0-token"
    token.write_text("unit-test-token-0123456789abcdef0123456789\n")
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(text.replace(credential, str(token)))
    out = run_cli("validate", str(manifest))
    assert out.returncode == 0, out.stderr
    assert "connector auth0: auth0 -> http" in out.stdout
    assert "0123456789abcdef" not in out.stdout + out.stderr


# -- Kubernetes -------------------------------------------------------------------------------


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def by_kind(path: Path) -> dict[str, list[dict]]:
    kinds: dict[str, list[dict]] = {}
    for doc in documents(path):
        kinds.setdefault(doc["kind"], []).append(doc)
    return kinds


@pytest.mark.parametrize("path", KUBERNETES, ids=lambda p: p.name)
def test_kubernetes_manifests_validate_offline(path):
    docs = documents(path)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_kubernetes_validation_catches_a_misspelled_field():
    [workload] = by_kind(STATEFUL)["StatefulSet"]
    spec = workload["spec"]["template"]["spec"]
    spec["terminationGracePeriodSecond"] = spec.pop("terminationGracePeriodSeconds")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(workload, KUBERNETES_VERSION, strict=True)


def workload(path: Path) -> dict:
    kinds = by_kind(path)
    [found] = kinds.get("StatefulSet", []) + kinds.get("Deployment", [])
    return found


@pytest.mark.parametrize("path", WORKLOADS, ids=lambda p: p.name)
def test_kubernetes_workloads_probe_drain_and_run_as_non_root(path):
    pod = workload(path)["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > DRAIN_SECONDS + 10
    assert pod["securityContext"]["runAsNonRoot"] is True
    [container] = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    args = container["args"]
    parsed = cli.build_parser().parse_args(args)
    assert parsed.command == "run" and parsed.data_dir == "/data"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts["/data"] == "data"
    kinds = by_kind(path)
    [config_map] = kinds["ConfigMap"]
    [secret] = by_kind(SECRET)["Secret"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert (
        volumes[mounts["/etc/connector-runtime"]]["configMap"]["name"]
        == (config_map["metadata"]["name"])
    )
    assert (
        volumes[mounts["/run/secrets/connector-runtime"]]["secret"]["secretName"]
        == (secret["metadata"]["name"])
    )
    assert kinds["Service"]


def test_the_statefulset_gives_each_replica_its_own_spool_volume():
    [sts] = by_kind(STATEFUL)["StatefulSet"]
    [claim] = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert "data" not in {v["name"] for v in sts["spec"]["template"]["spec"]["volumes"]}
    services = {s["metadata"]["name"] for s in by_kind(STATEFUL)["Service"]}
    assert sts["spec"]["serviceName"] in services


def test_the_nats_variant_needs_no_volume():
    [dep] = by_kind(NATS_SPOOL)["Deployment"]
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes["data"]
    assert not any("persistentVolumeClaim" in v for v in volumes.values())


@pytest.mark.parametrize("path", WORKLOADS, ids=lambda p: p.name)
def test_the_configmap_manifest_validates(path, tmp_path):
    [config_map] = by_kind(path)["ConfigMap"]
    [secret] = by_kind(SECRET)["Secret"]
    text = config_map["data"]["manifest.yaml"]
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for key, value in secret["stringData"].items():
        (secrets / key).write_text(value)
    referenced = set(re.findall(r"\$\{file:/run/secrets/connector-runtime/([^}]+)\}", text))
    assert referenced and referenced <= set(secret["stringData"]), referenced
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(text.replace("/run/secrets/connector-runtime/", f"{secrets}/"))
    [container] = workload(path)["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container.get("env", [])}
    out = run_cli("validate", str(manifest), env=env)
    assert out.returncode == 0, out.stderr
    assert "connector auth0: auth0 -> http" in out.stdout
    assert "replace-me" not in out.stdout + out.stderr


# -- the container's default manifest ---------------------------------------------------------


def test_the_container_default_manifest_validates():
    manifest = ROOT / "deploy" / "container" / "manifest.yaml"
    out = run_cli("validate", str(manifest), env={"AUTH0_STREAM_TOKEN": "x" * 40})
    assert out.returncode == 0, out.stderr
