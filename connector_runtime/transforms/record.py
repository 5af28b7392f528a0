"""One event as the operations of a transforms list see it.

The data is decoded once, when the first data path asks for it, and the attributes copied
once, when the first attribute path or ``set`` asks for them. :meth:`Record.finish` makes
the result: the same event object when nothing changed (its stored document untouched, no
re-encoding), else a new event whose data is encoded once and whose structured document is
built once, here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import msgspec

from connector_runtime.events import AttributeValue, Event, is_json_content_type, to_structured
from connector_runtime.transforms.paths import Path, Place, places

_NOTHING: Final[dict[str, Any]] = {}
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


class TransformError(Exception):
    """A transform could not be applied to one event (it is filtered out and counted). The
    message names the operation and the path, never the value."""


class Record:
    __slots__ = ("_attributes", "_box", "attributes_changed", "data_changed", "event")

    def __init__(self, event: Event) -> None:
        self.event = event
        self._attributes: dict[str, AttributeValue] | None = None
        self._box: dict[str, Any] | None = None
        self.attributes_changed = False
        self.data_changed = False

    @property
    def attributes(self) -> dict[str, AttributeValue]:
        if self._attributes is None:
            self._attributes = dict(self.event.peek())
        return self._attributes

    def _data_box(self) -> dict[str, Any]:
        if self._box is None:
            data = self.event.data
            ctype = self.event.get("datacontenttype")
            if data is None or not is_json_content_type(ctype if isinstance(ctype, str) else None):
                self._box = _NOTHING  # no JSON data: data paths reach nothing
            else:
                self._box = {"data": _loads(data)}
        return self._box

    def places(self, path: Path) -> Iterator[Place]:
        if path.is_data:
            return places(self._data_box(), "data", path.steps)
        return places(self.attributes, path.root, ())

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
            assert self._box is not None
            value = self._box["data"]
            data = None if value is None else _dumps(value)
            if data is None:
                attributes.pop("datacontenttype", None)
        event = Event(attributes, data)
        event.doc = to_structured(event)  # the one encoding of the transformed event
        return event


def _loads(data: bytes) -> Any:
    # msgspec reads integers of any size exactly (orjson would turn one past 64 bits into a
    # float); a number past a float's range is refused rather than written back as Infinity.
    try:
        return _decode(data)
    except (msgspec.DecodeError, RecursionError):
        raise TransformError("data is not valid JSON (or holds a number out of range)") from None


def _dumps(value: Any) -> bytes:
    return _encode(value)
