"""CESQL engine behaviour beyond the TCK: syntax errors, precedence, casting, errors, functions."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from connector_runtime.filters.cesql import CesqlError, CesqlParseError, compile_expression
from connector_runtime.filters.cesql._functions import BUILTINS, Function
from connector_runtime.filters.cesql._parser import MAX_DEPTH

EVENT = {"specversion": "1.0", "id": "1", "source": "/src", "type": "com.example.created"}


def run(source: str, **attrs: Any) -> tuple[object, list[str]]:
    value, errors = compile_expression(source).evaluate({**EVENT, **attrs})
    return value, [e.kind for e in errors]


def parse_error(source: str) -> CesqlParseError:
    with pytest.raises(CesqlParseError) as raised:
        compile_expression(source)
    return raised.value


# -- syntax errors -----------------------------------------------------------------------


def test_parse_error_carries_column_and_message() -> None:
    err = parse_error("type = 'x' OR AND subject = 'y'")
    assert err.column == 15
    assert err.message == "unexpected token 'AND'"
    assert str(err) == "column 15: unexpected token 'AND'"
    assert err.kind == "parse"
    assert err.as_error() == CesqlError("parse", "column 15: unexpected token 'AND'")


@pytest.mark.parametrize(
    ("source", "column", "message"),
    [
        ("", 1, "empty expression"),
        ("   ", 4, "empty expression"),
        ("type = ", 8, "unexpected end of expression"),
        ("ABC(", 5, "unexpected end of expression"),
        ("type = 'abc", 8, "unterminated string literal"),
        ('type = "abc\\"', 8, "unterminated string literal"),
        ("type # 'x'", 6, "unexpected character '#'"),
        ("a ! b", 3, "unexpected character '!'"),
        ("x LIKE 123", 8, "LIKE pattern must be a string literal, found token '123'"),
        ("x LIKE y", 8, "LIKE pattern must be a string literal, found token 'y'"),
        ("x IN ()", 7, "the set of IN must have at least one element"),
        ("x IN 'a'", 6, "expected '(' but found string literal 'a'"),
        ("x IN ('a' 'b')", 11, "expected ',' or ')' but found string literal 'b'"),
        ("x NOT 'a'", 3, "unexpected token 'NOT'"),
        ("(1 + 2", 7, "expected ')' but found end of expression"),
        ("1 + 2)", 6, "unexpected token ')'"),
        ("2147483648", 1, "integer literal 2147483648 is out of the 32-bit signed range"),
        ("1 + -2147483649", 5, "integer literal -2147483649 is out of the 32-bit signed range"),
        (
            "my_ext = 1",
            1,
            "invalid attribute name 'my_ext' (attribute names are letters and digits only)",
        ),
        (
            "LOG10(x)",
            1,
            "invalid function name 'LOG10' (function names are letters and underscores)",
        ),
        ("EXISTS 'id'", 8, "EXISTS needs an attribute name, found string literal 'id'"),
        ("EXISTS", 7, "EXISTS needs an attribute name, found end of expression"),
        ("TRUE(1)", 5, "unexpected token '('"),
        ("+ x", 1, "unexpected token '+'"),
        ("a b", 3, "unexpected token 'b'"),
    ],
)
def test_parse_errors(source: str, column: int, message: str) -> None:
    err = parse_error(source)
    assert (err.column, err.message) == (column, message)


def test_deep_nesting_is_a_parse_error_not_a_crash() -> None:
    err = parse_error("(" * 500 + "1" + ")" * 500)
    assert "nested too deeply" in err.message
    err = parse_error(" + ".join(["1"] * (MAX_DEPTH + 5)))
    assert "nested too deeply" in err.message
    assert run("(" * 50 + "1" + ")" * 50) == (1, [])


def test_long_runs_of_one_logic_operator_are_flattened() -> None:
    source = " OR ".join(f"type = 't{i}'" for i in range(1000))
    assert run(source, type="t999") == (True, [])
    assert run(source, type="nope") == (False, [])


def test_non_string_source_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        compile_expression(5)  # type: ignore[arg-type]


# -- literals and identifiers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("'it''s'", "it's"),
        ('"say ""hi"""', 'say "hi"'),
        ("'a\\'b'", "a'b"),
        ("'a\\\"b'", 'a"b'),
        ("'a\\\\b'", "a\\b"),
        ("'C:\\temp'", "C:\\temp"),
        ("'line\nbreak'", "line\nbreak"),
        ("'ünïcödé ✓'", "ünïcödé ✓"),
        ("+5", 5),
        ("-2147483648", -2147483648),
        ("007", 7),
        ("4-1", 3),
        ("4 -1", 3),
        ("4 - -1", 5),
    ],
)
def test_literals(source: str, value: object) -> None:
    assert run(source) == (value, [])


def test_keywords_and_identifiers_are_case_insensitive() -> None:
    assert run("TYPE = 'com.example.created' aNd exists ID") == (True, [])
    assert run("Concat(Type, '!')") == ("com.example.created!", [])
    assert run("myExt1 = 'v'", myext1="v") == (True, [])
    assert run("2fa = TRUE", **{"2fa": True}) == (True, [])


# -- precedence --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("1 + 2 * 3", 7),
        ("10 - 4 - 3", 3),
        ("100 / 10 / 5", 2),
        ("NOT TRUE = FALSE", True),  # (NOT TRUE) = FALSE: unary binds tightest
        ("2 * 3 LIKE '3'", 2),  # LIKE binds tighter than arithmetic: 2 * (3 LIKE '3')
        ("1 + 1 IN (2)", 1),  # IN too: 1 + (1 IN (2))
        ("1 < 2 = TRUE", True),
        # AND, OR and XOR share one level and group to the right (the spec's grammar).
        ("TRUE OR FALSE AND FALSE", True),
        ("FALSE AND TRUE OR TRUE", False),
        ("TRUE XOR TRUE AND FALSE", True),
        ("(FALSE AND TRUE) OR TRUE", True),
        ("-2 * -3", 6),
        ("-ABS(-3)", -3),
    ],
)
def test_precedence(source: str, value: object) -> None:
    assert run(source) == (value, [])


# -- arithmetic --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "value", "kinds"),
    [
        ("-7 / 2", -3, []),
        ("7 / -2", -3, []),
        ("-7 % 2", -1, []),
        ("7 % -2", 1, []),
        ("2147483647 + 1", 2147483647, ["math"]),
        ("-2147483648 - 1", -2147483648, ["math"]),
        ("65536 * 65536", 2147483647, ["math"]),
        ("-2147483648 / -1", 2147483647, ["math"]),
        ("-(-2147483648)", 2147483647, ["math"]),
        ("1 / 0 + 1", 0, ["math"]),  # the + sees an erring operand: zero value
        ("'abc' + 1", 1, ["cast"]),  # the + casts on its own: its result stands
        ("' 5' + 0", 0, ["cast"]),
        ("'+5' + 0", 5, []),
        ("'9999999999' + 0", 0, ["cast"]),
        ("TRUE + TRUE", 2, []),
    ],
)
def test_arithmetic(source: str, value: int, kinds: list[str]) -> None:
    assert run(source) == (value, kinds)


# -- comparison and casting --------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "attrs", "value", "kinds"),
    [
        ("seq = 5", {"seq": "5"}, True, []),
        ("seq = 5", {"seq": 5}, True, []),
        ("seq = '5'", {"seq": 5}, True, []),
        ("5 = seq", {"seq": "05"}, False, []),  # "5" = "05" as Strings
        ("seq > 4", {"seq": "5"}, True, []),
        ("seq > 4", {"seq": "five"}, False, ["cast"]),
        ("'abc' < 'abd'", {}, False, ["cast", "cast"]),
        ("flag = TRUE", {"flag": "True"}, True, []),
        ("flag = TRUE", {"flag": True}, True, []),
        ("flag", {"flag": True}, True, []),
        ("TRUE = 1", {}, True, []),  # the right side's type decides: TRUE -> 1
        ("1 = TRUE", {}, False, ["cast"]),  # Integer -> Boolean is not implicit
        ("1 AND TRUE", {}, False, ["cast"]),
        ("a = b", {"a": "1", "b": 1}, True, []),
        ("a = b", {"a": 1, "b": "1"}, True, []),
        ("a <> b", {"a": "x", "b": "x"}, False, []),
        ("a != b", {"a": "x", "b": True}, True, ["cast"]),  # 'x' -> false, != true
        (
            "time = '2024-05-01T10:00:00Z'",
            {"time": datetime.datetime(2024, 5, 1, 10, tzinfo=datetime.UTC)},
            True,
            [],
        ),
        ("blob = 'AAE='", {"blob": b"\x00\x01"}, True, []),
        ("opt = 'x'", {"opt": None}, False, ["missingAttribute"]),
    ],
)
def test_comparison_casting(
    source: str, attrs: dict[str, object], value: object, kinds: list[str]
) -> None:
    assert run(source, **attrs) == (value, kinds)


# -- errors and missing attributes -------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "value", "kinds"),
    [
        ("missing", False, ["missingAttribute"]),
        ("(missing)", False, ["missingAttribute"]),
        ("NOT (missing = 1)", False, ["missingAttribute"]),  # errors reach the top
        ("missing OR TRUE", False, ["missingAttribute"]),
        ("TRUE OR missing", True, []),  # short circuit: never looked at
        ("FALSE AND missing", False, []),
        ("missing XOR TRUE", False, ["missingAttribute"]),
        ("missing NOT LIKE 'x'", False, ["missingAttribute"]),
        ("missing NOT IN ('x')", False, ["missingAttribute"]),
        ("'x' IN ('x', missing)", False, ["missingAttribute"]),
        ("CONCAT('a', missing)", "", ["missingAttribute"]),
        ("LENGTH(missing) + 1", 0, ["missingAttribute"]),
        ("missing + other", 0, ["missingAttribute", "missingAttribute"]),
        ("FOO(1)", False, ["missingFunction"]),
        ("FOO(missing)", False, ["missingFunction"]),  # arguments are not evaluated
        ("NOT FOO()", False, ["missingFunction"]),
        ("LEFT('abc', 'x')", "", ["cast"]),
        ("NOT 10 OR TRUE", False, ["cast"]),
        ("'x' OR TRUE", True, ["cast"]),
    ],
)
def test_error_semantics(source: str, value: object, kinds: list[str]) -> None:
    assert run(source) == (value, kinds)


def test_error_messages_name_the_culprit() -> None:
    _, errors = compile_expression("ghost = 1 OR INT('x') = 1 OR NOPE()").evaluate(EVENT)
    assert [str(e) for e in errors] == [
        "missingAttribute: attribute 'ghost' is not present in the event",
        "cast: cannot cast String 'x' to Integer",
        "missingFunction: no function NOPE taking 0 arguments",
    ]


def test_matches_is_the_filter_predicate() -> None:
    assert compile_expression("type LIKE 'com.%'").matches(EVENT) is True
    assert compile_expression("type LIKE 'org.%'").matches(EVENT) is False
    assert compile_expression("'true'").matches(EVENT) is False  # a String is not a Boolean
    assert compile_expression("1").matches(EVENT) is False
    assert compile_expression("NOT 10").matches(EVENT) is False  # true, but with an error
    assert compile_expression("missing").matches(EVENT) is False
    assert compile_expression("flag").matches({**EVENT, "flag": True}) is True
    assert compile_expression("flag").matches({**EVENT, "flag": "true"}) is False


def test_expression_object() -> None:
    expr = compile_expression("type = 'x' AND source LIKE 'a%'")
    assert expr.source == "type = 'x' AND source LIKE 'a%'"
    assert repr(expr) == "Expression(\"type = 'x' AND source LIKE 'a%'\")"
    assert expr.result_type == "Boolean"
    assert compile_expression("LENGTH(id)").result_type == "Integer"
    assert compile_expression("subject").result_type == "Any"
    assert compile_expression("5 / 0").evaluate({}) == (0, [CesqlError("math", "division by zero")])


# -- LIKE and IN -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "pattern", "expected"),
    [
        ("abc", "%", True),
        ("", "%", True),
        ("", "_", False),
        ("abc", "a%", True),
        ("abc", "%c", True),
        ("abc", "%b%", True),
        ("abc", "%x%", False),
        ("a\nb", "a%b", True),
        ("a\nb", "a_b", True),
        ("abcabc", "%bc%bc", True),
        ("abcab", "%bc%bc", False),
        ("aXbYc", "a_b_c", True),
        ("ab", "a%%b", True),
        ("100%", "100\\%", True),
        ("1000", "100\\%", False),
        ("a_c", "a\\_c", True),
        ("abc", "a\\_c", False),
        ("a\\c", "a\\c", True),  # a backslash before an ordinary character is literal
        ("a\\", "a\\", True),
        ("a\\xyz", "a\\\\%", True),  # in the pattern: an escaped backslash, then %
        ("ABC", "abc", False),  # case-sensitive
    ],
)
def test_like(value: str, pattern: str, expected: bool) -> None:
    # The values and patterns go through attributes, so no literal escaping applies.
    expr = compile_expression(f"v LIKE {_literal(pattern)}")
    assert expr.evaluate({"v": value}) == (expected, [])
    negated = compile_expression(f"v NOT LIKE {_literal(pattern)}")
    assert negated.evaluate({"v": value}) == (not expected, [])


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


@pytest.mark.parametrize(
    ("source", "attrs", "value", "kinds"),
    [
        ("type IN ('a', 'com.example.created')", {}, True, []),
        ("type NOT IN ('a', 'b')", {}, True, []),
        ("seq IN (1, 2, 3)", {"seq": "2"}, True, []),
        ("seq IN (1, 2, 3)", {"seq": 2}, True, []),
        ("seq IN (1, 'x')", {"seq": 1}, True, ["cast"]),  # 'x' cast to Integer fails
        ("flag IN (TRUE)", {"flag": True}, True, []),
        ("flag IN ('TRUE')", {"flag": True}, True, []),
        ("source IN (id, subject)", {"subject": "/src"}, True, []),
        ("1 + 1 IN (2)", {}, 1, []),
        ("(1 + 1) IN (2, 3)", {}, True, []),
        ("LOWER('A') IN (LOWER('B'), 'a')", {}, True, []),
    ],
)
def test_in(source: str, attrs: dict[str, object], value: object, kinds: list[str]) -> None:
    assert run(source, **attrs) == (value, kinds)


# -- functions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "value", "kinds"),
    [
        ("TRIM('\u3000\u00a0 x \t\n')", "x", []),
        ("TRIM('\x1fx\x1f')", "\x1fx\x1f", []),  # control characters are not whitespace
        ("LENGTH('ünï')", 3, []),
        ("CONCAT(1, TRUE, 'x')", "1truex", []),
        ("CONCAT_WS('-', 1, 2, 3)", "1-2-3", []),
        ("RIGHT('abc', 0)", "", []),
        ("LEFT('abc', 0)", "", []),
        ("SUBSTRING('abc', 3)", "c", []),
        ("SUBSTRING('abc', -3)", "abc", []),
        ("SUBSTRING('abc', 2, 0)", "", []),
        ("SUBSTRING('abc', 2, -1)", "", ["functionEvaluation"]),
        ("SUBSTRING('', 1)", "", ["functionEvaluation"]),
        ("UPPER('straße')", "STRASSE", []),
        ("INT(' 1')", 0, ["cast"]),
        ("INT('+12')", 12, []),
        ("BOOL('tRuE')", True, []),
        ("STRING(-0)", "0", []),
        ("IS_BOOL('FALSE')", True, []),
        ("IS_BOOL(1)", False, []),
        ("IS_BOOL(TRUE)", True, []),
        ("IS_INT('-42')", True, []),
        ("IS_INT('4.2')", False, []),
        ("IS_INT('2147483648')", False, []),
        ("IS_INT(7)", True, []),
        ("ABS(-5) + ABS(5)", 10, []),
        ("LENGTH()", False, ["missingFunction"]),
        ("SUBSTRING('a', 1, 1, 1)", False, ["missingFunction"]),
        ("substring('Quadratically', 5, 6)", "ratica", []),
    ],
)
def test_builtin_functions(source: str, value: object, kinds: list[str]) -> None:
    assert run(source) == (value, kinds)


def test_the_function_table_is_extensible() -> None:
    table = BUILTINS.copy()
    table.register(Function("REVERSE", ("String",), "String", lambda errors, x: x[::-1]))
    table.register(Function("BOOM", (), "Integer", lambda errors: 1 // 0))
    table.register(Function("WRONG", (), "Integer", lambda errors: "not an int"))
    expr = compile_expression("reverse(type) LIKE 'detaerc.%'", functions=table)
    assert expr.evaluate(EVENT) == (True, [])
    assert compile_expression("BOOM() + 1", functions=table).evaluate({}) == (
        0,
        [CesqlError("functionEvaluation", "BOOM failed: integer division or modulo by zero")],
    )
    assert compile_expression("WRONG()", functions=table).evaluate({}) == (
        0,
        [CesqlError("functionEvaluation", "WRONG returned a str, not a Integer")],
    )
    # The built-in table itself is untouched.
    assert compile_expression("REVERSE('a')").evaluate({})[1][0].kind == "missingFunction"
    assert "REVERSE" in table
    assert "REVERSE" not in BUILTINS


@pytest.mark.parametrize(
    ("existing", "added", "message"),
    [
        ([], Function("BAD1", (), "String", lambda e: ""), "invalid function name"),
        ([], Function("ANYRES", (), "Any", lambda e: ""), "must declare"),
        (
            [Function("F", ("String",), "String", lambda e, x: x)],
            Function("F", ("Integer",), "String", lambda e, x: ""),
            "already defined",
        ),
        (
            [Function("F", ("String", "String"), "String", lambda e, x, y: x)],
            Function("F", ("String",), "String", lambda e, *x: "", variadic="String"),
            "needs more than 2 fixed arguments",
        ),
        (
            [Function("F", ("String",), "String", lambda e, *x: "", variadic="String")],
            Function("F", ("String", "String"), "String", lambda e, x, y: x),
            "clashes with its variadic overload",
        ),
        (
            [Function("F", ("String",), "String", lambda e, *x: "", variadic="String")],
            Function("F", ("String", "String"), "String", lambda e, *x: "", variadic="String"),
            "already has a variadic overload",
        ),
    ],
)
def test_function_overload_rules(existing: list[Function], added: Function, message: str) -> None:
    table = BUILTINS.copy()
    for fn in existing:
        table.register(fn)
    with pytest.raises(ValueError, match=message):
        table.register(added)


def test_variadic_overload_with_enough_fixed_arguments_is_allowed() -> None:
    table = BUILTINS.copy()
    table.register(Function("ABC", ("String",), "Integer", lambda e, x: 1))
    table.register(Function("ABC", ("String", "String"), "Integer", lambda e, x, y: 2))
    table.register(
        Function("ABC", ("String",) * 3, "Integer", lambda e, *xs: len(xs), variadic="String")
    )
    values = [
        compile_expression(f"ABC({', '.join(['1'] * n)})", functions=table).evaluate({})
        for n in range(6)
    ]
    assert values == [
        (False, [CesqlError("missingFunction", "no function ABC taking 0 arguments")]),
        (1, []),
        (2, []),
        (3, []),
        (4, []),
        (5, []),
    ]


def test_constant_subexpressions_are_folded_unless_they_err() -> None:
    expr = compile_expression("type = CONCAT('com.', 'example', '.created') AND 1 / 0 = 0")
    assert expr.evaluate(EVENT) == (False, [CesqlError("math", "division by zero")])
    assert compile_expression("FALSE AND 1 / 0 = 0").evaluate({}) == (False, [])
