"""`specc graph`: a checked model drawn with Graphviz.

One node per layer (its call as the spec would write it, its id, its parameters), the
shape of each tensor on the edge that carries it, the model's inputs and outputs as nodes
of their own shape and colour. A block instance is one node unless `expand` is set; then it
is a cluster holding its body, its input edges going straight to the layers that read them.

Graphviz's `dot` program does the layout. Without it the DOT text can still be written;
drawing SVG, PNG or PDF needs it and fails with `DrawError` saying how to install it.
The `graphviz` Python package is imported only here, when a graph is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import graphviz

from specc import ir
from specc.backends.registry import TABLE_ORDER
from specc.layers.base import ParamCount, fmt_shape
from specc.report import per_backend

# What `-o FILE` may end with: Graphviz's output format for it, None for DOT text.
FORMATS: dict[str, str | None] = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": None,
                                  ".gv": None}
# Chains longer than this are drawn top to bottom, so that the picture grows downwards as
# a page does; short ones left to right, where they fit the width of a screen.
LEFT_TO_RIGHT_MAX_NODES = 4
# A call's arguments wrap onto a new line after this many characters.
LABEL_WIDTH = 40
PNG_DPI = "144"  # Graphviz's default 96 makes the small edge labels hard to read
FONT = "Helvetica"
FILL = {"input": "#cfe2f3", "output": "#f4cccc", "weights": "#fff2cc", "merge": "#d9ead3",
        "plain": "#f3f3f3", "block": "#e6e0f3"}


class DrawError(Exception):
    """The picture cannot be drawn on this machine; the message says what to install."""


@dataclass(frozen=True)
class Endpoint:
    """Where an edge starts: the drawn node that produces a value, and the value's shape."""

    node: str
    shape: str


def draw(model: ir.Model, expand: bool = False) -> graphviz.Digraph:
    """The model as a Graphviz digraph (not yet laid out)."""
    total = model.graph.params
    picture = graphviz.Digraph(name=model.name)
    picture.attr(
        rankdir="TB" if len(drawn_nodes(model.graph, expand)) > LEFT_TO_RIGHT_MAX_NODES
        else "LR",
        label=graphviz.escape(f"{model.name} ({model.file}): {params_text(total)}"),
        labelloc="t", fontname=FONT, fontsize="14", nodesep="0.25", ranksep="0.3",
    )
    picture.attr("node", shape="box", style="rounded,filled", fontname=FONT, fontsize="10",
                 margin="0.12,0.05")
    picture.attr("edge", fontname=FONT, fontsize="9", fontcolor="#444444", color="#666666",
                 arrowsize="0.6")

    # Node names: a layer's is its block path and id joined by "/" (ids are identifiers);
    # inputs' and outputs' hold a space, so that no layer's can equal them.
    sources = {}
    for value in model.graph.inputs:
        node = f"input {value.id}"
        dtype = "" if value.dtype == "float32" else f" {value.dtype}"
        picture.node(node, graphviz.escape(f"{value.label}\n{fmt_shape(value.shape)}{dtype}"),
                     shape="ellipse", style="filled", fillcolor=FILL["input"])
        sources[value.id] = Endpoint(node, fmt_shape(value.shape))

    edges: list[tuple[Endpoint, str]] = []
    produced = add_graph(picture, model.graph, "", sources, expand, edges)
    for value_id in model.graph.outputs:
        node = f"output {value_id}"
        label = model.graph.value(value_id).label
        picture.node(node, graphviz.escape(f"output {label}"), shape="ellipse",
                     style="filled", fillcolor=FILL["output"])
        edges.append((produced[value_id], node))
    # Edges go into the top graph, after every node: an edge written inside a cluster would
    # pull both of its ends into that cluster.
    for source, target in edges:
        picture.edge(source.node, target, label=graphviz.escape(source.shape))
    return picture


def add_graph(picture: graphviz.Digraph, graph: ir.Graph, prefix: str,
              sources: dict[str, Endpoint], expand: bool,
              edges: list[tuple[Endpoint, str]]) -> dict[str, Endpoint]:
    """Draw `graph`'s nodes into `picture` (the model's graph or a block's cluster), reading
    its inputs from `sources`, and list its edges in `edges`; returns where each of its
    values is produced (inputs included), by value id."""
    produced = dict(sources)
    for node in graph.nodes:
        name = f"{prefix}{node.id}"
        inputs = [produced[value_id] for value_id in node.inputs]
        if isinstance(node, ir.BlockNode) and expand:
            with picture.subgraph(name=f"cluster_{name}") as cluster:
                cluster.attr(label=graphviz.escape(f"{node.id}: {block_call(node)}"),
                             style="rounded,dashed,filled", fillcolor="#f8f6fc",
                             color="#8e7cc3", fontsize="11", labeljust="l")
                body_sources = {value.id: source
                                for value, source in zip(node.body.inputs, inputs, strict=True)}
                body = add_graph(cluster, node.body, f"{name}/", body_sources, expand, edges)
            produced[node.output.id] = body[node.body.outputs[0]]
            continue
        if isinstance(node, ir.BlockNode):
            call, fill, extra = block_call(node), FILL["block"], {"peripheries": "2"}
        else:
            call, fill, extra = layer_call(node.layer), layer_fill(node), {}
        name_line = node.id if node.output.label == node.id else f"{node.output.label} = {node.id}"
        weights = params_text(node.params)
        sharing = node.sharing if isinstance(node, ir.LayerNode) else None
        if sharing is not None:
            call = f"{sharing.name}: {call}"
            if node.reuses:
                # A dashed line joins the later use to the first, which holds the weights.
                weights, fill = f"the weights of {sharing.first}", FILL["weights"]
                picture.edge(f"{prefix}{sharing.first}", name, style="dashed", dir="none",
                             constraint="false", color="#8e7cc3")
        picture.node(name, graphviz.escape(f"{call}\n{name_line}: {weights}"),
                     fillcolor=fill, **extra)
        edges += [(source, name) for source in inputs]
        produced.update((value.id, Endpoint(name, fmt_shape(value.shape)))
                        for value in node.results)
    return produced


def drawn_nodes(graph: ir.Graph, expand: bool) -> list[ir.Node]:
    """The nodes that will be drawn as boxes: blocks' bodies counted when expanded."""
    nodes: list[ir.Node] = []
    for node in graph.nodes:
        if isinstance(node, ir.BlockNode) and expand:
            nodes += drawn_nodes(node.body, expand)
        else:
            nodes.append(node)
    return nodes


def layer_call(layer) -> str:
    """The layer as a spec writes it: required arguments by position, then the optional ones
    that differ from their defaults by name (`conv2d(16, 3, padding=same, bias=false)`)."""
    arguments = []
    for field, info in type(layer).model_fields.items():
        if field == "kind":
            continue
        value = getattr(layer, field)
        if info.is_required():
            arguments.append(spec_value(value))
        elif value != info.default:
            arguments.append(f"{field}={spec_value(value)}")
    return wrap_call(layer.kind, arguments)


def block_call(node: ir.BlockNode) -> str:
    return wrap_call(node.block, [f"{name}={spec_value(value)}"
                                  for name, value in node.args.items()])


def wrap_call(name: str, arguments: list[str]) -> str:
    """`name(arg, arg, ...)`, broken after a comma where a line would pass LABEL_WIDTH (the
    lines are centred, so continuation lines are not indented)."""
    lines = [f"{name}("]
    for index, argument in enumerate(arguments):
        piece = argument + (", " if index < len(arguments) - 1 else "")
        if len(lines[-1]) + len(piece) > LABEL_WIDTH and lines[-1] != f"{name}(":
            lines[-1] = lines[-1].rstrip()
            lines.append("")
        lines[-1] += piece
    lines[-1] += ")"
    return "\n".join(lines)


def spec_value(value: object) -> str:
    """A validated argument value written the way the language writes it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(spec_value(item) for item in value) + "]"
    return str(value)


def layer_fill(node: ir.LayerNode) -> str:
    if len(node.inputs) > 1:
        return FILL["merge"]
    return FILL["weights"] if any(count.total for count in node.params.values()) else FILL["plain"]


def params_text(params: dict[str, ParamCount]) -> str:
    """`1,234 params`, or each backend's count where they differ (`keras 1,234 / torch
    1,250 params`, as PyTorch's recurrent layers do)."""
    if len({count.total for count in params.values()}) > 1:
        return " / ".join(per_backend(params, lambda count: f"{count.total:,}")) + " params"
    return f"{params[TABLE_ORDER[0]].total:,} params"


def write(model: ir.Model, out: str | Path, expand: bool = False) -> Path:
    """Draw `model` into `out`, whose suffix picks the format (see FORMATS)."""
    out = Path(out)
    picture = draw(model, expand)
    file_format = FORMATS[out.suffix.lower()]
    if file_format is None:
        out.write_text(picture.source, encoding="utf-8")
        return out
    if file_format == "png":
        picture.attr(dpi=PNG_DPI)
    try:
        drawn = picture.pipe(format=file_format)
    except graphviz.ExecutableNotFound as error:
        raise DrawError(
            f"drawing {out.suffix} needs Graphviz's `dot` program, which is not installed "
            "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; "
            "conda: conda install graphviz); without it, write DOT text with -o "
            f"{out.with_suffix('.dot')}"
        ) from error
    out.write_bytes(drawn)
    return out
