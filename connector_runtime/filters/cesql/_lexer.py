"""Tokenizer for CESQL expressions."""

from __future__ import annotations

from typing import Final, Literal, NamedTuple

from ._types import CesqlParseError

__all__ = ["KEYWORDS", "Token", "TokenKind", "tokenize"]

TokenKind = Literal["int", "str", "word", "keyword", "op", "eof"]

KEYWORDS: Final = frozenset({"AND", "OR", "XOR", "NOT", "LIKE", "EXISTS", "IN", "TRUE", "FALSE"})

_WHITESPACE: Final = frozenset(" \t\r\n")
_WORD_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_DIGITS: Final = frozenset("0123456789")
_TWO_CHAR_OPS: Final = frozenset({"!=", "<>", "<=", ">="})
_ONE_CHAR_OPS: Final = frozenset("(),+-*/%=<>")


class Token(NamedTuple):
    kind: TokenKind
    text: str
    """Operator symbol, upper-cased keyword, word as written, or decoded string literal."""
    pos: int
    """0-based offset of the first character in the source."""
    raw: str
    """The token as written in the source."""

    def describe(self) -> str:
        if self.kind == "eof":
            return "end of expression"
        if self.kind == "str":
            return f"string literal {self.raw}"
        return f"token '{self.raw}'"


def _read_string(src: str, start: int) -> tuple[str, int]:
    """Decode a quoted literal starting at ``start``; returns (value, index after it).

    Inside the literal, a doubled delimiter or a backslash before either quote stands for
    the quote, and ``\\\\`` for one backslash. Any other backslash is kept as written, so
    LIKE patterns keep their ``\\%`` and ``\\_`` escapes.
    """
    quote = src[start]
    out: list[str] = []
    i = start + 1
    n = len(src)
    while i < n:
        c = src[i]
        if c == "\\":
            if i + 1 >= n:
                break
            nxt = src[i + 1]
            if nxt in "'\"\\":
                out.append(nxt)
            else:
                out.append(c)
                out.append(nxt)
            i += 2
            continue
        if c == quote:
            if i + 1 < n and src[i + 1] == quote:
                out.append(quote)
                i += 2
                continue
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise CesqlParseError("unterminated string literal", start + 1)


def tokenize(src: str) -> list[Token]:
    """Split ``src`` into tokens, ending with an ``eof`` token."""
    tokens: list[Token] = []
    i = 0
    n = len(src)
    while i < n:
        c = src[i]
        if c in _WHITESPACE:
            i += 1
            continue
        if c in _WORD_CHARS:
            j = i + 1
            while j < n and src[j] in _WORD_CHARS:
                j += 1
            word = src[i:j]
            if all(ch in _DIGITS for ch in word):
                tokens.append(Token("int", word, i, word))
            elif word.upper() in KEYWORDS:
                tokens.append(Token("keyword", word.upper(), i, word))
            else:
                tokens.append(Token("word", word, i, word))
            i = j
            continue
        if c in "'\"":
            value, j = _read_string(src, i)
            tokens.append(Token("str", value, i, src[i:j]))
            i = j
            continue
        pair = src[i : i + 2]
        if pair in _TWO_CHAR_OPS:
            tokens.append(Token("op", pair, i, pair))
            i += 2
            continue
        if c in _ONE_CHAR_OPS:
            tokens.append(Token("op", c, i, c))
            i += 1
            continue
        raise CesqlParseError(f"unexpected character {c!r}", i + 1)
    tokens.append(Token("eof", "", n, ""))
    return tokens
