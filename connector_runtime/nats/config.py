"""What the manifest says about NATS: ``delivery.spool: nats`` checked as a whole (the
schema checks each key), connectors sharing a stream's subject or consumer, and the
:class:`~connector_runtime.config.model.NatsSpoolSpec` built from it."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from typing import Any

from connector_runtime.config.checks import parse_duration
from connector_runtime.config.model import ConnectorSpec, NatsSpoolSpec, RetrySpec
from connector_runtime.config.secrets import secret_paths, values_at
from connector_runtime.errors import Problem


def spool_problems(delivery: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What is wrong with ``spool``, ``ack`` and ``nats`` together (the schema checked each)."""
    spool = delivery.get("spool", "local")
    raw = delivery.get("nats")
    if spool != "nats":
        if raw is not None:
            return [("spec.delivery.nats", f"only used with spool 'nats' (spool is {spool!r})")]
        return []
    if raw is None:
        return [("spec.delivery", "missing required key 'nats' (spool is 'nats')")]
    problems = []
    ack = delivery.get("ack", "durable")
    if ack != "durable":
        problems.append(
            (
                "spec.delivery.ack",
                f"{ack!r} cannot be used with spool 'nats' (only 'durable': a request is"
                " acknowledged once JetStream stored its events)",
            )
        )
    window = parse_duration(raw.get("duplicateWindow", "2m"))
    max_age = parse_duration(raw.get("maxAge", 0))
    retry_age = parse_duration(delivery.get("retry", {}).get("maxAge", RetrySpec.max_age))
    if max_age and window > max_age:
        problems.append(
            (
                "spec.delivery.nats.duplicateWindow",
                f"{window:g}s is longer than maxAge ({max_age:g}s)",
            )
        )
    if raw.get("retention") == "limits" and not max_age:
        problems.append(
            (
                "spec.delivery.nats.maxAge",
                "required with retention 'limits' (delivered events stay in the stream until then)",
            )
        )
    if "credentials" in raw and importlib.util.find_spec("nkeys") is None:
        problems.append(
            ("spec.delivery.nats.credentials", "a credentials file needs the nkeys package")
        )
    if max_age and max_age < retry_age:
        problems.append(
            (
                "spec.delivery.nats.maxAge",
                f"{max_age:g}s is shorter than retry.maxAge ({retry_age:g}s): JetStream would"
                " drop undelivered events before they are dead-lettered",
            )
        )
    return problems


def shared_spool_problems(connectors: Sequence[ConnectorSpec]) -> list[Problem]:
    """Two connectors on one NATS spool subject or consumer would take each other's events."""
    problems: list[Problem] = []
    owners: dict[tuple[object, ...], str] = {}
    for c in connectors:
        nats = c.delivery.nats
        if nats is None:
            continue
        servers = frozenset(nats.servers)
        for key, value in (("subject", nats.subject), ("consumer", nats.consumer)):
            owner = owners.setdefault((servers, nats.stream, key, value), c.name)
            if owner != c.name:
                problems.append(
                    Problem(
                        c.file,
                        c.name,
                        f"spec.delivery.nats.{key}",
                        f"{value!r} in stream {nats.stream} is already used by connector {owner}",
                    )
                )
    return problems


def spool_secrets(delivery: Mapping[str, Any], schema: Mapping[str, Any]) -> frozenset[str]:
    """The secret values in ``delivery.nats`` (marked secret in ``schema``, its schema)."""
    raw = delivery.get("nats")
    if raw is None:
        return frozenset()
    return frozenset(values_at(raw, secret_paths(schema, raw)))


def spool_spec(raw: Mapping[str, Any], connector: str) -> NatsSpoolSpec:
    return NatsSpoolSpec(
        servers=tuple(raw["servers"]),
        stream=raw["stream"],
        subject=raw.get("subject", f"cr.spool.{connector}"),
        consumer=raw.get("consumer", "cr-" + connector.replace(".", "_")),
        replicas=raw.get("replicas", 1),
        retention=raw.get("retention", "workqueue"),
        max_age=parse_duration(raw.get("maxAge", 0)),
        duplicate_window=parse_duration(raw.get("duplicateWindow", "2m")),
        timeout=parse_duration(raw.get("timeout", 5)),
        credentials=raw.get("credentials"),
        token=raw.get("token"),
        user=raw.get("user"),
        password=raw.get("password"),
    )
