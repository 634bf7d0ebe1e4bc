"""The training sections checked against the rest of the model, and what they decide about it.

Five facts about a program depend on more than one section: which metrics the loss allows,
what early stopping (and best.pt) and the plateau schedule can monitor, whether a random
crop fits the input, which layers `train { freeze }` holds still, and whether there is a
loss to train with at all. They are decided here, once, from the checked IR:
`check_training` reports every mistake at its place in the spec during `specc check`, and
the backends' train.py generators read the same answers (`metric_task`, `monitor`,
`plateau_monitor`, `splits`, `ir.Model.frozen`) instead of working them out again.
"""

from __future__ import annotations

from pathlib import PurePath

from specc import ast, ir
from specc.backends.registry import BACKENDS
from specc.errors import Diagnostics, mismatch
from specc.layers.base import ParamCount
from specc.passes.bind import suggest
from specc.passes.data_check import labelled_outputs
from specc.training import CLASSIFICATION_METRICS

# How outputs become predictions for the metrics, by the loss of the first output that has
# one: `classes` (argmax over the last axis), `binary` (a threshold per unit) or `values`
# (regression); and the metrics each way supports.
METRIC_TASKS = {"cross_entropy": "classes", "binary_cross_entropy": "binary"}
TASK_METRICS = {
    "classes": CLASSIFICATION_METRICS,
    "binary": CLASSIFICATION_METRICS - {"top_k_accuracy"},
    "values": frozenset({"mae", "mse"}),
}

# Metrics where higher is better; losses, mae and mse are minimized.
HIGHER_IS_BETTER = CLASSIFICATION_METRICS

# Sections that say a model is meant to be trained; a model with none of them is an
# architecture only (checked for shapes and parameters), which needs no loss.
TRAINING_SECTIONS = ("optimizer", "metrics", "data", "augment", "train")


def metric_task(model: ir.Model) -> str:
    """How the metrics read the first output that has a loss: classes, binary or values."""
    return METRIC_TASKS.get(labelled_outputs(model)[0][1].kind, "values")


def splits(model: ir.Model) -> tuple[bool, bool]:
    """Whether the data has a validation split and a test split (the loader holds out at
    least one sample for any fraction above 0)."""
    source = model.data.source if model.data else None
    validation = bool(getattr(source, "validation", 0))
    test = bool(getattr(source, "test", 0)) or bool(getattr(source, "fixed_test_split", False))
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
    return name, "max" if name.removeprefix("val_") in HIGHER_IS_BETTER else "min"


def monitorable(model: ir.Model) -> list[str]:
    """The values a model's run reports each epoch, which early stopping may monitor."""
    names = ["loss"]
    if splits(model)[0]:
        names += ["val_loss", *(f"val_{m.kind}" for m in model.metrics)]
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


def _check_metrics(spec: ast.Model, model: ir.Model, diags: Diagnostics) -> None:
    task = metric_task(model)
    value, loss = labelled_outputs(model)[0]
    for call, metric in zip(spec.metrics, model.metrics, strict=True):
        if metric.kind not in TASK_METRICS[task]:
            diags.error(call.name_span, mismatch(
                f"metric {metric.kind} does not fit the {loss.kind} loss on `{value.label}`",
                "one of " + ", ".join(sorted(TASK_METRICS[task])), metric.kind))


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
