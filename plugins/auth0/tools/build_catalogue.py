"""Build ``connector_runtime_auth0/catalogue.json`` from the shared Auth0 event-type list.

The shared list records, for every log event type code, where each fact was found (its
``sources``, ``category_source``, ``notes``) and the Dashboard filter label. The plugin
needs less: the code, its name and description, its log stream filter category (``null``
when Auth0 documents none) and whether the code is ``current`` or ``legacy``. This script
keeps those five fields, checks them, sorts by code and writes the result.

Usage (from the repository root)::

    python plugins/auth0/tools/build_catalogue.py [SOURCE] [OUTPUT]

SOURCE defaults to ``../shared/auth0/event-types.json`` next to the repository; OUTPUT to
the package's ``catalogue.json``. ``--check`` compares instead of writing and exits 1 when
the committed file is out of date.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

PLUGIN_DIR = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = PLUGIN_DIR.parents[2] / "shared" / "auth0" / "event-types.json"
DEFAULT_OUTPUT = PLUGIN_DIR / "connector_runtime_auth0" / "catalogue.json"
KEPT = ("code", "name", "category", "status", "description")
STATUSES = frozenset({"current", "legacy"})


def build(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The catalogue entries for ``entries``: the kept fields only, sorted by code."""
    out: dict[str, dict[str, Any]] = {}
    for index, entry in enumerate(entries):
        where = f"entry {index}"
        code = entry.get("code")
        if not isinstance(code, str) or not code:
            raise ValueError(f"{where}: 'code' must be a non-empty string, got {code!r}")
        if code in out:
            raise ValueError(f"{where}: code {code!r} appears twice")
        if entry.get("status") not in STATUSES:
            raise ValueError(f"{where} ({code}): unknown status {entry.get('status')!r}")
        for key in ("name", "category", "description"):
            value = entry.get(key)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{where} ({code}): {key!r} must be a string or null")
        out[code] = {key: entry.get(key) for key in KEPT}
    categories = {e["category"] for e in out.values() if e["category"]}
    clash = categories & out.keys()
    if clash:
        raise ValueError(f"names used both as a code and a category: {sorted(clash)}")
    return [out[code] for code in sorted(out)]


def render(catalogue: list[dict[str, Any]]) -> str:
    """One entry per line: small diffs when Auth0 adds a code."""
    lines = [json.dumps(entry, ensure_ascii=False) for entry in catalogue]
    return "[\n" + ",\n".join(lines) + "\n]\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("output", nargs="?", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    entries = json.loads(args.source.read_text(encoding="utf-8"))
    if not isinstance(entries, list):
        print(f"{args.source}: expected a JSON array", file=sys.stderr)
        return 2
    text = render(build(entries))
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date; run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {len(entries)} event types to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
