"""The data check: does what the `data` section yields fit the model it trains?

Compares the source's description (`specc.data_sources`, which reads at most file headers)
with the model's inputs, outputs and losses, and reports every mismatch at the data
section's span:

- one array of samples per input, each fitting the input by the reshape rule (same number
  of values; see `specc.data_sources.fits`), token ids only for `int` inputs and float
  features only for `float` inputs, token ids within the vocabulary of the embedding that
  reads them;
- labels per output with a loss, of the form its `labels` says (`specc.training`): class ids
  for `cross_entropy` (with at least as many output units as classes); 0/1 labels and one
  unit per label for `binary_cross_entropy`, `binary_focal`, `hinge` and `squared_hinge`;
  float rows shaped like the output (one-hot or probabilities over its last axis) for
  `categorical_cross_entropy`, `categorical_focal` and `kl_divergence`; continuous targets
  with as many values as the output for the others.

What is unknown at check time (a file not there yet, the type of a CSV column) is checked
by the generated program when it loads the data, before training.
"""

from __future__ import annotations

from specc import ir
from specc.data_sources import DataSourceError, Description, Features, Labels, fits, resolve_path
from specc.errors import Diagnostic, mismatch
from specc.layers.base import fmt_shape, numel
from specc.training import LOSSES, Loss

_TYPE_WORDS = {"float32": "float", "int64": "int"}
REGRESSION_LOSSES = frozenset(kind for kind, loss in LOSSES.items()
                              if loss.labels in ("values", "counts"))


def check_data(model: ir.Model) -> list[Diagnostic]:
    """Every way the model's data section does not fit the model, as errors at its span."""
    if model.data is None:
        return []
    try:
        description = model.data.source.describe(model.data.spec_dir)  # type: ignore[attr-defined]
    except DataSourceError as error:
        return [Diagnostic(str(error), model.data.span)]
    problems = _check_description(description, model)
    source = model.data.source
    for split, path in source.held_out_files().items():  # type: ignore[attr-defined]
        argument = f"{split}_path"
        file = resolve_path(path, model.data.spec_dir)
        try:
            held_out = source.read_alike(path).describe(model.data.spec_dir)  # type: ignore[attr-defined]
        except DataSourceError as error:
            problems.append(f"{argument} {file}: {error}")
            continue
        problems += [f"{argument} {file}: {problem}"
                     for problem in _check_description(held_out, model)]
    return [Diagnostic(problem, model.data.span) for problem in problems]


def _check_description(description: Description, model: ir.Model) -> list[str]:
    problems: list[str] = []
    if description.features is not None:
        problems += _check_features(description.features, model.graph)
    if description.labels is not None:
        problems += _check_labels(description.labels, labelled_outputs(model))
    return problems


# --- what the model takes and gives (also read by the loader generator) --------------------


def labelled_outputs(model: ir.Model) -> list[tuple[ir.Value, Loss]]:
    """The outputs that a loss trains, in output order, each with its loss: the data must
    give one array of labels for each."""
    losses = {term.output: term.loss for term in model.losses}
    return [
        (model.graph.value(output), losses[output])
        for output in model.graph.outputs
        if output in losses
    ]


def token_vocab(graph: ir.Graph, value_id: str) -> int | None:
    """The vocabulary of the embedding that looks up the token ids in `value_id` (the
    smallest, if several do), following the ids into blocks and through layers that pass
    int values on (reshape, identity, ...); None when no embedding reads them."""
    vocabs: list[int | None] = []
    for node in graph.nodes:
        if value_id not in node.inputs:
            continue
        if isinstance(node, ir.BlockNode):
            inner = node.body.inputs[node.inputs.index(value_id)].id
            vocabs.append(token_vocab(node.body, inner))
        elif node.layer.kind == "embedding":
            vocabs.append(node.layer.vocab)  # type: ignore[union-attr]
            continue
        if node.output.dtype == "int64":
            vocabs.append(token_vocab(graph, node.output.id))
    return min((v for v in vocabs if v is not None), default=None)


def declaration(value: ir.Value) -> str:
    """A value as the spec declares an input: `image: float[28, 28, 1]`."""
    return f"{value.label}: {_TYPE_WORDS[value.dtype]}{fmt_shape(value.shape)}"


def _names(values: list[ir.Value] | tuple[ir.Value, ...]) -> str:
    return ", ".join(f"`{v.label}`" for v in values)


# --- features -----------------------------------------------------------------------------


def _check_features(features: tuple[Features, ...], graph: ir.Graph) -> list[str]:
    inputs = graph.inputs
    if len(features) != len(inputs):
        return [
            mismatch(
                "the data gives one array of samples per model input",
                f"{len(inputs)} for {_names(inputs)}",
                f"{len(features)}: {', '.join(f.what for f in features)}",
            )
        ]
    problems = []
    for feature, value in zip(features, inputs, strict=True):
        problem = _feature_fit(feature, value, graph)
        if problem:
            problems.append(problem)
    return problems


def _feature_fit(feature: Features, value: ir.Value, graph: ir.Graph) -> str | None:
    what, sample = feature.what, feature.shape
    if feature.dtype == "int64" and value.dtype == "float32":
        return mismatch(
            f"{what} yields int token ids, which cannot feed input `{declaration(value)}`",
            "an `int` input",
            "`float`",
        )
    if feature.dtype == "float32" and value.dtype == "int64":
        return mismatch(
            f"{what} yields float features, which cannot feed input `{declaration(value)}`",
            "a `float` input (`int` inputs take token ids)",
            "`int`",
        )
    if sample is not None and not fits(sample, value.shape):
        if None in value.shape:
            return mismatch(
                f"{what} yields samples that cannot feed input `{declaration(value)}`",
                f"shape {fmt_shape(value.shape)}, where `?` takes any size",
                fmt_shape(sample),
            )
        return (
            f"{what} yields samples of shape {fmt_shape(sample)} ({numel(sample)} values), "
            f"which cannot feed input `{declaration(value)}` ({numel(value.shape)} values)"
        )
    if feature.vocab is not None and value.dtype == "int64":
        limit = token_vocab(graph, value.id)
        if limit is not None and feature.vocab > limit:
            return mismatch(
                f"{what} yields token ids up to {feature.vocab - 1}, beyond the "
                f"vocabulary of the embedding that reads input `{value.label}`",
                f"vocab <= {limit}",
                f"vocab={feature.vocab}",
            )
    return None


# --- labels -------------------------------------------------------------------------------


def _check_labels(labels: tuple[Labels, ...], outputs: list[tuple[ir.Value, Loss]]) -> list[str]:
    if len(labels) != len(outputs):
        values = [value for value, _ in outputs]
        return [
            mismatch(
                "the data gives one array of labels per output with a loss",
                f"{len(outputs)} for {_names(values)}",
                f"{len(labels)}: {', '.join(label.what for label in labels)}",
            )
        ]
    problems = []
    for label, (value, loss) in zip(labels, outputs, strict=True):
        problem = _label_fit(label, value, loss.kind)
        if problem:
            problems.append(problem)
    return problems


def _label_fit(labels: Labels, output: ir.Value, loss: str) -> str | None:
    what = labels.what
    where = f"loss {loss}() on output `{output.label}`"
    shown = f"`{output.label}` {fmt_shape(output.shape)}"
    units = output.shape[-1] if output.shape else 1
    values = numel(output.shape)
    per_sample = None if labels.shape is None else numel(labels.shape)

    if loss == "cross_entropy":
        if labels.kind == "values":
            return mismatch(
                f"{where} does not fit the labels of {what}",
                "integer class labels",
                "continuous targets",
            )
        if labels.shape is not None and labels.shape != output.shape[:-1]:
            return mismatch(
                f"{where} needs one class id per sample and position of output "
                f"{shown} (its last axis holds the classes)",
                f"labels of shape {fmt_shape(output.shape[:-1])}",
                f"{fmt_shape(labels.shape)} from {what}",
            )
        if labels.classes is not None and units is not None and units < labels.classes:
            return mismatch(
                f"output {shown} has fewer units than {what} has classes",
                f"at least {labels.classes} units",
                units,
            )
    elif LOSSES[loss].labels == "distributions":
        if labels.kind == "classes":
            return mismatch(
                f"{where} needs a float row per sample over the classes of output {shown} "
                f"(one-hot or probabilities), but {what} gives class ids",
                f"float labels of shape {fmt_shape(output.shape)}",
                "class ids (use cross_entropy())",
            )
        if labels.shape is not None and labels.shape != output.shape:
            return mismatch(
                f"{where} needs labels shaped like output {shown}",
                f"float labels of shape {fmt_shape(output.shape)}",
                f"{fmt_shape(labels.shape)} from {what}",
            )
    elif LOSSES[loss].labels in ("binary", "signs"):
        if labels.classes is not None and labels.classes != 2:
            return mismatch(
                f"{where} needs 0/1 labels, but {what} has {labels.classes} classes",
                "2 classes",
                f"{labels.classes} (use cross_entropy())",
            )
        if per_sample is not None and values is not None and per_sample != values:
            hint = " (use cross_entropy() for one unit per class)" if per_sample == 1 else ""
            return mismatch(
                f"{where} needs one unit per 0/1 label of {what}",
                f"{per_sample} unit{'s' if per_sample != 1 else ''}",
                f"{values}{hint}",
            )
    elif loss in REGRESSION_LOSSES:
        if labels.kind == "classes":
            classes = f" ({labels.classes} classes)" if labels.classes else ""
            return mismatch(
                f"{where} does not fit the labels of {what}",
                "continuous targets",
                f"class labels{classes}",
            )
        if per_sample is not None and values is not None and per_sample != values:
            return (
                f"{what} yields targets of shape {fmt_shape(labels.shape or ())} "
                f"({per_sample} value{'s' if per_sample != 1 else ''}), which cannot train "
                f"output {shown} ({values} values)"
            )
    return None
