"""Syntax tree and precedence-climbing parser for CESQL v1.

Precedence, tightest first (spec section 3.6 and its reference grammar): function calls;
unary ``NOT`` and ``-``; ``LIKE``; ``EXISTS``; ``IN``; ``* / %``; ``+ -``; comparisons;
``AND OR XOR``. Binary arithmetic and comparisons group left to right; the three logic
operators share one level and group to the right, as in the spec's ANTLR grammar
(``a OR b AND c`` is ``a OR (b AND c)``, ``a AND b OR c`` is ``a AND (b OR c)``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, TypeVar
from typing import Literal as TypingLiteral

from ._lexer import Token, tokenize
from ._types import INT_MAX, INT_MIN, CesqlParseError, Value

__all__ = [
    "MAX_DEPTH",
    "Attribute",
    "Binary",
    "Call",
    "Exists",
    "In",
    "Like",
    "Literal",
    "Logic",
    "Negate",
    "Node",
    "Not",
    "parse",
]

MAX_DEPTH: Final = 128
"""Deepest nesting accepted, so that compiling and evaluating never exhaust the stack."""

LogicOp = TypingLiteral["AND", "OR", "XOR"]


@dataclass(frozen=True, slots=True)
class Literal:
    value: Value
    pos: int
    depth: int = 1


@dataclass(frozen=True, slots=True)
class Attribute:
    name: str
    pos: int
    depth: int = 1


@dataclass(frozen=True, slots=True)
class Exists:
    name: str
    pos: int
    depth: int = 1


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node
    pos: int
    depth: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Negate:
    operand: Node
    pos: int
    depth: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Node
    right: Node
    pos: int
    depth: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Logic:
    """An n-ary run of one logic operator (they are associative, so nesting is flattened)."""

    op: LogicOp
    operands: tuple[Node, ...]
    pos: int
    depth: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Like:
    operand: Node
    pattern: str
    negated: bool
    pos: int
    depth: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class In:
    operand: Node
    items: tuple[Node, ...]
    negated: bool
    pos: int
    depth: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    """Upper-cased function name."""
    args: tuple[Node, ...]
    pos: int
    depth: int = field(default=0, compare=False)


Node = Literal | Attribute | Exists | Not | Negate | Binary | Logic | Like | In | Call
_N = TypeVar("_N", bound=Node)

_PREC_LOGIC: Final = 1
_PREC_COMPARE: Final = 2
_PREC_ADD: Final = 3
_PREC_MUL: Final = 4
_PREC_IN: Final = 5
_PREC_LIKE: Final = 6
_PREC_UNARY: Final = 7

_BINARY_PREC: Final[dict[str, int]] = {
    "*": _PREC_MUL,
    "/": _PREC_MUL,
    "%": _PREC_MUL,
    "+": _PREC_ADD,
    "-": _PREC_ADD,
    "=": _PREC_COMPARE,
    "!=": _PREC_COMPARE,
    "<>": _PREC_COMPARE,
    "<": _PREC_COMPARE,
    "<=": _PREC_COMPARE,
    ">": _PREC_COMPARE,
    ">=": _PREC_COMPARE,
}
_LOGIC_OPS: Final = frozenset({"AND", "OR", "XOR"})
_FUNCTION_NAME: Final = re.compile(r"[A-Za-z][A-Za-z_]*")
_ATTRIBUTE_NAME: Final = re.compile(r"[A-Za-z0-9]+")


def _depth(*children: Node) -> int:
    return 1 + max((c.depth for c in children), default=0)


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens = tokenize(source)
        self.i = 0
        self.nesting = 0

    # -- helpers -------------------------------------------------------------------------

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    @staticmethod
    def error(tok: Token, message: str) -> CesqlParseError:
        return CesqlParseError(message, tok.pos + 1)

    def unexpected(self, tok: Token) -> CesqlParseError:
        return self.error(tok, f"unexpected {tok.describe()}")

    def expect_op(self, symbol: str) -> Token:
        tok = self.advance()
        if tok.kind != "op" or tok.text != symbol:
            raise self.error(tok, f"expected '{symbol}' but found {tok.describe()}")
        return tok

    def checked(self, node: _N) -> _N:
        if node.depth > MAX_DEPTH:
            raise CesqlParseError(
                f"expression is nested too deeply (more than {MAX_DEPTH} levels)", node.pos + 1
            )
        return node

    # -- grammar -------------------------------------------------------------------------

    def parse(self) -> Node:
        if self.peek().kind == "eof":
            raise self.error(self.peek(), "empty expression")
        node = self.expression(0)
        tok = self.peek()
        if tok.kind != "eof":
            raise self.unexpected(tok)
        return node

    def expression(self, min_prec: int) -> Node:
        self.nesting += 1
        try:
            if self.nesting > MAX_DEPTH:
                raise self.error(
                    self.peek(), f"expression is nested too deeply (more than {MAX_DEPTH} levels)"
                )
            left = self.prefix()
            while True:
                tok = self.peek()
                if tok.kind == "keyword":
                    negated = tok.text == "NOT"
                    op_tok = self.peek(1) if negated else tok
                    if op_tok.kind == "keyword" and op_tok.text in ("LIKE", "IN"):
                        prec = _PREC_LIKE if op_tok.text == "LIKE" else _PREC_IN
                        if prec < min_prec:
                            break
                        self.i += 2 if negated else 1
                        if op_tok.text == "LIKE":
                            left = self.like(left, negated, tok)
                        else:
                            left = self.in_list(left, negated, tok)
                        continue
                    if tok.text in _LOGIC_OPS and min_prec <= _PREC_LOGIC:
                        left = self.logic_chain(left)
                        continue
                    break
                if tok.kind == "op" and tok.text in _BINARY_PREC:
                    prec = _BINARY_PREC[tok.text]
                    if prec < min_prec:
                        break
                    self.advance()
                    right = self.expression(prec + 1)
                    left = self.checked(Binary(tok.text, left, right, tok.pos, _depth(left, right)))
                    continue
                break
            return left
        finally:
            self.nesting -= 1

    def like(self, operand: Node, negated: bool, first: Token) -> Node:
        pattern = self.advance()
        if pattern.kind != "str":
            raise self.error(
                pattern, f"LIKE pattern must be a string literal, found {pattern.describe()}"
            )
        return self.checked(Like(operand, pattern.text, negated, first.pos, _depth(operand)))

    def in_list(self, operand: Node, negated: bool, first: Token) -> Node:
        self.expect_op("(")
        if self.peek().kind == "op" and self.peek().text == ")":
            raise self.error(self.peek(), "the set of IN must have at least one element")
        items = self.comma_list()
        return self.checked(In(operand, items, negated, first.pos, _depth(operand, *items)))

    def comma_list(self) -> tuple[Node, ...]:
        """``expr (',' expr)* ')'`` — the opening parenthesis is already consumed."""
        items: list[Node] = []
        while True:
            items.append(self.expression(0))
            tok = self.advance()
            if tok.kind == "op" and tok.text == ")":
                return tuple(items)
            if tok.kind != "op" or tok.text != ",":
                raise self.error(tok, f"expected ',' or ')' but found {tok.describe()}")

    def logic_chain(self, first: Node) -> Node:
        operands: list[Node] = [first]
        ops: list[Token] = []
        while self.peek().kind == "keyword" and self.peek().text in _LOGIC_OPS:
            ops.append(self.advance())
            operands.append(self.expression(_PREC_LOGIC + 1))
        # Right-associative fold; runs of the same operator become one n-ary node.
        node = operands[-1]
        for k in range(len(ops) - 1, -1, -1):
            op: LogicOp = ops[k].text  # type: ignore[assignment]
            left = operands[k]
            if isinstance(node, Logic) and node.op == op:
                members = (left, *node.operands)
            else:
                members = (left, node)
            node = self.checked(Logic(op, members, ops[k].pos, _depth(*members)))
        return node

    def integer(self, tok: Token, sign_tok: Token | None) -> Literal:
        negative = sign_tok is not None and sign_tok.text == "-"
        value = -int(tok.text) if negative else int(tok.text)
        at = sign_tok if sign_tok is not None else tok
        if value < INT_MIN or value > INT_MAX:
            raise self.error(at, f"integer literal {value} is out of the 32-bit signed range")
        return Literal(value, at.pos)

    def prefix(self) -> Node:
        tok = self.advance()
        kind = tok.kind
        if kind == "int":
            return self.integer(tok, None)
        if kind == "str":
            return Literal(tok.text, tok.pos)
        if kind == "word":
            if self.peek().kind == "op" and self.peek().text == "(":
                return self.call(tok)
            if _ATTRIBUTE_NAME.fullmatch(tok.text) is None:
                raise self.error(
                    tok,
                    f"invalid attribute name '{tok.text}' "
                    "(attribute names are letters and digits only)",
                )
            return Attribute(tok.text.lower(), tok.pos)
        if kind == "keyword":
            word = tok.text
            if word in ("TRUE", "FALSE"):
                return Literal(word == "TRUE", tok.pos)
            if word == "NOT":
                operand = self.expression(_PREC_UNARY)
                return self.checked(Not(operand, tok.pos, _depth(operand)))
            if word == "EXISTS":
                name = self.advance()
                if name.kind != "word" or _ATTRIBUTE_NAME.fullmatch(name.text) is None:
                    raise self.error(
                        name, f"EXISTS needs an attribute name, found {name.describe()}"
                    )
                return Exists(name.text.lower(), tok.pos)
            raise self.unexpected(tok)
        if kind == "op":
            if tok.text == "(":
                inner = self.expression(0)
                self.expect_op(")")
                return inner
            if tok.text == "-":
                if self.peek().kind == "int":
                    return self.integer(self.advance(), tok)
                operand = self.expression(_PREC_UNARY)
                return self.checked(Negate(operand, tok.pos, _depth(operand)))
            if tok.text == "+" and self.peek().kind == "int":
                return self.integer(self.advance(), tok)
        raise self.unexpected(tok)

    def call(self, name_tok: Token) -> Node:
        if _FUNCTION_NAME.fullmatch(name_tok.text) is None:
            raise self.error(
                name_tok,
                f"invalid function name '{name_tok.text}' "
                "(function names are letters and underscores)",
            )
        self.expect_op("(")
        args: tuple[Node, ...] = ()
        if self.peek().kind == "op" and self.peek().text == ")":
            self.advance()
        else:
            args = self.comma_list()
        return self.checked(Call(name_tok.text.upper(), args, name_tok.pos, _depth(*args)))


def parse(source: str) -> Node:
    """Parse ``source``; raises :class:`CesqlParseError` with a 1-based column."""
    return _Parser(source).parse()
