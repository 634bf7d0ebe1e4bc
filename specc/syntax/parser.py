"""Source text → `specc.ast.File`, reporting every syntax error the parser can get past.

The grammar lives in `grammars/specc.lark` (shipped inside the wheel as
`specc/grammars/specc.lark`). Lark never appears past this package.
"""

from __future__ import annotations

import copy
import os
import stat
from bisect import bisect_right
from functools import lru_cache
from pathlib import Path

from lark import (
    Lark,
    Token,
    Tree,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
)
from lark.exceptions import VisitError
from lark.parsers.lalr_interactive_parser import InteractiveParser

from specc import ast
from specc.errors import Diagnostic, Span, SpecError, source_lines
from specc.limits import MAX_NESTING, MAX_SOURCE_BYTES, path_problem
from specc.syntax.transformer import ToAst, token_span

_HERE = Path(__file__).resolve().parent
# Installed wheel first, then the source checkout.
_GRAMMAR_CANDIDATES = (
    _HERE.parent / "grammars" / "specc.lark",
    _HERE.parent.parent / "grammars" / "specc.lark",
)
_MAX_SYNTAX_ERRORS = 20
# Errors on one line are reported once, so the recoveries are counted apart: a line of
# 50,000 stray words would otherwise be recovered from 50,000 times.
_MAX_RECOVERIES = 10 * _MAX_SYNTAX_ERRORS
# After a syntax error, how many following tokens a repair is judged on.
_REPAIR_LOOKAHEAD = 8
# Tokens that error recovery may insert where one is missing (Lark's terminal names): closing
# brackets and separators, and a number for a missing value (`epochs = }`).
_INSERTABLE = {
    "RPAR": ")",
    "RSQB": "]",
    "RBRACE": "}",
    "COLON": ":",
    "COMMA": ",",
    "EQUAL": "=",
    "NUMBER": "0",
}

# How terminals read in messages, for those whose pattern is not a plain string.
_TERMINAL_WORDS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a string",
    "$END": "end of file",
}


def grammar_path() -> Path:
    for candidate in _GRAMMAR_CANDIDATES:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"specc grammar not found in {[str(c) for c in _GRAMMAR_CANDIDATES]}")


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(
        grammar_path().read_text(encoding="utf-8"),
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=True,
        cache=True,
    )


@lru_cache(maxsize=1)
def _keywords() -> dict[str, str]:
    """Keyword text → its terminal name, e.g. "train" → "TRAIN"."""
    return {
        t.pattern.value: t.name
        for t in _parser().terminals
        if t.pattern.type == "str" and t.pattern.value.isidentifier()
    }


def _describe_terminal(name: str) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    try:
        pattern = _parser().get_terminal(name).pattern
    except KeyError:
        return name
    return f"`{pattern.value}`" if pattern.type == "str" else name.lower()


def _expected(names: set[str] | frozenset[str]) -> str:
    words = sorted({_describe_terminal(n) for n in names})
    if len(words) > 8:
        words = words[:8] + ["…"]
    return ", ".join(words)


def _unclosed_brace(text: str, file: str) -> Span | None:
    """The `{` that is never closed, ignoring strings and comments."""
    stack: list[tuple[int, int]] = []
    in_string = in_comment = False
    line, column = 1, 0
    previous = ""
    for char in text:
        column += 1
        if char == "\n":
            line, column, in_comment = line + 1, 0, False
        elif in_comment:
            pass
        elif in_string:
            if char == '"' and previous != "\\":
                in_string = False
        elif char == "#":
            in_comment = True
        elif char == '"':
            in_string = True
        elif char == "{":
            stack.append((line, column))
        elif char == "}" and stack:
            stack.pop()
        previous = char if previous != "\\" else ""
    if not stack:
        return None
    line, column = stack[-1]
    return Span(file=file, line=line, column=column, end_line=line, end_column=column + 1)


def _syntax_diagnostic(error: UnexpectedInput, text: str, file: str) -> Diagnostic:
    if isinstance(error, UnexpectedToken) and error.token.type != "$END":
        token: Token = error.token
        return Diagnostic(
            f"unexpected `{token}` (expected {_expected(error.expected)}, got `{token}`)",
            token_span(file, token),
        )
    if isinstance(error, UnexpectedCharacters):
        span = Span(
            file=file,
            line=error.line,
            column=error.column,
            end_line=error.line,
            end_column=error.column + 1,
        )
        char = text[error.pos_in_stream] if error.pos_in_stream < len(text) else "?"
        return Diagnostic(
            f"unexpected character `{char}` (expected {_expected(error.allowed)})", span
        )
    # End of file in the middle of something; usually a missing `}`.
    expected = getattr(error, "expected", None) or set()
    lines = source_lines(text) or [""]
    end = Span(
        file=file,
        line=len(lines),
        column=len(lines[-1]) + 1,
        end_line=len(lines),
        end_column=len(lines[-1]) + 2,
    )
    diagnostic = Diagnostic(f"unexpected end of file (expected {_expected(expected)})", end)
    brace = _unclosed_brace(text, file)
    if brace is not None:
        diagnostic = Diagnostic(
            "unclosed `{` (expected a matching `}` before the end of file)", brace
        )
    return diagnostic


def _lookahead(text: str) -> list[Token]:
    """The tokens of `text` as far as they can be lexed, for judging repairs."""
    tokens: list[Token] = []
    try:
        tokens.extend(_parser().lex(text))
    except UnexpectedInput:
        pass
    return tokens


def _trial(parser: InteractiveParser) -> InteractiveParser:
    """A copy of `parser` that only checks what it is fed: it builds no tree, so copying it
    costs the depth of its stack, not the size of everything parsed so far."""
    trial = parser.copy(deepcopy_values=False)
    conf = copy.copy(trial.parser_state.parse_conf)
    conf.callbacks = {}
    trial.parser_state.parse_conf = conf
    return trial


def _tokens_accepted(parser: InteractiveParser, feed: list[Token], upcoming: list[Token]) -> int:
    """How many of `upcoming` (then the end of file) a copy of `parser` takes after `feed`;
    -1 when it does not take `feed` itself. `upcoming` holds at most one token more than
    `_REPAIR_LOOKAHEAD`: whether there are more than that is all that matters."""
    trial = _trial(parser)
    try:
        for token in feed:
            trial.feed_token(token)
    except UnexpectedInput:
        return -1
    for count, token in enumerate(upcoming[:_REPAIR_LOOKAHEAD]):
        try:
            trial.feed_token(token)
        except UnexpectedInput:
            return count
    if len(upcoming) > _REPAIR_LOOKAHEAD:
        return _REPAIR_LOOKAHEAD
    try:
        trial.feed_eof()
    except UnexpectedInput:
        return len(upcoming)
    return len(upcoming) + 1


def _repair(error: UnexpectedToken, tokens: list[Token], starts: list[int]) -> None:
    """Choose how the parser goes on after an unexpected token, so that one mistake does
    not cause a cascade of reports: drop the token (what Lark does by default), insert a
    missing punctuation token before it (`input x float[4]`), or replace it by one (`f(]`).
    The choice is the one that lets the most of the following tokens parse."""
    parser = error.interactive_parser
    token = error.token
    first = bisect_right(starts, token.start_pos)
    upcoming = tokens[first : first + _REPAIR_LOOKAHEAD + 1]
    # Where a keyword was not expected, Lark's lexer reads it as a name; after an inserted
    # token it may be the keyword again (`adam(lr=1e-3` and then `train {`).
    keyword = _keywords().get(str(token)) if token.type == "NAME" else None
    as_written = (
        [token] if keyword is None else [token, Token.new_borrow_pos(keyword, str(token), token)]
    )
    candidates: list[list[Token]] = [[]]
    for name in sorted(error.expected & set(_INSERTABLE)):
        missing = Token.new_borrow_pos(name, _INSERTABLE[name], token)
        candidates += [[missing, again] for again in as_written] + [[missing]]
    best = max(candidates, key=lambda feed: _tokens_accepted(parser, feed, upcoming))
    for repair in best:
        parser.feed_token(repair)


def parse(text: str, file: str = "<spec>") -> ast.File:
    """Parse spec text; raise SpecError with every syntax error found."""
    errors: list[Diagnostic] = []
    comments: list[tuple[int, int, str]] = []
    tokens: list[Token] | None = None
    starts: list[int] = []
    recoveries = 0

    def report(error: UnexpectedInput) -> None:
        diagnostic = _syntax_diagnostic(error, text, file)
        # One report per line: what follows a first mistake on a line is usually noise.
        if (
            not errors
            or errors[-1].span is None
            or diagnostic.span is None
            or errors[-1].span.line != diagnostic.span.line
        ):
            errors.append(diagnostic)

    def recover(error: UnexpectedInput) -> bool:
        nonlocal tokens, starts, recoveries
        report(error)
        recoveries += 1
        if (
            isinstance(error, UnexpectedEOF)
            or len(errors) >= _MAX_SYNTAX_ERRORS
            or recoveries >= _MAX_RECOVERIES
        ):
            return False
        if isinstance(error, UnexpectedToken):
            if error.token.type == "$END":
                return False
            if tokens is None:
                tokens = _lookahead(text)
                starts = [t.start_pos for t in tokens]
            _repair(error, tokens, starts)
        return True

    try:
        tree = _parser().parse(text, on_error=recover)
    except UnexpectedInput as error:
        report(error)
        raise SpecError(errors) from None
    if errors:
        raise SpecError(errors)
    too_deep = _too_deep(tree, file)
    if too_deep is not None:
        raise SpecError(too_deep)

    for line_no, line in enumerate(source_lines(text), start=1):
        _collect_comment(line_no, line, comments)

    transformer = ToAst(file)
    try:
        result = transformer.transform(tree)
    except VisitError as error:  # a bug in a transformer method, or a SpecError it raised
        if isinstance(error.orig_exc, SpecError):
            raise error.orig_exc from None
        raise error.orig_exc from error
    if transformer.diagnostics:
        raise SpecError(transformer.diagnostics)
    return result.model_copy(update={"comments": comments})


def _too_deep(tree: Tree, file: str) -> Diagnostic | None:
    """The first place where the tree nests deeper than MAX_NESTING, found without
    recursion: the passes after this one recurse once per level."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            meta = node.meta
            span = (
                None
                if getattr(meta, "empty", True)
                else Span.model_construct(
                    file=file,
                    line=meta.line,
                    column=meta.column,
                    end_line=meta.line,
                    end_column=meta.column + 1,
                )
            )
            return Diagnostic(
                f"this nests more than {MAX_NESTING} levels deep (expected at most "
                f"{MAX_NESTING} levels of brackets, calls and operators, the limit of nesting)",
                span,
            )
        # Children go on in reverse so that the leftmost is visited first: a message at the
        # start of the deep part reads better than one at its end.
        stack.extend(
            (child, depth + 1) for child in reversed(node.children) if isinstance(child, Tree)
        )
    return None


def _collect_comment(line_no: int, line: str, comments: list[tuple[int, int, str]]) -> None:
    in_string = False
    previous = ""
    for index, char in enumerate(line):
        if in_string:
            if char == '"' and previous != "\\":
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "#":
            # Only the line's end is trimmed: every other character of a comment is kept,
            # form feeds and Unicode line separators included.
            comments.append((line_no, index + 1, line[index:].rstrip(" \t\r")))
            return
        previous = char if previous != "\\" else ""


def read_source(path: str | Path, span: Span | None = None) -> str:
    """The text of a spec file; SpecError (at `span`, where something names the file) for
    anything that is not a readable regular file of UTF-8 text within the size limit."""
    name = str(path)
    problem = path_problem(name)
    if problem is not None:
        raise SpecError.at(span, f"cannot read the spec file: its path {problem}")
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise SpecError.at(span, f"cannot read {name}: {reason}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
            raise SpecError.at(span, f"cannot read {name}: it is {kind} (expected a .spec file)")
        data = os.read(fd, MAX_SOURCE_BYTES + 1)
        while len(data) <= MAX_SOURCE_BYTES:  # os.read may return less than asked
            more = os.read(fd, MAX_SOURCE_BYTES + 1 - len(data))
            if not more:
                break
            data += more
    except OSError as error:
        raise SpecError.at(span, f"cannot read {name}: {error.strerror or error}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_SOURCE_BYTES:
        raise SpecError.at(
            span,
            f"{name} is larger than {MAX_SOURCE_BYTES // (1024 * 1024)} MiB (expected a spec "
            "file within the limit of a source's size)",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = len(data[data.rfind(b"\n", 0, error.start) + 1 : error.start].decode(
            "utf-8", "replace")) + 1
        where = Span(file=name, line=line, column=column, end_line=line, end_column=column + 1)
        raise SpecError.at(
            where,
            f"{name} is not UTF-8 text here (expected UTF-8, got byte "
            f"0x{data[error.start]:02x}: {error.reason})",
        ) from None


def parse_file(path: str | Path, span: Span | None = None) -> ast.File:
    """Parse the spec file at `path`; `span` is where another file names it, if one does."""
    return parse(read_source(path, span), str(path))
