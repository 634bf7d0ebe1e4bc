"""The table `specc check` prints: per layer its spec line, output shape and parameters;
under it the totals, the forward FLOPs and the memory (specc.memory).

Parameters are shown once when every backend agrees on every row, and per backend (in the
registry's TABLE_ORDER, Keras's convention first) when any layer differs, as PyTorch's
recurrent layers do.
"""

from __future__ import annotations

from specc import ir
from specc.backends.registry import BACKENDS, TABLE_ORDER
from specc.layers.base import ParamCount, fmt_shape
from specc.memory import estimate, format_bytes


def format_flops(value: int | None) -> str:
    if value is None:
        return "unknown (a `?` dimension)"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.2f} {unit}"
    return str(value)


Row = tuple[str, str, str, str, dict[str, ParamCount]]  # name, kind, line, shape, params


def _rows(graph: ir.Graph, path: tuple[str, ...], frozen: tuple[tuple[str, ...], ...]
          ) -> list[Row]:
    """The rows of `graph`'s nodes (inside the blocks `path`), those of the layers that
    `train { freeze }` holds still marked."""
    rows = []
    indent = "  " * len(path)
    for node in graph.nodes:
        name = node.id if node.output.label == node.id else f"{node.output.label} = {node.id}"
        if len(node.results) > 1:  # the further results too: `seq, h, c = lstm_1`
            name = f"{', '.join(value.label for value in node.results)} = {node.id}"
        kind = node.block if isinstance(node, ir.BlockNode) else node.layer.kind
        if (*path, node.id) in frozen:
            kind += " (frozen)"
        if isinstance(node, ir.LayerNode) and node.sharing is not None:
            kind += f" (shared {node.sharing.name})"  # the weights count at its first use
        rows.append(
            (indent + name, kind, str(node.span.line),
             ", ".join(fmt_shape(value.shape) for value in node.results), node.params)
        )
        if isinstance(node, ir.BlockNode):
            rows += _rows(node.body, (*path, node.id), frozen)
    return rows


def model_table(model: ir.Model) -> str:
    graph = model.graph
    rows = [
        (
            f"{v.label}",
            "input",
            "",
            fmt_shape(v.shape) + ("" if v.dtype == "float32" else " int"),
            dict.fromkeys(TABLE_ORDER, ParamCount()),
        )
        for v in graph.inputs
    ]
    rows += _rows(graph, (), model.frozen)
    differ = any(differs(params) for *_, params in rows)
    columns = TABLE_ORDER if differ else TABLE_ORDER[:1]
    header = ["layer", "kind", "line", "output shape"]
    header += [f"params ({BACKENDS[b].label})" for b in columns] if differ else ["params"]
    table = [header]
    for name, kind, line, shape, params in rows:
        table.append([name, kind, line, shape, *(f"{params[b].total:,}" for b in columns)])
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    right = {2, *range(4, len(header))}
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
    for backend in columns:
        count = totals[backend]
        prefix = f"{BACKENDS[backend].label} " if differ else ""
        summary.append(
            f"{prefix}total params: {count.total:,} (trainable {count.trainable:,}, "
            f"non-trainable {count.non_trainable:,})"
        )
    summary.append(f"forward FLOPs per sample: {format_flops(graph.flops)}")
    summary += memory_lines(model)
    return "\n".join(summary)


def differs(params: dict[str, ParamCount]) -> bool:
    """Whether the backends count these parameters differently."""
    return len(set(params.values())) > 1


def per_backend(params: dict[str, ParamCount], show) -> list[str]:
    """`show(count)` for each backend in TABLE_ORDER, each after its label."""
    return [f"{BACKENDS[b].label} {show(params[b])}" for b in TABLE_ORDER]


def memory_lines(model: ir.Model) -> list[str]:
    """The parameter memory and a training run's, on the spec's backend (specc.memory)."""
    memory = estimate(model)
    precision = "auto, as fp32" if memory.precision == "auto" else memory.precision
    return [
        f"parameter memory: {format_bytes(memory.parameters)} (float32)",
        f"training memory ({memory.backend}, batch {memory.batch_size}, {precision}): "
        + memory.summary(),
    ]
