"""A conformance suite for source types: the checks every source plugin should pass.

Subclass :class:`SourceConformance` in a test module under a name pytest collects
(``Test…``) and describe your source type; every check below then runs against it, through
a real runtime on a loopback port and a :class:`~connector_runtime.testing.RecordingTarget`::

    class TestAcmeConformance(SourceConformance):
        source_type = "acme"
        config = {"token": "Bearer 0123456789abcdef"}
        auth_headers = {"Authorization": "Bearer 0123456789abcdef"}
        filter_config = {"token": "Bearer 0123456789abcdef", "types": ["nothing.matches"]}

        def valid_body(self):
            return b'[{"id": "1"}, {"id": "2"}]', {"Content-Type": "application/json"}, 2

        def bad_bodies(self):
            return [(b"{not json", {}), (b"[1, 2]", {})]

The checks:

- the config schema is a valid JSON Schema, and ``config`` (and ``filter_config``) pass it;
- values of fields the schema marks secret appear nowhere in what ``validate``,
  ``plugins`` and ``schema`` print, nor in a :class:`~connector_runtime.errors.ManifestError`
  (message, problems, traceback) when another field of the config is wrong;
- bad bodies, and requests without the credentials, get a 4xx and emit nothing;
- a valid body gets 200 and exactly the expected number of CloudEvents at the target,
  each one valid per the ``cloudevents`` SDK, in binary, structured and batch mode;
- event ids are stable: the same body posted again is all duplicates (also after a restart
  on the same data dir), and a fresh runtime gives the same ids;
- the source's ``event_filter`` is honoured: with ``filter_config`` every event is filtered;
- the source's events take ``spec.transforms``: with an attribute set, every event arrives
  with it, valid, with the same ids as without.

The fixtures used (``cr_loop``, ``recording_target``, ``runtime_factory``) come from the kit,
:mod:`connector_runtime.testing`, which pytest loads when connector-runtime is installed.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import jsonschema
import pytest
from cloudevents.core.v1.event import CloudEvent

from connector_runtime.cli import commands as cli
from connector_runtime.config.manifest import load_manifest
from connector_runtime.config.secrets import is_secret_schema, secret_paths, values_at
from connector_runtime.conformance_pull import PullConformance
from connector_runtime.errors import ManifestError
from connector_runtime.plugins import Registry, build_registry
from connector_runtime.testing import (
    LoopThread,
    RecordingTarget,
    Response,
    RunningRuntime,
    connector_doc,
    post,
    start_runtime,
    write_manifest,
)

__all__ = ["CONNECTOR", "PullConformance", "SourceConformance", "marks_secret"]

CONNECTOR = "conformance"
"""The name of the connector every check creates (its webhook path is ``/conformance``)."""

UNKNOWN_KEY = "xConformanceUnknownKey"

Body = tuple[bytes, Mapping[str, str]]


def marks_secret(schema: Any) -> bool:
    """True when any (sub)schema of ``schema`` marks its value secret."""
    if isinstance(schema, Mapping):
        return is_secret_schema(schema) or any(marks_secret(v) for v in schema.values())
    if isinstance(schema, list):
        return any(marks_secret(v) for v in schema)
    return False


class SourceConformance:
    """Base class of a source type's conformance tests; see the module docstring.

    What a subclass sets:

    - ``source_type``: the registered name;
    - ``config``: a valid config; it should set every secret field, so redaction is checked;
    - ``valid_body()``: ``(body, headers, number of events it becomes)``, at least one event;
    - ``bad_bodies()``: ``[(body, headers), …]``, each one the source must answer with a 4xx;
    - ``auth_headers``: headers that carry the credentials ``config`` asks for; override
      :meth:`authorize` when they depend on the body (a signature);
    - ``filter_config``: a config under which the source's ``event_filter`` filters out
      every event of ``valid_body()``; ``None`` when the source has no filter;
    - :meth:`wrong_config` when an unknown key is not an error for this source type;
    - :meth:`registry` to test a plugin that is not installed (``build_registry(extra=…)``).
    """

    source_type: ClassVar[str]
    config: ClassVar[Mapping[str, Any]] = {}
    auth_headers: ClassVar[Mapping[str, str]] = {}
    filter_config: ClassVar[Mapping[str, Any] | None] = None
    ack: ClassVar[str] = "durable"
    """The ack policy of the redelivery check (the other checks use ``delivered``)."""

    # -- what a subclass provides ---------------------------------------------------------

    def valid_body(self) -> tuple[bytes, Mapping[str, str], int]:
        raise NotImplementedError("a SourceConformance subclass must define valid_body()")

    def bad_bodies(self) -> Sequence[Body]:
        raise NotImplementedError("a SourceConformance subclass must define bad_bodies()")

    def authorize(self, body: bytes, headers: Mapping[str, str]) -> dict[str, str]:
        """``headers`` with the credentials added (``auth_headers`` by default)."""
        return {**self.auth_headers, **headers}

    @property
    def requires_auth(self) -> bool:
        """Whether a request without the credentials must be refused."""
        return bool(self.auth_headers)

    def wrong_config(self) -> Mapping[str, Any]:
        """``config`` with one non-secret field wrong (default: an unknown key added)."""
        return {**self.config, UNKNOWN_KEY: True}

    def registry(self) -> Registry:
        return build_registry()

    # -- helpers ------------------------------------------------------------------------

    def schema(self, registry: Registry) -> Mapping[str, Any]:
        found = registry.source_types.get(self.source_type)
        if found is None:
            installed = ", ".join(sorted(registry.source_types)) or "none"
            pytest.fail(f"source type {self.source_type!r} is not registered ({installed})")
        return found.config_schema

    def document(
        self,
        target_url: str,
        config: Mapping[str, Any] | None = None,
        mode: str = "binary",
        ack: str = "delivered",
        transforms: Sequence[Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        return connector_doc(
            CONNECTOR,
            self.source_type,
            self.config if config is None else config,
            {"type": "http", "config": {"url": target_url, "mode": mode}},
            delivery={"ack": ack},
            transforms=transforms,
        )

    def send(self, running: RunningRuntime, body: bytes, headers: Mapping[str, str]) -> Response:
        return post(running.connector_url(CONNECTOR), body, self.authorize(body, headers))

    def secrets(self, registry: Registry) -> set[str]:
        return values_at(self.config, secret_paths(self.schema(registry), self.config))

    def expected_events(self) -> int:
        count = self.valid_body()[2]
        assert count >= 1, "valid_body() must become at least one event"
        return count

    # -- the checks ---------------------------------------------------------------------

    def test_config_schema_is_valid(self) -> None:
        registry = self.registry()
        schema = self.schema(registry)
        validator = jsonschema.validators.validator_for(schema)
        validator.check_schema(dict(schema))
        configs = {"config": self.config}
        if self.filter_config is not None:
            configs["filter_config"] = self.filter_config
        for name, config in configs.items():
            errors = [e.message for e in validator(schema).iter_errors(dict(config))]
            assert not errors, f"{name} fails the schema of {self.source_type!r}: {errors}"

    def test_secrets_are_redacted(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        registry = self.registry()
        schema = self.schema(registry)
        if not marks_secret(schema):
            pytest.skip(f"the schema of {self.source_type!r} marks no field secret")
        secrets = self.secrets(registry)
        assert secrets, "config sets no secret field; set one so redaction can be checked"
        # The CLI's commands, in process, with this registry: what an operator would see.
        monkeypatch.setattr(cli, "build_registry", lambda *a, **k: registry)
        (tmp_path / "good").mkdir()
        (tmp_path / "bad").mkdir()
        good = write_manifest([self.document("http://127.0.0.1:9/")], tmp_path / "good")
        bad = write_manifest(
            [self.document("http://127.0.0.1:9/", self.wrong_config())], tmp_path / "bad"
        )
        runs = {
            "validate": (["validate", str(good)], 0),
            "plugins": (["plugins"], 0),
            "plugins --json": (["plugins", "--json"], 0),
            "schema": (["schema", self.source_type], 0),
            "validate (a wrong field)": (["validate", str(bad)], cli.EXIT_INPUT),
        }
        for label, (argv, expected) in runs.items():
            code = cli.main(argv)
            out, err = capsys.readouterr()
            assert code == expected, f"{label}: exit {code}, expected {expected}: {err}"
            for secret in secrets:
                assert secret not in out + err, f"{label} printed a secret value"
        with pytest.raises(ManifestError) as caught:
            load_manifest([bad], registry, env={})
        assert caught.value.problems, "a wrong field must be reported as a problem"
        shown = "".join(traceback.format_exception(caught.value))
        shown += "".join(str(p) for p in caught.value.problems)
        for secret in secrets:
            assert secret not in shown, "a ManifestError carries a secret value"

    def test_bad_input_is_rejected_and_emits_nothing(
        self,
        runtime_factory: Callable[..., RunningRuntime],
        recording_target: RecordingTarget,
    ) -> None:
        registry = self.registry()
        secrets = self.secrets(registry)
        running = runtime_factory([self.document(recording_target.url)], registry=registry)
        attempts: list[tuple[str, Response]] = []
        for index, (body, headers) in enumerate(self.bad_bodies()):
            attempts.append((f"bad_bodies()[{index}]", self.send(running, body, headers)))
        body, headers, _ = self.valid_body()
        if self.requires_auth:
            url = running.connector_url(CONNECTOR)
            attempts.append(("valid body without credentials", post(url, body, headers)))
            authorized = self.authorize(body, headers)
            wrong = {k: v if headers.get(k) == v else v + "-wrong" for k, v in authorized.items()}
            attempts.append(("valid body with wrong credentials", post(url, body, wrong)))
        assert attempts, "bad_bodies() is empty and the source requires no credentials"
        for label, response in attempts:
            assert 400 <= response.status < 500, f"{label}: {response.status} {response.body!r}"
            for secret in secrets:
                assert secret.encode() not in response.body, f"{label}: answer shows a secret"
        # ack "delivered": anything a request emitted reached the target before its answer.
        assert recording_target.events == [], "a rejected request emitted events"
        accepted = self.send(running, body, headers)
        assert accepted.status == 200, "the valid body must still be accepted afterwards"

    @pytest.mark.parametrize("mode", ["binary", "structured", "batch"])
    def test_valid_body_becomes_cloudevents(
        self,
        mode: str,
        runtime_factory: Callable[..., RunningRuntime],
        recording_target: RecordingTarget,
    ) -> None:
        count = self.expected_events()
        body, headers, _ = self.valid_body()
        registry = self.registry()
        documents = [self.document(recording_target.url, mode=mode)]
        running = runtime_factory(documents, registry=registry)
        response = self.send(running, body, headers)
        assert response.status == 200, response.body
        assert response.json() == {"accepted": count, "filtered": 0, "duplicates": 0}
        received = recording_target.events
        assert len(received) == count, f"{len(received)} events arrived, expected {count}"
        assert len({e.id for e in received}) == count, "events of one body share an id"
        for event in received:
            attributes = dict(event.attributes)
            assert attributes["specversion"] == "1.0"
            for name in ("id", "source", "type"):
                assert isinstance(attributes[name], str), (name, attributes[name])
                assert attributes[name], f"empty {name}"
            # the SDK validates every attribute when it builds an event (raises if invalid)
            CloudEvent(attributes, event.data)

    def test_ids_are_stable_across_redelivery(
        self, cr_loop: LoopThread, recording_target: RecordingTarget, tmp_path: Path
    ) -> None:
        count = self.expected_events()
        body, headers, _ = self.valid_body()
        registry = self.registry()
        documents = [self.document(recording_target.url, ack=self.ack)]
        first = tmp_path / "first"

        @contextlib.contextmanager
        def serving(where: Path) -> Iterator[RunningRuntime]:
            where.mkdir(exist_ok=True)
            running = start_runtime(
                cr_loop, documents, registry, directory=where, data_dir=where / "data"
            )
            try:
                yield running
            finally:
                running.stop()

        fresh = {"accepted": count, "filtered": 0, "duplicates": 0}
        repeat = {"accepted": 0, "filtered": 0, "duplicates": count}
        with serving(first) as running:
            assert self.send(running, body, headers).json() == fresh
            again = self.send(running, body, headers)
            assert again.status == 200, again.body
            assert again.json() == repeat, "the same body again must be all duplicates"
            recording_target.wait_for(count)
        ids = set(recording_target.ids)
        assert len(ids) == count, f"{len(ids)} distinct ids arrived, expected {count}"
        with serving(first) as running:
            after_restart = self.send(running, body, headers)
            assert after_restart.json() == repeat, "duplicates must be known after a restart"
        recording_target.events.clear()
        with serving(tmp_path / "second") as running:
            assert self.send(running, body, headers).json() == fresh
            recording_target.wait_for(count)
        assert set(recording_target.ids) == ids, "another runtime gave the same body other ids"

    def test_event_filter_is_honoured(
        self,
        runtime_factory: Callable[..., RunningRuntime],
        recording_target: RecordingTarget,
    ) -> None:
        if self.filter_config is None:
            pytest.skip(f"no filter_config for {self.source_type!r}")
        count = self.expected_events()
        body, headers, _ = self.valid_body()
        running = runtime_factory(
            [self.document(recording_target.url, self.filter_config)], registry=self.registry()
        )
        response = self.send(running, body, headers)
        assert response.status == 200, response.body
        assert response.json() == {"accepted": 0, "filtered": count, "duplicates": 0}
        assert recording_target.events == []

    def test_events_take_transforms(
        self,
        runtime_factory: Callable[..., RunningRuntime],
        recording_target: RecordingTarget,
        tmp_path: Path,
    ) -> None:
        count = self.expected_events()
        body, headers, _ = self.valid_body()
        plain = runtime_factory(
            [self.document(recording_target.url, mode="structured")],
            registry=self.registry(),
            data_dir=tmp_path / "plain",
        )
        assert self.send(plain, body, headers).status == 200
        ids = sorted(recording_target.ids)
        recording_target.events.clear()
        transforms = [{"set": {"attributes": {"crconformance": "transformed"}}}]
        running = runtime_factory(
            [self.document(recording_target.url, mode="structured", transforms=transforms)],
            registry=self.registry(),
            data_dir=tmp_path / "transformed",
        )
        response = self.send(running, body, headers)
        assert response.status == 200, response.body
        assert response.json() == {"accepted": count, "filtered": 0, "duplicates": 0}
        assert sorted(recording_target.ids) == ids, "a transform changed the events' ids"
        assert all(
            e.attributes.get("crconformance") == "transformed" for e in recording_target.events
        ), "an event arrived without the attribute spec.transforms set"
