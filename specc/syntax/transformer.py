"""Lark parse tree → `specc.ast`, one method per grammar rule.

Only this module and `parser.py` know Lark. Nodes are made with `model_construct`: the
grammar already guarantees their structure, and validating every node again would cost more
than the rest of `specc check` (tests validate the AST of every spec once). Problems that
the grammar cannot express (a string with a bad escape, a model with two `loss` sections)
are collected as diagnostics rather than raised, so one run reports all of them.
"""

from __future__ import annotations

import json
import re

from lark import Token, Transformer, v_args
from lark.tree import Meta

from specc import ast
from specc.errors import Diagnostic, Span
from specc.limits import MAX_NUMBER_DIGITS, number_problem

# Sections that may appear once per model.
_SINGLE_SECTIONS = (
    "layers",
    "graph",
    "output",
    "loss",
    "optimizer",
    "metrics",
    "data",
    "augment",
    "train",
)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _unusable_character(value: str) -> str | None:
    """Why a string's value cannot be used (it could be neither a file name nor text of a
    UTF-8 program), or None. JSON escapes can write both."""
    if "\0" in value:
        return "a string cannot hold a NUL character (expected no `\\u0000`)"
    surrogate = _SURROGATE.search(value)
    if surrogate is not None:
        return (
            f"a string cannot hold a lone surrogate (expected a Unicode character, got "
            f"`\\u{ord(surrogate.group()):04x}` without its pair)"
        )
    return None


def token_span(file: str, token: Token) -> Span:
    return Span.model_construct(
        file=file,
        line=token.line or 0,
        column=token.column or 0,
        end_line=token.end_line or token.line or 0,
        end_column=token.end_column or (token.column or 0) + len(token),
    )


@v_args(meta=True)
class ToAst(Transformer):
    """Builds AST nodes; `diagnostics` holds what it found wrong on the way."""

    def __init__(self, file: str):
        super().__init__()
        self.file = file
        self.diagnostics: list[Diagnostic] = []

    def _span(self, meta: Meta) -> Span:
        if getattr(meta, "empty", True):
            return Span.model_construct(file=self.file, line=0, column=0, end_line=0, end_column=0)
        return Span.model_construct(
            file=self.file,
            line=meta.line,
            column=meta.column,
            end_line=meta.end_line,
            end_column=meta.end_column,
        )

    def _tok(self, token: Token) -> Span:
        return token_span(self.file, token)

    # --- expressions ----------------------------------------------------------------------

    def number(self, meta, children):
        text = str(children[0])
        span = self._span(meta)
        if len(text) > MAX_NUMBER_DIGITS:  # before converting: int() of a long text is slow
            self.diagnostics.append(
                Diagnostic(
                    f"this number is written with {len(text)} characters (expected at most "
                    f"{MAX_NUMBER_DIGITS}, the limit of a number's digits)",
                    span,
                )
            )
            return ast.Number.model_construct(span=span, value=0)
        is_float = any(c in text for c in ".eE")
        value = float(text) if is_float else int(text)
        problem = number_problem(value)
        if problem is not None:
            self.diagnostics.append(Diagnostic(problem, span))
            value = 0
        return ast.Number.model_construct(span=span, value=value)

    def string(self, meta, children):
        token = children[0]
        try:
            value = json.loads(str(token))
        except json.JSONDecodeError as error:
            self.diagnostics.append(
                Diagnostic(
                    f'invalid string escape (expected JSON escapes such as \\" \\\\ \\n, '
                    f"got {str(token)!s}): {error.msg}",
                    self._tok(token),
                )
            )
            value = ""
        problem = _unusable_character(value)
        if problem is not None:
            self.diagnostics.append(Diagnostic(problem, self._tok(token)))
            value = ""
        return ast.String.model_construct(span=self._span(meta), value=value)

    def true(self, meta, children):
        return ast.Bool.model_construct(span=self._span(meta), value=True)

    def false(self, meta, children):
        return ast.Bool.model_construct(span=self._span(meta), value=False)

    def none(self, meta, children):
        return ast.NoneLit.model_construct(span=self._span(meta))

    def name_ref(self, meta, children):
        return ast.Name.model_construct(span=self._span(meta), name=str(children[0]))

    def unknown_dim(self, meta, children):
        return ast.Unknown.model_construct(span=self._span(meta))

    def list(self, meta, children):
        return ast.ListExpr.model_construct(
            span=self._span(meta), items=[c for c in children if c is not None]
        )

    def _binop(op):  # noqa: N805 - a factory evaluated in the class body
        def method(self, meta, children):
            return ast.BinOp.model_construct(
                span=self._span(meta), op=op, left=children[0], right=children[1]
            )

        return method

    add = _binop("+")
    sub = _binop("-")
    mul = _binop("*")
    div = _binop("/")
    floordiv = _binop("//")

    def neg(self, meta, children):
        operand = children[0]
        if isinstance(operand, ast.Number):  # `-1` is a literal, not an operation
            return ast.Number.model_construct(span=self._span(meta), value=-operand.value)
        return ast.Neg.model_construct(span=self._span(meta), operand=operand)

    def keyword(self, meta, children):
        return ast.Keyword.model_construct(
            span=self._span(meta), name=str(children[0]), value=children[1]
        )

    def call(self, meta, children):
        name, *arguments = children
        args: list[ast.Expr] = []
        keywords: list[ast.Keyword] = []
        for argument in arguments:
            if argument is None:
                continue
            if isinstance(argument, ast.Keyword):
                keywords.append(argument)
            elif keywords:
                self.diagnostics.append(
                    Diagnostic(
                        "positional argument after a keyword argument (expected keyword "
                        "arguments last)",
                        argument.span,
                    )
                )
            else:
                args.append(argument)
        return ast.Call.model_construct(
            span=self._span(meta),
            name=str(name),
            name_span=self._tok(name),
            args=args,
            keywords=keywords,
        )

    def bare_call(self, meta, children):
        token = children[0]
        return ast.Call.model_construct(
            span=self._tok(token), name=str(token), name_span=self._tok(token), args=[], keywords=[]
        )

    # --- bodies ---------------------------------------------------------------------------

    def _repeated(self, meta, children) -> ast.Call:
        call, repeat = children[0], children[1] if len(children) > 1 else None
        if repeat is None:
            return call
        return call.model_copy(update={"repeat": repeat, "span": self._span(meta)})

    layer_line = _repeated
    step = _repeated

    def shared_step(self, meta, children):
        return children[0]  # the Name of a shared layer

    def shared_layer(self, meta, children):
        name, call = children
        return ast.SharedLayer.model_construct(
            span=self._span(meta), name=str(name), name_span=self._tok(name), call=call
        )

    def chain(self, meta, children):
        return children

    def binding(self, meta, children):
        *targets, (source, *steps) = children
        target, *more = targets
        return ast.Binding.model_construct(
            span=self._span(meta),
            target=str(target),
            target_span=self._tok(target),
            source=source,
            steps=steps,
            more=[
                ast.Name.model_construct(span=self._tok(name), name=str(name)) for name in more
            ],
        )

    def _body(self, meta, lines) -> ast.Body:
        calls = [line for line in lines if isinstance(line, ast.Call)]
        bindings = [line for line in lines if isinstance(line, ast.Binding)]
        if calls and bindings:
            self.diagnostics.append(
                Diagnostic(
                    "a body mixes layer lines and `name = ...` bindings (expected one form: a "
                    "sequence of calls, or a graph of bindings)",
                    bindings[0].span,
                )
            )
        if bindings:
            return ast.GraphBody.model_construct(span=self._span(meta), bindings=bindings)
        return ast.SequenceBody.model_construct(span=self._span(meta), calls=calls)

    def layers_sec(self, meta, children):
        return (
            "layers",
            self._span(meta),
            ast.SequenceBody.model_construct(span=self._span(meta), calls=children),
        )

    def graph_sec(self, meta, children):
        bindings = [c for c in children if isinstance(c, ast.Binding)]
        shared = [c for c in children if isinstance(c, ast.SharedLayer)]
        return (
            "graph",
            self._span(meta),
            ast.GraphBody.model_construct(
                span=self._span(meta), bindings=bindings, shared=shared
            ),
        )

    # --- file level -----------------------------------------------------------------------

    def import_stmt(self, meta, children):
        return ast.Import.model_construct(
            span=self._span(meta), path=self.string(meta, children).value
        )

    def let_stmt(self, meta, children):
        return ast.Let.model_construct(
            span=self._span(meta), name=str(children[0]), value=children[1]
        )

    def param(self, meta, children):
        return ast.Param.model_construct(
            span=self._span(meta), name=str(children[0]), default=children[1]
        )

    def block_def(self, meta, children):
        name, *rest = children
        params = [c for c in rest if isinstance(c, ast.Param)]
        lines = [c for c in rest if isinstance(c, (ast.Call, ast.Binding))]
        return ast.Block.model_construct(
            span=self._span(meta),
            name=str(name),
            params=params,
            body=self._body(meta, lines),
            file=self.file,
        )

    # --- model sections: each returns (keyword, span, payload) ----------------------------

    def input_stmt(self, meta, children):
        name, dtype, *dims = children
        return (
            "input",
            self._span(meta),
            ast.Input.model_construct(
                span=self._span(meta),
                name=str(name),
                dtype=str(dtype),
                dtype_span=self._tok(dtype),
                dims=[d for d in dims if d is not None],
            ),
        )

    def output_stmt(self, meta, children):
        return (
            "output",
            self._span(meta),
            [ast.Name.model_construct(span=self._tok(t), name=str(t)) for t in children],
        )

    def loss_term(self, meta, children):
        return ast.LossTerm.model_construct(
            span=self._span(meta), output=str(children[0]), call=children[1]
        )

    def loss_stmt(self, meta, children):
        terms = [
            c
            if isinstance(c, ast.LossTerm)
            else ast.LossTerm.model_construct(span=c.span, output=None, call=c)
            for c in children
        ]
        return ("loss", self._span(meta), terms)

    def optimizer_stmt(self, meta, children):
        return ("optimizer", self._span(meta), children[0])

    def metric_label(self, meta, children):
        label, metric = children
        return ast.Name.model_construct(span=self._tok(label), name=str(label)), metric

    def metrics_stmt(self, meta, children):
        # `metrics logits: accuracy, auc, value: mae`: a label holds until the next one
        calls, outputs, label = [], [], None
        for child in children:
            if isinstance(child, tuple):
                label, child = child
            calls.append(child)
            outputs.append(label)
        return ("metrics", self._span(meta), (calls, outputs))

    def data_stmt(self, meta, children):
        return ("data", self._span(meta), children[0])

    def augment_sec(self, meta, children):
        return ("augment", self._span(meta), list(children))

    def assign(self, meta, children):
        return ast.Setting.model_construct(
            span=self._span(meta), key=str(children[0]), value=children[1]
        )

    def train_sec(self, meta, children):
        settings = [
            c
            if isinstance(c, ast.Setting)
            else ast.Setting.model_construct(span=c.span, key=c.name, value=c)
            for c in children
        ]
        return ("train", self._span(meta), settings)

    def model_def(self, meta, children):
        name, *items = children
        fields: dict[str, object] = {
            "inputs": [],
            "body": None,
            "outputs": [],
            "losses": [],
            "optimizer": None,
            "metrics": [],
            "metric_outputs": [],
            "data": None,
            "augment": [],
            "settings": [],
        }
        seen: dict[str, Span] = {}
        sections: list[ast.Section] = []
        for keyword, span, payload in items:
            sections.append(ast.Section.model_construct(span=span, keyword=keyword))
            if keyword == "input":
                fields["inputs"].append(payload)  # type: ignore[union-attr]
                continue
            body_keyword = keyword in ("layers", "graph")
            slot = "body" if body_keyword else keyword
            if slot in seen and keyword in _SINGLE_SECTIONS:
                self.diagnostics.append(
                    Diagnostic(
                        f"model `{name}` has a second `{keyword}` section (expected one)", span
                    ).with_note("the first one is here", seen[slot])
                )
                continue
            seen[slot] = span
            target = {"output": "outputs", "loss": "losses", "train": "settings"}.get(slot, slot)
            if keyword == "metrics":
                fields["metrics"], fields["metric_outputs"] = payload
                continue
            fields[target] = payload
        return ast.Model.model_construct(
            span=self._span(meta),
            name=str(name),
            name_span=self._tok(name),
            sections=sections,
            **fields,
        )

    def start(self, meta, children):
        return ast.File.model_construct(
            span=self._span(meta),
            path=self.file,
            imports=[c for c in children if isinstance(c, ast.Import)],
            lets=[c for c in children if isinstance(c, ast.Let)],
            blocks=[c for c in children if isinstance(c, ast.Block)],
            models=[c for c in children if isinstance(c, ast.Model)],
        )
