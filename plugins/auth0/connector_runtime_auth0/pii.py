"""The ``pii`` presets: Auth0 log records' personal data, as ``spec.transforms`` lists.

The paths come from the fields Auth0 log records carry (the catalogue of event types and
real records: user and login events, Management API calls with their request and
response, e-mail events). The plugin README lists exactly what each preset touches; a test
keeps it equal to :data:`PRESETS`.

- ``pseudonymize`` keeps what analytics need, linkable but not readable: identifiers and
  e-mail addresses become their HMAC-SHA256 with the key (the same user gives the same
  hash across events and restarts), addresses keep their network (/24, /48), the place
  keeps its country.
- ``strict`` keeps no personal value at all: the same hashes, user ids inside text (a
  Management API path such as ``/api/v2/users/auth0|abc/roles``) replaced by
  ``<user_id>``, and addresses, user agents and the place removed.

Both presets find user ids inside text (``userIds``) before e-mail addresses, so an id
that holds an address (``samlp|corp|ann@example.com``) is taken whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

IDENTIFIERS: Final = (
    "subject",  # the event's subject is the record's user_id
    "data.user_id",
    "data.user_name",
    "data.details.prompts[*].user_id",
    "data.details.prompts[*].user_name",
    "data.details.prompts[*].identity",
    "data.details.email",
    "data.details.to",
    "data.details.body.email",
    "data.details.query.email",
    "data.details.query.user_id",
    "data.details.query.idp_user_id",
    "data.details.request.auth.user.user_id",
    "data.details.request.auth.user.email",
    "data.details.request.auth.user.name",
    "data.details.request.auth.subject",  # the user id behind a Management API call
)
"""Values that identify a person: hashed by both presets."""

TEXT: Final = ("data.description", "data.details")
"""Free text and nested objects in which any user id or e-mail address left is hashed
(user ids are replaced by ``<user_id>`` under ``strict``)."""

ADDRESSES: Final = ("data.ip", "data.details.request.ip")
USER_AGENTS: Final = ("data.user_agent", "data.details.request.userAgent")
PLACE: Final = ("data.location_info",)
PLACE_DETAIL: Final = tuple(
    f"data.location_info.{name}"
    for name in (
        "city_name",
        "latitude",
        "longitude",
        "time_zone",
        "postal_code",
        "subdivision_code",
        "subdivision_name",
    )
)
"""What ``pseudonymize`` removes of ``location_info`` (country and continent stay)."""


def _common(key: str, ids_hashed: bool) -> list[dict[str, Any]]:
    ids: dict[str, Any] = {"paths": list(TEXT), "key": key} if ids_hashed else {"paths": list(TEXT)}
    return [
        {"hash": {"paths": list(IDENTIFIERS), "key": key}},
        {"userIds": ids},
        {"emails": {"paths": list(TEXT), "key": key}},
    ]


def expand(preset: str, key: str) -> list[dict[str, Any]]:
    """The ``spec.transforms`` list of ``preset`` with ``key``."""
    if preset == "strict":
        return [*_common(key, False), {"drop": {"paths": [*ADDRESSES, *USER_AGENTS, *PLACE]}}]
    if preset == "pseudonymize":
        return [
            *_common(key, True),
            {"ipPrefix": {"paths": list(ADDRESSES), "v4": 24, "v6": 48}},
            {"drop": {"paths": list(PLACE_DETAIL)}},
        ]
    raise ValueError(f"unknown pii preset {preset!r}")


PRESETS: Final[Mapping[str, Sequence[Mapping[str, Any]]]] = {
    name: expand(name, "<key>") for name in ("strict", "pseudonymize")
}
"""Each preset's list, with ``<key>`` for the key (what the README shows)."""


def _effect(operation: str, config: Mapping[str, Any]) -> str:
    if operation == "ipPrefix":
        return f"network kept (/{config['v4']}, /{config['v6']})"
    if operation == "userIds":
        return "user ids inside " + ("hashed" if "key" in config else "replaced by `<user_id>`")
    return {"hash": "hashed", "emails": "e-mail addresses inside hashed", "drop": "removed"}[
        operation
    ]


def touched() -> list[tuple[str, str, str]]:
    """(path, what ``strict`` does, what ``pseudonymize`` does), as the README lists them."""
    effects: dict[str, dict[str, str]] = {}
    for preset, entries in PRESETS.items():
        for entry in entries:
            ((operation, config),) = entry.items()
            for path in config["paths"]:
                done = effects.setdefault(path, {})
                effect = _effect(operation, config)
                done[preset] = f"{done[preset]}, {effect}" if preset in done else effect
    return [(p, e.get("strict", "—"), e.get("pseudonymize", "—")) for p, e in effects.items()]
