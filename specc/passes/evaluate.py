"""Constant expressions → Python values.

`let` constants and block parameters are substituted here; a bare word that names neither
stays a word (`relu`, `same`), which the argument's type accepts or rejects later. Calls in
argument position (`schedule=cosine(warmup=1)`) become `CallValue`s, bound by their own
registry when the enclosing call is bound.
"""

from __future__ import annotations

from collections import ChainMap
from dataclasses import dataclass, field

from specc import ast
from specc.errors import Span, SpecError
from specc.limits import number_problem


class Word(str):
    """A bare word that names no constant: an enum value such as `relu`."""


@dataclass(frozen=True)
class CallValue:
    name: str
    args: list[Arg]
    keywords: dict[str, Arg]
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Arg:
    """An evaluated argument, with the span of the text it came from."""

    value: object
    span: Span
    name_span: Span | None = None  # for keyword arguments: where the name is


@dataclass
class Env:
    """Names in scope: constants and block parameters, with where each was defined."""

    values: dict[str, object] | ChainMap[str, object] = field(default_factory=dict)

    def child(self, values: dict[str, object]) -> Env:
        # A view in front of this one, not a copy: a block used many times in a file of many
        # constants costs the block's parameters at each use, not all the constants.
        return Env(ChainMap(values, self.values))


def _arith(op: str, left: object, right: object, span: Span) -> object:
    numbers = (int, float)
    if (
        not (isinstance(left, numbers) and isinstance(right, numbers))
        or isinstance(left, bool)
        or isinstance(right, bool)
    ):
        raise SpecError.at(span, f"`{op}` needs two numbers (got {_show(left)} and {_show(right)})")
    if op in ("/", "//") and right == 0:
        raise SpecError.at(span, "division by zero")
    if op == "+":
        result = left + right
    elif op == "-":
        result = left - right
    elif op == "*":
        result = left * right
    elif op == "//":
        result = left // right
    elif isinstance(left, int) and isinstance(right, int) and left % right == 0:
        result = left // right  # `64 / 2` is 32, not 32.0: exact quotients stay sizes
    else:
        result = left / right
    return within_limits(result, span)


def within_limits(value: int | float, span: Span) -> int | float:
    """`value`, or a SpecError at `span` when no framework could hold it. Checked at every
    step of an expression, so that no computation grows huge."""
    problem = number_problem(value)
    if problem is not None:
        raise SpecError.at(span, problem)
    return value


def _show(value: object) -> str:
    if isinstance(value, Word):
        return f"`{value}`"
    if isinstance(value, CallValue):
        return f"`{value.name}(...)`"
    if isinstance(value, str):
        return repr(value).replace("'", '"')
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


show = _show


def evaluate(expr: ast.Expr, env: Env) -> object:
    """The value of `expr`; raises SpecError at the sub-expression that is wrong."""
    match expr:
        case ast.Number() | ast.String() | ast.Bool():
            return expr.value
        case ast.NoneLit():
            return None
        case ast.Name():
            return env.values[expr.name] if expr.name in env.values else Word(expr.name)
        case ast.ListExpr():
            return [evaluate(item, env) for item in expr.items]
        case ast.Neg():
            value = evaluate(expr.operand, env)
            return _arith("-", 0, value, expr.span)
        case ast.BinOp():
            return _arith(expr.op, evaluate(expr.left, env), evaluate(expr.right, env), expr.span)
        case ast.Call():
            return evaluate_call(expr, env)
        case ast.Unknown():
            raise SpecError.at(expr.span, "`?` is only allowed as an input dimension")
    raise AssertionError(f"unhandled expression {type(expr).__name__}")


def evaluate_call(call: ast.Call, env: Env) -> CallValue:
    """Evaluate a call's arguments; duplicate keywords are an error."""
    keywords: dict[str, Arg] = {}
    for keyword in call.keywords:
        if keyword.name in keywords:
            raise SpecError.at(keyword.span, f"argument `{keyword.name}` is given twice")
        keywords[keyword.name] = Arg(evaluate(keyword.value, env), keyword.value.span, keyword.span)
    args = [Arg(evaluate(arg, env), arg.span) for arg in call.args]
    return CallValue(call.name, args, keywords, call.span, call.name_span)


def evaluate_count(expr: ast.Expr, env: Env, what: str) -> int:
    """A positive integer such as the N of `call * N`."""
    value = evaluate(expr, env)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError.at(expr.span, f"{what} must be a positive integer (got {_show(value)})")
    return value
