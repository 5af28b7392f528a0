"""One event as the operations of a transforms list see it.

JSON object data is split into its members once (their text kept as it is, not decoded);
a member is decoded only when a path reaches into it, and not even then when its text
shows the path cannot be there (a member name or an ``@`` that does not occur in it). The
attributes are copied once, when the first attribute path or ``set`` asks for them.
:meth:`Record.finish` makes the result: the same event object when nothing changed (its
stored document untouched, nothing re-encoded), else a new event whose data is the members
joined again, only the decoded ones encoded, and whose structured document is built once,
here. Data that is not a JSON object (a list, a scalar) is decoded whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import msgspec

from connector_runtime.events import AttributeValue, Event, is_json_content_type, to_structured
from connector_runtime.transforms.paths import Path, Place, places

_decode = msgspec.json.Decoder().decode
_members = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_encode = msgspec.json.Encoder().encode
_NOTHING: Final[dict[str, Any]] = {}
_KEYS: dict[str, bytes] = {}
"""Member names as JSON text followed by ``:``, the common ones kept."""


class TransformError(Exception):
    """A transform could not be applied to one event (it is filtered out and counted). The
    message names the operation and the path, never the value."""


class Record:
    __slots__ = (
        "_attributes",
        "_box",
        "_raw",
        "_texts",
        "_values",
        "attributes_changed",
        "data_changed",
        "event",
    )

    def __init__(self, event: Event) -> None:
        self.event = event
        self._attributes: dict[str, AttributeValue] | None = None
        self._raw: dict[str, msgspec.Raw] | None = None
        """The data's members as text, when the data is an object being read lazily."""
        self._texts: dict[str, bytes | None] = {}
        """A member's text, or None when it holds escapes (then nothing can be ruled out)."""
        self._values: dict[str, Any] = {}
        """The members decoded so far (changed in place by the operations)."""
        self._box: dict[str, Any] | None = None
        """``{"data": value}`` once the data is decoded whole (or holds nothing to reach)."""
        self.attributes_changed = False
        self.data_changed = False

    @property
    def attributes(self) -> dict[str, AttributeValue]:
        if self._attributes is None:
            self._attributes = dict(self.event.peek())
        return self._attributes

    def _open(self) -> None:
        data = self.event.data
        ctype = self.event.get("datacontenttype")
        if data is None or not is_json_content_type(ctype if isinstance(ctype, str) else None):
            self._box = _NOTHING  # no JSON data: data paths reach nothing
            return
        try:
            if data.lstrip()[:1] == b"{":
                self._raw = _members(data)
            else:
                self._box = {"data": _decode(data)}
        except (msgspec.DecodeError, RecursionError):
            raise TransformError(
                "data is not valid JSON (or holds a number out of range)"
            ) from None

    def _whole(self) -> dict[str, Any]:
        """The data decoded whole (what a path to all of ``data`` needs)."""
        if self._box is None:
            if self._raw is None:
                self._open()
            if self._raw is not None:
                value = {k: self._member(k) for k in self._raw}
                self._box = {"data": value}
                self._raw = None
        assert self._box is not None
        return self._box

    def _member(self, key: str) -> Any:
        values = self._values
        if key not in values:
            assert self._raw is not None
            try:
                values[key] = _decode(self._raw[key])
            except (msgspec.DecodeError, RecursionError):
                raise TransformError("data holds a number out of range") from None
        return values[key]

    def places(self, path: Path, needle: bytes = b"") -> Iterator[Place]:
        """The places ``path`` reaches; with ``needle``, leave out a member whose text does
        not hold it (the operation has nothing to do there)."""
        if not path.is_data:
            return places(self.attributes, path.root, ())
        if self._raw is None and self._box is None:
            self._open()
        steps = path.steps
        raw = self._raw
        if raw is None or not steps:
            return places(self._whole(), "data", steps)
        key = steps[0]
        if not isinstance(key, str) or key not in raw:
            return iter(())
        # The member's original text rules places out: no operation adds a member name or
        # an "@", so what the text lacks is not there now either (unless escapes hide it).
        texts = self._texts
        if key in texts:
            text = texts[key]
        else:
            text = bytes(raw[key])
            text = texts[key] = None if b"\\" in text else text
        if text is not None:
            if needle and needle not in text:
                return iter(())
            for n in path.needles:
                if n not in text:
                    return iter(())
        if key not in self._values:
            self._member(key)
        return places(self._values, key, steps[1:])

    def put(self, path: Path, holder: Any, key: str | int, value: Any) -> None:
        if path.is_data:
            holder[key] = value
            self.data_changed = True
        else:
            if value is None:
                del holder[key]
            else:
                holder[key] = value
            self.attributes_changed = True

    def remove(self, path: Path, holder: Any, key: str | int) -> None:
        if path.is_data:
            if holder is self._box and self._box is not None:
                self._box["data"] = None  # the data as a whole
            elif holder is self._values and self._raw is not None:
                assert isinstance(key, str)
                del self._values[key]
                del self._raw[key]
            elif isinstance(holder, list) and isinstance(key, int):
                holder.pop(key)
            else:
                del holder[key]
            self.data_changed = True
        else:
            del holder[key]
            self.attributes_changed = True

    def finish(self) -> Event:
        """The transformed event (``event`` itself when nothing changed)."""
        if not (self.data_changed or self.attributes_changed):
            return self.event
        attributes = dict(self.attributes) if self.data_changed else self.attributes
        data = self.event.data
        if self.data_changed:
            data = self._encoded()
            if data is None:
                attributes.pop("datacontenttype", None)
        event = Event(attributes, data)
        event.doc = to_structured(event)  # the one encoding of the transformed event
        return event

    def _encoded(self) -> bytes | None:
        raw = self._raw
        if raw is None:
            assert self._box is not None
            value = self._box["data"]
            return None if value is None else _encode(value)
        values = self._values
        parts: list[Any] = []
        for key, text in raw.items():
            name = _KEYS.get(key)
            if name is None:
                name = _encode(key) + b":"
                if len(_KEYS) < 4096:
                    _KEYS[key] = name
            parts.append(name)
            parts.append(_encode(values[key]) if key in values else text)
            parts.append(b",")
        if parts:
            parts[-1] = b"}"
            return b"{" + b"".join(parts)
        return b"{}"
