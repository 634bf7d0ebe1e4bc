"""Parsing a document that changes a little at a time: only the top-level items that changed.

A spec file is a sequence of items (`import`, `let`, `block`, `model`), each closed on its
own, so the file parses to the items' parses in order. An edit usually touches one item; the
others' parses are reused. Each item is parsed at its own place in the file (the text before
it replaced by as many newlines and spaces), so every span is what a whole parse gives.

Whenever an item does not parse, the whole text is parsed instead, so that syntax errors
are reported exactly as `specc check` reports them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from specc import ast
from specc.errors import Span, SpecError
from specc.syntax import parse

if TYPE_CHECKING:
    from specc.lsp.analysis import Token

_ITEM_KEYWORDS = {"import", "let", "block", "model"}


def item_starts(tokens: list[Token]) -> list[Token]:
    """The keywords that start a top-level item: those outside every bracket."""
    starts = []
    depth = 0
    for token in tokens:
        if token.kind == "op" and token.text in "({[":
            depth += 1
        elif token.kind == "op" and token.text in ")}]":
            depth = max(depth - 1, 0)
        elif depth == 0 and token.kind == "name" and token.text in _ITEM_KEYWORDS:
            starts.append(token)
    return starts


class ItemParses:
    """The parses of one document's items, kept from one version of its text to the next."""

    def __init__(self) -> None:
        self._parsed: dict[tuple[int, int, str], ast.File] = {}

    def parse(self, text: str, path: str, tokens: list[Token]) -> ast.File:
        """The parse of `text`. When an item does not parse, the whole text is parsed, so
        that the SpecError raised reports the syntax errors as `specc check` does."""
        starts = item_starts(tokens)
        first = (starts[0].line, starts[0].column) if starts else None
        if first is None or any(t.kind != "comment" for t in tokens if (t.line, t.column) < first):
            return parse(text, path)  # something before the first item: parse it all
        offsets = _line_offsets(text)
        bounds = [offsets[t.line] + t.column for t in starts] + [len(text)]
        parsed: dict[tuple[int, int, str], ast.File] = {}
        pieces: list[ast.File] = []
        for token, start, end in zip(starts, bounds, bounds[1:], strict=False):
            key = (token.line, token.column, text[start:end])
            piece = self._parsed.get(key)
            if piece is None:
                padded = "\n" * token.line + " " * token.column + key[2]
                try:
                    piece = parse(padded, path)
                except SpecError:
                    if padded == text:  # the item is the whole text: this is its parse
                        raise
                    return parse(text, path)  # reports the errors as `specc check` does
            parsed[key] = piece
            pieces.append(piece)
        self._parsed = parsed  # only the current version's items are kept
        return _joined(pieces, path)


def _line_offsets(text: str) -> list[int]:
    offsets = [0]
    for index, char in enumerate(text):
        if char == "\n":
            offsets.append(index + 1)
    return offsets


def _joined(pieces: list[ast.File], path: str) -> ast.File:
    first, last = pieces[0].span, pieces[-1].span
    return ast.File.model_construct(
        span=Span.model_construct(
            file=path,
            line=first.line,
            column=first.column,
            end_line=last.end_line,
            end_column=last.end_column,
        ),
        path=path,
        imports=[item for piece in pieces for item in piece.imports],
        lets=[item for piece in pieces for item in piece.lets],
        blocks=[item for piece in pieces for item in piece.blocks],
        models=[item for piece in pieces for item in piece.models],
        comments=[],
    )
