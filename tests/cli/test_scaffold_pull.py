"""``connector-runtime new-plugin NAME --pull``: a pull-source distribution, what it holds,
and that it works: installed into a fresh virtual environment (as in ``test_scaffold.py``),
its own tests pass (the pull conformance suite among them), and ``connector-runtime run``
with its example manifest polls a real HTTP server and prints every item once."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import tomllib

import jsonschema
import pytest
import tornado.httpserver
import tornado.web
import yaml

from connector_runtime.testing import LoopThread, free_port, post
from tests.cli.test_scaffold import files_under, generate, make_test

EXPECTED_FILES = {
    ".gitignore",
    "Makefile",
    "README.md",
    "pyproject.toml",
    "manifests/example.yaml",
    "connector_runtime_acme_feed/__init__.py",
    "connector_runtime_acme_feed/api.py",
    "connector_runtime_acme_feed/config.schema.json",
    "connector_runtime_acme_feed/puller.py",
    "connector_runtime_acme_feed/py.typed",
    "tests/conftest.py",
    "tests/fake_api.py",
    "tests/test_api.py",
    "tests/test_conformance.py",
    "tests/test_manifest.py",
    "tests/test_pull.py",
}


def test_pull_writes_a_pull_source_distribution(tmp_path, capsys):
    where = generate(tmp_path, "acme-feed", "--pull")
    assert files_under(where) == EXPECTED_FILES
    out = capsys.readouterr().out
    assert "make test RUNTIME=" in out

    project = tomllib.loads((where / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["connector_runtime"] == {
        "acme-feed": "connector_runtime_acme_feed"
    }
    schema = json.loads((where / "connector_runtime_acme_feed/config.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["token"]["x-secret"] is True
    assert schema["required"] == ["url"]
    [manifest] = yaml.safe_load_all((where / "manifests/example.yaml").read_text())
    assert manifest["spec"]["source"]["config"] == {
        "url": "${ACME_FEED_URL}",
        "token": "${ACME_FEED_TOKEN}",
        "pollInterval": "30s",
    }
    package = (where / "connector_runtime_acme_feed/__init__.py").read_text()
    assert "pull=pull" in package and "routes=lambda ctx: []" in package
    puller = (where / "connector_runtime_acme_feed/puller.py").read_text()
    assert "await ctx.ingest.submit(events, checkpoint=checkpoint)" in puller
    conformance = (where / "tests/test_conformance.py").read_text()
    assert "from connector_runtime.conformance import PullConformance" in conformance
    readme = (where / "README.md").read_text()
    assert "GET <url>?after=<cursor>&limit=<pageSize>" in readme


def test_the_webhook_plugin_is_still_the_default(tmp_path):
    where = generate(tmp_path, "acme-feed")
    assert (where / "connector_runtime_acme_feed/handler.py").exists()
    assert not (where / "connector_runtime_acme_feed/puller.py").exists()


class ItemsServer:
    """The API the generated README describes, written here from that description."""

    def __init__(self, loop: LoopThread, token: str, count: int) -> None:
        self.loop, self.token, self.port = loop, token, free_port()
        self.items = [{"id": f"order-{i}", "type": "order.created", "n": i} for i in range(count)]
        self.server: tornado.httpserver.HTTPServer | None = None

    def start(self) -> ItemsServer:
        api = self

        class Items(tornado.web.RequestHandler):
            def get(self) -> None:
                if self.request.headers.get("Authorization") != f"Bearer {api.token}":
                    self.set_status(401)
                    self.finish({"error": "unauthorized"})
                    return
                after = int(self.get_query_argument("after", "0"))
                page = api.items[after : after + int(self.get_query_argument("limit"))]
                self.finish({"items": page, "cursor": str(after + len(page))})

        async def listen() -> tornado.httpserver.HTTPServer:
            server = tornado.httpserver.HTTPServer(tornado.web.Application([("/v1/items", Items)]))
            server.listen(self.port, "127.0.0.1")
            return server

        self.server = self.loop.run(listen())
        return self

    def stop(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None

            async def close() -> None:
                server.stop()
                await server.close_all_connections()

            self.loop.run(close())


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_generated_pull_plugin_installs_passes_its_tests_and_runs(tmp_path, cr_loop):
    where = generate(tmp_path, "acme-feed", "--pull")
    venv = tmp_path / "venv"
    env = make_test(where, venv)

    cli = str(venv / "bin" / "connector-runtime")
    plugins = subprocess.run([cli, "plugins"], capture_output=True, text=True, env=env)
    assert "acme-feed 0.1.0: source acme-feed" in plugins.stdout, plugins.stdout
    assert "BROKEN" not in plugins.stdout

    # the example manifest, as its comment says to run it, against a real server
    token = "example-token-0123456789"
    api = ItemsServer(cr_loop, token, 250).start()
    run_env = {
        **env,
        "ACME_FEED_URL": f"http://127.0.0.1:{api.port}/v1/items",
        "ACME_FEED_TOKEN": token,
    }
    validate = subprocess.run(
        [cli, "validate", "manifests/example.yaml"],
        cwd=where,
        capture_output=True,
        text=True,
        env=run_env,
    )
    assert validate.returncode == 0, validate.stderr
    assert "connector acme-feed: acme-feed -> stdout" in validate.stdout
    port = free_port()
    out_path, err_path = tmp_path / "stdout.jsonl", tmp_path / "stderr.log"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        args = ["run", "manifests/example.yaml", "--port", str(port)]
        proc = subprocess.Popen(
            [cli, *args, "--data-dir", str(tmp_path / "data")],
            cwd=where,
            stdout=out,
            stderr=err,
            env=run_env,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if out_path.read_bytes().count(b"\n") >= 250:
                break
            time.sleep(0.1)
        ready = post(f"http://127.0.0.1:{port}/readyz", method="GET")
    finally:
        proc.terminate()
        assert proc.wait(30) == 0, err_path.read_text()
        api.stop()
    events = [json.loads(line) for line in out_path.read_text().splitlines()]
    assert sorted(e["id"] for e in events) == sorted(i["id"] for i in api.items)  # each once
    assert {e["type"] for e in events} == {"com.example.acme-feed.order.created"}
    assert events[0]["data"] == {"id": "order-0", "type": "order.created", "n": 0}
    assert ready.status == 200, ready.body
    assert token not in err_path.read_text()
