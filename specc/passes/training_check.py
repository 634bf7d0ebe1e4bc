"""The training sections checked against the rest of the model, and what they decide about it.

Five facts about a program depend on more than one section: which metrics the loss allows,
what early stopping (and best.pt) and the plateau schedule can monitor, whether a random
crop fits the input, whether the training loss weighs its samples (class weights need a
classifier, sample weights one loss term), which layers `train { freeze }` holds still, and
whether there is a loss to train with at all. They are decided here, once, from the checked
IR: `check_training` reports every mistake at its place in the spec during `specc check`,
and the generators read the same answers (`metric_task`, `monitor`, `plateau_monitor`,
`splits`, `weighs_samples`, `weighted_classes`, `ir.Model.frozen`) instead of working them
out again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

from specc import ast, ir
from specc.backends.registry import BACKENDS
from specc.errors import Diagnostics, mismatch
from specc.layers.base import ParamCount
from specc.passes.bind import suggest
from specc.passes.data_check import labelled_outputs
from specc.training import (
    CLASSIFICATION_METRICS,
    LOSSES,
    MATRIX_METRICS,
    REGRESSION_METRICS,
    Loss,
    Metric,
    metric_name,
)

# How outputs become predictions for the metrics, by the loss of the output they are of:
# `classes` (argmax over the last axis), `binary` (a threshold per unit) or `values`
# (regression), as each loss's `task` says; and the metrics each way supports.
METRIC_TASKS = {kind: loss.task for kind, loss in LOSSES.items() if loss.task != "values"}
TASK_METRICS = {
    "classes": CLASSIFICATION_METRICS,
    "binary": CLASSIFICATION_METRICS - {"top_k_accuracy"},
    "values": REGRESSION_METRICS,
}

# Metrics where higher is better; losses, mae, mse, rmse and mape are minimized.
HIGHER_IS_BETTER = CLASSIFICATION_METRICS | {"r2"}


@dataclass(frozen=True)
class MetricGroup:
    """The metrics of one output: those written without a label are of the first output with
    a loss and keep their names; `metrics value: mae` gives `mae_value` (suffix `_value`)."""

    value: ir.Value
    loss: Loss
    task: str  # classes, binary or values
    suffix: str
    metrics: tuple[Metric, ...]

    def names(self) -> list[str]:
        """The names each metric's values go under, in order."""
        return [metric_name(metric) + self.suffix for metric in self.metrics]

# Sections that say a model is meant to be trained; a model with none of them is an
# architecture only (checked for shapes and parameters), which needs no loss.
TRAINING_SECTIONS = ("optimizer", "metrics", "data", "augment", "train")


def metric_task(model: ir.Model) -> str:
    """How the metrics read the first output that has a loss: classes, binary or values."""
    return METRIC_TASKS.get(labelled_outputs(model)[0][1].kind, "values")


def _suffix(label: str | None) -> str:
    """What follows the names of the metrics of output `label` (none for the first output's
    unlabelled ones)."""
    return f"_{label}" if label else ""


def _metric_outputs(model: ir.Model) -> list[str | None]:
    """The label each metric is of (None: the first output with a loss), one per metric."""
    labels = list(model.metric_outputs)
    return labels + [None] * (len(model.metrics) - len(labels))


def metric_groups(model: ir.Model) -> list[MetricGroup]:
    """The model's metrics by output, in the order the metrics section first names them; a
    label that names no output is left out (check_training reports it)."""
    if not model.metrics:
        return []
    trained = {value.label: (value, loss) for value, loss in labelled_outputs(model)}
    first = labelled_outputs(model)[0][0].label
    grouped: dict[str | None, list[Metric]] = {}
    for label, metric in zip(_metric_outputs(model), model.metrics, strict=True):
        if label is None or label in trained:
            grouped.setdefault(label, []).append(metric)
    groups = []
    for label, metrics in grouped.items():
        value, loss = trained[label or first]
        groups.append(MetricGroup(value, loss, METRIC_TASKS.get(loss.kind, "values"),
                                  _suffix(label), tuple(metrics)))
    return groups


def _epoch_metrics(model: ir.Model) -> dict[str, str]:
    """The metrics each epoch reports (a matrix only goes to results.json), by name, with
    their kinds."""
    return {name: metric.kind for group in metric_groups(model)
            for name, metric in zip(group.names(), group.metrics, strict=True)
            if metric.kind not in MATRIX_METRICS}


def splits(model: ir.Model) -> tuple[bool, bool]:
    """Whether the data has a validation split and a test split (the loader holds out at
    least one sample for any fraction above 0, and reads `val_path` and `test_path`)."""
    source = model.data.source if model.data else None
    files = source.held_out_files() if source is not None else {}  # type: ignore[attr-defined]
    validation = bool(getattr(source, "validation", 0)) or "val" in files
    test = (bool(getattr(source, "test", 0)) or bool(getattr(source, "fixed_test_split", False))
            or "test" in files)
    return validation, test


def monitor(model: ir.Model) -> tuple[str, str]:
    """The value that picks the best weights (and stops early), and "min" or "max". Without
    validation data the training loss stands in for the default val_loss."""
    stopping = model.train.early_stopping
    return _watched(stopping.monitor if stopping else "val_loss", model)


def plateau_monitor(model: ir.Model) -> tuple[str, str] | None:
    """The value the plateau schedule watches, and "min" or "max" (as `monitor`); None
    without a plateau schedule."""
    schedule = model.optimizer.schedule
    return _watched(schedule.monitor, model) if schedule.kind == "plateau" else None


def _watched(name: str, model: ir.Model) -> tuple[str, str]:
    """A monitored value's name as the run reports it (val_loss is the training loss without
    validation data), and whether it is minimized or maximized."""
    if name == "val_loss" and not splits(model)[0]:
        name = "loss"
    kind = _epoch_metrics(model).get(name.removeprefix("val_"))
    return name, "max" if kind in HIGHER_IS_BETTER else "min"


def weighs_samples(model: ir.Model) -> bool:
    """Whether each training sample's loss term is weighted: by `train { class_weight }`, by
    the data's own weights (npz's `weight` array, csv's `weight` column), or by both (their
    product)."""
    source = model.data.source if model.data else None
    return model.train.class_weight is not None or getattr(source, "weight", None) is not None


def weighted_classes(model: ir.Model) -> int | None:
    """How many classes `train { class_weight }` weighs: the units of a cross_entropy output
    over [classes], 2 for a binary_cross_entropy output of one unit; None when the model's
    single loss term is no such classifier."""
    outputs = labelled_outputs(model)
    if len(outputs) != 1:
        return None
    value, loss = outputs[0]
    if loss.kind == "cross_entropy" and len(value.shape) == 1:
        return value.shape[0]
    if loss.kind == "binary_cross_entropy" and value.shape == (1,):
        return 2
    return None


def monitorable(model: ir.Model) -> list[str]:
    """The values a model's run reports each epoch, which early stopping may monitor."""
    names = ["loss"]
    if splits(model)[0]:
        names += ["val_loss", *(f"val_{name}" for name in _epoch_metrics(model))]
    return names


def check_training(spec: ast.Model, model: ir.Model, diags: Diagnostics) -> None:
    """Report, each at its place, what the training sections ask that the model cannot do."""
    if not model.losses:
        given = [s.keyword for s in spec.sections if s.keyword in TRAINING_SECTIONS]
        if given:
            diags.error(spec.name_span, mismatch(
                f"model `{model.name}` has a `{given[0]}` section but no `loss` to train with",
                "a loss section, e.g. `loss cross_entropy()`", "none"))
        return
    _check_metrics(spec, model, diags)
    _check_monitor(spec, model, diags)
    _check_plateau_monitor(spec, model, diags)
    _check_init_from(spec, model, diags)
    _check_crops(spec, model, diags)
    _check_weights(spec, model, diags)


def _check_metrics(spec: ast.Model, model: ir.Model, diags: Diagnostics) -> None:
    trained = {value.label: (value, loss) for value, loss in labelled_outputs(model)}
    seen: set[str] = set()
    for call, label, metric in zip(spec.metrics, spec.metric_outputs, model.metrics,
                                   strict=True):
        if label is not None and label.name not in trained:
            diags.error(label.span, mismatch(
                f"metrics for `{label.name}`, which is not an output with a loss",
                "one of " + ", ".join(trained), label.name))
            continue
        value, loss = trained[label.name] if label else labelled_outputs(model)[0]
        task = METRIC_TASKS.get(loss.kind, "values")
        if metric.kind not in TASK_METRICS[task]:
            diags.error(call.name_span, mismatch(
                f"metric {metric.kind} does not fit the {loss.kind} loss on `{value.label}`",
                "one of " + ", ".join(sorted(TASK_METRICS[task])), metric.kind))
        name = metric_name(metric) + _suffix(label and label.name)
        if name in seen:
            diags.error(call.span, mismatch(
                f"metric `{name}` is given twice", "each metric once per output", call.name))
        seen.add(name)


def _check_monitor(spec: ast.Model, model: ir.Model, diags: Diagnostics) -> None:
    name, _ = monitor(model)
    available = monitorable(model)
    if name in available:
        return
    setting = next(s for s in spec.settings if s.key == "early_stopping")
    value = setting.value
    span = setting.span
    if isinstance(value, ast.Call):
        span = next((k.value.span for k in value.keywords if k.name == "monitor"),
                    value.args[0].span if value.args else value.span)
    _unreported(diags, span, "early_stopping monitors", name, model)


def _check_plateau_monitor(spec: ast.Model, model: ir.Model, diags: Diagnostics) -> None:
    watched = plateau_monitor(model)
    if watched is None or watched[0] in monitorable(model):
        return
    schedule = next((k.value for k in spec.optimizer.keywords if k.name == "schedule"),
                    spec.optimizer)
    span = schedule.span  # a `let` name, or the call without a monitor= of its own
    if isinstance(schedule, ast.Call):
        span = next((k.value.span for k in schedule.keywords if k.name == "monitor"), span)
    _unreported(diags, span, "the plateau schedule monitors", watched[0], model)


def _check_init_from(spec: ast.Model, model: ir.Model, diags: Diagnostics) -> None:
    """init_from names a checkpoint of the model's backend (by its suffix), or a directory."""
    path = model.train.init_from
    suffix = BACKENDS[model.train.backend].checkpoint_suffix
    if path is None or PurePath(path).suffix in ("", suffix):
        return
    setting = next(s for s in spec.settings if s.key == "init_from")
    diags.error(setting.value.span, mismatch(
        f"init_from names no checkpoint of the {model.train.backend} program",
        f"a {suffix} file, or a run directory", repr(path)))


def _unreported(diags: Diagnostics, span, what: str, name: str, model: ir.Model) -> None:
    """The error for a monitored value that no epoch reports: what the run does report."""
    no_validation = "" if splits(model)[0] else " (the data has no validation split)"
    diags.error(span, mismatch(f"{what} a value this model does not report{no_validation}",
                               "one of " + ", ".join(monitorable(model)), repr(name)))


def _check_crops(spec: ast.Model, model: ir.Model, diags: Diagnostics) -> None:
    """Augmentation keeps the image size: a random crop must cut back to the input's size."""
    image = model.graph.inputs[0]
    for call, step in zip(spec.augment, model.augment, strict=True):
        if step.kind != "random_crop":
            continue
        size = step.size if isinstance(step.size, list) else [step.size, step.size]
        if tuple(size) != tuple(image.shape[:2]):
            size_arg = next((k.value for k in call.keywords if k.name == "size"),
                            call.args[0] if call.args else call)
            diags.error(size_arg.span, mismatch(
                "random_crop must cut windows of the input's height and width",
                list(image.shape[:2]), size))


# The losses whose generated code gives each sample's loss, which class and sample weights
# scale before the mean; the others are written as a mean over the batch.
WEIGHABLE_LOSSES = frozenset({"cross_entropy", "binary_cross_entropy", "mse", "mae", "huber"})


def _weights_source(spec: ast.Model, setting) -> tuple:
    """Where the weights are asked for (class_weight's value, else the data's `weight=`) and
    how to name them."""
    if setting is not None:
        return setting.value.span, "class_weight"
    weight = next((k for k in spec.data.keywords if k.name == "weight"), None)  # type: ignore[union-attr]
    return (weight.value.span if weight else spec.span), "the data's sample weights"


def _check_weights(spec: ast.Model, model: ir.Model, diags: Diagnostics) -> None:
    """Sample weights need one loss term; class weights a classifier, one weight per class."""
    if not weighs_samples(model):
        return
    outputs = labelled_outputs(model)
    setting = next((s for s in spec.settings if s.key == "class_weight"), None)
    if len(outputs) > 1:
        span, what = _weights_source(spec, setting)
        diags.error(span, mismatch(f"{what} weigh the loss of a model with one loss term",
                                   "one output with a loss", f"{len(outputs)} loss terms"))
        return
    value, loss = outputs[0]
    if loss.kind not in WEIGHABLE_LOSSES:
        span, what = _weights_source(spec, setting)
        diags.error(span, mismatch(
            f"{what}: weighting needs each sample's own loss, which {loss.kind} does not give",
            " or ".join(sorted(WEIGHABLE_LOSSES)), loss.kind))
        return
    weights = model.train.class_weight
    if setting is None or weights is None:
        return
    classes = weighted_classes(model)
    if classes is None:
        diags.error(setting.value.span, mismatch(
            f"class_weight weighs the classes of a classifier, but `{value.label}` is trained "
            f"by {loss.kind} over {list(value.shape)}",
            "cross_entropy over [classes] or binary_cross_entropy over [1]",
            f"{loss.kind} over {list(value.shape)}"))
    elif isinstance(weights, list) and len(weights) != classes:
        diags.error(setting.value.span, mismatch(
            f"class_weight gives one weight per class of `{value.label}` ({classes} classes)",
            f"{classes} weights", f"{len(weights)} weights"))


def freeze_layers(spec: ast.Model, nodes: tuple[ir.Node, ...], freeze: tuple[str, ...],
                  diags: Diagnostics) -> tuple[tuple[ir.Node, ...], tuple[tuple[str, ...], ...]]:
    """The graph's nodes with the parameters of the layers `train { freeze }` names counted
    as non-trainable, and the paths of those layer nodes. A name is a node's id or its graph
    name, as `specc check` shows them; a block's freezes every layer inside it, and a dotted
    name (`res_1.dense_2`) one inside a block. An unknown name is an error at it."""
    if not freeze:
        return nodes, ()
    names = _node_names(nodes, ())
    setting = next(s for s in spec.settings if s.key == "freeze")
    items = setting.value.items if isinstance(setting.value, ast.ListExpr) else []
    spans = ([item.span for item in items] if len(items) == len(freeze)
             else [setting.span] * len(freeze))
    frozen: set[tuple[str, ...]] = set()
    for name, span in zip(freeze, spans, strict=True):
        if name not in names:
            diags.error(span, mismatch(
                f"freeze names no layer of `{spec.name}`",
                "a layer name as `specc check` shows it", repr(name))
                + suggest(name, list(names)))
            continue
        frozen.update(names[name])
    nodes = _frozen(nodes, (), frozen)
    if frozen and not any(count.trainable for _, node in ir.Graph.model_construct(
            inputs=(), nodes=nodes, outputs=()).walk() for count in node.params.values()):
        diags.error(setting.span, "freeze leaves no weights to train (expected some layer "
                                  "with weights left out of it)")
    return nodes, tuple(sorted(frozen))


def _node_names(nodes: tuple[ir.Node, ...],
                path: tuple[str, ...]) -> dict[str, list[tuple[str, ...]]]:
    """Each name a node of `nodes` (inside the blocks `path`) goes by, dotted after the
    block's, and the paths of the layer nodes it stands for."""
    names: dict[str, list[tuple[str, ...]]] = {}
    prefix = "".join(f"{block}." for block in path)
    for node in nodes:
        if isinstance(node, ir.BlockNode):
            inner = _node_names(node.body.nodes, (*path, node.id))
            layers = [(*path, node.id, *inner, layer.id) for inner, layer in node.body.walk()]
            names.update(inner)
        else:
            layers = [(*path, node.id)]
        names[prefix + node.id] = layers
        names.setdefault(prefix + node.output.label, layers)
    return names


def _frozen(nodes: tuple[ir.Node, ...], path: tuple[str, ...],
            frozen: set[tuple[str, ...]]) -> tuple[ir.Node, ...]:
    """`nodes` with every parameter of the frozen layer nodes counted as non-trainable."""
    changed = []
    for node in nodes:
        if isinstance(node, ir.BlockNode):
            body = node.body.model_copy(update={"nodes": _frozen(node.body.nodes,
                                                                (*path, node.id), frozen)})
            node = node.model_copy(update={"body": body})
        elif (*path, node.id) in frozen:
            node = node.model_copy(update={"params": {
                backend: ParamCount(0, count.total) for backend, count in node.params.items()}})
        changed.append(node)
    return tuple(changed)
