"""What the server knows about one open document: its tokens, an outline of what it defines
and where, and the checker's verdict on its text.

The checker needs text that parses; an editor mostly holds text that does not, yet. So the
outline is read from the tokens alone, with a scanner that accepts anything: completion and
navigation work on a half-typed file, hover adds shapes and costs when the check succeeds.

Positions here are 0-based lines and 0-based columns counted in characters; the server turns
them into the client's units.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from specc import ast, ir
from specc.errors import Diagnostics, Span, SpecError
from specc.lsp.catalog import SECTION_FAMILIES
from specc.lsp.incremental import ItemParses
from specc.passes.check import CheckResult, check_parsed, check_source
from specc.syntax import parse
from specc.training import OPTIMIZERS

_TOKEN = re.compile(
    r"""
    (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"?)
  | (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>->|//|[{}()\[\],=:*+\-/?])
  | (?P<space>\s+)
  | (?P<other>.)
    """,
    re.VERBOSE,
)
# Bodies whose lines are calls of layers (or blocks), by the keyword that opens them.
_CALL_BODIES = {"layers", "graph", "block"}
_BODIES = ("model", "block", "layers", "graph", "train", "augment", "other")
OPTIMIZER_NAMES = frozenset(OPTIMIZERS)


@dataclass(frozen=True)
class Token:
    kind: str  # comment, string, number, name, op or other
    text: str
    line: int
    column: int

    @property
    def end(self) -> tuple[int, int]:
        return self.line, self.column + len(self.text)

    def contains(self, line: int, column: int) -> bool:
        """Whether the cursor at (line, column) touches this token (its end included)."""
        return self.line == line and self.column <= column <= self.column + len(self.text)


def tokenize(text: str) -> list[Token]:
    """Every token but whitespace; never fails (an unknown character is an `other`)."""
    tokens = []
    line, line_start = 0, 0
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "other"
        if kind != "space":
            tokens.append(Token(kind, match.group(), line, match.start() - line_start))
        newlines = match.group().count("\n")
        if newlines:
            line += newlines
            line_start = match.start() + match.group().rindex("\n") + 1
    return tokens


@dataclass
class Frame:
    """A bracket pair: a `{ }` body (kind: model, block, layers, graph, train, augment or
    other), a call's `( )` (kind "call"), a block's parameter list ("params") or a `[ ]`
    list ("list")."""

    kind: str
    name: str  # the model's, block's or called kind's name; "" where there is none
    start: Token
    end: Token | None = None  # the closing bracket, None while unclosed
    parent: Frame | None = None
    keywords: list[str] = field(default_factory=list)  # a call's `name=` arguments so far
    graph: bool = False  # a block body that binds names (`h = ...`) rather than listing calls
    body: Frame | None = field(init=False, repr=False)  # the nearest `{ }` around, itself included

    def __post_init__(self) -> None:
        # Kept on each frame: walking up through a deep nesting for every call would make
        # the scan quadratic.
        self.body = self if self.start.text == "{" else (self.parent.body if self.parent else None)

    def enclosing(self, *kinds: str) -> Frame | None:
        frame: Frame | None = self
        while frame is not None and frame.kind not in kinds:
            frame = frame.parent
        return frame


@dataclass(frozen=True)
class Definition:
    """A name the document defines, and where."""

    kind: str  # model, block, let, input, param, tensor, shared (a graph's layer) or import
    name: str
    token: Token  # the name (for an import: its path string)
    start: tuple[int, int]  # the whole definition, for the outline
    end: tuple[int, int]
    scope: Frame | None  # the body it is visible in; None: the whole file
    detail: str = ""


@dataclass(frozen=True)
class CallSite:
    """`name(` in the text: a layer, block or section kind applied there."""

    name: Token
    family: str | None  # which family of kinds the name belongs to (see catalog.FAMILIES)
    frame: Frame | None  # the body or call it stands in


@dataclass
class Outline:
    tokens: list[Token]
    definitions: list[Definition] = field(default_factory=list)
    calls: list[CallSite] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)

    def token_at(self, line: int, column: int) -> Token | None:
        """The name, number or string token under the cursor (a name wins at a boundary)."""
        found = [
            t
            for t in self.tokens
            if t.kind in ("name", "string", "number") and t.contains(line, column)
        ]
        names = [t for t in found if t.kind == "name"]
        return (names or found or [None])[-1]

    def frame_at(self, line: int, column: int) -> Frame | None:
        """The innermost bracket open at the cursor. Frames nest (a closer closes every frame
        opened inside the one it closes), so it is the last one opened that is still open."""
        inner = None
        for frame in self.frames:
            if (frame.start.line, frame.start.column) >= (line, column):
                break
            if frame.end is None or (frame.end.line, frame.end.column) >= (line, column):
                inner = frame
        return inner

    def visible(self, frame: Frame | None) -> list[Definition]:
        """The definitions visible in `frame`: file-level ones, and those of the bodies
        around it (the caller decides which tensors are bound early enough)."""
        bodies = set()
        while frame is not None:
            bodies.add(id(frame))
            frame = frame.parent
        return [
            d
            for d in self.definitions
            if d.kind != "import" and (d.scope is None or id(d.scope) in bodies)
        ]


def outline(tokens: list[Token]) -> Outline:
    """Scan the tokens once, tracking brackets, into what the document defines and calls.
    Any text goes: unclosed brackets stay open to the end, stray closers are skipped."""
    result = Outline(tokens)
    code = [t for t in tokens if t.kind != "comment"]
    stack: list[Frame] = []
    statement: str | None = None  # the model-level keyword of the current statement
    pending: list[_Pending] = []  # blocks and models, completed once the scan ends
    closed: Frame | None = None  # the frame the previous token closed
    # Open frames by bracket: a closer with none open is skipped without searching the stack.
    open_counts = {"(": 0, "{": 0, "[": 0}

    for index, token in enumerate(code):
        before = code[index - 1] if index > 0 else None
        after = code[index + 1] if index + 1 < len(code) else None
        frame = stack[-1] if stack else None
        just_closed, closed = closed, None
        if token.kind == "op" and token.text in "({[":
            new = _open(token, before, code[index - 2] if index > 1 else None, frame, just_closed)
            if new.kind in _BODIES:
                statement = None
                owner = pending[-1] if pending else None
                if (
                    owner is not None
                    and owner.body is None
                    and owner.kind == new.kind
                    and (owner.name.text == new.name)
                ):
                    owner.body = new
            stack.append(new)
            open_counts[token.text] += 1
            result.frames.append(new)
            continue
        if token.kind == "op" and token.text in ")}]":
            opening = {")": "(", "}": "{", "]": "["}[token.text]
            if not open_counts[opening]:
                continue  # a stray closer
            for depth in range(len(stack) - 1, -1, -1):
                if stack[depth].start.text == opening:
                    for unclosed in stack[depth:]:
                        unclosed.end = token
                        open_counts[unclosed.start.text] -= 1
                    closed = stack[depth]
                    del stack[depth:]
                    break
            continue
        if token.kind != "name":
            continue
        if frame is None:
            _file_level(token, after, result, pending)
        elif frame.kind == "params":
            if before is not None and before.text in ("(", ",") and pending:
                pending[-1].params.append(token)
        elif frame.kind == "call" and after is not None and after.text == "=":
            frame.keywords.append(token.text)
        elif frame.kind == "model" and token.text in SECTION_FAMILIES:
            statement = token.text
        elif frame.kind == "model" and before is not None and before.text == "input":
            start = (before.line, before.column)
            result.definitions.append(
                Definition("input", token.text, token, start, token.end, frame)
            )
        elif (
            frame.kind in ("graph", "block")
            and after is not None
            and (after.text == "=" or (after.text == "," and frame.kind == "graph"))
            and (before is None or before.text != "=")
        ):
            frame.graph = True
            start = (token.line, token.column)
            kind = "shared" if before is not None and before.text == "let" else "tensor"
            result.definitions.append(Definition(kind, token.text, token, start, token.end, frame))
        if frame is not None and frame.kind != "params" and after is not None and after.text == "(":
            result.calls.append(CallSite(token, _family(frame, statement), frame))
    for item in pending:
        body = item.body
        end = body.end.end if body is not None and body.end is not None else code[-1].end
        detail = f"({', '.join(p.text for p in item.params)})" if item.kind == "block" else ""
        result.definitions.append(
            Definition(item.kind, item.name.text, item.name, item.start, end, None, detail)
        )
        result.definitions.extend(
            Definition("param", p.text, p, (p.line, p.column), p.end, body) for p in item.params
        )
    return result


def _open(
    token: Token,
    before: Token | None,
    two_before: Token | None,
    frame: Frame | None,
    just_closed: Frame | None,
) -> Frame:
    """The frame that the bracket `token` opens, told by the tokens before it."""
    if token.text == "[":
        return Frame("list", "", token, parent=frame)
    if token.text == "(":
        callee = before.text if before is not None and before.kind == "name" else ""
        # `block NAME(` at file level opens the block's parameter list.
        at_block = frame is None and two_before is not None and two_before.text == "block"
        return Frame("params" if at_block else "call", callee, token, parent=frame)
    kind, name = "other", ""
    if before is not None and before.kind == "name":
        if before.text in ("layers", "graph", "train", "augment"):
            kind = before.text
        elif two_before is not None and two_before.text == "model":
            kind, name = "model", before.text
    elif before is not None and before.text == ")" and just_closed is not None:
        if just_closed.kind == "params":
            kind, name = "block", just_closed.name
    return Frame(kind, name, token, parent=frame)


def _family(frame: Frame, statement: str | None) -> str | None:
    """The family of the kind called at this point of the text."""
    if frame.kind == "call":
        outer = frame.body
        if frame.name in OPTIMIZER_NAMES or (frame.keywords and frame.keywords[-1] == "schedule"):
            return "schedule"
        return "layer" if outer is not None and outer.kind in _CALL_BODIES else None
    body = frame.body
    if body is None:
        return None
    if body.kind in _CALL_BODIES:
        return "layer"
    if body.kind == "train":
        return "train setting"
    if body.kind == "augment":
        return "augmentation"
    if body.kind == "model" and statement is not None:
        return SECTION_FAMILIES.get(statement)
    return None


@dataclass
class _Pending:
    """A block or model whose definition the scan completes as it goes."""

    kind: str  # block or model
    name: Token
    start: tuple[int, int]
    params: list[Token] = field(default_factory=list)
    body: Frame | None = None


def _file_level(
    token: Token, after: Token | None, result: Outline, pending: list[_Pending]
) -> None:
    """Definitions that start at file level: `let`, `import`, `block` and `model`."""
    if after is None:
        return
    start = (token.line, token.column)
    if token.text == "let" and after.kind == "name":
        result.definitions.append(Definition("let", after.text, after, start, after.end, None))
    elif token.text == "import" and after.kind == "string":
        path = after.text.strip('"')
        result.definitions.append(Definition("import", path, after, start, after.end, None))
    elif token.text in ("block", "model") and after.kind == "name":
        pending.append(_Pending(token.text, after, start))


# --- the checker's verdict ----------------------------------------------------------------


@dataclass
class ImportedFile:
    stamp: tuple
    file: ast.File | None
    error: SpecError | None


class ImportCache:
    """Parsed imported files, kept while their text stays the same: an open editor buffer
    (by its text) or a file on disk (by modification time and size)."""

    def __init__(self, open_text: Callable[[str], str | None]):
        self._open_text = open_text
        self._files: dict[str, ImportedFile] = {}

    def parse(self, path: Path, used: set[str] | None = None) -> ast.File:
        key = str(path)
        if used is not None:
            used.add(key)
        text = self._open_text(key)
        if text is not None:
            stamp: tuple = ("editor", hash(text))
        else:
            try:
                stat = path.stat()
            except OSError:
                return _parse_from_disk(path)  # raises the error `specc check` would
            stamp = ("disk", stat.st_mtime_ns, stat.st_size)
        cached = self._files.get(key)
        if cached is None or cached.stamp != stamp:
            try:
                file = parse(text, key) if text is not None else _parse_from_disk(path)
                cached = ImportedFile(stamp, file, None)
            except SpecError as error:
                cached = ImportedFile(stamp, None, error)
            self._files[key] = cached
        if cached.error is not None:
            raise SpecError(cached.error.diagnostics)
        assert cached.file is not None
        return cached.file

    def parsed(self, path: str) -> ast.File | None:
        cached = self._files.get(path)
        return cached.file if cached is not None else None


def _parse_from_disk(path: Path) -> ast.File:
    from specc.syntax import parse_file

    return parse_file(path)


@dataclass
class Analysis:
    """One version of one document, checked."""

    path: str  # the file name spans in this document carry
    text: str
    outline: Outline
    result: CheckResult
    imports: set[str]  # the files its check read through imports
    seconds: float  # how long the check took
    # While the text has errors: the last analysis of this document whose check succeeded,
    # for the figures of the lines that did not change since.
    last_checked: Analysis | None = None

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    @property
    def program(self) -> ir.Program | None:
        return self.result.program


def analyze(text: str, path: str, imports: ImportCache, items: ItemParses) -> Analysis:
    """Check `text` as the file at `path`, reusing the parses of its unchanged items and of
    the files it imports."""
    started = time.perf_counter()
    used: set[str] = set()

    def parse_import(target: Path, span: Span | None = None) -> ast.File:
        return imports.parse(target, used)

    tokens = tokenize(text)
    try:
        file = items.parse(text, path, tokens)
    except SpecError as error:  # syntax errors end the check, as in `specc check`
        result = CheckResult(None, Diagnostics(list(error.diagnostics)))
    except RecursionError:  # reported as `specc check` reports it
        result = check_source(text, path, parse_import)
    else:
        result = check_parsed(file, parse_import)
    seconds = time.perf_counter() - started
    return Analysis(path, text, outline(tokens), result, used, seconds)


def unchecked(text: str, path: str) -> Analysis:
    """The outline of `text` with no verdict of the checker, for a request that cannot wait
    for its check."""
    return Analysis(
        path, text, outline(tokenize(text)), CheckResult(None, Diagnostics()), set(), 0.0
    )
