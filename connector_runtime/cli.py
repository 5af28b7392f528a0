"""The ``connector-runtime`` command: the one place where errors become exit codes.

Exit codes: 0 success; 1 the input is wrong (manifest problems, unknown type); 2 usage
(wrong arguments); 3 the runtime could not start or failed (port in use, spool unusable).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import socket
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tornado.httpserver

from connector_runtime import spool_admin
from connector_runtime.errors import ConnectorRuntimeError, ManifestError
from connector_runtime.handler import DEFAULT_MAX_BODY_BYTES
from connector_runtime.logs import setup_logging
from connector_runtime.manifest import load_manifest, manifest_schema
from connector_runtime.manifest_model import Manifest, TLSSpec
from connector_runtime.plugins import Registry, build_registry
from connector_runtime.runtime import Runtime
from connector_runtime.secrets import Redactor
from connector_runtime.server import make_app

EXIT_OK, EXIT_INPUT, EXIT_USAGE, EXIT_RUNTIME = 0, 1, 2, 3
log = logging.getLogger("connector_runtime")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="connector-runtime",
        description="Serve webhooks, turn what arrives into CloudEvents, deliver them.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="serve the connectors of one or more manifests")
    run.add_argument("manifests", nargs="+", metavar="MANIFEST")
    run.add_argument("--host", help="listen address (overrides the Runtime document)")
    run.add_argument("--port", type=int, help="listen port (overrides the Runtime document)")
    run.add_argument("--data-dir", help="where the spool lives (default: ./data)")
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.add_argument("--log-format", default="json", choices=["json", "text"], help="default: json")
    validate = sub.add_parser("validate", help="check manifests; one line per problem")
    validate.add_argument("manifests", nargs="+", metavar="MANIFEST")
    plugins = sub.add_parser("plugins", help="list installed plugins and what they provide")
    plugins.add_argument("--json", action="store_true", help="print JSON")
    schema = sub.add_parser("schema", help="print the JSON Schema of a type's config")
    schema.add_argument("type", metavar="TYPE", help="a source or target type, or 'manifest'")
    dlq = sub.add_parser("dlq", help="dead letters: list, show, redrive, purge")
    dlq.add_argument("action", choices=["list", "show", "redrive", "purge"])
    dlq.add_argument("ids", nargs="*", type=int, metavar="ID", help="dead letter ids")
    dlq.add_argument("--data-dir", default="data", help="the runtime's data dir")
    dlq.add_argument("--connector", help="only this connector's dead letters")
    dlq.add_argument("--all", action="store_true", help="purge: every matching dead letter")
    dlq.add_argument("--json", action="store_true", help="list: print JSON")
    spool = sub.add_parser("spool", help="spool statistics")
    spool.add_argument("action", choices=["stats"])
    spool.add_argument("--data-dir", default="data", help="the runtime's data dir")
    spool.add_argument("--connector", help="only this connector")
    spool.add_argument("--json", action="store_true", help="print JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    registry = build_registry()
    try:
        if args.command == "validate":
            return cmd_validate(args, registry)
        if args.command == "plugins":
            return cmd_plugins(args, registry)
        if args.command == "schema":
            return cmd_schema(args, registry)
        if args.command == "dlq":
            return cmd_dlq(args)
        if args.command == "spool":
            return cmd_spool(args)
        return cmd_run(args, registry)
    except ManifestError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_INPUT
    except ConnectorRuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    except KeyboardInterrupt:
        return EXIT_OK


def _report_broken(registry: Registry) -> None:
    for broken in registry.broken:
        print(f"warning: plugin {broken.name} not loaded: {broken.reason}", file=sys.stderr)


def cmd_validate(args: argparse.Namespace, registry: Registry) -> int:
    _report_broken(registry)
    manifest = load_manifest(args.manifests, registry)
    for note in warnings_of(manifest):
        print(f"warning: {note}", file=sys.stderr)
    for c in manifest.connectors:
        print(f"ok: {c.file}: connector {c.name}: {c.source.type} -> {c.target.type}")
    return EXIT_OK


def warnings_of(manifest: Manifest) -> list[str]:
    notes = manifest.warnings()
    for c in manifest.connectors:
        if c.source.type == "auth0" and not c.source.config.get("token"):
            notes.append(
                f"{c.file}: connector {c.name}: no token configured: anyone who can reach"
                " the port can post events"
            )
    return notes


def cmd_plugins(args: argparse.Namespace, registry: Registry) -> int:
    if args.json:
        out: dict[str, Any] = {
            "plugins": [
                {
                    "name": p.name,
                    "version": p.version,
                    "builtin": p.builtin,
                    "sourceTypes": p.source_types,
                    "targetTypes": p.target_types,
                }
                for p in registry.plugins
            ],
            "broken": [{"name": b.name, "reason": b.reason} for b in registry.broken],
        }
        print(json.dumps(out, indent=2))
        return EXIT_OK
    for p in registry.plugins:
        provides = [f"source {n}" for n in p.source_types] + [f"target {n}" for n in p.target_types]
        what = ", ".join(provides) or "filters only"
        print(f"{p.name} {p.version}: {what}")
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


def cmd_dlq(args: argparse.Namespace) -> int:
    conn = spool_admin.open_existing(Path(args.data_dir))
    try:
        if args.action == "list":
            rows = spool_admin.list_dead_letters(conn, args.connector, limit=10_000)
            if args.json:
                print(json.dumps(rows, indent=2))
            for r in [] if args.json else rows:
                status = r["status"] if r["status"] is not None else "-"
                print(
                    f"{r['id']}\t{r['connector']}\t{r['eventId']}\t{r['failed']}"
                    f"\tattempts={r['attempts']}\tstatus={status}\t{r['reason']}"
                )
            if not args.json:
                print(f"{len(rows)} dead letter(s)", file=sys.stderr)
        elif args.action == "show":
            if not args.ids:
                print("error: dlq show needs an ID", file=sys.stderr)
                return EXIT_USAGE
            for dead_id in args.ids:
                print(json.dumps(spool_admin.show_dead_letter(conn, dead_id), indent=2))
        elif args.action == "redrive":
            n = spool_admin.redrive(conn, args.connector, args.ids or None)
            print(f"redriven: {n} event(s) back in the spool")
        else:
            if not args.ids and not args.connector and not args.all:
                print("error: dlq purge needs IDs, --connector NAME or --all", file=sys.stderr)
                return EXIT_USAGE
            n = spool_admin.purge(conn, args.connector, args.ids or None)
            print(f"purged: {n} dead letter(s)")
    finally:
        conn.close()
    return EXIT_OK


def cmd_spool(args: argparse.Namespace) -> int:
    conn = spool_admin.open_existing(Path(args.data_dir))
    try:
        rows = spool_admin.stats(conn, args.connector)
    finally:
        conn.close()
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


def cmd_run(args: argparse.Namespace, registry: Registry) -> int:
    manifest = load_manifest(args.manifests, registry)
    setup_logging(args.log_level, args.log_format, Redactor(manifest.secrets))
    _report_broken(registry)
    host = args.host or manifest.runtime.host
    port = manifest.runtime.port if args.port is None else args.port
    data_dir = Path(args.data_dir) if args.data_dir else None
    return asyncio.run(serve(manifest, registry, host, port, data_dir))


async def serve(
    manifest: Manifest, registry: Registry, host: str, port: int, data_dir: Path | None
) -> int:
    runtime = Runtime(manifest, registry, data_dir)
    await runtime.start()
    app = make_app(runtime)
    limit = max(
        [
            int(c.source.config.get("maxBodyBytes", DEFAULT_MAX_BODY_BYTES))
            for c in manifest.connectors
        ]
        + [DEFAULT_MAX_BODY_BYTES]
    )
    spec = manifest.runtime
    tls = load_tls(spec.tls) if spec.tls else None
    server = tornado.httpserver.HTTPServer(
        app,
        ssl_options=tls,
        max_body_size=limit + 1024 * 1024,
        max_header_size=spec.max_header_bytes,
        idle_connection_timeout=spec.idle_timeout,
        body_timeout=spec.body_timeout,
        xheaders=False,
    )
    try:
        server.listen(port, host)
    except OSError as exc:
        await runtime.stop()
        raise ConnectorRuntimeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    bound = _bound_port(server) or port
    for note in warnings_of(manifest):
        log.warning("%s", note)
    shown = host if host not in ("0.0.0.0", "::", "") else socket.gethostname()  # noqa: S104
    scheme = "https" if tls else "http"
    for c in runtime.connectors:
        print(
            f"connector {c.spec.name}: {c.spec.source.type} -> {c.spec.target.type}:"
            f" webhook URL {scheme}://{shown}:{bound}{c.base_path}",
            file=sys.stderr,
            flush=True,
        )
    print(f"listening on {host}:{bound}", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if tls is not None and spec.tls is not None:
        loop.add_signal_handler(signal.SIGHUP, reload_tls, tls, spec.tls)
    await stop.wait()
    log.info("stopping: no new connections; finishing requests in flight")
    server.stop()
    runtime.accepting = False
    await server.close_all_connections()
    await runtime.stop()
    log.info("stopped")
    return EXIT_OK


def load_tls(spec: TLSSpec) -> ssl.SSLContext:
    """An HTTPS server context with the certificate chain and key of ``spec``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(spec.cert_file, spec.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConnectorRuntimeError(
            f"cannot load TLS certificate {spec.cert_file} / key {spec.key_file}: {exc}"
        ) from None
    return context


def reload_tls(context: ssl.SSLContext, spec: TLSSpec) -> None:
    """SIGHUP: load renewed certificate files into the live context (new handshakes use
    them); a failed reload keeps the old certificate and logs why."""
    try:
        context.load_cert_chain(spec.cert_file, spec.key_file)
    except (OSError, ssl.SSLError) as exc:
        log.error("TLS reload failed, keeping the old certificate: %s", exc)
        return
    log.info("TLS certificate reloaded from %s", spec.cert_file)


def _bound_port(server: tornado.httpserver.HTTPServer) -> int | None:
    for sock in server._sockets.values():
        return int(sock.getsockname()[1])
    return None


if __name__ == "__main__":
    sys.exit(main())
