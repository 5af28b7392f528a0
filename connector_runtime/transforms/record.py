"""One event as the operations of a transforms list see it.

JSON object data is split into its members once (``members``: each member's text as it
arrived, a :class:`msgspec.Raw`, until an operation needs its value and it is decoded in
place). A member's text as it arrived lets an operation with a needle (``@``, ``|``) pass
it by without decoding it; and a member that cannot be decoded (a number out of range) is
an error only where its text shows that a path may reach into it. The attributes are
copied once, when the first attribute path or ``set`` asks for them. :meth:`Record.finish`
makes the result: the same event object when nothing changed (its stored document
untouched, nothing re-encoded), else a new event whose data is encoded once (members still
as they arrived are written as they are) and whose structured document is built once,
here. Data that is not a JSON object (a list, a scalar) is decoded whole (``box``).
"""

from __future__ import annotations

from typing import Any, Final, Protocol

import msgspec

from connector_runtime.events import AttributeValue, Event, is_json_content_type, to_structured
from connector_runtime.transforms.paths import Path

Raw: Final = msgspec.Raw
_decode = msgspec.json.Decoder().decode
_members = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_encode = msgspec.json.Encoder().encode
NOTHING: Final[dict[str, Any]] = {}
"""The ``box`` of an event without JSON data: data paths reach nothing."""


class Reach(Protocol):
    """What a path (or a tree of paths) may reach, as a member's text tells it."""

    def viable(self, text: bytes) -> bool:
        """False when a member of this text holds nothing the path can reach."""
        ...


class _Everywhere:
    def viable(self, text: bytes) -> bool:
        return True


EVERYWHERE: Final = _Everywhere()


class TransformError(Exception):
    """A transform could not be applied to one event (it is filtered out and counted). The
    message names the operation and the path, never the value."""


class Record:
    __slots__ = (
        "_attributes",
        "_raws",
        "_texts",
        "attributes_changed",
        "box",
        "changed",
        "data_changed",
        "event",
        "members",
    )

    def __init__(self, event: Event) -> None:
        self.event = event
        self._attributes: dict[str, AttributeValue] | None = None
        self.members: dict[str, Any] | None = None
        """The data's members (``Raw`` until decoded), when the data is an object."""
        self._raws: dict[str, Any] = {}
        """The decoded members as they arrived: written so again unless ``changed``."""
        self.changed: set[str] = set()
        """The members an operation changed (or may have: they are encoded)."""
        self._texts: dict[str, bytes | None] = {}
        """A member's text as it arrived, or None when it holds escapes (then nothing can
        be ruled out by it)."""
        self.box: dict[str, Any] | None = None
        """``{"data": value}`` once the data is decoded whole, or :data:`NOTHING`."""
        self.attributes_changed = False
        self.data_changed = False

    @property
    def attributes(self) -> dict[str, AttributeValue]:
        if self._attributes is None:
            self._attributes = dict(self.event.peek())
        return self._attributes

    def open(self) -> None:
        """Split the data into members, or decode it whole when it is no object."""
        data = self.event.data
        ctype = self.event.get("datacontenttype")
        if data is None or not is_json_content_type(ctype if isinstance(ctype, str) else None):
            self.box = NOTHING
            return
        try:
            if data.lstrip()[:1] == b"{":
                self.members = _members(data)
            else:
                self.box = {"data": _decode(data)}
        except (msgspec.DecodeError, RecursionError):
            raise TransformError(
                "data is not valid JSON (or holds a number out of range)"
            ) from None

    def whole(self) -> dict[str, Any]:
        """The data decoded whole in ``{"data": value}`` (what a path to all of ``data``
        needs); from then on the record works on it."""
        if self.box is None:
            if self.members is None:
                self.open()
            members = self.members
            if members is not None:
                for key in members:
                    self.decoded(key, EVERYWHERE)
                self.box = {"data": members}
                self.members = None
        assert self.box is not None
        return self.box

    def holds(self, key: str, needles: tuple[bytes, ...]) -> bool:
        """Whether member ``key`` (which exists) may hold one of ``needles``: False only when
        the text it arrived with has none of them (no operation adds one)."""
        text = self._text(key)
        if text is None:
            return True
        for needle in needles:  # noqa: SIM110 (a loop: no generator per call)
            if text.find(needle) >= 0:  # faster than "in" for bytes
                return True
        return False

    def decoded(self, key: str, reach: Reach) -> bool:
        """Decode member ``key`` (which exists) in place, once. When its text cannot be
        decoded (a number out of range), answer False if the text shows that ``reach``
        (the names a path goes through, or a tree of paths) has nothing there, else raise
        :class:`TransformError`: a member is decoded only when something may be found in
        it, but the check by its text costs more than decoding, so it is made only then."""
        members = self.members
        assert members is not None
        raw = members[key]
        if type(raw) is not Raw:
            return True
        try:
            value = _decode(raw)
        except (msgspec.DecodeError, RecursionError):
            text = self._text(key)
            if text is not None and not reach.viable(text):
                return False
            raise TransformError("data holds a number out of range") from None
        self._raws[key] = raw
        members[key] = value
        return True

    def _text(self, key: str) -> bytes | None:
        """The text member ``key`` arrived with, or None when it holds escapes (then nothing
        can be ruled out by it)."""
        texts = self._texts
        if key in texts:
            return texts[key]
        raw = self._raws.get(key)
        if raw is None:
            assert self.members is not None
            raw = self.members[key]
        arrived = bytes(raw)
        text = None if arrived.find(b"\\") >= 0 else arrived
        texts[key] = text
        return text

    def touched(self, path: Path) -> None:
        """Note that an operation changed the data at ``path`` (a data path)."""
        self.data_changed = True
        if path.steps and type(path.steps[0]) is str:
            self.changed.add(path.steps[0])

    def finish(self) -> Event:
        """The transformed event (``event`` itself when nothing changed)."""
        if not (self.data_changed or self.attributes_changed):
            return self.event
        attributes = self.attributes  # a copy, made once
        data = self.event.data
        if self.data_changed:
            members = self.members
            if members is not None:
                for key, raw in self._raws.items():  # decoded, but no operation changed it
                    if key not in self.changed and key in members:
                        members[key] = raw
                data = _encode(members)
            else:
                assert self.box is not None
                value = self.box["data"]
                data = None if value is None else _encode(value)
            if data is None:
                attributes.pop("datacontenttype", None)
        event = Event(attributes, data)
        event.doc = to_structured(event)  # the one encoding of the transformed event
        return event
