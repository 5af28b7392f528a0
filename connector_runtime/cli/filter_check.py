"""``connector-runtime filter test``: deliveries through a connector's parsing, filters and
transforms, offline, with the reason each event passes or not.

The source's own filter (its ``event_filter`` predicate) answers pass/fail; the runtime's
``spec.filters`` are explained filter by filter (for ``sql``, the CESQL value and errors).
When the connector has transforms (``spec.transforms`` or a plugin's ``event_transform``),
each event that passed is shown before and after them, as the target would get it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from connector_runtime.config.model import ConnectorSpec, Manifest
from connector_runtime.errors import ConnectorRuntimeError
from connector_runtime.events import Event, to_structured
from connector_runtime.filters.subscription import compile_filters
from connector_runtime.plugins import Registry
from connector_runtime.records import Outcome, SourceContext
from connector_runtime.runtime import default_source
from connector_runtime.transforms.chain import chain_transforms

RUNTIME_FILTERS = "connector_runtime.filters.builtin"


class _NoIngest:
    async def submit(
        self, events: Sequence[Event], *, request_id: str = "", checkpoint: str | None = None
    ) -> Outcome:
        raise ConnectorRuntimeError("filter test does not deliver")


@dataclass
class Verdict:
    event: Event
    passed: bool
    reasons: list[str] = field(default_factory=list)
    before: bytes | None = None
    """The structured event before the transforms (None: the connector has none)."""
    after: bytes | None = None
    """The structured event after them (None: filtered, or no transforms)."""


def find_connector(manifest: Manifest, name: str) -> ConnectorSpec:
    for c in manifest.connectors:
        if c.name == name:
            return c
    known = ", ".join(c.name for c in manifest.connectors)
    raise ConnectorRuntimeError(f"no connector {name!r} in the manifest (connectors: {known})")


def run(
    manifest: Manifest, registry: Registry, connector: str, files: Sequence[Path]
) -> list[tuple[Path, list[Verdict] | str]]:
    """For each file: the verdict per event, or the reason the source refused the body."""
    spec = find_connector(manifest, connector)
    source_type = registry.source_types[spec.source.type]
    if source_type.parse_offline is None:
        raise ConnectorRuntimeError(
            f"source type {spec.source.type!r} cannot parse deliveries offline"
        )
    ctx = SourceContext(
        connector=spec.name,
        config=spec.source.config,
        base_path="/" + spec.name,
        default_source=default_source(spec.name),
        ingest=_NoIngest(),
        log=logging.getLogger("connector_runtime.cli.filter_check"),
    )
    plugin_filters = [
        (name, p) for name, p in registry.named_event_filters(spec) if name != RUNTIME_FILTERS
    ]
    compiled = compile_filters(list(spec.filters), base_path="/spec/filters")
    problems: list[str] = []
    transform = chain_transforms(
        registry.named_event_transforms(spec, problems.append), problems.append
    )
    results: list[tuple[Path, list[Verdict] | str]] = []
    for path in files:
        try:
            body = path.read_bytes()
        except OSError as exc:
            raise ConnectorRuntimeError(f"cannot read {path}: {exc.strerror}") from None
        try:
            events = source_type.parse_offline(body, ctx)
        except ValueError as exc:
            results.append((path, f"refused by the source: {exc}"))
            continue
        verdicts = []
        for event in events:
            verdict = Verdict(event, True)
            for name, predicate in plugin_filters:
                ok = predicate(event)
                verdict.passed &= ok
                verdict.reasons.append(f"source filter ({name}): {'pass' if ok else 'filtered'}")
            for trace in compiled.explain(event.peek()):
                mark = "pass" if trace.passed else "fail"
                verdict.reasons.append(
                    f"{trace.path}: {trace.description}: {mark}"
                    + (f" ({trace.detail})" if trace.detail else "")
                )
            verdict.passed &= compiled(event.peek())
            if transform is not None and verdict.passed:
                verdict.before = to_structured(event)
                problems.clear()
                done = transform([event])
                verdict.reasons.extend(f"transform: {p}" for p in problems)
                verdict.passed = bool(done)
                verdict.after = to_structured(done[0]) if done else None
            verdicts.append(verdict)
        results.append((path, verdicts))
    return results
