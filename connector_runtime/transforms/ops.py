"""The field operations of ``spec.transforms``, compiled once from their configuration.

Each operation is an object with ``paths`` (compiled :class:`~.paths.Path`) and a method
``apply(record) -> bool`` that changes the :class:`~.record.Record` in place and answers
whether it changed anything (a value operation through its :class:`~.plan.Plan`), and
``apply_in_turn``, the same path by path as written (what ``apply`` equals, run again for an
event that fails, to name its first error). A path that reaches nothing (missing, ``null``)
is skipped. An object or a list where ``hash``, ``mask`` or ``ipPrefix`` expects a value
raises :class:`TransformError`: the event is then filtered out and counted, never passed on
with the value in it.

:func:`compile_transforms` checks a whole list (the JSON Schema has checked its shape) and
raises :class:`TransformConfigError` with the JSON pointer of the first bad entry.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import msgspec
import orjson

from connector_runtime.events import Event, is_extension_name
from connector_runtime.transforms.paths import FIXED_ATTRIBUTES, Path, PathError, parse_path
from connector_runtime.transforms.plan import Plan, each, find, remove
from connector_runtime.transforms.record import Record, TransformError
from connector_runtime.transforms.text import (
    CACHED,
    USER_ID_NEEDLES,
    Mac,
    email_sub,
    in_strings,
    user_id_sub,
)

_encode = msgspec.json.Encoder().encode  # integers of any size, as the record encodes them
MIN_KEY_BYTES: Final = 16
OPERATIONS: Final = ("hash", "ipPrefix", "drop", "mask", "truncate", "set", "emails", "userIds")


class TransformConfigError(ValueError):
    """A ``spec.transforms`` entry that cannot be compiled: ``path`` is a JSON pointer."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


Note = Callable[[str], None]
"""Called with a one-line reason for a counted problem that does not drop the event."""


def scalar_text(op: str, path: Path, value: Any) -> str:
    """A value as the text ``hash`` and ``mask`` work on (a number or boolean: its JSON)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value) if isinstance(value, int) else orjson.dumps(value).decode()
    kind = "an object" if isinstance(value, dict) else "a list"
    raise TransformError(f"{op} {path.text}: found {kind}, not a value")


class _PerValue:
    """An operation that replaces each value its paths reach."""

    name = ""
    needles: tuple[bytes, ...] = ()
    """Text of which a member must hold one for the operation to have work there (``@``
    for emails)."""

    interleave = True
    """Whether the operation notes nothing (so its paths may be walked item by item)."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = tuple(paths)
        self._plan = Plan(self.paths, self.convert, self.needles, self.interleave)

    def apply(self, record: Record, note: Note) -> bool:
        return self._plan.run(record, note)

    def apply_in_turn(self, record: Record, note: Note) -> bool:
        """:meth:`apply` path by path, as written (what ``apply`` is equal to)."""
        return each(record, self.paths, self.convert, self.needles, note)

    def convert(self, path: Path, value: Any, note: Note) -> Any:
        raise NotImplementedError


class Hash(_PerValue):
    name = "hash"

    def __init__(self, paths: Sequence[Path], key: bytes) -> None:
        self._mac = Mac(key)
        super().__init__(paths)

    def __repr__(self) -> str:  # never the key
        return f"Hash({[p.text for p in self.paths]})"

    def convert(self, path: Path, value: Any, note: Note) -> Any:
        return self._mac.hex(value if type(value) is str else scalar_text("hash", path, value))


class Emails(_PerValue):
    """Every e-mail address inside the strings at or under the paths (through objects and
    lists) is replaced by its HMAC-SHA256 hex with ``key`` (as ``hash`` would write it, so
    joins still work), or by ``<email>`` without a key."""

    name = "emails"
    needles: tuple[bytes, ...] = (b"@",)
    find_in = staticmethod(email_sub)

    def __init__(self, paths: Sequence[Path], key: bytes | None) -> None:
        self._sub = self.find_in(None if key is None else Mac(key))
        super().__init__(paths)

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}({[p.text for p in self.paths]})"

    def convert(self, path: Path, value: Any, note: Note) -> Any:
        return in_strings(value, self._sub)


class UserIds(Emails):
    """Every Auth0 user id inside the strings at or under the paths (see :mod:`.text`)
    is replaced by its HMAC-SHA256 hex with ``key`` (the hash of the ``user_id``), or by
    ``<user_id>`` without a key."""

    name = "userIds"
    needles = USER_ID_NEEDLES
    find_in = staticmethod(user_id_sub)


class Mask(_PerValue):
    name = "mask"

    def __init__(self, paths: Sequence[Path], keep_start: int, keep_end: int) -> None:
        self.keep_start, self.keep_end = keep_start, keep_end
        super().__init__(paths)

    def convert(self, path: Path, value: Any, note: Note) -> Any:
        text = scalar_text("mask", path, value)
        n, start, end = len(text), self.keep_start, self.keep_end
        if n <= start + end:
            return "*" * n
        return text[:start] + "*" * (n - start - end) + text[n - end :]


class IpPrefix(_PerValue):
    name = "ipPrefix"
    interleave = False

    def __init__(self, paths: Sequence[Path], v4: int, v6: int) -> None:
        self.v4, self.v6 = v4, v6
        self._networks: dict[str, str] = {}
        """The last addresses seen and their networks (addresses repeat too)."""
        super().__init__(paths)

    def convert(self, path: Path, value: Any, note: Note) -> Any:
        if type(value) is str:
            networks = self._networks
            found = networks.get(value)
            if found is None:
                found = self._network(path, value, note)
                if found is None:
                    return None
                if len(networks) >= CACHED:
                    networks.clear()
                networks[value] = found
            return found
        return self._network(path, value, note)

    def _network(self, path: Path, value: Any, note: Note) -> Any:
        if isinstance(value, dict | list):
            scalar_text("ipPrefix", path, value)  # raises
        try:
            address = ipaddress.ip_address(value.split("%", 1)[0])
        except (ValueError, AttributeError):
            note(f"ipPrefix {path.text}: not an IP address, replaced by null")
            return None
        bits = self.v4 if address.version == 4 else self.v6
        network = ipaddress.ip_network((address, bits), strict=False)
        return network.network_address.compressed


class Truncate(_PerValue):
    name = "truncate"

    def __init__(self, paths: Sequence[Path], max_bytes: int) -> None:
        self.max_bytes = max_bytes
        super().__init__(paths)

    def convert(self, path: Path, value: Any, note: Note) -> Any:
        limit = self.max_bytes
        if isinstance(value, str):
            if len(value) * 4 <= limit:  # cannot be longer in UTF-8
                return value
            raw = value.encode("utf-8", "surrogatepass")
        elif isinstance(value, dict | list):
            raw = _encode(value)  # an object or list too long becomes its cut JSON text
        else:
            return value
        if len(raw) <= limit:
            return value
        return raw[:limit].decode("utf-8", "ignore")


class Drop:
    name = "drop"

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = tuple(paths)
        self._names = tuple(
            p.steps if p.is_data and p.steps and all(type(s) is str for s in p.steps) else None
            for p in self.paths
        )
        """For each path through members alone (the usual path), its member names."""

    def apply(self, record: Record, note: Note) -> bool:
        changed = False
        for path, names in zip(self.paths, self._names, strict=True):
            members = record.members
            if names is not None and members is not None:
                # what find() and remove() do, without a list of places
                name = names[0]
                if name not in members or not record.decoded(name, path):
                    continue
                holder: Any = members
                for step in names[1:]:
                    holder = holder.get(name)
                    if not isinstance(holder, dict):
                        break
                    name = step
                else:
                    if holder.get(name) is not None:
                        del holder[name]
                        record.touched(path)
                        changed = True
                continue
            # list items go last to first, so earlier indexes stay right
            for holder, key in reversed(find(record, path)):
                remove(record, path, holder, key)
                changed = True
        return changed

    apply_in_turn = apply


class SetAttributes:
    name = "set"
    paths: tuple[Path, ...] = ()

    def __init__(self, attributes: Mapping[str, str | int | bool]) -> None:
        self.attributes = dict(attributes)

    def apply(self, record: Record, note: Note) -> bool:
        record.attributes.update(self.attributes)
        record.attributes_changed = True
        return True

    apply_in_turn = apply


Operation = Hash | Emails | UserIds | Mask | IpPrefix | Truncate | Drop | SetAttributes


def compile_transforms(
    entries: Sequence[Mapping[str, Any]], base_path: str = "/spec/transforms"
) -> list[Operation]:
    """Compile a ``spec.transforms`` list (already checked against its JSON Schema)."""
    return [_compile(entry, f"{base_path}/{i}") for i, entry in enumerate(entries)]


def _compile(entry: Mapping[str, Any], at: str) -> Operation:
    if len(entry) != 1 or next(iter(entry)) not in OPERATIONS:
        raise TransformConfigError(at, f"one of {', '.join(OPERATIONS)} expected")
    name, config = next(iter(entry.items()))
    at = f"{at}/{name}"
    if name == "set":
        for attr in config["attributes"]:
            if not is_extension_name(attr) or attr in FIXED_ATTRIBUTES:
                raise TransformConfigError(
                    f"{at}/attributes", f"{attr!r} cannot be set (not an attribute name, or fixed)"
                )
        return SetAttributes(config["attributes"])
    paths = []
    for i, text in enumerate(config["paths"]):
        try:
            path = parse_path(text)
        except PathError as exc:
            raise TransformConfigError(f"{at}/paths/{i}", str(exc)) from None
        if name in ("drop", "ipPrefix") and path.root == "type":
            raise TransformConfigError(f"{at}/paths/{i}", "the 'type' attribute cannot be removed")
        paths.append(path)
    texts = {"emails": Emails, "userIds": UserIds}
    if name in ("hash", *texts) and (name == "hash" or "key" in config):
        key = str(config.get("key", "")).encode("utf-8")
        if len(key) < MIN_KEY_BYTES:
            message = f"the key must have {MIN_KEY_BYTES} bytes or more"
            raise TransformConfigError(f"{at}/key", message)
        return Hash(paths, key) if name == "hash" else texts[name](paths, key)
    if name in texts:
        return texts[name](paths, None)
    if name == "mask":
        return Mask(paths, config.get("keepStart", 0), config.get("keepEnd", 0))
    if name == "ipPrefix":
        return IpPrefix(paths, config.get("v4", 24), config.get("v6", 48))
    if name == "truncate":
        return Truncate(paths, config["maxBytes"])
    assert name == "drop", name
    return Drop(paths)


def transform_secrets(entries: Sequence[Mapping[str, Any]]) -> frozenset[str]:
    """The keys (``hash``, ``emails``, ``userIds``) of a transforms list (values to
    redact)."""
    return frozenset(
        str(config["key"])
        for entry in entries
        for config in entry.values()
        if isinstance(config, Mapping) and "key" in config
    )


def _silent(reason: str) -> None:
    """Notes of a second run (the first one made them)."""


def make_transform(operations: Sequence[Operation], note: Note) -> Callable[[Event], Event]:
    """The ``(event) -> event`` that applies ``operations`` in order: the data decoded at
    most once, the result encoded at most once, an untouched event handed back as it is."""
    ops = tuple(operations)

    def transform(event: Event) -> Event:
        record = Record(event)
        try:
            for op in ops:
                op.apply(record, note)
        except TransformError:
            # The event fails; name the error applying the paths in turn meets first.
            record = Record(event)
            for op in ops:
                op.apply_in_turn(record, _silent)
            raise
        return record.finish()

    return transform


def build_transform(
    entries: Sequence[Mapping[str, Any]], on_error: Note, base_path: str = "/spec/transforms"
) -> Callable[[Event], Event]:
    """A plugin's way to the built-in operations: ``entries`` in the ``spec.transforms``
    form, compiled into the ``(event) -> event`` an ``event_transform`` hook returns. Raises
    :class:`TransformConfigError` (JSON pointer under ``base_path``) for a bad entry."""
    return make_transform(compile_transforms(entries, base_path), on_error)
