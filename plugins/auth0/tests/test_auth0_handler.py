"""Auth0Handler over a real Tornado server: parse errors become 400, records become events.

The runtime's own tests cover the base handler (405, 401, 413, 415, 503) end to end; this
only checks what the Auth0 handler adds.
"""

from __future__ import annotations

import json
import logging

from connector_runtime import Outcome, SourceContext
from tornado.testing import AsyncHTTPTestCase
from tornado.web import Application

from connector_runtime_auth0 import SOURCE_TYPE
from connector_runtime_auth0.testing import as_array, as_lines, sample_batch


class RecordingIngest:
    def __init__(self):
        self.batches = []

    async def submit(self, events, *, request_id=""):
        self.batches.append(list(events))
        return Outcome(accepted=len(events), filtered=0, duplicates=0)


class Auth0HandlerTest(AsyncHTTPTestCase):
    def get_app(self):
        self.ingest = RecordingIngest()
        routes = []
        for name, config in (("plain", {}), ("custom", {"source": "urn:acme", "format": "array"})):
            ctx = SourceContext(
                connector=name,
                config=config,
                base_path="/" + name,
                default_source="/connectors/" + name,
                ingest=self.ingest,
                log=logging.getLogger("test.auth0"),
            )
            routes += [
                ("/" + name + pattern, cls, kw) for pattern, cls, kw in SOURCE_TYPE.routes(ctx)
            ]
        return Application(routes)

    def post(self, path, body):
        return self.fetch(
            path, method="POST", body=body, headers={"Content-Type": "application/json"}
        )

    def test_json_lines_become_events(self):
        batch = sample_batch()
        response = self.post("/plain", as_lines(batch))
        assert response.code == 200, response.body
        assert json.loads(response.body)["accepted"] == len(batch)
        [events] = self.ingest.batches
        assert [e.id for e in events] == [log_id for log_id, _, _ in batch]
        assert {e.attributes["source"] for e in events} == {"/connectors/plain"}

    def test_configured_source_and_format(self):
        batch = sample_batch()
        assert self.post("/custom", as_array(batch)).code == 200
        assert {e.attributes["source"] for e in self.ingest.batches[0]} == {"urn:acme"}
        response = self.post("/custom", as_lines(batch))
        assert response.code == 400
        assert json.loads(response.body) == {"error": "body is not a JSON array"}

    def test_parse_error_is_a_400_with_the_reason(self):
        response = self.post("/plain", b'{"log_id":"x"}\n{"log_id":"y","data":{}}\n')
        assert response.code == 400
        assert json.loads(response.body) == {"error": "line 1: no 'data' member"}
        assert self.ingest.batches == []
