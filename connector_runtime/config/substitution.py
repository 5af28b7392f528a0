"""``${VAR}``, ``${VAR:-default}``, ``${VAR:?message}`` and ``${file:/path}`` references in
manifest strings.

Substitution happens after YAML parsing, on string values only, so a value can never
change the document's structure. ``$${`` stands for a literal ``${``. ``${VAR:?message}``
makes a variable required: unset or empty, it is a problem that names the variable, where it
is used and the message (say there what the value is and where to get it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from connector_runtime.config.checks import format_path

_REFERENCE = re.compile(
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:[-?])(?P<operand>.*))?", re.S
)
"""``VAR``, ``VAR:-default`` or ``VAR:?message`` (what stands between ``${`` and ``}``)."""


def substitute(
    value: Any, env: Mapping[str, str], path: tuple[Any, ...], problems: list[str]
) -> Any:
    """Replace ``${VAR}``, ``${VAR:-default}``, ``${VAR:?message}`` and ``${file:/path}`` in
    every string.

    ``$${`` stands for a literal ``${``. Problems are appended as "path: message".
    """
    if isinstance(value, str):
        if "${" not in value:
            return value
        return _substitute_string(value, env, path, problems)
    if isinstance(value, dict):
        return {k: substitute(v, env, (*path, k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, env, (*path, i), problems) for i, v in enumerate(value)]
    return value


def _substitute_string(
    text: str, env: Mapping[str, str], path: tuple[Any, ...], problems: list[str]
) -> str:
    out: list[str] = []
    pos = 0
    while True:
        start = text.find("${", pos)
        if start < 0:
            out.append(text[pos:])
            return "".join(out)
        if start > 0 and text[start - 1] == "$":
            out.append(text[pos : start - 1] + "${")
            pos = start + 2
            continue
        out.append(text[pos:start])
        end = text.find("}", start)
        if end < 0:
            problems.append(f"{format_path(path)}: unterminated '${{' reference")
            return "".join(out)
        out.append(_resolve(text[start + 2 : end], env, path, problems))
        pos = end + 1


def _resolve(ref: str, env: Mapping[str, str], path: tuple[Any, ...], problems: list[str]) -> str:
    where = format_path(path)
    if ref.startswith("file:"):
        file_name = ref[5:]
        try:
            return Path(file_name).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            problems.append(f"{where}: cannot read ${{file:{file_name}}}: {exc.strerror}")
            return ""
    found = _REFERENCE.fullmatch(ref)
    if found is None:
        problems.append(f"{where}: '${{{ref}}}' is not a valid reference")
        return ""
    name, operator, operand = found.group("name", "operator", "operand")
    if operator == ":?":
        value = env.get(name, "")
        if not value:
            state = "is empty" if name in env else "is not set"
            reason = f": {operand.strip()}" if operand.strip() else ""
            problems.append(f"{where}: environment variable {name} {state}{reason}")
        return value
    if name in env:
        return env[name]
    if operator == ":-":
        return operand
    problems.append(f"{where}: environment variable {name} is not set (and has no default)")
    return ""
