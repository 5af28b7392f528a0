"""``connector-runtime new-plugin NAME [--pull]``: write a ready-to-test plugin distribution.

The templates are package data under ``scaffold_template/``: ``common/`` (packaging, the
Makefile) plus one folder per kind of source, ``webhook/`` (the default: a webhook source)
or ``pull/`` (``--pull``: a source that polls an API, with a checkpoint). Every file there
ends in ``.tmpl`` (so no tool mistakes a template for code of this package) and is written
with that suffix removed; a directory named ``_package_`` becomes the plugin's package, a
leading ``dot-`` becomes ``.``, and ``{{key}}`` stands for one of the values of
:func:`variables`.

:func:`add_parser` and :func:`run` are what ``cli.py`` wires in; :func:`render` and
:func:`write_plugin` are the pure and the writing halves, for tests.
"""

from __future__ import annotations

import argparse
import datetime
import re
import sys
from collections.abc import Iterator, Mapping
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath

from connector_runtime._version import __version__

__all__ = [
    "KINDS",
    "NAME_PATTERN",
    "ScaffoldError",
    "add_parser",
    "render",
    "run",
    "templates",
    "variables",
    "write_plugin",
]

NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
MAX_NAME_LENGTH = 40
TEMPLATE_DIR = "scaffold_template"
COMMON = "common"
KINDS = ("webhook", "pull")
"""The kinds of source a plugin can start from; each is a folder beside ``common``."""
_SUFFIX = ".tmpl"
_PACKAGE_DIR = "_package_"
_DOT = "dot-"
_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")


class ScaffoldError(Exception):
    """The name or the target directory cannot be used; the message is one line."""


def check_name(name: str) -> None:
    """Raise :class:`ScaffoldError` unless ``name`` can name a plugin and a source type."""
    if not NAME_PATTERN.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
        raise ScaffoldError(
            f"invalid plugin name {name!r}: use lower-case letters, digits and single"
            f" hyphens, starting with a letter, at most {MAX_NAME_LENGTH} characters"
            " (e.g. 'acme-crm')"
        )


def variables(name: str) -> dict[str, str]:
    """The values the templates use, for plugin ``name`` (``acme-crm``)."""
    check_name(name)
    words = name.split("-")
    return {
        "name": name,
        "dist": f"connector-runtime-{name}",
        "package": "connector_runtime_" + "_".join(words),
        "class_name": "".join(w.capitalize() for w in words),
        "env": "_".join(words).upper(),
        "runtime_version": __version__,
        "runtime_range": runtime_range(__version__),
        "year": str(datetime.date.today().year),
    }


def runtime_range(version: str) -> str:
    """The runtime versions a new plugin accepts: this one up to the next minor release
    (``0.1.0`` → ``>=0.1.0,<0.2``), as the plugin contract may change between 0.x minors."""
    major, minor = (int(part) for part in version.split(".")[:2])
    return f">={version},<{major}.{minor + 1}"


def render(text: str, values: Mapping[str, str]) -> str:
    """Replace every ``{{key}}`` in ``text``; an unknown key is a bug in a template."""

    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"template placeholder {{{{{key}}}}} has no value")
        return values[key]

    return _PLACEHOLDER.sub(value, text)


def templates(kind: str = "webhook") -> Iterator[tuple[PurePosixPath, Traversable]]:
    """Every template file of ``kind`` (and the common ones) with its path relative to its
    folder, sorted; a file of ``kind`` wins over a common one of the same path."""
    if kind not in KINDS:
        raise ScaffoldError(f"unknown kind of plugin {kind!r}: use one of {', '.join(KINDS)}")
    base = files("connector_runtime.cli").joinpath(TEMPLATE_DIR)
    found: dict[PurePosixPath, Traversable] = {}

    def walk(node: Traversable, rel: PurePosixPath) -> None:
        for child in node.iterdir():
            if child.name == "__pycache__":
                continue
            if child.is_dir():
                walk(child, rel / child.name)
            elif child.name.endswith(_SUFFIX):
                found[rel / child.name] = child

    walk(base.joinpath(COMMON), PurePosixPath())
    walk(base.joinpath(kind), PurePosixPath())
    yield from sorted(found.items(), key=lambda item: str(item[0]))


def output_path(template: PurePosixPath, values: Mapping[str, str]) -> PurePosixPath:
    """Where a template is written, relative to the plugin's directory."""
    parts = []
    for part in template.parts:
        name = values["package"] if part == _PACKAGE_DIR else part.removesuffix(_SUFFIX)
        parts.append("." + name.removeprefix(_DOT) if name.startswith(_DOT) else name)
    return PurePosixPath(*parts)


def write_plugin(
    name: str, directory: Path, force: bool = False, kind: str = "webhook"
) -> list[Path]:
    """Write plugin ``name``, a source of ``kind`` (:data:`KINDS`), into ``directory``;
    return the files written.

    ``directory`` may be missing or empty; an existing non-empty one needs ``force`` (files
    of the same name are then overwritten, others left alone).
    """
    values = variables(name)
    if directory.exists() and not directory.is_dir():
        raise ScaffoldError(f"{directory} exists and is not a directory")
    if directory.is_dir() and any(directory.iterdir()) and not force:
        raise ScaffoldError(f"{directory} already exists and is not empty (--force writes anyway)")
    written: list[Path] = []
    for rel, template in templates(kind):
        path = directory.joinpath(*output_path(rel, values).parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(template.read_text(encoding="utf-8"), values), encoding="utf-8")
        written.append(path)
    return written


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``new-plugin NAME [--pull] [--dir D] [--force]`` to the CLI's subcommands."""
    parser = subparsers.add_parser(
        "new-plugin",
        help="write a new plugin distribution (source type, tests, Makefile) to start from",
        description=(
            "Write the distribution connector-runtime-NAME: a source type NAME with a config"
            " schema, a handler, an event filter, tests that pass as generated, an example"
            " manifest and a Makefile ('make test RUNTIME=/path/to/connector-runtime')."
            " With --pull, NAME is a pull source instead: a task that polls a JSON API for"
            " the items after a cursor, commits the cursor as its checkpoint with the"
            " events, and is tested against a fake of the API and the pull conformance suite."
        ),
    )
    parser.add_argument(
        "name", metavar="NAME", help="lower-case letters, digits, hyphens (e.g. acme-crm)"
    )
    parser.add_argument(
        "--dir",
        metavar="D",
        help="where to write the distribution (default: ./connector-runtime-NAME)",
    )
    parser.add_argument(
        "--force", action="store_true", help="write into D even when it is not empty"
    )
    parser.add_argument(
        "--pull",
        action="store_true",
        help="a pull source (polls an API, with a checkpoint) instead of a webhook source",
    )


def run(args: argparse.Namespace) -> int:
    """The ``new-plugin`` command: 0 when written, 1 (one line on stderr) when not."""
    name: str = args.name
    try:
        check_name(name)
        directory = Path(args.dir) if args.dir else Path(f"connector-runtime-{name}")
        kind = "pull" if args.pull else "webhook"
        written = write_plugin(name, directory, force=args.force, kind=kind)
    except ScaffoldError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = exc.filename or args.dir or name
        print(f"error: cannot write {where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    print(f"next: cd {directory} && make test RUNTIME=/path/to/connector-runtime  (README.md)")
    return 0
