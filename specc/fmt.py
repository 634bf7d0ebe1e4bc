"""`specc fmt`: a spec file in canonical layout.

The layout is printed from the AST; what the AST does not hold comes from the source text:
comments (`File.comments`), blank lines (kept where the user put them, at most one in a row,
except top-level items, which are always separated by one) and the text of numbers (`1e-3`
stays `1e-3`). Canonical means: 4-space indent, one statement per line, `name = value`,
`a -> b -> c`, `f(1, 2, key=value)`, strings re-quoted as JSON, a full-line comment on its own
line before the statement that follows it, a trailing comment at the end of its line.

The result parses to the same AST (spans aside), and formatting it again changes nothing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path

from specc import ast
from specc.errors import Span, source_lines
from specc.syntax import parse, read_source

INDENT = "    "
_NUMBER = re.compile(r"-?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
# Binding strength of expression forms, for printing the fewest parentheses that keep the tree.
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "//": 2}
_UNARY = 3
_ATOM = 4


def format_file(path: str | Path) -> str:
    """The file at `path` in canonical layout; raises SpecError when it cannot be read or
    does not parse."""
    return format_source(read_source(path), str(path))


def format_source(text: str, file: str = "<spec>") -> str:
    """`text` in canonical layout; raises SpecError when it does not parse."""
    return _Printer(text, parse(text, file)).run()


class _Source:
    """The original text, for what the AST does not keep."""

    def __init__(self, text: str, comments: list[tuple[int, int, str]]):
        self.text = text
        # Lines as the parser counts them (only `\n` ends one), so that spans find them.
        self.lines = source_lines(text)
        self._starts = [0]
        newline = text.find("\n")
        while newline != -1:
            self._starts.append(newline + 1)
            newline = text.find("\n", newline + 1)
        self.comments = {line: (column, body) for line, column, body in comments}

    def offset(self, line: int, column: int) -> int:
        return self._starts[line - 1] + column - 1

    def slice(self, span: Span) -> str:
        return self.text[
            self.offset(span.line, span.column) : self.offset(span.end_line, span.end_column)
        ]

    def is_blank(self, line: int) -> bool:
        return 0 < line <= len(self.lines) and not self.lines[line - 1].strip()

    def is_full_line_comment(self, line: int) -> bool:
        column, _ = self.comments[line]
        return not self.lines[line - 1][: column - 1].strip()

    def opening_brace_line(self, span: Span) -> int:
        """The line of the first `{` at or after the start of `span`, outside strings and
        comments: where the header of a braced statement ends."""
        in_string = in_comment = escaped = False
        line = span.line
        for char in self.text[self.offset(span.line, span.column) :]:
            if char == "\n":
                line, in_comment = line + 1, False
            elif in_comment:
                pass
            elif in_string:
                in_string = char != '"' or escaped
                escaped = char == "\\" and not escaped
            elif char == '"':
                in_string = True
            elif char == "#":
                in_comment = True
            elif char == "{":
                return line
        raise AssertionError("a braced statement without `{`")


class _Printer:
    """Prints top to bottom, keeping a cursor on the source lines already accounted for, so
    that each comment and blank line comes out once, in order."""

    def __init__(self, text: str, file: ast.File):
        self.file = file
        self.source = _Source(text, file.comments)
        self.out: list[str] = []
        self.cursor = 1  # the first source line not yet accounted for
        self.pending_blank = False
        self.after_open = True  # just after `{` or at the top of the file: no blank line

    # --- lines, comments, blank lines -----------------------------------------------------

    def emit(self, depth: int, text: str) -> None:
        if self.pending_blank and not self.after_open:
            self.out.append("")
        self.pending_blank = False
        self.out.append(INDENT * depth + text if text else "")
        self.after_open = False

    def gap(self, before: int, depth: int) -> None:
        """Comments and blank lines of the source lines up to `before` (excluded)."""
        for line in range(self.cursor, before):
            if line in self.source.comments:
                self.emit(depth, self.source.comments[line][1])
            elif self.source.is_blank(line):
                self.pending_blank = True
        self.cursor = max(self.cursor, before)

    def statement(self, depth: int, text: str, span: Span) -> None:
        """One line for a statement that may span several source lines: comments on its
        own lines inside it go before it, trailing comments after it."""
        self.gap(span.line, depth)
        trailing = self.comments_within(depth, span.line, span.end_line)
        self.emit(depth, text + trailing)
        self.cursor = max(self.cursor, span.end_line + 1)

    def comments_within(self, depth: int, first: int, last: int) -> str:
        """Emit the full-line comments of source lines first..last; return the trailing
        ones, ready to append to the statement's line."""
        trailing = []
        for line in range(max(first, self.cursor), last + 1):
            if line not in self.source.comments:
                continue
            body = self.source.comments[line][1]
            if self.source.is_full_line_comment(line):
                self.emit(depth, body)
            else:
                trailing.append(body)
        return "".join(f"  {body}" for body in trailing)

    def braced(self, depth: int, header: str, span: Span, children: Callable[[int], None]) -> None:
        """`header {`, then `children(depth + 1)` prints what is inside, then `}`."""
        self.gap(span.line, depth)
        brace = self.source.opening_brace_line(span)
        trailing = self.comments_within(depth, span.line, brace)
        self.emit(depth, f"{header} {{" + trailing)
        self.cursor = max(self.cursor, brace + 1)
        self.after_open = True
        children(depth + 1)
        self.gap(span.end_line, depth + 1)
        self.pending_blank = False
        trailing = self.comments_within(depth, span.end_line, span.end_line)
        self.emit(depth, "}" + trailing)
        self.cursor = max(self.cursor, span.end_line + 1)

    # --- the file -------------------------------------------------------------------------

    def run(self) -> str:
        items: list[ast.Node] = [
            *self.file.imports,
            *self.file.lets,
            *self.file.blocks,
            *self.file.models,
        ]
        items.sort(key=lambda item: (item.span.line, item.span.column))
        previous: ast.Node | None = None
        for item in items:
            # One-line items of a kind stay grouped as written; everything else is apart.
            grouped = (
                previous is not None
                and type(previous) is type(item)
                and isinstance(item, (ast.Import, ast.Let))
            )
            if previous is not None and not grouped:
                self.pending_blank = True
            self.item(item)
            previous = item
        self.gap(len(self.source.lines) + 1, 0)
        return "\n".join(self.out) + "\n" if self.out else ""

    def item(self, item: ast.Node) -> None:
        match item:
            case ast.Import():
                self.statement(0, f"import {string(item.path)}", item.span)
            case ast.Let():
                self.statement(0, f"let {item.name} = {self.expr(item.value)}", item.span)
            case ast.Block():
                params = ", ".join(
                    p.name if p.default is None else f"{p.name}={self.expr(p.default)}"
                    for p in item.params
                )
                self.braced(
                    0,
                    f"block {item.name}({params})",
                    item.span,
                    lambda depth: self.body(depth, item.body),
                )
            case ast.Model():
                self.braced(
                    0,
                    f"model {item.name}",
                    item.span,
                    lambda depth: self.model_sections(depth, item),
                )

    def calls(self, depth: int, calls: list[ast.Call]) -> None:
        for call in calls:
            self.statement(depth, self.call(call), call.span)

    def settings(self, depth: int, settings: list[ast.Setting]) -> None:
        for setting in settings:
            self.statement(depth, self.setting(setting), setting.span)

    def body(self, depth: int, body: ast.Body) -> None:
        if isinstance(body, ast.SequenceBody):
            self.calls(depth, body.calls)
            return
        # The `let` lines of shared layers and the bindings, in the order they were written.
        lines = sorted([*body.shared, *body.bindings],
                       key=lambda line: (line.span.line, line.span.column))
        for line in lines:
            if isinstance(line, ast.SharedLayer):
                self.statement(depth, f"let {line.name} = {self.call(line.call)}", line.span)
                continue
            chain = [self.expr(line.source), *(self.expr(s) for s in line.steps)]
            targets = ", ".join([line.target, *(name.name for name in line.more)])
            self.statement(depth, f"{targets} = {' -> '.join(chain)}", line.span)

    def model_sections(self, depth: int, model: ast.Model) -> None:
        inputs = iter(model.inputs)
        for section in model.sections:
            keyword, span = section.keyword, section.span
            if keyword == "input":
                item = next(inputs)
                dims = ", ".join(self.expr(d) for d in item.dims)
                self.statement(depth, f"input {item.name}: {item.dtype}[{dims}]", span)
            elif keyword in ("layers", "graph"):
                self.braced(
                    depth, keyword, span, lambda inner, body=model.body: self.body(inner, body)
                )
            elif keyword == "output":
                self.statement(depth, "output " + ", ".join(n.name for n in model.outputs), span)
            elif keyword == "loss":
                terms = ", ".join(
                    self.call(t.call) if t.output is None else f"{t.output}: {self.call(t.call)}"
                    for t in model.losses
                )
                self.statement(depth, f"loss {terms}", span)
            elif keyword in ("optimizer", "data"):
                self.statement(depth, f"{keyword} {self.call(getattr(model, keyword))}", span)
            elif keyword == "metrics":
                self.statement(depth, "metrics " + self.metrics(model), span)
            elif keyword == "augment":
                self.braced(depth, "augment", span, lambda inner: self.calls(inner, model.augment))
            elif keyword == "train":
                self.braced(
                    depth, "train", span, lambda inner: self.settings(inner, model.settings)
                )

    def metrics(self, model: ast.Model) -> str:
        """The metrics section's list: a label where the output changes (it holds until the
        next one)."""
        items, current = [], None
        for call, name in zip(model.metrics, model.metric_outputs, strict=True):
            label = name and name.name
            items.append(self.call(call) if label == current else f"{label}: {self.call(call)}")
            current = label
        return ", ".join(items)

    def setting(self, setting: ast.Setting) -> str:
        # The call form `early_stopping(...)` has no key of its own: its span is the call's.
        if isinstance(setting.value, ast.Call) and setting.span == setting.value.span:
            return self.call(setting.value)
        return f"{setting.key} = {self.expr(setting.value)}"

    # --- expressions ----------------------------------------------------------------------

    def call(self, call: ast.Call) -> str:
        if call.span == call.name_span:  # the bare form of a metric: `accuracy`
            return call.name
        arguments = [self.expr(a) for a in call.args]
        arguments += [f"{k.name}={self.expr(k.value)}" for k in call.keywords]
        text = f"{call.name}({', '.join(arguments)})"
        if call.repeat is not None:
            text += f" * {self.operand(call.repeat, _UNARY)}"
        return text

    def operand(self, expr: ast.Expr, at_least: int) -> str:
        """`expr` in parentheses when it binds less tightly than `at_least`."""
        text = self.expr(expr)
        return f"({text})" if _precedence(expr) < at_least else text

    def expr(self, expr: ast.Expr) -> str:
        match expr:
            case ast.Number():
                return self.number(expr)
            case ast.String():
                return string(expr.value)
            case ast.Bool():
                return "true" if expr.value else "false"
            case ast.NoneLit():
                return "none"
            case ast.Name():
                return expr.name
            case ast.Unknown():
                return "?"
            case ast.ListExpr():
                return "[" + ", ".join(self.expr(i) for i in expr.items) + "]"
            case ast.Neg():
                return "-" + self.operand(expr.operand, _UNARY)
            case ast.BinOp():
                level = _PRECEDENCE[expr.op]
                # Operators group to the left: a right operand of equal strength keeps its
                # parentheses (`a - (b - c)`).
                return (
                    f"{self.operand(expr.left, level)} {expr.op} "
                    f"{self.operand(expr.right, level + 1)}"
                )
            case ast.Call():
                return self.call(expr)
        raise AssertionError(f"unhandled expression {type(expr).__name__}")

    def number(self, number: ast.Number) -> str:
        """The number as written (`1e-3`, `0.50`), unless the parser folded signs into it
        (`- -1` is the number 1)."""
        written = "".join(self.source.slice(number.span).split())
        if _NUMBER.fullmatch(written) and _same_number(written, number.value):
            return written
        value = number.value
        if isinstance(value, float) and not math.isfinite(value):
            raise AssertionError(f"a literal cannot be {value}")  # only `1e999` folded twice
        return repr(value)


def _same_number(text: str, value: int | float) -> bool:
    is_float = any(c in text for c in ".eE")
    parsed = float(text) if is_float else int(text)
    return type(parsed) is type(value) and parsed == value


def _precedence(expr: ast.Expr) -> int:
    if isinstance(expr, ast.BinOp):
        return _PRECEDENCE[expr.op]
    if isinstance(expr, ast.Neg) or (isinstance(expr, ast.Number) and expr.value < 0):
        return _UNARY
    return _ATOM


def string(value: str) -> str:
    """A string literal the parser reads back as `value` (JSON escapes)."""
    return json.dumps(value, ensure_ascii=False)
