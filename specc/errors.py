"""Diagnostics: where in a spec file something is wrong, and how to show it.

Every stage reports problems as `Diagnostic`s that carry a `Span`. A stage that can keep
going collects them in a `Diagnostics` list; a stage that cannot raises `SpecError`, which
carries one or more of them. Only `render` turns them into text, in the form

    FILE:LINE:COL: error: WHAT (expected ..., got ...)
        source line
        ^~~~
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

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


def mismatch(what: str, expected: object, got: object) -> str:
    """The house style for a message about a wrong value: what, expected, got."""
    return f"{what} (expected {expected}, got {got})"


@dataclass
class Diagnostics:
    """Collects diagnostics across a stage so that one run reports all of them."""

    items: list[Diagnostic] = field(default_factory=list)

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


def _source_line(file: str, line: int, sources: dict[str, str]) -> str | None:
    text = sources.get(file)
    if text is None:
        try:
            text = Path(file).read_text(encoding="utf-8")
        except OSError:
            return None
        sources[file] = text
    lines = text.splitlines()
    return lines[line - 1] if 0 < line <= len(lines) else None


def _excerpt(span: Span, sources: dict[str, str]) -> list[str]:
    source = _source_line(span.file, span.line, sources)
    if source is None:
        return []
    end = span.end_column if span.end_line == span.line else len(source) + 1
    width = max(1, end - span.column)
    # Tabs keep their width in the caret line so the caret lands under the right character.
    lead = "".join(c if c == "\t" else " " for c in source[: span.column - 1])
    return [f"    {source}", f"    {lead}^{'~' * (width - 1)}"]


def render(diagnostic: Diagnostic, sources: dict[str, str] | None = None) -> str:
    """Render one diagnostic with its source excerpt and notes, ready to print."""
    sources = {} if sources is None else sources
    where = f"{diagnostic.span}: " if diagnostic.span else ""
    out = [f"{where}{diagnostic.severity}: {diagnostic.message}"]
    if diagnostic.span:
        out += _excerpt(diagnostic.span, sources)
    for message, span in diagnostic.notes:
        out.append(f"{span}: note: {message}")
        out += _excerpt(span, sources)
    return "\n".join(out)
