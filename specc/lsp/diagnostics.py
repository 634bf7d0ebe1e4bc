"""The checker's diagnostics as the client shows them, and the quick fixes they suggest.

Messages are those of `specc check`, word for word. A diagnostic whose place is in another
file (an imported one) is shown at the line of this file that leads there, the `import` or a
block's call site, with the place itself in its related information; every note (first
definition, call site of a block) is related information too.
"""

from __future__ import annotations

import re

from lsprotocol import types

from specc.errors import Diagnostic, Span
from specc.lsp.analysis import Analysis
from specc.lsp.positions import Positions, same_file

SOURCE = "specc"
_SUGGESTION = re.compile(r"\(did you mean `([A-Za-z_][A-Za-z0-9_]*)`\?\)")
_LEADING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SEVERITY = {"error": types.DiagnosticSeverity.Error, "warning": types.DiagnosticSeverity.Warning}


def _place(diagnostic: Diagnostic, path: str) -> Span | None:
    """Where in the document at `path` the diagnostic is shown; None: at its start."""
    if diagnostic.span is not None and same_file(diagnostic.span.file, path):
        return diagnostic.span
    for _, span in diagnostic.notes:
        if same_file(span.file, path):
            return span
    return None


def to_client(analysis: Analysis, positions: Positions) -> list[types.Diagnostic]:
    shown = []
    for diagnostic in analysis.result.diagnostics.items:
        place = _place(diagnostic, analysis.path)
        related = []
        if diagnostic.span is not None and diagnostic.span is not place:
            related.append(
                types.DiagnosticRelatedInformation(
                    positions.location(diagnostic.span), diagnostic.message
                )
            )
        related += [
            types.DiagnosticRelatedInformation(positions.location(span), note)
            for note, span in diagnostic.notes
            if span is not place
        ]
        shown.append(
            types.Diagnostic(
                range=(
                    positions.span(place)
                    if place is not None
                    else positions.range(analysis.path, (0, 0), (0, 0))
                ),
                message=diagnostic.message,
                severity=_SEVERITY[diagnostic.severity],
                source=SOURCE,
                related_information=related or None,
            )
        )
    return shown


def quick_fixes(
    analysis: Analysis, positions: Positions, wanted: types.Range, uri: str
) -> list[types.CodeAction]:
    """A "replace with …" action for each "did you mean" diagnostic in the wanted range."""
    actions = []
    lines = analysis.lines
    for diagnostic in analysis.result.diagnostics.items:
        match = _SUGGESTION.search(diagnostic.message)
        span = diagnostic.span
        if match is None or span is None or not same_file(span.file, analysis.path):
            continue
        if span.line != span.end_line or not 0 < span.line <= len(lines):
            continue
        # The span may cover a whole `name=value`: the fix replaces the name only.
        written = _LEADING_NAME.match(lines[span.line - 1][span.column - 1 : span.end_column - 1])
        if written is None:
            continue
        start = (span.line - 1, span.column - 1)
        where = positions.range(analysis.path, start, (start[0], start[1] + len(written.group())))
        if not _overlaps(where, wanted):
            continue
        replacement = match.group(1)
        actions.append(
            types.CodeAction(
                title=f"Replace `{written.group()}` with `{replacement}`",
                kind=types.CodeActionKind.QuickFix,
                is_preferred=True,
                edit=types.WorkspaceEdit(
                    changes={uri: [types.TextEdit(range=where, new_text=replacement)]}
                ),
            )
        )
    return actions


def _overlaps(a: types.Range, b: types.Range) -> bool:
    def key(p: types.Position) -> tuple[int, int]:
        return p.line, p.character

    return key(a.start) <= key(b.end) and key(b.start) <= key(a.end)
