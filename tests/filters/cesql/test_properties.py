"""Property-style checks on random inputs (seeded, so every run sees the same cases)."""

from __future__ import annotations

import functools
import itertools
import random
from fractions import Fraction

import pytest

from connector_runtime.filters.cesql import compile_expression
from connector_runtime.filters.cesql._like import compile_like
from connector_runtime.filters.cesql._types import Value


def literal(v: Value) -> str:
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int):
        return str(v)
    return "'" + v.replace("\\", "\\\\").replace("'", "''") + "'"


def reference_like(value: str, pattern: str) -> bool:
    """A deliberately different LIKE: tokenise, then memoised recursion over both strings."""
    tokens: list[str | None] = []  # None is %, "" is _, anything else one literal character
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "%_\\":
            tokens.append(pattern[i + 1])
            i += 2
            continue
        tokens.append(None if c == "%" else "" if c == "_" else c)
        i += 1

    @functools.cache
    def match(t: int, v: int) -> bool:
        if t == len(tokens):
            return v == len(value)
        tok = tokens[t]
        if tok is None:
            return match(t + 1, v) or (v < len(value) and match(t, v + 1))
        if v == len(value):
            return False
        return (tok == "" or tok == value[v]) and match(t + 1, v + 1)

    return match(0, 0)


def test_like_agrees_with_a_reference_matcher() -> None:
    rng = random.Random(1234)
    checked = 0
    for _ in range(4000):
        pattern = "".join(rng.choice("ab%_\\") for _ in range(rng.randint(0, 7)))
        value = "".join(rng.choice("ab%_\\\n") for _ in range(rng.randint(0, 8)))
        expected = reference_like(value, pattern)
        assert compile_like(pattern).match(value) is expected, (value, pattern)
        expr = compile_expression(f"v LIKE {literal(pattern)}")
        assert expr.evaluate({"v": value}) == (expected, [])
        checked += expected
    assert checked > 300  # the sample has plenty of matches, not only misses


def test_truncated_division_and_modulo() -> None:
    rng = random.Random(99)
    div = compile_expression("a / b")
    mod = compile_expression("a % b")
    for _ in range(2000):
        a = rng.randint(-(2**31) + 1, 2**31 - 1)
        b = rng.choice([rng.randint(-50, 50), rng.randint(-(2**31) + 1, 2**31 - 1)]) or 1
        q, q_errors = div.evaluate({"a": a, "b": str(b)})
        r, r_errors = mod.evaluate({"a": str(a), "b": b})
        assert q_errors == r_errors == []
        assert isinstance(q, int)
        assert isinstance(r, int)
        assert q == int(Fraction(a, b))  # int() of a Fraction truncates towards zero
        assert q * b + r == a
        assert r == 0 or (r > 0) == (a > 0)
        assert abs(r) < abs(b)


def test_string_literals_round_trip() -> None:
    rng = random.Random(7)
    for _ in range(1000):
        text = "".join(rng.choice("ab'\"\\%_ \n\t") for _ in range(rng.randint(0, 10)))
        assert compile_expression(literal(text)).evaluate({}) == (text, [])
        double_quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        assert compile_expression(double_quoted).evaluate({}) == (text, [])


POOL: list[Value] = [0, 1, -3, 5, True, False, "true", "FALSE", "5", "05", "abc", ""]
BINARY = ["=", "!=", "<>", "<", ">=", "+", "-", "*", "/", "%", "AND", "OR", "XOR"]


@pytest.mark.parametrize("op", BINARY)
def test_attributes_and_literals_evaluate_alike(op: str) -> None:
    """Constant folding and the attribute fast paths give what the generic path gives."""
    for x, y in itertools.product(POOL, POOL):
        attrs = {"x": x, "y": y}
        forms = [
            f"{literal(x)} {op} {literal(y)}",
            f"x {op} {literal(y)}",
            f"{literal(x)} {op} y",
            f"x {op} y",
            f"(x) {op} (y)",
        ]
        results = set()
        for form in forms:
            value, errors = compile_expression(form).evaluate(attrs)
            results.add((type(value), value, tuple(e.kind for e in errors)))
        assert len(results) == 1, (op, x, y, results)


@pytest.mark.parametrize("negated", [False, True])
def test_in_evaluates_alike_with_attributes_and_literals(negated: bool) -> None:
    word = "NOT IN" if negated else "IN"
    for x, y, z in itertools.product(POOL, POOL[::3], POOL[1::3]):
        attrs = {"x": x, "y": y, "z": z}
        forms = [
            f"{literal(x)} {word} ({literal(y)}, {literal(z)})",
            f"x {word} ({literal(y)}, {literal(z)})",
            f"x {word} (y, z)",
            f"{literal(x)} {word} (y, {literal(z)})",
        ]
        results = set()
        for form in forms:
            value, errors = compile_expression(form).evaluate(attrs)
            results.add((value, tuple(e.kind for e in errors)))
        assert len(results) == 1, (x, y, z, results)


@pytest.mark.parametrize("pattern", ["ab%", "%c", "a_c", "%b%", "abc", "%"])
def test_like_evaluates_alike_on_any_operand(pattern: str) -> None:
    for x in [*POOL, "abc", "xbx", "abcd"]:
        forms = [f"{literal(x)} LIKE '{pattern}'", f"x LIKE '{pattern}'", f"(x) LIKE '{pattern}'"]
        results = set()
        for form in forms:
            value, errors = compile_expression(form).evaluate({"x": x})
            results.add((value, tuple(e.kind for e in errors)))
        assert len(results) == 1, (x, pattern, results)


def test_unary_operators_evaluate_alike() -> None:
    for x in POOL:
        for op in ["NOT", "-"]:
            a = compile_expression(f"{op} {literal(x)}").evaluate({})
            b = compile_expression(f"{op} x").evaluate({"x": x})
            assert (a[0], [e.kind for e in a[1]]) == (b[0], [e.kind for e in b[1]]), (op, x)
