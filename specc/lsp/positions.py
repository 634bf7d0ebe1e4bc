"""Positions between the checker and the client.

The checker counts lines and columns from 1, in characters, with an exclusive end; the
outline counts from 0, in characters; the client counts from 0 in the units it agreed on at
start-up (UTF-16 code units unless it asked otherwise). Only this module converts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lsprotocol import types
from pygls.workspace import PositionCodec

from specc.errors import Span


class Positions:
    def __init__(
        self,
        codec: PositionCodec,
        lines_of: Callable[[str], list[str]],
        uri_of: Callable[[str], str],
    ):
        self._codec = codec
        self._lines_of = lines_of  # the lines of any file, by the name spans carry
        self.uri_of = uri_of

    def range(self, file: str, start: tuple[int, int], end: tuple[int, int]) -> types.Range:
        """A range given in characters from 0 as the client counts it."""
        server = types.Range(types.Position(*start), types.Position(*end))
        return self._codec.range_to_client_units(self._lines_of(file), server)

    def span(self, span: Span) -> types.Range:
        start = (max(span.line - 1, 0), max(span.column - 1, 0))
        end = (max(span.end_line - 1, 0), max(span.end_column - 1, 0))
        return self.range(span.file, start, max(start, end))

    def location(self, span: Span) -> types.Location:
        return types.Location(uri=self.uri_of(span.file), range=self.span(span))

    def from_client(self, file: str, position: types.Position) -> tuple[int, int]:
        """The client's position as (line, column) in characters from 0."""
        server = self._codec.position_from_client_units(self._lines_of(file), position)
        return server.line, server.character


def same_file(a: str, b: str) -> bool:
    return a == b or _resolved(a) == _resolved(b)


def _resolved(name: str) -> str:
    try:
        return str(Path(name).resolve())
    except (OSError, RuntimeError, ValueError):
        return name
