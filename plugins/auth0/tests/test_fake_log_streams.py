"""The fake tenant's log-stream endpoints answer like the Management API's (over sockets)."""

from __future__ import annotations

import json

import pytest
from connector_runtime.testing import LoopThread, post

from connector_runtime_auth0.fake_tenant import FakeTenant


@pytest.fixture
def tenant(cr_loop: LoopThread):
    tenant = FakeTenant(cr_loop, rate=100, burst=100).start()
    yield tenant
    tenant.stop()


def token(tenant: FakeTenant) -> str:
    body = {
        "grant_type": "client_credentials",
        "client_id": tenant.client_id,
        "client_secret": tenant.client_secret,
        "audience": f"{tenant.url}/api/v2/",
    }
    answer = post(
        tenant.url + "/oauth/token", json.dumps(body), {"Content-Type": "application/json"}
    )
    assert answer.status == 200
    return str(json.loads(answer.body)["access_token"])


def call(tenant: FakeTenant, method: str, path: str, bearer: str, body: object = None):
    data = b"" if body is None else json.dumps(body).encode()
    answer = post(tenant.url + path, data, {"Authorization": f"Bearer {bearer}"}, method=method)
    return answer.status, json.loads(answer.body)


def test_a_stream_is_read_and_its_status_set_through_the_api(tenant: FakeTenant):
    stream = tenant.add_log_stream("https://hooks.example.com/auth0", "s3cret-token")
    bearer = token(tenant)
    status, body = call(tenant, "GET", f"/api/v2/log-streams/{stream.id}", bearer)
    assert status == 200
    assert body["id"] == stream.id and body["type"] == "http" and body["status"] == "active"
    assert body["sink"]["httpEndpoint"] == "https://hooks.example.com/auth0"
    assert body["sink"]["httpContentFormat"] == "JSONLINES"

    assert (
        call(tenant, "PATCH", f"/api/v2/log-streams/{stream.id}", bearer, {"status": "paused"})[1][
            "status"
        ]
        == "paused"
    )
    assert stream.status == "paused"
    stream.set_status("suspended", "auth0")
    status, body = call(
        tenant, "PATCH", f"/api/v2/log-streams/{stream.id}", bearer, {"status": "active"}
    )
    assert (status, body["status"]) == (200, "active")
    assert [(s, by) for _, s, by in stream.history] == [
        ("paused", "api"),
        ("suspended", "auth0"),
        ("active", "api"),
    ]


def test_what_the_api_refuses(tenant: FakeTenant):
    stream = tenant.add_log_stream("https://hooks.example.com/auth0")
    path = f"/api/v2/log-streams/{stream.id}"
    bearer = token(tenant)
    # a client cannot declare a stream suspended, nor send what is not a status change
    assert call(tenant, "PATCH", path, bearer, {"status": "suspended"})[0] == 400
    assert call(tenant, "PATCH", path, bearer, ["active"])[0] == 400
    assert stream.status == "active"
    assert call(tenant, "GET", "/api/v2/log-streams/lst_0000000000000099", bearer)[0] == 404
    assert call(tenant, "GET", path, "not-a-token")[0] == 401
    tenant.scopes = ("read:logs", "read:log_streams")
    status, body = call(tenant, "PATCH", path, bearer, {"status": "paused"})
    assert (status, body["errorCode"]) == (403, "insufficient_scope")
    assert "update:log_streams" in body["message"]
    assert stream.status == "active"
    tenant.scopes = ("read:logs",)
    assert call(tenant, "GET", path, bearer)[0] == 403
