"""The container image is really built and run (podman).

``deploy/container/build.sh`` builds the image from the wheels ``make dist`` makes (the
base image made once with debootstrap where it is missing, the build itself without
network). The smoke test runs it as an operator would: a manifest mounted over the
default one, the token in the environment, the data dir a volume, ``--init``, a read-only
root file system and no capabilities (as deploy/kubernetes/ runs it); posts an
Auth0 delivery to the published port on 127.0.0.1, reads the CloudEvent the ``file``
target wrote into the volume, checks the health check and the user, then ``podman stop``
(SIGTERM) and expects the drain in the log and exit code 0.

Skipped, with the way to install it, only where podman is missing or cannot run
containers here; ``.ci/run`` installs podman, runc and debootstrap.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid

import pytest
import yaml

from connector_runtime import __version__
from connector_runtime.testing import free_port
from tests.deploy.dist_support import ROOT, clean_env, delivery, post

BUILD = ROOT / "deploy" / "container" / "build.sh"
BASE = os.environ.get("BASE", "localhost/cr-base:bookworm")
TAG = "localhost/connector-runtime:smoke-test"
TOKEN = "container-smoke-token-0123456789abcdef"
INSTALL = "apt-get install podman runc debootstrap (.ci/run installs them)"
# a cold build makes the base image (about a minute) before the image: more than the
# suite's default timeout, which counts the fixtures' setup too
pytestmark = pytest.mark.timeout(900)


def podman_env() -> dict[str, str]:
    return clean_env(
        CONTAINERS_CONF=os.environ.get(
            "CONTAINERS_CONF", str(ROOT / "deploy" / "container" / "containers.conf")
        )
    )


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    run = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, env=podman_env()
    )
    if check and run.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {run.returncode}: {run.stderr}")
    return run


@pytest.fixture(scope="module")
def podman_ready() -> None:
    if shutil.which("podman") is None:
        pytest.skip(f"podman is not installed: {INSTALL}")
    info = podman("info", "--format", "{{.Host.OCIRuntime.Name}}", check=False)
    if info.returncode != 0:
        reason = (info.stderr.strip().splitlines() or ["no reason given"])[-1]
        pytest.skip(f"podman cannot run here ({reason}): {INSTALL}")
    if podman("image", "exists", BASE, check=False).returncode != 0:
        if BASE.startswith("localhost/cr-base:") and os.geteuid() != 0:
            pytest.skip(
                f"the base image {BASE} is missing and making it needs root (debootstrap):"
                " run deploy/container/build.sh once as root, or set BASE to an image with"
                " python3.11"
            )
        if BASE.startswith("localhost/cr-base:") and shutil.which("debootstrap") is None:
            pytest.skip(f"debootstrap is not installed: {INSTALL}")


@pytest.fixture(scope="module")
def image(podman_ready, dist_wheels, tmp_path_factory) -> str:
    dist = next(iter(dist_wheels.values())).parent
    stage = tmp_path_factory.mktemp("container-stage")
    started = time.monotonic()
    run = subprocess.run(
        ["bash", str(BUILD), TAG],
        capture_output=True,
        text=True,
        timeout=900,
        env={
            **podman_env(),
            "DIST": str(dist),
            "STAGE": str(stage),
            "BASE": BASE,
            "PYTHON": sys.executable,
        },
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    print(f"\n{run.stdout.strip()}\nbuild.sh took {time.monotonic() - started:.0f} s")
    return TAG


def test_build_refuses_a_dist_without_wheels(podman_ready, tmp_path):
    run = subprocess.run(
        ["bash", str(BUILD)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**podman_env(), "DIST": str(tmp_path)},
    )
    assert run.returncode == 1
    assert run.stderr == (
        f"error: {tmp_path} must hold one connector_runtime wheel, it holds 0: run make dist\n"
    )


def test_build_usage_errors_exit_2(tmp_path):
    run = subprocess.run(["bash", str(BUILD), "--nope"], capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr == "error: unknown option --nope (usage: build.sh [TAG])\n"


def test_the_image_runs_commands_as_the_runtime_user(image):
    version = podman("run", "--rm", image, "--version")
    assert version.stdout.splitlines()[0] == f"connector-runtime {__version__}"
    assert "plugin auth0 " in version.stdout and "plugin webhook " in version.stdout
    who = podman("run", "--rm", "--entrypoint", "id", image)
    assert who.stdout.startswith("uid=10001(connector) gid=10001(connector)")
    # the default manifest needs the token: without it the container exits with one line
    bare = podman("run", "--rm", image, check=False)
    assert bare.returncode == 1
    assert "AUTH0_STREAM_TOKEN" in bare.stdout + bare.stderr
    ok = podman(
        "run",
        "--rm",
        "-e",
        f"AUTH0_STREAM_TOKEN={TOKEN}",
        image,
        "validate",
        "/etc/connector-runtime/manifest.yaml",
    )
    assert "ok: /etc/connector-runtime/manifest.yaml: connector auth0: auth0 -> stdout" in ok.stdout
    [inspected] = json.loads(podman("image", "inspect", image).stdout)
    config = inspected["Config"]
    assert config["User"] == "10001:10001"
    assert "/data" in config["Volumes"]
    assert config["Entrypoint"] == ["/opt/connector-runtime/bin/connector-runtime"]
    check = inspected.get("Healthcheck") or config["Healthcheck"]  # kept: --format docker
    assert check["Test"][:2] == ["CMD", "/opt/connector-runtime/bin/python"]
    assert "/healthz" in check["Test"][-1]


@pytest.mark.slow
def test_smoke_post_a_delivery_see_the_event_stop_with_a_drain(image, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "connector-runtime/v1",
                "kind": "Connector",
                "metadata": {"name": "a0"},
                "spec": {
                    "source": {"type": "auth0", "config": {"token": "${AUTH0_STREAM_TOKEN}"}},
                    "target": {"type": "file", "config": {"path": "/data/events.jsonl"}},
                },
            }
        )
    )
    port = free_port()
    name = f"cr-smoke-{uuid.uuid4().hex[:8]}"
    podman(
        "run", "--detach", "--init", "--name", name,
        # as the Kubernetes manifests run it: read-only root (tmpfs /tmp), no capabilities
        "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--publish", f"127.0.0.1:{port}:8080",
        "--env", f"AUTH0_STREAM_TOKEN={TOKEN}",
        "--volume", f"{manifest}:/etc/connector-runtime/manifest.yaml:ro",
        "--volume", f"{data}:/data:U",
        image,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "listening on" not in (logs := podman("logs", name)).stdout + logs.stderr:
            state = podman("inspect", name, "--format", "{{.State.Status}}").stdout.strip()
            assert state == "running", logs.stdout + logs.stderr
            assert time.monotonic() < deadline, logs.stdout + logs.stderr
            time.sleep(0.2)

        status, answer = post(f"http://127.0.0.1:{port}/a0", delivery("90020250314001"), TOKEN)
        assert status == 200 and json.loads(answer)["accepted"] == 1
        events = data / "events.jsonl"
        deadline = time.monotonic() + 30
        while not (events.exists() and events.read_text().endswith("\n")):
            assert time.monotonic() < deadline, podman("logs", name).stderr
            time.sleep(0.1)
        [event] = [json.loads(line) for line in events.read_text().splitlines()]
        assert event["id"] == "90020250314001" and event["type"] == "com.auth0.log.s"
        assert (data / "spool.db").exists()  # the spool is in the volume
        assert data.stat().st_uid != 0  # :U gave /data to the runtime's user

        assert podman("healthcheck", "run", name, check=False).returncode == 0
        top = podman("top", name, "user", "args").stdout
        assert "podman-init" in top and "connector-runtime run" in top
        assert "root" not in top

        started = time.monotonic()
        podman("stop", "--time", "40", name, timeout=60)  # SIGTERM, SIGKILL only after 40 s
        stopped_in = time.monotonic() - started
        state = podman("inspect", name, "--format", "{{.State.ExitCode}} {{.State.Status}}")
        logs = podman("logs", name)
        text = logs.stdout + logs.stderr
        assert state.stdout.split() == ["0", "exited"], text
        assert stopped_in < 30, f"SIGTERM did not stop it ({stopped_in:.0f} s)"
        lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        messages = [line["msg"] for line in lines]
        stopping = [i for i, m in enumerate(messages) if m.startswith("stopping")]
        assert stopping and "stopped" in messages[stopping[0] :], text
        assert TOKEN not in text
    finally:
        podman("rm", "--force", name, check=False)
