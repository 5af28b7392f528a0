"""The conformance checks of a pull source (``SourceType.pull``); import
:class:`PullConformance` from :mod:`connector_runtime.conformance`.

Subclass it under a name pytest collects (``Test…``) and describe your source::

    class TestAcmePullConformance(PullConformance):
        source_type = "acme-pull"

        def start_source(self, loop):      # stand up a fake of the API, with data
            self.api = FakeAcme(loop).start()
            self.api.add(3)

        def stop_source(self):
            self.api.stop()

        def config(self):
            return {"url": self.api.url, "secret": "s3cret-value"}

        def expected_events(self):         # what the data added so far becomes
            return len(self.api.items)

        def add_more(self):                # more data; how many more events it becomes
            return self.api.add(2)

The checks:

- the config schema is a valid JSON Schema, and ``config()`` passes it;
- ``validate`` refuses the pull source with ``ack: received``, ``ack: delivered`` and
  ``delivery.spool: nats`` (no transaction would hold its checkpoint with the events);
- the source's events arrive at a recording target as valid CloudEvents with distinct ids;
  after a restart on the same data dir, with more data added, exactly the new events
  arrive: the source resumed after its last committed checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import jsonschema
import pytest
from cloudevents.core.v1.event import CloudEvent

from connector_runtime.config.manifest import load_manifest
from connector_runtime.errors import ManifestError
from connector_runtime.plugins import Registry, build_registry
from connector_runtime.testing import (
    LoopThread,
    RecordingTarget,
    RunningRuntime,
    connector_doc,
    write_manifest,
)

__all__ = ["PULL_CONNECTOR", "PullConformance"]

PULL_CONNECTOR = "pull-conformance"


class PullConformance:
    """Base class of a pull source's conformance tests; see the module docstring."""

    source_type: ClassVar[str]
    wait_seconds: ClassVar[float] = 60.0
    """How long a check waits for the expected events before it fails."""

    # -- what a subclass provides ---------------------------------------------------------

    def start_source(self, loop: LoopThread) -> None:
        """Start whatever the source reads from (a fake API on ``loop``), with data."""

    def stop_source(self) -> None:
        """Stop it again."""

    def config(self) -> Mapping[str, Any]:
        raise NotImplementedError("a PullConformance subclass must define config()")

    def expected_events(self) -> int:
        raise NotImplementedError("a PullConformance subclass must define expected_events()")

    def add_more(self) -> int:
        raise NotImplementedError("a PullConformance subclass must define add_more()")

    def registry(self) -> Registry:
        return build_registry()

    # -- helpers ------------------------------------------------------------------------

    @pytest.fixture(autouse=True)
    def _source(self, cr_loop: LoopThread) -> Iterator[None]:
        self.start_source(cr_loop)
        yield
        self.stop_source()

    def document(self, target_url: str, delivery: Mapping[str, Any] | None = None) -> Any:
        return connector_doc(
            PULL_CONNECTOR,
            self.source_type,
            self.config(),
            {"type": "http", "config": {"url": target_url, "mode": "batch"}},
            delivery=delivery,
        )

    def wait_for(self, target: RecordingTarget, count: int) -> None:
        deadline = time.monotonic() + self.wait_seconds
        while len(target.events) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(target.events) >= count, f"{len(target.events)} events arrived of {count}"

    # -- the checks ---------------------------------------------------------------------

    def test_pull_config_schema_is_valid(self) -> None:
        found = self.registry().source_types.get(self.source_type)
        assert found is not None, f"source type {self.source_type!r} is not registered"
        assert found.pull is not None, f"source type {self.source_type!r} has no pull"
        schema = found.config_schema
        jsonschema.validators.validator_for(schema).check_schema(dict(schema))

    @pytest.mark.parametrize(
        "delivery", [{"ack": "received"}, {"ack": "delivered"}, {"spool": "nats"}]
    )
    def test_pull_refuses_policies_without_a_checkpoint(
        self, delivery: Mapping[str, Any], tmp_path: Path
    ) -> None:
        doc = self.document("http://127.0.0.1:9", delivery)
        if "spool" in delivery:
            doc["spec"]["delivery"]["nats"] = {
                "servers": ["nats://127.0.0.1:4222"],
                "stream": "EVENTS",
            }
        with pytest.raises(ManifestError) as refused:
            load_manifest([write_manifest([doc], tmp_path)], self.registry(), env={})
        assert "pulls with a checkpoint" in str(refused.value)

    def test_pulled_events_arrive_once_and_a_restart_resumes(
        self,
        runtime_factory: Callable[..., RunningRuntime],
        recording_target: RecordingTarget,
        tmp_path: Path,
    ) -> None:
        registry, data = self.registry(), tmp_path / "pull-data"
        first = runtime_factory(
            [self.document(recording_target.url)], registry=registry, data_dir=data
        )
        count = self.expected_events()
        self.wait_for(recording_target, count)
        first.stop()
        for event in recording_target.events:
            CloudEvent(dict(event.attributes), event.data)  # raises if not valid
        more = self.add_more()
        assert more >= 1, "add_more() must add at least one event"
        runtime_factory([self.document(recording_target.url)], registry=registry, data_dir=data)
        self.wait_for(recording_target, count + more)
        ids = [e.id for e in recording_target.events]
        assert len(set(ids)) == len(ids) == count + more, "events were emitted again"
