"""Go to definition (blocks, `let`s, tensors, block parameters, inputs, imported files) and
the document's outline (models with their inputs, blocks, `let`s).

Names are looked up in the text's own outline first, so that both work on a file that does
not parse; blocks and constants that come from imported files are found in their parse.
"""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from specc.lsp.analysis import Analysis, Definition, ImportCache, Token
from specc.lsp.positions import Positions

# Which definition a name means when several are visible: the nearest kind first.
_PRECEDENCE = ("tensor", "shared", "param", "input", "let", "block", "model")


def find(analysis: Analysis, token: Token) -> Definition | None:
    """The definition in this document that `token` names, or None."""
    outline = analysis.outline
    for definition in outline.definitions:
        if definition.token is token:
            return definition
    frame = outline.frame_at(token.line, token.column)
    candidates = [
        d
        for d in outline.visible(frame)
        if d.name == token.text
        # A reference sees the tensors bound on lines above it: in `h = h -> f()` the `h`
        # on the right is the earlier binding.
        and (d.kind != "tensor" or d.token.line < token.line)
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda d: (-_PRECEDENCE.index(d.kind), d.token.line))


def definition(
    analysis: Analysis, positions: Positions, line: int, column: int, imports: ImportCache
) -> list[types.Location] | None:
    token = analysis.outline.token_at(line, column)
    if token is None:
        return None
    if token.kind == "string":
        for found in analysis.outline.definitions:
            if found.kind == "import" and found.token is token:
                target = (Path(analysis.path).parent / found.name).resolve()
                if not target.is_file():
                    return None
                start = types.Range(types.Position(0, 0), types.Position(0, 0))
                return [types.Location(uri=positions.uri_of(str(target)), range=start)]
        return None
    if token.kind != "name":
        return None
    found = find(analysis, token)
    if found is not None:
        where = positions.range(
            analysis.path, (found.token.line, found.token.column), found.token.end
        )
        return [types.Location(uri=positions.uri_of(analysis.path), range=where)]
    for path in sorted(analysis.imports):
        parsed = imports.parsed(path)
        if parsed is None:
            continue
        for item in (*parsed.blocks, *parsed.lets):
            if item.name == token.text:
                return [positions.location(item.span)]
    return None


_SYMBOL_KINDS = {
    "model": types.SymbolKind.Class,
    "block": types.SymbolKind.Function,
    "let": types.SymbolKind.Constant,
    "input": types.SymbolKind.Variable,
}


def symbols(analysis: Analysis, positions: Positions) -> list[types.DocumentSymbol]:
    def symbol(d: Definition, children: list[types.DocumentSymbol] | None = None):
        return types.DocumentSymbol(
            name=d.name,
            detail=d.detail or d.kind,
            kind=_SYMBOL_KINDS[d.kind],
            range=positions.range(analysis.path, d.start, max(d.end, d.token.end)),
            selection_range=positions.range(
                analysis.path, (d.token.line, d.token.column), d.token.end
            ),
            children=children,
        )

    found = []
    definitions = analysis.outline.definitions
    for d in sorted(definitions, key=lambda d: d.start):
        if d.kind in ("block", "let"):
            found.append(symbol(d))
        elif d.kind == "model":
            inputs = [
                symbol(i)
                for i in definitions
                if i.kind == "input" and d.start <= (i.token.line, i.token.column) <= d.end
            ]
            found.append(symbol(d, inputs))
    return found
