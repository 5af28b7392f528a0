"""Compilation of LIKE patterns into matchers.

``%`` matches any run of characters, ``_`` exactly one character; ``\\%``, ``\\_`` and
``\\\\`` stand for a literal ``%``, ``_`` and backslash; a backslash before anything else is
a literal backslash. The pattern is split at its ``%`` wildcards into fixed-length
segments, which are matched left to right (first segment anchored at the start, last at
the end, the others at their leftmost occurrence). That is linear-time per segment with
C-level string search, with no backtracking blow-up whatever the pattern.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["LikePattern", "compile_like"]

PatternKind = Literal["exact", "prefix", "suffix", "contains", "any", "general"]


@dataclass(frozen=True, slots=True)
class _Segment:
    text: str
    """The segment with each ``_`` wildcard shown as ``_`` (only used when ``regex`` is None)."""
    length: int
    regex: re.Pattern[str] | None
    """Set when the segment contains ``_`` wildcards."""

    def match_at(self, s: str, pos: int) -> bool:
        if self.regex is None:
            return s.startswith(self.text, pos)
        return self.regex.match(s, pos) is not None

    def find(self, s: str, start: int, end: int) -> int:
        if self.regex is None:
            return s.find(self.text, start, end)
        m = self.regex.search(s, start, end)
        return -1 if m is None else m.start()


@dataclass(frozen=True, slots=True)
class LikePattern:
    source: str
    kind: PatternKind
    text: str
    """For exact/prefix/suffix/contains: the literal text to compare."""
    match: Callable[[str], bool]


def _segments(pattern: str) -> list[_Segment]:
    """Split at unescaped ``%``; each segment is a list of literal chars and ``None`` for ``_``."""
    raw: list[list[str | None]] = [[]]
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n and pattern[i + 1] in "%_\\":
            raw[-1].append(pattern[i + 1])
            i += 2
            continue
        if c == "%":
            raw.append([])
        elif c == "_":
            raw[-1].append(None)
        else:
            raw[-1].append(c)
        i += 1
    segments: list[_Segment] = []
    for items in raw:
        if None in items:
            regex = re.compile(
                "".join("." if ch is None else re.escape(ch) for ch in items), re.DOTALL
            )
            segments.append(_Segment("", len(items), regex))
        else:
            segments.append(
                _Segment("".join(ch for ch in items if ch is not None), len(items), None)
            )
    return segments


def compile_like(pattern: str) -> LikePattern:
    segs = _segments(pattern)
    if len(segs) == 1:
        only = segs[0]
        if only.regex is None:
            text = only.text
            return LikePattern(pattern, "exact", text, lambda s: s == text)
        rx = only.regex
        return LikePattern(pattern, "general", "", lambda s: rx.fullmatch(s) is not None)

    first, last = segs[0], segs[-1]
    middles = [seg for seg in segs[1:-1] if seg.length]
    plain = first.regex is None and last.regex is None
    if plain and not middles:
        if not first.text and not last.text:
            return LikePattern(pattern, "any", "", lambda s: True)
        if not last.text:
            return LikePattern(pattern, "prefix", first.text, _startswith(first.text))
        if not first.text:
            return LikePattern(pattern, "suffix", last.text, _endswith(last.text))
    if plain and not first.text and not last.text and len(middles) == 1:
        mid = middles[0]
        if mid.regex is None:
            needle = mid.text
            return LikePattern(pattern, "contains", needle, lambda s: needle in s)

    min_len = first.length + last.length + sum(seg.length for seg in middles)
    head_len = first.length
    tail_len = last.length

    def general(s: str) -> bool:
        n = len(s)
        if n < min_len or not first.match_at(s, 0):
            return False
        end = n - tail_len
        if not last.match_at(s, end):
            return False
        pos = head_len
        for seg in middles:
            k = seg.find(s, pos, end)
            if k < 0:
                return False
            pos = k + seg.length
        return True

    return LikePattern(pattern, "general", "", general)


def _startswith(prefix: str) -> Callable[[str], bool]:
    return lambda s: s.startswith(prefix)


def _endswith(suffix: str) -> Callable[[str], bool]:
    return lambda s: s.endswith(suffix)
