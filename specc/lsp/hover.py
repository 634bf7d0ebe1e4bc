"""Hover: what a name in a spec stands for, with the figures `specc check` computes.

- a layer call: its kind, signature, and for each place the layer is built (a block used
  three times builds its layers three times) the output shape, parameters (per backend where
  they differ) and FLOPs;
- a block call: the block's signature and its expansion's totals;
- a model name: the model's inputs, outputs and totals;
- a tensor name: its shape; a training-section kind: its signature.

Figures need a successful check; while the file has errors, hover shows what the text says.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from lsprotocol import types

from specc import ir
from specc.backends.registry import TABLE_ORDER
from specc.layers.base import ParamCount, fmt_shape
from specc.lsp import catalog
from specc.lsp.analysis import Analysis, CallSite, Definition, ImportCache, Token
from specc.lsp.navigation import find
from specc.lsp.positions import Positions, same_file
from specc.report import differs, format_flops, per_backend

# Instances listed in one hover; a block used more often shows the first ones and a count.
_MAX_ROWS = 8


@dataclass(frozen=True)
class Built:
    """One node the check built from a call, and the graph it belongs to."""

    node: ir.Node
    graph: ir.Graph


@dataclass(frozen=True)
class Figures:
    """Where hover reads shapes and costs: the current check's program, or while the text
    has errors the last one that checked, through a map of the lines unchanged since."""

    program: ir.Program | None
    lines: dict[int, int] | None  # this text's line → that program's line; None: the same
    note: str  # said under figures that come from an earlier version

    def line(self, line: int) -> int | None:
        return line if self.lines is None else self.lines.get(line)


def figures(analysis: Analysis) -> Figures:
    if analysis.program is not None or analysis.last_checked is None:
        return Figures(analysis.program, None, "")
    earlier = analysis.last_checked
    matcher = difflib.SequenceMatcher(None, earlier.lines, analysis.lines, autojunk=False)
    lines = {}
    for tag, old_start, _, new_start, new_end in matcher.get_opcodes():
        if tag == "equal":
            for offset in range(new_end - new_start):
                lines[new_start + offset] = old_start + offset
    note = "_figures of the last version that checked: the file has errors now_"
    return Figures(earlier.program, lines, note)


def built_from(found: Figures, file: str, line: int, column: int) -> list[Built]:
    """Every node built from the call written at (line, column) of `file` (from 0)."""
    program = found.program
    mapped = found.line(line)
    if program is None or mapped is None:
        return []
    line, column = mapped + 1, column + 1  # the checker counts from 1
    found: list[Built] = []

    def visit(graph: ir.Graph) -> None:
        for node in graph.nodes:
            span = node.span
            if span.line == line and span.column == column and same_file(span.file, file):
                found.append(Built(node, graph))
            if isinstance(node, ir.BlockNode):
                visit(node.body)

    for model in program.models:
        visit(model.graph)
    return found


def params_text(counts: dict[str, ParamCount]) -> str:
    def one(count: ParamCount) -> str:
        extra = f" ({count.non_trainable:,} non-trainable)" if count.non_trainable else ""
        return f"{count.total:,}{extra}"

    if differs(counts):
        return " · ".join(per_backend(counts, one))
    return one(counts[TABLE_ORDER[0]])


def _table(rows: list[tuple[str, str, str, str]]) -> list[str]:
    """Rows of (input, output, params, FLOPs), identical ones counted once."""
    counted: dict[tuple[str, str, str, str], int] = {}
    for row in rows:
        counted[row] = counted.get(row, 0) + 1
    lines = ["| input | output | params | FLOPs |", "|---|---|---|---|"]
    for (shape_in, shape_out, params, flops), times in list(counted.items())[:_MAX_ROWS]:
        repeat = f" ×{times}" if times > 1 else ""
        lines.append(f"| {shape_in} | {shape_out}{repeat} | {params} | {flops} |")
    if len(counted) > _MAX_ROWS:
        lines.append(f"\n…and {len(counted) - _MAX_ROWS} more")
    return lines


def _row(built: Built) -> tuple[str, str, str, str]:
    node, graph = built.node, built.graph
    inputs = ", ".join(f"`{fmt_shape(graph.value(i).shape)}`" for i in node.inputs)
    return (
        inputs,
        f"`{fmt_shape(node.output.shape)}`",
        params_text(node.params),
        format_flops(node.flops),
    )


def _call_hover(analysis: Analysis, call: CallSite, imports: ImportCache) -> list[str]:
    name = call.name.text
    source = figures(analysis)
    built = built_from(source, analysis.path, call.name.line, call.name.column)
    block = _block_signature(analysis, name, imports)
    if block is not None:
        lines = [f"**{name}** · block", "```spec", f"block {name}{block}", "```"]
        if built:
            lines += [f"built {len(built)} time{'s' if len(built) != 1 else ''}", ""]
            lines += _table([_row(b) for b in built]) + _note(source)
        return lines
    found = catalog.family_of(name, call.family)
    if found is None:
        return []
    family, cls = found
    lines = [f"**{name}** · {family}", "```spec", catalog.signature(name, cls), "```"]
    description = catalog.describe(cls)
    if description:
        lines += [description, ""]
    if built:
        lines += _table([_row(b) for b in built]) + _note(source)
    elif family == "layer" and analysis.program is None:
        lines.append("_shapes and parameters appear once the file checks without errors_")
    return lines


def _note(source: Figures) -> list[str]:
    return ["", source.note] if source.note else []


def _block_signature(analysis: Analysis, name: str, imports: ImportCache) -> str | None:
    for d in analysis.outline.definitions:
        if d.kind == "block" and d.name == name:
            return d.detail
    for path in sorted(analysis.imports):
        parsed = imports.parsed(path)
        for block in parsed.blocks if parsed is not None else ():
            if block.name == name:
                params = ", ".join(p.name for p in block.params)
                return f"({params})  # from {path}"
    return None


def _model_hover(analysis: Analysis, name: str) -> list[str]:
    lines = [f"**model {name}**"]
    program = analysis.program
    model = next((m for m in program.models if m.name == name), None) if program else None
    if model is None:
        return lines
    graph = model.graph
    for value in graph.inputs:
        lines.append(f"- input `{value.label}`: `{fmt_shape(value.shape)}`")
    for value_id in graph.outputs:
        value = graph.value(value_id)
        lines.append(f"- output `{value.label}`: `{fmt_shape(value.shape)}`")
    lines.append(f"- params: {params_text(graph.params)}")
    lines.append(f"- forward FLOPs per sample: {format_flops(graph.flops)}")
    return lines


def _producer(analysis: Analysis, binding: Definition) -> CallSite | None:
    """The last call of the chain that `binding` (a tensor definition) binds."""
    outline = analysis.outline
    later = [
        d.token
        for d in outline.definitions
        if d.scope is binding.scope
        and (d.token.line, d.token.column) > (binding.token.line, binding.token.column)
    ]
    stop = min(((t.line, t.column) for t in later), default=None)
    if stop is None and binding.scope is not None and binding.scope.end is not None:
        stop = (binding.scope.end.line, binding.scope.end.column)
    chain = [
        c
        for c in outline.calls
        if c.frame is binding.scope
        and (binding.token.line, binding.token.column) < (c.name.line, c.name.column)
        and (stop is None or (c.name.line, c.name.column) < stop)
    ]
    return chain[-1] if chain else None


def _tensor_hover(analysis: Analysis, token: Token) -> list[str]:
    found = find(analysis, token)
    if found is None and token.text == "in":
        return ["**in** · the block's input"]
    if found is None or found.kind not in ("tensor", "input", "shared"):
        return []
    program = analysis.program
    if found.kind == "shared":
        return _shared_hover(program, analysis.path, token.text)
    if found.kind == "input":
        lines = [f"**{token.text}** · input"]
        for model in program.models if program else ():
            for value in model.graph.inputs:
                if value.label == token.text and same_file(model.file, analysis.path):
                    lines.append(f"shape `{fmt_shape(value.shape)}` ({value.dtype})")
        return lines
    lines = [f"**{token.text}** · tensor"]
    producer = _producer(analysis, found)
    if producer is None:
        return lines
    built = built_from(figures(analysis), analysis.path, producer.name.line, producer.name.column)
    shapes = list(dict.fromkeys(fmt_shape(b.node.output.shape) for b in built))
    if shapes:
        lines.append("shape " + ", ".join(f"`{s}`" for s in shapes[:_MAX_ROWS]))
    return lines


def _shared_hover(program: ir.Program | None, path: str, name: str) -> list[str]:
    """A graph's shared layer: its uses, their outputs and the one set of weights."""
    lines = [f"**{name}** · shared layer"]
    uses = [
        node
        for model in (program.models if program else ())
        if same_file(model.file, path)
        for node in model.graph.nodes
        if isinstance(node, ir.LayerNode) and node.sharing is not None
        and node.sharing.name == name
    ]
    if uses:
        count = f"{len(uses)} use{'s' * (len(uses) != 1)}"
        lines.append(f"{count}, one set of weights: {params_text(uses[0].params)}")
        shapes = ", ".join(f"`{fmt_shape(node.output.shape)}`" for node in uses[:_MAX_ROWS])
        lines.append(f"output shape at each use: {shapes}")
    return lines


def _argument_hover(analysis: Analysis, token: Token, imports: ImportCache) -> list[str]:
    """`padding` in `conv2d(..., padding=same)`: the argument's type and default."""
    outline = analysis.outline
    index = outline.tokens.index(token)
    following = outline.tokens[index + 1] if index + 1 < len(outline.tokens) else None
    frame = outline.frame_at(token.line, token.column)
    if following is None or following.text != "=" or frame is None or frame.kind != "call":
        return []
    if _block_signature(analysis, frame.name, imports) is not None:
        return [f"**{token.text}** · parameter of block `{frame.name}`"]
    site = next(
        (c for c in outline.calls if c.name.end == (frame.start.line, frame.start.column)), None
    )
    found = catalog.family_of(frame.name, site.family if site is not None else None)
    if found is None:
        return []
    argument = next((a for a in catalog.arguments(found[1]) if a.name == token.text), None)
    if argument is None:
        return []
    default = "required" if argument.default is None else f"default `{argument.default}`"
    return [
        f"**{token.text}** · argument of {found[0]} `{frame.name}`",
        "",
        f"{argument.type}; {default}",
    ]


def _name_hover(analysis: Analysis, token: Token) -> list[str]:
    """A constant or a block parameter: where it is defined, as written there."""
    found = find(analysis, token)
    if found is None or found.kind not in ("let", "param"):
        return []
    text = analysis.lines[found.start[0]] if found.start[0] < len(analysis.lines) else ""
    written = text.split("#", 1)[0].strip()
    if found.kind == "let":
        return [f"**{found.name}** · constant", "```spec", written, "```"]
    block = found.scope.name if found.scope is not None else ""
    return [f"**{found.name}** · parameter of block `{block}`"]


def hover(
    analysis: Analysis, positions: Positions, line: int, column: int, imports: ImportCache
) -> types.Hover | None:
    outline = analysis.outline
    token = outline.token_at(line, column)
    if token is None or token.kind != "name":
        return None
    call = next((c for c in outline.calls if c.name is token), None)
    if call is not None:
        lines = _call_hover(analysis, call, imports)
    elif any(d.kind == "model" and d.token is token for d in outline.definitions):
        lines = _model_hover(analysis, token.text)
    else:
        lines = (
            _argument_hover(analysis, token, imports)
            or _name_hover(analysis, token)
            or _tensor_hover(analysis, token)
        )
    if not lines:
        return None
    return types.Hover(
        contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value="\n".join(lines)),
        range=positions.range(analysis.path, (token.line, token.column), token.end),
    )
