"""How one value operation's paths run over a :class:`~.record.Record`, compiled once.

The paths are taken in order into groups: consecutive paths into the same top-level member
of the data share a tree of their steps, walked once over the member's value (one
``dict.get`` per step, whatever the number of paths); an attribute path is a group of its
own. A group whose member is absent costs one look-up; with a needle (``@`` for ``emails``),
a member whose text as it arrived lacks it is not even decoded. A path joins the tree only
where walking it still gives exactly what applying the paths one after another gives (see
:meth:`Node.join`: the same values, notes and first error; below a ``[*]``, for an operation
that notes nothing, the same values, and an event that fails is run again path by path for
its error); otherwise it starts a new group. A path to the whole data (``data``) or through
a list at the top makes the operation run path by path (:func:`each`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from connector_runtime.transforms.paths import STAR, Path, Place, Step, reach
from connector_runtime.transforms.record import Raw, Record

Note = Callable[[str], None]
Convert = Callable[[Path, Any, Note], Any]
"""A value operation on one value: the new value, or the value itself when unchanged."""


def _same(a: Step, b: Step) -> bool:
    return type(a) is type(b) and a == b


class Node:
    """One step of a group's tree: the paths that end here, and the steps that go on."""

    __slots__ = ("children", "ends", "leaf", "needle", "step")

    def __init__(self, step: Step) -> None:
        self.step = step
        self.leaf: Path | None = None
        """The one path that ends here when nothing goes on (set by :meth:`seal`)."""
        self.needle = json.dumps(step, ensure_ascii=False).encode() if type(step) is str else None
        self.ends: list[Path] = []
        self.children: list[Node] = []

    def join(self, path: Path, interleave: bool) -> bool:
        """Add ``path`` (whose first step is this node's) if the walk then still reaches
        the places in the order of the paths added, each path's places in turn: the path
        must branch off (or end) on the last branch of the tree and not end where another
        path goes on. Below a ``[*]`` the walk takes the paths item by item: that gives the
        same values (items are apart) but may meet a bad value of a later path first, so
        a path joins there only if ``interleave`` (the operation notes nothing, and a
        failed event is run again path by path for its error). Answer whether it was
        added."""
        node = self
        steps = path.steps[1:]
        for at, step in enumerate(steps):
            last = node.children[-1] if node.children else None
            if last is not None and _same(last.step, step):
                if step is STAR and not interleave:
                    return False
                node = last
                continue
            if any(_same(child.step, step) for child in node.children):
                return False  # into an earlier branch
            for later in steps[at:]:
                child = Node(later)
                node.children.append(child)
                node = child
            node.ends.append(path)
            return True
        if node.children:
            return False
        node.ends.append(path)
        return True

    def seal(self) -> None:
        """Note the leaves, once the tree is complete."""
        self.leaf = self.ends[0] if len(self.ends) == 1 and not self.children else None
        for child in self.children:
            child.seal()

    def viable(self, text: bytes) -> bool:
        """Whether some path here or below can reach something in a member of this
        ``text`` (a path's member names must all be in it)."""
        if self.ends:
            return True
        for child in self.children:
            if child.needle is not None and child.needle not in text:
                continue
            if child.viable(text):
                return True
        return False


def walk(holder: Any, key: Any, value: Any, node: Node, convert: Convert, note: Note) -> bool:
    """Apply ``convert`` at every place the tree reaches from ``value``, which is
    ``holder[key]`` and not ``null``; answer whether anything changed."""
    changed = False
    for path in node.ends:
        new = convert(path, value, note)
        if new is not value:
            holder[key] = value = new
            changed = True
            if value is None:
                return True
    for child in node.children:
        step = child.step
        if type(step) is str:
            if isinstance(value, dict):
                item = value.get(step)
                if item is None:
                    continue
                leaf = child.leaf
                if leaf is not None:  # the usual end of a path, without a call of walk
                    new = convert(leaf, item, note)
                    if new is not item:
                        value[step] = new
                        changed = True
                elif walk(value, step, item, child, convert, note):
                    changed = True
        elif isinstance(value, list):
            if step is STAR:
                for index, item in enumerate(value):
                    if item is not None and walk(value, index, item, child, convert, note):
                        changed = True
            else:
                assert isinstance(step, int)
                if -len(value) <= step < len(value):
                    item = value[step]
                    if item is not None and walk(value, step, item, child, convert, note):
                        changed = True
    return changed


def find(record: Record, path: Path, needles: tuple[bytes, ...] = ()) -> list[Place]:
    """The places ``path`` reaches, leaving out a member whose text holds none of
    ``needles`` (the operation has nothing to do there)."""
    if not path.is_data:
        return reach(record.attributes, path.root, ())
    if record.members is None and record.box is None:
        record.open()
    steps = path.steps
    members = record.members
    if members is None or not steps:
        return reach(record.whole(), "data", steps)
    key = steps[0]
    if type(key) is not str or key not in members:
        return []
    if needles and not record.holds(key, needles):
        return []
    if not record.decoded(key, path):
        return []
    return reach(members, key, steps[1:])


def put(record: Record, path: Path, holder: Any, key: str | int, value: Any) -> None:
    if path.is_data:
        holder[key] = value
        record.touched(path)
    else:
        if value is None:
            del holder[key]
        else:
            holder[key] = value
        record.attributes_changed = True


def remove(record: Record, path: Path, holder: Any, key: str | int) -> None:
    if not path.is_data:
        del holder[key]
        record.attributes_changed = True
        return
    box = record.box
    if box is not None and holder is box:
        box["data"] = None  # the data as a whole
    elif isinstance(holder, list) and isinstance(key, int):
        holder.pop(key)
    else:
        del holder[key]
    record.touched(path)


def each(
    record: Record, paths: Sequence[Path], convert: Convert, needles: tuple[bytes, ...], note: Note
) -> bool:
    """The paths one after another (what every plan is equal to)."""
    changed = False
    for path in paths:
        for holder, key in find(record, path, needles):
            value = holder[key]
            new = convert(path, value, note)
            if new is not value:
                put(record, path, holder, key, new)
                changed = True
    return changed


class Plan:
    """One value operation's paths, compiled: ``run(record, note)`` applies ``convert`` at
    every place they reach and answers whether anything changed."""

    __slots__ = ("_convert", "_groups", "_needles", "_whole")

    def __init__(
        self,
        paths: Sequence[Path],
        convert: Convert,
        needles: Sequence[bytes],
        interleave: bool = False,
    ) -> None:
        self._convert = convert
        self._needles = tuple(needles)
        self._whole: tuple[Path, ...] = ()
        self._groups: list[tuple[Path, Node | None, Node | None]] = []
        """(first path, tree, the tree under a ``data`` step); no tree for an attribute."""
        if any(p.is_data and (not p.steps or type(p.steps[0]) is not str) for p in paths):
            self._whole = tuple(paths)  # the whole data, or a list at the top
            return
        for path in paths:
            last = self._groups[-1] if self._groups else None
            if not path.is_data:
                self._groups.append((path, None, None))
            elif (
                last is None
                or last[1] is None
                or last[0].steps[0] != path.steps[0]
                or not last[1].join(path, interleave)
            ):
                node = Node(path.steps[0])
                node.join(path, interleave)
                top = Node("data")
                top.children.append(node)
                self._groups.append((path, node, top))
        for _, _, tree in self._groups:
            if tree is not None:
                tree.seal()

    def run(self, record: Record, note: Note) -> bool:
        convert, needles = self._convert, self._needles
        if self._whole:
            return each(record, self._whole, convert, needles, note)
        changed = False
        for path, node, top in self._groups:
            if node is None:  # an attribute
                attributes = record.attributes
                value = attributes.get(path.root)
                if value is not None:
                    new = convert(path, value, note)
                    if new is not value:
                        put(record, path, attributes, path.root, new)
                        changed = True
                continue
            members = record.members
            if members is None:
                if record.box is None:
                    record.open()
                members = record.members
                if members is None:  # data decoded whole (or none)
                    box = record.box
                    assert box is not None and top is not None
                    data = box.get("data")
                    if data is not None and walk(box, "data", data, top, convert, note):
                        record.data_changed = changed = True
                    continue
            key = path.steps[0]
            assert type(key) is str
            if key not in members:
                continue
            if needles and not record.holds(key, needles):
                continue
            value = members[key]
            if type(value) is Raw:
                if not record.decoded(key, node):
                    continue
                value = members[key]
            if value is None:
                continue
            leaf = node.leaf
            if leaf is not None:  # a path to a top-level member, the usual case
                new = convert(leaf, value, note)
                if new is value:
                    continue
                members[key] = new
            elif not walk(members, key, value, node, convert, note):
                continue
            record.changed.add(key)
            record.data_changed = changed = True
        return changed
