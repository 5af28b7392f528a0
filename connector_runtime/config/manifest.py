"""Reading manifests: YAML → ``${…}`` substitution → schema checks → frozen dataclasses.

Every problem found is collected (not just the first) and raised together as one
:class:`~connector_runtime.errors.ManifestError`; each names the file, the connector, the
JSON path and what is wrong. Values of secret fields never appear in a message.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from connector_runtime.config.checks import (
    fill_defaults,
    format_path,
    parse_duration,
    path_suffix,
    pointer_to_path,
    schema_problems,
)
from connector_runtime.config.model import (
    AdminSpec,
    ComponentSpec,
    ConnectorSpec,
    DeliverySpec,
    Manifest,
    RetrySpec,
    RuntimeSpec,
    TLSSpec,
)
from connector_runtime.config.secrets import secret_paths, values_at
from connector_runtime.config.substitution import substitute
from connector_runtime.errors import ManifestError, Problem
from connector_runtime.filters.subscription import FilterConfigError, compile_filters
from connector_runtime.nats import config as nats_config
from connector_runtime.plugins import Registry
from connector_runtime.records import ConfigCheck, JSONSchema
from connector_runtime.transforms.ops import (
    TransformConfigError,
    compile_transforms,
    transform_secrets,
)


@cache
def manifest_schema() -> dict[str, Any]:
    """The JSON Schema of one manifest document."""
    text = resources.files("connector_runtime.config").joinpath("manifest.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def load_manifest(
    paths: Sequence[str | os.PathLike[str]],
    registry: Registry,
    env: Mapping[str, str] | None = None,
) -> Manifest:
    """Read and validate every document of every file; raise ``ManifestError`` on problems."""
    environ = os.environ if env is None else env
    problems: list[Problem] = []
    connectors: list[ConnectorSpec] = []
    runtime: RuntimeSpec | None = None
    seen: dict[str, str] = {}
    for raw_path in paths:
        file = str(raw_path)
        for doc in _read_documents(file, problems):
            reader = _DocumentReader(file, doc, registry, environ)
            result = reader.read()
            problems.extend(reader.problems)
            if isinstance(result, ConnectorSpec):
                if result.name in seen:
                    problems.append(
                        Problem(
                            file,
                            result.name,
                            "metadata.name",
                            f"name already used by a connector in {seen[result.name]}",
                        )
                    )
                    continue
                seen[result.name] = file
                connectors.append(result)
            elif isinstance(result, RuntimeSpec):
                if runtime is not None:
                    problems.append(
                        Problem(file, None, "kind", "a second Runtime document (one per run)")
                    )
                runtime = result
    problems.extend(nats_config.shared_spool_problems(connectors))
    if not problems and not connectors:
        problems.append(Problem(", ".join(map(str, paths)), None, "", "no Connector documents"))
    if problems:
        raise ManifestError(problems)
    return Manifest(tuple(connectors), runtime or RuntimeSpec(), tuple(map(str, paths)))


def _read_documents(file: str, problems: list[Problem]) -> list[Any]:
    try:
        text = Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        problems.append(Problem(file, None, "", f"cannot read: {exc.strerror or exc}"))
        return []
    except UnicodeDecodeError:
        problems.append(Problem(file, None, "", "not UTF-8 text"))
        return []
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        problems.append(Problem(file, None, "", f"invalid YAML: {where}{problem}"))
        return []
    return docs


class _DocumentReader:
    """Validates one YAML document and builds its spec; collects problems."""

    def __init__(self, file: str, doc: Any, registry: Registry, env: Mapping[str, str]) -> None:
        self.file = file
        self.doc = doc
        self.registry = registry
        self.env = env
        self.problems: list[Problem] = []
        self.name: str | None = None

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.file, self.name, path, message))

    def read(self) -> ConnectorSpec | RuntimeSpec | None:
        if not isinstance(self.doc, dict):
            self.problem("", f"a document must be a mapping, not {type(self.doc).__name__}")
            return None
        name = (
            self.doc.get("metadata", {}).get("name")
            if isinstance(self.doc.get("metadata"), dict)
            else None
        )
        self.name = name if isinstance(name, str) else None
        notes: list[str] = []
        doc = substitute(self.doc, self.env, (), notes)
        for note in notes:
            path, _, message = note.partition(": ")
            self.problem(path, message)
        shape = schema_problems(manifest_schema(), doc)
        for path, message in shape:
            self.problem(path, message)
        if notes or shape:
            return None
        if doc["kind"] == "Runtime":
            for i, cidr in enumerate(doc["spec"].get("trustedProxies", ())):
                if not _is_network(cidr):
                    self.problem(f"spec.trustedProxies[{i}]", f"{cidr!r} is not an IP network")
                    return None
            runtime = _runtime_spec(doc["spec"])
            admin = runtime.admin
            if admin is not None and _same_address(admin.host, admin.port, runtime):
                self.problem(
                    "spec.admin.listen.port",
                    f"{admin.port} is the webhook port (spec.listen.port); the admin"
                    " listener needs a port of its own",
                )
                return None
            return runtime
        return self._connector(doc)

    def _component(
        self, kind: str, spec: Mapping[str, Any], types: Mapping[str, Any]
    ) -> tuple[ComponentSpec, frozenset[str]] | None:
        type_name = spec["type"]
        config = spec.get("config", {})
        known = types.get(type_name)
        if known is None:
            installed = ", ".join(sorted(types)) or "none"
            self.problem(
                f"spec.{kind}.type",
                f"unknown {kind} type {type_name!r} (installed: {installed})",
            )
            return None
        schema: JSONSchema = known.config_schema
        found = schema_problems(schema, config, ("spec", kind, "config"))
        for path, message in found:
            self.problem(path, message)
        if found:
            return None
        filled = fill_defaults(schema, config)
        check: ConfigCheck | None = known.check_config
        if check is not None:
            extra = list(check(filled))
            for path, message in extra:
                self.problem(format_path(("spec", kind, "config")) + path_suffix(path), message)
            if extra:
                return None
        secrets = values_at(filled, secret_paths(schema, filled))
        return ComponentSpec(type_name, filled), frozenset(secrets)

    def _connector(self, doc: Mapping[str, Any]) -> ConnectorSpec | None:
        spec = doc["spec"]
        source = self._component("source", spec["source"], self.registry.source_types)
        target = self._component("target", spec["target"], self.registry.target_types)
        if source is None or target is None or self.name is None:
            return None
        allowed = tuple(spec.get("allowedSourceIps", ()))
        for i, cidr in enumerate(allowed):
            if not _is_network(cidr):
                self.problem(f"spec.allowedSourceIps[{i}]", f"{cidr!r} is not an IP network")
                return None
        filters = tuple(spec.get("filters", ()))
        if filters:
            try:
                compile_filters(list(filters), base_path="/spec/filters")
            except FilterConfigError as exc:
                self.problem(pointer_to_path(exc.path), exc.message)
                return None
        transforms = tuple(spec.get("transforms", ()))
        if transforms:
            try:
                compile_transforms(list(transforms))
            except TransformConfigError as exc:
                self.problem(pointer_to_path(exc.path), exc.message)
                return None
        delivery = spec.get("delivery", {})
        spool_problems = nats_config.spool_problems(delivery)
        for path, message in spool_problems:
            self.problem(path, message)
        if spool_problems:
            return None
        if self.registry.source_types[spec["source"]["type"]].pull is not None:
            if delivery.get("spool", "local") == "nats":
                self.problem(
                    "spec.delivery.spool",
                    f"source type {spec['source']['type']!r} pulls with a checkpoint, which"
                    " only the local spool commits with its events: remove spool: nats",
                )
                return None
            if delivery.get("ack", "durable") != "durable":
                self.problem(
                    "spec.delivery.ack",
                    f"source type {spec['source']['type']!r} pulls with a checkpoint, which"
                    f" only ack: durable commits with its events (not {delivery['ack']!r})",
                )
                return None
        return ConnectorSpec(
            name=self.name,
            file=self.file,
            source=source[0],
            target=target[0],
            delivery=_delivery_spec(delivery, self.name),
            filters=filters,
            transforms=transforms,
            allowed_source_ips=allowed,
            max_bytes_in_flight=spec.get("limits", {}).get(
                "maxBytesInFlight", ConnectorSpec.max_bytes_in_flight
            ),
            secrets=source[1]
            | target[1]
            | nats_config.spool_secrets(delivery, manifest_schema()["$defs"]["natsSpool"])
            | transform_secrets(transforms),
        )


def _delivery_spec(raw: Mapping[str, Any], connector: str = "") -> DeliverySpec:
    retry = raw.get("retry", {})
    quota = raw.get("quota", {})
    dedupe = raw.get("dedupe", {})
    defaults = DeliverySpec()
    base = RetrySpec()
    return DeliverySpec(
        ack=raw.get("ack", defaults.ack),
        timeout=parse_duration(raw.get("timeout", defaults.timeout)),
        retry=RetrySpec(
            attempts=retry.get("attempts", base.attempts),
            initial_backoff=parse_duration(retry.get("initialBackoff", base.initial_backoff)),
            max_backoff=parse_duration(retry.get("maxBackoff", base.max_backoff)),
            max_age=parse_duration(retry.get("maxAge", base.max_age)),
        ),
        max_events=quota.get("maxEvents"),
        max_bytes=quota.get("maxBytes"),
        dedupe_window=parse_duration(dedupe.get("window", defaults.dedupe_window)),
        dedupe_max_entries=dedupe.get("maxEntries", defaults.dedupe_max_entries),
        dedupe_scope=dedupe.get("scope"),
        spool=raw.get("spool", defaults.spool),
        nats=nats_config.spool_spec(raw["nats"], connector) if "nats" in raw else None,
    )


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


WILDCARDS = frozenset({"0.0.0.0", "::", "*"})  # noqa: S104  (names, not a bind)


def _same_address(host: str, port: int, runtime: RuntimeSpec) -> bool:
    if port == 0 or port != runtime.port:
        return False
    return host == runtime.host or bool({host, runtime.host} & WILDCARDS)


def _runtime_spec(raw: Mapping[str, Any]) -> RuntimeSpec:
    listen = raw.get("listen", {})
    tls = raw.get("tls")
    limits = raw.get("limits", {})
    admin = raw.get("admin")
    d = RuntimeSpec()
    return RuntimeSpec(
        admin=AdminSpec(
            host=admin["listen"].get("host", d.host),
            port=int(admin["listen"]["port"]),
            token=admin.get("token"),
            max_taps=int(admin.get("maxTaps", 4)),
        )
        if admin
        else None,
        host=listen.get("host", d.host),
        port=int(listen.get("port", d.port)),
        data_dir=raw.get("dataDir"),
        tls=TLSSpec(tls["certFile"], tls["keyFile"]) if tls else None,
        trusted_proxies=tuple(raw.get("trustedProxies", ())),
        idle_timeout=parse_duration(limits.get("idleTimeout", d.idle_timeout)),
        body_timeout=parse_duration(limits.get("bodyTimeout", d.body_timeout)),
        max_header_bytes=int(limits.get("maxHeaderBytes", d.max_header_bytes)),
    )
