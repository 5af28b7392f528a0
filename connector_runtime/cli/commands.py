"""The ``connector-runtime`` command: the one place where errors become exit codes.

Exit codes: 0 success; 1 the input is wrong (manifest problems, unknown type); 2 usage
(wrong arguments); 3 the runtime could not start or failed (port in use, spool unusable).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from connector_runtime.cli import filter_check as filter_test
from connector_runtime.cli import scaffold, versions
from connector_runtime.cli import tap as tap_cli
from connector_runtime.cli import top as top_cli
from connector_runtime.config.manifest import load_manifest, manifest_schema
from connector_runtime.config.model import Manifest
from connector_runtime.config.secrets import Redactor, redact_urls
from connector_runtime.errors import ConnectorRuntimeError, ManifestError
from connector_runtime.observe.logs import setup_logging
from connector_runtime.plugins import Registry, build_registry
from connector_runtime.serve import process as serving
from connector_runtime.sources.handler import SourceHandler
from connector_runtime.spool import admin as spool_admin
from connector_runtime.spool import repair as spool_repair

EXIT_OK, EXIT_INPUT, EXIT_USAGE, EXIT_RUNTIME = 0, 1, 2, 3
log = logging.getLogger("connector_runtime")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="connector-runtime",
        description="Serve webhooks, turn what arrives into CloudEvents, deliver them.",
    )
    parser.add_argument("--version", action=versions.VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="serve the connectors of one or more manifests")
    run.add_argument("manifests", nargs="+", metavar="MANIFEST")
    run.add_argument("--host", help="listen address (overrides the Runtime document)")
    run.add_argument("--port", type=int, help="listen port (overrides the Runtime document)")
    run.add_argument("--data-dir", help="where the spool lives (default: ./data)")
    run.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes sharing the port (SO_REUSEPORT), each with its own spool shard",
    )
    run.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)
    run.add_argument(
        "--log-level",
        default="info",
        type=str.lower,
        choices=["debug", "info", "warning", "error"],
        help="any case; default: info",
    )
    run.add_argument(
        "--log-format",
        default="json",
        choices=["json", "text"],
        help="json: one JSON object per line on stderr, start-up lines and errors included"
        " (the default); text: for humans",
    )
    validate = sub.add_parser("validate", help="check manifests; one line per problem")
    validate.add_argument("manifests", nargs="+", metavar="MANIFEST")
    plugins = sub.add_parser("plugins", help="list installed plugins and what they provide")
    plugins.add_argument("--json", action="store_true", help="print JSON")
    schema = sub.add_parser("schema", help="print the JSON Schema of a type's config")
    schema.add_argument("type", metavar="TYPE", help="a source or target type, or 'manifest'")
    filt = sub.add_parser("filter", help="run deliveries through a connector's filters offline")
    filt.add_argument("action", choices=["test"])
    filt.add_argument("manifest", metavar="MANIFEST")
    filt.add_argument("files", nargs="+", metavar="FILE", help="delivery bodies")
    filt.add_argument("--connector", required=True, help="the connector's name")
    dlq = sub.add_parser("dlq", help="dead letters: list, show, redrive, purge")
    dlq.add_argument("action", choices=["list", "show", "redrive", "purge"])
    dlq.add_argument(
        "ids", nargs="*", metavar="ID", help="dead letter ids as listed (SHARD:ID with --workers)"
    )
    dlq.add_argument("--data-dir", default="data", help="the runtime's data dir")
    dlq.add_argument("--connector", help="only this connector's dead letters")
    dlq.add_argument("--all", action="store_true", help="purge: every matching dead letter")
    dlq.add_argument("--json", action="store_true", help="list: print JSON")
    spool = sub.add_parser("spool", help="spool statistics; check and repair damage")
    spool.add_argument("action", choices=["stats", "check", "repair"])
    spool.add_argument("--data-dir", default="data", help="the runtime's data dir")
    spool.add_argument("--connector", help="stats: only this connector")
    spool.add_argument("--json", action="store_true", help="print JSON")
    scaffold.add_parser(sub)
    tap_cli.add_parser(sub)
    top_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    raw_argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(raw_argv)
    args.raw_argv = raw_argv
    if args.command == "new-plugin":
        return scaffold.run(args)
    if args.command == "tap":
        return _admin_command(args, tap_cli.run)
    if args.command == "top":
        return _admin_command(args, top_cli.run)
    registry = build_registry()
    try:
        if args.command == "validate":
            return cmd_validate(args, registry)
        if args.command == "plugins":
            return cmd_plugins(args, registry)
        if args.command == "schema":
            return cmd_schema(args, registry)
        if args.command == "filter":
            return cmd_filter(args, registry)
        if args.command == "dlq":
            return cmd_dlq(args)
        if args.command == "spool":
            return cmd_spool(args)
        return cmd_run(args, registry)
    except ManifestError as exc:
        for problem in exc.problems:  # a plugin's check_config may quote a URL too
            fields = {"file": problem.file, "connector": problem.connector, "key": problem.path}
            _fail(args, redact_urls(str(problem)), fields)
        return EXIT_INPUT
    except ConnectorRuntimeError as exc:
        _fail(args, redact_urls(str(exc)))
        return EXIT_RUNTIME
    except KeyboardInterrupt:
        return EXIT_OK


def _admin_command(args: argparse.Namespace, command: Any) -> int:
    """``tap`` and ``top``: 2 for a bad argument, 1 for what the runtime refused (an unknown
    connector, a bad filter), 3 when it cannot be reached or its token is wrong."""
    try:
        return int(command(args))
    except tap_cli.AdminError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.status == 2:
            return EXIT_USAGE
        return EXIT_INPUT if exc.status in (400, 404) else EXIT_RUNTIME
    except KeyboardInterrupt:
        return EXIT_OK


def _fail(args: argparse.Namespace, message: str, fields: dict[str, Any] | None = None) -> None:
    """An error that ends the command: under ``run``, whose stderr is its log, a log record
    (a JSON object by default); for the other commands one ``error:`` line."""
    if args.command == "run":
        log.error("%s", message, extra={"fields": {k: v for k, v in (fields or {}).items() if v}})
    else:
        print(f"error: {message}", file=sys.stderr)


def _report_broken(registry: Registry, logged: bool = False) -> None:
    for broken in registry.broken:
        if logged:
            fields = {"plugin": broken.name, "reason": broken.reason}
            log.warning(
                "plugin %s not loaded: %s", broken.name, broken.reason, extra={"fields": fields}
            )
        else:
            print(f"warning: plugin {broken.name} not loaded: {broken.reason}", file=sys.stderr)


def cmd_validate(args: argparse.Namespace, registry: Registry) -> int:
    _report_broken(registry)
    manifest = load_manifest(args.manifests, registry)
    for note in warnings_of(manifest):
        print(f"warning: {note}", file=sys.stderr)
    for c in manifest.connectors:
        print(f"ok: {c.file}: connector {c.name}: {c.source.type} -> {c.target.type}")
    return EXIT_OK


MIN_TOKEN_LENGTH = 32
"""Tokens shorter than this are warned about: nothing limits guesses, so length is the
defence."""


def warnings_of(manifest: Manifest) -> list[str]:
    notes = manifest.warnings()
    key = SourceHandler.TOKEN_KEY
    for c in manifest.connectors:
        if c.source.type == "auth0" and not c.source.config.get("token"):
            notes.append(
                f"{c.file}: connector {c.name}: no token configured: anyone who can reach"
                " the port can post events"
            )
        value = c.source.config.get(key) if key else None
        listed = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        for index, token in listed:
            if isinstance(token, str) and 0 < len(token) < MIN_TOKEN_LENGTH:
                where = f"spec.source.config.{key}" + ("" if index is None else f"[{index}]")
                notes.append(
                    f"{c.file}: connector {c.name}: {where}: the token is shorter than"
                    f" {MIN_TOKEN_LENGTH} characters; nothing limits guesses, so use a random"
                    " one of 32 or more (openssl rand -base64 32)"
                )
    return notes


def cmd_plugins(args: argparse.Namespace, registry: Registry) -> int:
    rows = versions.plugin_rows(registry)
    if args.json:
        out: dict[str, Any] = {
            "plugins": [row.as_dict() for row in rows],
            "broken": [{"name": b.name, "reason": b.reason} for b in registry.broken],
        }
        print(json.dumps(out, indent=2))
        return EXIT_OK
    for row in rows:
        print(row.text())
    for b in registry.broken:
        print(f"{b.name} BROKEN: {b.reason}")
    return EXIT_OK


def cmd_schema(args: argparse.Namespace, registry: Registry) -> int:
    name = args.type
    if name == "manifest":
        schema: Any = manifest_schema()
    elif name in registry.source_types:
        schema = registry.source_types[name].config_schema
    elif name in registry.target_types:
        schema = registry.target_types[name].config_schema
    else:
        known = sorted({*registry.source_types, *registry.target_types, "manifest"})
        print(f"error: unknown type {name!r} (known: {', '.join(known)})", file=sys.stderr)
        return EXIT_INPUT
    print(json.dumps(schema, indent=2))
    return EXIT_OK


def cmd_filter(args: argparse.Namespace, registry: Registry) -> int:
    manifest = load_manifest([args.manifest], registry)
    results = filter_test.run(manifest, registry, args.connector, [Path(f) for f in args.files])
    passed = total = 0
    for path, outcome in results:
        if isinstance(outcome, str):
            print(f"{path}: {outcome}")
            continue
        for verdict in outcome:
            total += 1
            passed += verdict.passed
            word = "PASS" if verdict.passed else "FILTERED"
            print(f"{path}: {verdict.event.id} {verdict.event.type}: {word}")
            for reason in verdict.reasons:
                print(f"    {reason}")
            if verdict.before is not None:
                print(f"    before: {verdict.before.decode('utf-8', 'replace')}")
                after = verdict.after
                shown = "(filtered out)" if after is None else after.decode("utf-8", "replace")
                print(f"    after:  {'(unchanged)' if after == verdict.before else shown}")
    print(f"{passed} of {total} event(s) pass", file=sys.stderr)
    return EXIT_OK


def _dead_letter_refs(
    refs: list[str], shards: list[tuple[str, Path]]
) -> dict[str, list[int]] | None:
    """``["17", "shard-1:4"]`` → ids per shard label; None when a ref is malformed."""
    labels = {label for label, _ in shards}
    out: dict[str, list[int]] = {}
    for ref in refs:
        label, _, number = ref.rpartition(":")
        if not number.isdigit() or label not in labels:
            return None
        out.setdefault(label, []).append(int(number))
    return out


def cmd_dlq(args: argparse.Namespace) -> int:
    shards = spool_admin.spools(Path(args.data_dir))
    wanted = _dead_letter_refs(args.ids, shards)
    if wanted is None:
        hint = "ID" if shards[0][0] == "" else "SHARD:ID, e.g. shard-0:17"
        print(f"error: dead letter references must look like {hint}", file=sys.stderr)
        return EXIT_USAGE
    if args.action == "show" and not args.ids:
        print("error: dlq show needs an ID", file=sys.stderr)
        return EXIT_USAGE
    if args.action == "purge" and not (args.ids or args.connector or args.all):
        print("error: dlq purge needs IDs, --connector NAME or --all", file=sys.stderr)
        return EXIT_USAGE
    rows: list[dict[str, Any]] = []
    done = 0
    for label, path in shards:
        if args.ids and label not in wanted:
            continue
        ids = wanted.get(label) or None
        conn = spool_admin.open_spool(path)
        try:
            if args.action == "list":
                for row in spool_admin.list_dead_letters(conn, args.connector, limit=10_000):
                    row["id"] = f"{label}:{row['id']}" if label else str(row["id"])
                    rows.append(row)
            elif args.action == "show":
                for dead_id in ids or []:
                    shown = spool_admin.show_dead_letter(conn, dead_id)
                    shown["id"] = f"{label}:{dead_id}" if label else str(dead_id)
                    print(json.dumps(shown, indent=2))
            elif args.action == "redrive":
                done += spool_admin.redrive(conn, args.connector, ids)
            else:
                done += spool_admin.purge(conn, args.connector, ids)
        finally:
            conn.close()
    if args.action == "list":
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            for r in rows:
                status = r["status"] if r["status"] is not None else "-"
                print(
                    f"{r['id']}\t{r['connector']}\t{r['eventId'] or '-'}\t{r['failed']}"
                    f"\tattempts={r['attempts']}\tstatus={status}\t{r['reason']}"
                )
            print(f"{len(rows)} dead letter(s)", file=sys.stderr)
    elif args.action == "redrive":
        print(f"redriven: {done} event(s) back in the spool")
    elif args.action == "purge":
        print(f"purged: {done} dead letter(s)")
    return EXIT_OK


def cmd_spool(args: argparse.Namespace) -> int:
    if args.action in ("check", "repair"):
        return cmd_spool_repair(args)
    groups = []
    for _, path in spool_admin.spools(Path(args.data_dir)):
        conn = spool_admin.open_spool(path)
        try:
            groups.append(spool_admin.stats(conn, args.connector))
        finally:
            conn.close()
    rows = spool_admin.merge_stats(groups)
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=2))
        return EXIT_OK
    print("connector\tdepth\toldest_age_s\taccepted\tdelivered\tretried\tdead_lettered\tdlq_now")
    for r in rows:
        age = "-" if r.oldest_age is None else f"{r.oldest_age:.1f}"
        print(
            f"{r.connector}\t{r.depth}\t{age}\t{r.accepted}\t{r.delivered}\t{r.retried}"
            f"\t{r.dead_lettered}\t{r.dead_letters_now}"
        )
    return EXIT_OK


def cmd_spool_repair(args: argparse.Namespace) -> int:
    """``spool check`` (exit 1 when damaged) and ``spool repair``."""
    if args.connector:
        print(
            f"error: spool {args.action} works on the whole spool; no --connector", file=sys.stderr
        )
        return EXIT_USAGE
    repairing = args.action == "repair"
    act = spool_repair.repair if repairing else spool_repair.check
    shards = spool_admin.spools(Path(args.data_dir))
    found = [(label, path, act(path)) for label, path in shards]
    if args.json:
        out = [
            {"shard": label or None, "spool": str(path), "damaged": [d.as_dict() for d in damage]}
            for label, path, damage in found
        ]
        print(json.dumps(out, indent=2))
    else:
        for _, path, damage in found:
            print("\n".join(spool_repair.render(str(path), damage, repairing)))
    if not any(damage for _, _, damage in found):
        return EXIT_OK
    if repairing:
        print(
            f"the spool starts again; lost events are listed by `connector-runtime dlq list"
            f" --data-dir {args.data_dir}`",
            file=sys.stderr,
        )
        return EXIT_OK
    print(
        f"keep what can be read, and dead-letter the rest, with `connector-runtime spool"
        f" repair --data-dir {args.data_dir}` (with the runtime stopped)",
        file=sys.stderr,
    )
    return EXIT_INPUT


def cmd_run(args: argparse.Namespace, registry: Registry) -> int:
    redactor = Redactor()
    setup_logging(args.log_level.upper(), args.log_format, redactor)
    manifest = load_manifest(args.manifests, registry)
    redactor.add(manifest.secrets)
    _report_broken(registry, logged=True)
    host = args.host or manifest.runtime.host
    port = manifest.runtime.port if args.port is None else args.port
    configured = args.data_dir or manifest.runtime.data_dir  # the flag wins, as for host/port
    data_dir = Path(configured) if configured else None
    if args.worker_index is None:
        for note in warnings_of(manifest):
            log.warning("%s", note)
    if args.workers > 1 and args.worker_index is None:
        return serving.supervise(args.raw_argv, args.workers)
    options = serving.ServeOptions(
        host=host,
        port=port,
        data_dir=data_dir,
        workers=args.workers,
        worker_index=args.worker_index,
    )
    return asyncio.run(serving.serve(manifest, registry, options))


if __name__ == "__main__":
    sys.exit(main())
