"""`let` constants and arithmetic: values substituted, then checked where they are used."""

from __future__ import annotations

import pytest

from specc import ast
from specc.errors import SpecError
from specc.passes.evaluate import Env, Word, evaluate, evaluate_count
from specc.syntax import parse


def value_of(expr: str, **constants: object) -> object:
    return evaluate(parse(f"let x = {expr}").lets[0].value, Env(dict(constants)))


def test_exact_quotients_stay_integers():
    assert value_of("64 / 2") == 32 and type(value_of("64 / 2")) is int
    assert value_of("7 / 2") == 3.5
    assert value_of("7 // 2") == 3 and type(value_of("7 // 2")) is int
    assert value_of("6.0 / 2") == 3.0 and type(value_of("6.0 / 2")) is float


def test_arithmetic_precedence_and_constants():
    assert value_of("1 + 2 * 3") == 7
    assert value_of("(1 + 2) * 3") == 9
    assert value_of("10 - 4 - 3") == 3
    assert value_of("-n * 2", n=3) == -6
    assert value_of("width * 2 + 1", width=16) == 33
    assert value_of("[n, n + 1]", n=2) == [2, 3]


def test_unknown_words_stay_words():
    value = value_of("relu")
    assert isinstance(value, Word) and value == "relu"


@pytest.mark.parametrize("expr", ["relu + 1", '"a" * 2', "true + 1", "none - 1", "[1] * 2"])
def test_arithmetic_on_anything_but_numbers_is_an_error(expr):
    with pytest.raises(SpecError, match="needs two numbers"):
        value_of(expr)


def test_division_by_zero_points_at_the_operation():
    with pytest.raises(SpecError) as caught:
        value_of("1 + 4 / (2 - 2)")
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.message == "division by zero"
    assert diagnostic.span.column == 13  # the `/`, not the whole expression


def test_count_must_be_a_positive_integer():
    expr = parse("let x = n - 1").lets[0].value
    assert evaluate_count(expr, Env({"n": 3}), "N") == 2
    for n in (1, 1.5, -2):
        with pytest.raises(SpecError, match="the repeat count must be a positive integer"):
            evaluate_count(expr, Env({"n": n}), "the repeat count")


def test_constants_reach_layer_arguments(check):
    checked = check("""
        let width = 64 / 2
        let depth = width // 16
        let rate = 1 / 4
        model m {
            input x: float[width * 2]
            layers {
                dense(width, activation=relu) * depth
                dropout(rate)
                dense(1)
            }
        }
    """)
    nodes = checked.model.graph.nodes
    assert checked.model.graph.inputs[0].shape == (64,)
    assert [n.layer.kind for n in nodes] == ["dense", "dense", "dropout", "dense"]
    assert nodes[0].layer.units == 32 and isinstance(nodes[0].layer.units, int)
    assert nodes[2].layer.rate == 0.25


def test_a_fractional_size_is_an_error_at_its_use(check):
    checked = check("""
        let width = 7 / 2
        model m {
            input x: float[4]
            layers { dense(width) }
        }
    """)
    error = checked.error("units")
    assert (error.span.line, "3.5" in error.message) == (5, True)


def test_constants_defined_from_constants_in_order(check):
    checked = check("""
        let a = 2
        let b = a * 3
        let c = b - a
        model m {
            input x: float[c]
            layers { dense(b) }
        }
    """)
    assert checked.model.graph.inputs[0].shape == (4,)
    assert checked.model.graph.nodes[0].layer.units == 6


def test_a_constant_defined_twice_is_an_error(check):
    checked = check("""
        let a = 1
        let a = 2
        model m {
            input x: float[4]
            layers { dense(a) }
        }
    """)
    error = checked.error("`a` is defined twice")
    assert error.span.line == 3
    assert error.notes[0][1].line == 2


def test_an_error_in_a_constant_is_reported_at_the_constant(check):
    checked = check("""
        let a = relu * 2
        model m {
            input x: float[4]
            layers { dense(1) }
        }
    """)
    assert checked.error("needs two numbers").span.line == 2


def test_a_bad_dimension(check):
    checked = check("""
        model m {
            input x: float[4, 0]
            input y: float[relu]
            layers { dense(1) }
        }
    """)
    assert checked.errors[0].span.line == 3 and "positive integer or `?`" in \
        checked.errors[0].message
    assert any(d.span.line == 4 for d in checked.errors)


def test_question_mark_only_in_input_dims():
    expr = parse("model m {\n    input x: float[?]\n}").models[0].inputs[0].dims[0]
    assert isinstance(expr, ast.Unknown)
    with pytest.raises(SpecError, match="only allowed as an input dimension"):
        evaluate(expr, Env())


def test_nesting_too_deep_is_an_error_not_a_crash(check):
    terms = " + ".join(["1"] * 2000)
    checked = check(f"""
        let n = {terms}
        model m {{
            input x: float[4]
            layers {{ dense(n) }}
            loss mse()
        }}
    """)
    assert checked.program is None
    assert "nests more than 100 levels deep" in checked.errors[0].message
    assert checked.errors[0].span.line == 2  # located: at the `let` that nests
