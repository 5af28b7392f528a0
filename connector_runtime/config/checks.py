"""Checking config values against JSON Schemas, and naming where a value is.

Problems are (JSON path, message) pairs with paths like ``spec.source.config.events[2]``;
messages name the bad value, except where the schema marks the value secret, and show URLs
without their credentials (:func:`~connector_runtime.config.secrets.redact_url`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jsonschema

from connector_runtime.config.secrets import (
    REDACTED,
    is_secret_schema,
    redact_config,
    redact_url,
    redact_urls,
    secret_paths,
)
from connector_runtime.records import JSONSchema

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_URL_KEY = re.compile(r"(?i)(url|uri|servers?|endpoint)$")
"""Keys whose string values are URLs, shown redacted even when they lack a scheme."""


def format_path(path: Sequence[Any]) -> str:
    """``("spec", "source", "config", "events", 2)`` → ``spec.source.config.events[2]``."""
    out = ""
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        else:
            out += ("." if out else "") + str(step)
    return out


def parse_duration(value: float | int | str) -> float:
    """Seconds from a number or a string like ``500ms``, ``30s``, ``5m``, ``2h``, ``7d``."""
    if isinstance(value, int | float):
        return float(value)
    for unit in ("ms", "s", "m", "h", "d"):
        if value.endswith(unit) and value[: -len(unit)].replace(".", "", 1).isdigit():
            return float(value[: -len(unit)]) * _UNITS[unit]
    raise ValueError(f"not a duration: {value!r}")


def fill_defaults(schema: JSONSchema, config: Any) -> Any:
    """A copy of ``config`` with the schema's property defaults filled in (recursively)."""
    if not isinstance(config, dict):
        return config
    out = dict(config)
    for key, sub in schema.get("properties", {}).items():
        if not isinstance(sub, Mapping):
            continue
        if key not in out and "default" in sub:
            out[key] = json.loads(json.dumps(sub["default"]))
        if key in out and isinstance(out[key], dict):
            out[key] = fill_defaults(sub, out[key])
    return out


def schema_problems(
    schema: JSONSchema, instance: Any, prefix: tuple[Any, ...] = ()
) -> list[tuple[str, str]]:
    """Check ``instance`` against ``schema``: (JSON path, message) pairs, secrets redacted."""
    validator_cls = jsonschema.validators.validator_for(schema)
    validator = validator_cls(schema, format_checker=validator_cls.FORMAT_CHECKER)
    hidden = secret_paths(schema, instance)
    found: list[tuple[str, str]] = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
        rel = tuple(error.absolute_path)
        message = redact_urls(_message(error, rel, hidden))
        found.append((format_path((*prefix, *rel)), message))
    return found


def _message(error: jsonschema.ValidationError, rel: tuple[Any, ...], hidden: set[Any]) -> str:
    subschema: Any = error.schema
    # paths found through "properties" (hidden), or a secret field reached through "$ref"
    secret = any(rel[: len(h)] == h for h in hidden) or (
        isinstance(subschema, Mapping) and is_secret_schema(subschema)
    )
    shown = error.instance
    if isinstance(shown, Mapping | list):  # an object or list holding secrets shows none
        shown = redact_config(shown, hidden, rel)
    keys = [step for step in rel if isinstance(step, str)]
    if isinstance(shown, str) and keys and _URL_KEY.search(keys[-1]):
        shown = redact_url(shown)
    value = REDACTED if secret else _short(shown)
    kind = error.validator
    expected: Any = error.validator_value
    if kind == "required":
        missing = [
            k for k in expected if isinstance(error.instance, dict) and k not in error.instance
        ]
        return f"missing required key {', '.join(repr(k) for k in missing)}"
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(subschema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in allowed)
        listed = ", ".join(repr(k) for k in extra)
        return f"unknown key {listed} (allowed: {', '.join(sorted(allowed))})"
    if kind in ("oneOf", "anyOf") and all(
        isinstance(branch, Mapping) and branch.get("required") for branch in expected
    ):  # alternatives told apart by their keys: name the keys, not the whole value
        keys_named = ", ".join(repr(k) for branch in expected for k in branch["required"])
        return f"set {'exactly' if kind == 'oneOf' else 'at least'} one of {keys_named}"
    if kind == "enum":
        return f"{value} is not one of {', '.join(repr(v) for v in expected)}"
    if kind == "const":
        return f"{value} must be {error.validator_value!r}"
    if kind == "type":
        return f"{value} is not of type {error.validator_value}"
    if kind == "pattern":
        return f"{value} does not match {error.validator_value!r}"
    if kind == "not":
        return f"{value} is not allowed here"
    if kind == "format":
        return f"{value} is not a valid {expected}"
    if secret:
        rule = _SECRET_RULES.get(str(kind), "fails the {kind!r} rule")
        return f"value {REDACTED} " + rule.format(kind=kind, expected=expected)
    return error.message.replace(repr(error.instance), value)


_SECRET_RULES = {
    "minLength": "is shorter than {expected} characters",
    "maxLength": "is longer than {expected} characters",
    "minItems": "has fewer than {expected} item(s)",
    "maxItems": "has more than {expected} item(s)",
    "uniqueItems": "lists the same value twice",
}
"""What a rule a secret value broke says, without the value (jsonschema's own messages
quote it)."""


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def pointer_to_path(pointer: str) -> str:
    """``/spec/filters/1/sql`` → ``spec.filters[1].sql``."""
    steps = [p.replace("~1", "/").replace("~0", "~") for p in pointer.strip("/").split("/")]
    return format_path([int(p) if p.isdigit() else p for p in steps if p])


def path_suffix(path: str) -> str:
    """Join a path relative to a config onto the config's own path."""
    if not path:
        return ""
    return path if path.startswith("[") else "." + path
