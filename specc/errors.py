"""Diagnostics: where in a spec file something is wrong, and how to show it.

Every stage reports problems as `Diagnostic`s that carry a `Span`. A stage that can keep
going collects them in a `Diagnostics` list; a stage that cannot raises `SpecError`, which
carries one or more of them. Only `render` turns them into text, in the form

    FILE:LINE:COL: error: WHAT (expected ..., got ...)
        source line
        ^~~~
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict

from specc.limits import MAX_SOURCE_BYTES

Severity = Literal["error", "warning"]


class Span(BaseModel):
    """A region of a source file; lines and columns count from 1."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Diagnostic:
    """One message about a spec. `notes` add context such as the call site of a block."""

    message: str
    span: Span | None
    severity: Severity = "error"
    notes: tuple[tuple[str, Span], ...] = ()

    def with_note(self, message: str, span: Span) -> Diagnostic:
        return Diagnostic(self.message, self.span, self.severity, (*self.notes, (message, span)))


class SpecError(Exception):
    """A spec cannot be processed further; carries every diagnostic found so far."""

    def __init__(self, diagnostics: Diagnostic | list[Diagnostic]):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        super().__init__("; ".join(d.message for d in self.diagnostics))

    @classmethod
    def at(cls, span: Span | None, message: str) -> SpecError:
        return cls(Diagnostic(message, span))


class ShapeError(ValueError):
    """Raised by a layer's shape function; the checker adds the span of the call."""


def quoted(text: str, limit: int = 60) -> str:
    """User text (a path, a name) as a message quotes it: in JSON quotes, so that control
    characters show as escapes, and cut to `limit` characters."""
    shown = json.dumps(text if len(text) <= limit else text[:limit], ensure_ascii=False)
    return shown if len(text) <= limit else shown[:-1] + '…"'


def mismatch(what: str, expected: object, got: object) -> str:
    """The house style for a message about a wrong value: what, expected, got."""
    return f"{what} (expected {expected}, got {got})"


@dataclass
class Diagnostics:
    """Collects diagnostics across a stage so that one run reports all of them."""

    items: list[Diagnostic] = field(default_factory=list)
    _seen: set[Diagnostic] = field(default_factory=set, repr=False)
    _seen_upto: int = field(default=0, repr=False)  # items[:_seen_upto] are in _seen

    def add_once(self, diagnostic: Diagnostic) -> None:
        """Add `diagnostic` unless the same one is already there (a block used twice repeats
        its errors); a set keeps this constant time, however many there are."""
        self._seen.update(self.items[self._seen_upto :])  # those appended directly
        if diagnostic not in self._seen:
            self._seen.add(diagnostic)
            self.items.append(diagnostic)
        self._seen_upto = len(self.items)

    def error(self, span: Span | None, message: str) -> None:
        self.items.append(Diagnostic(message, span))

    def warning(self, span: Span | None, message: str) -> None:
        self.items.append(Diagnostic(message, span, "warning"))

    def extend(self, diagnostics: list[Diagnostic]) -> None:
        self.items.extend(diagnostics)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "warning"]

    def raise_if_errors(self) -> None:
        if self.errors:
            raise SpecError(self.errors)


# Characters of a source line shown under a message; longer lines are cut around the column.
_EXCERPT_WIDTH = 160


def source_lines(text: str) -> list[str]:
    """The lines of a spec as the parser counts them: only `\n` ends a line (a form feed or
    U+2028 inside a comment does not), and a line keeps no `\r` of a `\r\n` ending."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _source_line(file: str, line: int, sources: dict[str, list[str]]) -> str | None:
    lines = sources.get(file)
    if lines is None:
        try:
            with open(file, "rb") as handle:  # a file the parser read: within the size limit
                data = handle.read(MAX_SOURCE_BYTES + 1)
        except (OSError, ValueError):
            return None
        lines = sources[file] = source_lines(data.decode("utf-8", "replace"))
    return lines[line - 1] if 0 < line <= len(lines) else None


def _excerpt(span: Span, sources: dict[str, list[str]]) -> list[str]:
    source = _source_line(span.file, span.line, sources)
    if source is None:
        return []
    end = span.end_column if span.end_line == span.line else len(source) + 1
    start = 0
    if len(source) > _EXCERPT_WIDTH:  # a long line: the part around the column, marked `…`
        start = max(0, span.column - 1 - _EXCERPT_WIDTH // 4)
        shown = source[start : start + _EXCERPT_WIDTH]
        source = ("…" if start else "") + shown + ("…" if start + len(shown) < len(source) else "")
        start -= 1 if start else 0  # the `…` takes the place of one character
    column = span.column - start
    width = max(1, min(end - span.column, len(source) + 2 - column))
    # Tabs keep their width in the caret line so the caret lands under the right character.
    lead = "".join(c if c == "\t" else " " for c in source[: column - 1])
    return [f"    {source}", f"    {lead}^{'~' * (width - 1)}"]


def render(diagnostic: Diagnostic, sources: dict[str, list[str]] | None = None) -> str:
    """Render one diagnostic with its source excerpt and notes, ready to print; `sources`
    caches the lines of the files read for excerpts, for the next call."""
    sources = {} if sources is None else sources
    where = f"{diagnostic.span}: " if diagnostic.span else ""
    out = [f"{where}{diagnostic.severity}: {diagnostic.message}"]
    if diagnostic.span:
        out += _excerpt(diagnostic.span, sources)
    for message, span in diagnostic.notes:
        out.append(f"{span}: note: {message}")
        out += _excerpt(span, sources)
    return "\n".join(out)
