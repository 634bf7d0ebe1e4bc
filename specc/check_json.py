"""`specc check --json`: the check of spec files as one JSON document for other programs.

The schema is documented in docs/check-json.md and versioned by `SCHEMA_VERSION`: a field
is never renamed or given another meaning without a new version; fields may be added.
Shapes are lists of dimensions without the batch, `null` for a `?` dimension; FLOPs are
`null` when a `?` dimension makes them unknown.
"""

from __future__ import annotations

from specc import __version__, ir
from specc.backends.registry import BACKEND_NAMES
from specc.errors import Diagnostic, Span
from specc.layers.base import ParamCount, Shape

SCHEMA_VERSION = 1


def check_document(results: list[tuple[str, object]]) -> dict:
    """The whole document for `(path, CheckResult)` pairs, in the order they were checked."""
    return {
        "schema": SCHEMA_VERSION,
        "specc": __version__,
        "files": [file_entry(path, result) for path, result in results],
    }


def file_entry(path: str, result) -> dict:
    program = result.program
    return {
        "file": path,
        "ok": program is not None,
        "models": [] if program is None else [model_entry(model) for model in program.models],
        "diagnostics": [diagnostic_entry(d, path) for d in result.diagnostics.items],
    }


def model_entry(model: ir.Model) -> dict:
    graph = model.graph
    return {
        "name": model.name,
        "span": span_entry(model.span),
        "inputs": [
            {"name": value.label, "shape": shape_entry(value.shape), "dtype": value.dtype}
            for value in graph.inputs
        ],
        "outputs": [
            {"name": graph.value(output).label, "shape": shape_entry(graph.value(output).shape)}
            for output in graph.outputs
        ],
        "layers": [layer_entry(path, node) for path, node in graph.walk()],
        "totals": {"params": params_entry(graph.params), "flops": graph.flops},
    }


def layer_entry(path: tuple[str, ...], node: ir.LayerNode) -> dict:
    return {
        "id": node.id,
        "name": node.output.label,
        "kind": node.layer.kind,
        "blocks": list(path),
        "span": span_entry(node.span),
        "output_shape": shape_entry(node.output.shape),
        "params": params_entry(node.params),
        "flops": node.flops,
        # A shared layer's use: its `let` name and the node whose weights it applies (whose
        # params count them, once).
        **({"shared": {"name": node.sharing.name, "first": node.sharing.first}}
           if node.sharing is not None else {}),
        # With return_state: the final states, each named and shaped.
        **({"states": [{"name": state.label, "shape": shape_entry(state.shape)}
                       for state in node.states]} if node.states else {}),
    }


def params_entry(params: dict[str, ParamCount]) -> dict:
    return {
        backend: {
            "trainable": params[backend].trainable,
            "non_trainable": params[backend].non_trainable,
            "total": params[backend].total,
        }
        for backend in BACKEND_NAMES
    }


def shape_entry(shape: Shape) -> list[int | None]:
    return list(shape)


def span_entry(span: Span) -> dict:
    return {
        "file": span.file,
        "line": span.line,
        "column": span.column,
        "end_line": span.end_line,
        "end_column": span.end_column,
    }


def diagnostic_entry(diagnostic: Diagnostic, path: str) -> dict:
    """A diagnostic without a place in the source (an unreadable file) names the file it
    was reported for, with null line and column."""
    span = diagnostic.span
    return {
        "file": span.file if span is not None else path,
        "line": span.line if span is not None else None,
        "column": span.column if span is not None else None,
        "end_line": span.end_line if span is not None else None,
        "end_column": span.end_column if span is not None else None,
        "severity": diagnostic.severity,
        "message": diagnostic.message,
        "notes": [
            {"message": message, **span_entry(note_span)} for message, note_span in diagnostic.notes
        ],
    }
