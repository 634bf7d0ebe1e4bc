"""The table `specc check` prints: per layer its spec line, output shape and parameters;
under it the totals, the forward FLOPs and the memory (specc.memory).

Parameters are shown once when both backends agree on every row, and per backend (Keras
convention first) when any layer differs, as PyTorch's recurrent layers do.
"""

from __future__ import annotations

from specc import ir
from specc.layers.base import ParamCount, fmt_shape
from specc.memory import estimate, format_bytes


def format_flops(value: int | None) -> str:
    if value is None:
        return "unknown (a `?` dimension)"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.2f} {unit}"
    return str(value)


def _rows(graph: ir.Graph, depth: int) -> list[tuple[str, str, str, str, ParamCount, ParamCount]]:
    rows = []
    indent = "  " * depth
    for node in graph.nodes:
        name = node.id if node.output.label == node.id else f"{node.output.label} = {node.id}"
        kind = node.block if isinstance(node, ir.BlockNode) else node.layer.kind
        params = node.params
        rows.append(
            (
                indent + name,
                kind,
                str(node.span.line),
                fmt_shape(node.output.shape),
                params["tensorflow"],
                params["torch"],
            )
        )
        if isinstance(node, ir.BlockNode):
            rows += _rows(node.body, depth + 1)
    return rows


def model_table(model: ir.Model) -> str:
    graph = model.graph
    rows = [
        (
            f"{v.label}",
            "input",
            "",
            fmt_shape(v.shape) + ("" if v.dtype == "float32" else " int"),
            ParamCount(),
            ParamCount(),
        )
        for v in graph.inputs
    ]
    rows += _rows(graph, 0)
    differ = any(keras != torch for *_, keras, torch in rows)
    header = ["layer", "kind", "line", "output shape", "params (keras)" if differ else "params"]
    if differ:
        header.append("params (torch)")
    table = [header]
    for name, kind, line, shape, keras, torch in rows:
        row = [name, kind, line, shape, f"{keras.total:,}"]
        if differ:
            row.append(f"{torch.total:,}")
        table.append(row)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    right = {2, 4, 5}
    lines = [
        "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in table
    ]
    rule = "-" * len(lines[0])
    totals = graph.params
    summary = [f"model {model.name} ({model.file})", rule, lines[0], rule, *lines[1:], rule]
    for backend in ("tensorflow", "torch") if differ else ("tensorflow",):
        count = totals[backend]
        label = {"tensorflow": "keras", "torch": "torch"}[backend] if differ else ""
        prefix = f"{label} " if label else ""
        summary.append(
            f"{prefix}total params: {count.total:,} (trainable {count.trainable:,}, "
            f"non-trainable {count.non_trainable:,})"
        )
    summary.append(f"forward FLOPs per sample: {format_flops(graph.flops)}")
    summary += memory_lines(model)
    return "\n".join(summary)


def memory_lines(model: ir.Model) -> list[str]:
    """The parameter memory and a training run's, on the spec's backend (specc.memory)."""
    memory = estimate(model)
    precision = "auto, as fp32" if memory.precision == "auto" else memory.precision
    return [
        f"parameter memory: {format_bytes(memory.parameters)} (float32)",
        f"training memory ({memory.backend}, batch {memory.batch_size}, {precision}): "
        + memory.summary(),
    ]
