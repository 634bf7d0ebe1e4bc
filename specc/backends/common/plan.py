"""The training plan: what a generated train.py does, decided once from the checked model for
every backend.

Each backend's train_gen adds what only its framework needs (its imports, its model builder
or class, its optimizer classes, its checkpoint suffix) to `training_context`, the part of
the template context that is the same on every backend: the loss terms and which output each
reads, what the metrics read (`specc.passes.training_check`), the monitor that picks the best
weights, the data's splits, augmentation, whether the model adds penalties to the loss, the
spec hash that a checkpoint must match, and the memory estimate the program checks before
allocating.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment
from pydantic import BaseModel

from specc import ir
from specc.backends.common.data import _isort
from specc.backends.common.manifest import Manifest
from specc.backends.registry import BACKENDS
from specc.data_sources import resolve_path
from specc.layers.base import Backend
from specc.memory import PROGRAM_MEMORY_CAP, estimate, format_bytes
from specc.passes.data_check import labelled_outputs
from specc.passes.training_check import (
    metric_groups,
    metric_task,
    monitor,
    plateau_monitor,
    splits,
    weighs_samples,
)
from specc.training import MATRIX_METRICS, Loss

# The image axes (of [batch, height, width, channels]) that each random_flip mode mirrors.
FLIP_AXES = {"horizontal": (2,), "vertical": (1,), "horizontal_and_vertical": (1, 2)}


@dataclass(frozen=True)
class LossTermView:
    """One loss term as the templates need it."""

    output_index: int  # position of its output in the tuple the model returns
    label: str  # the spec's name of that output
    loss: Loss
    sequence: bool  # class scores per position ([time, classes])
    one_hot: bool  # labels are rows over the classes (one-hot or probabilities), not ids


def loss_terms(model: ir.Model) -> list[LossTermView]:
    """The loss terms in output order: the order in which the data gives their labels."""
    return [
        LossTermView(model.graph.outputs.index(value.id), value.label, loss,
                     sequence=loss.task == "classes" and len(value.shape) > 1,
                     one_hot=loss.labels == "distributions")
        for value, loss in labelled_outputs(model)
    ]


def recipe_uses_math(model: ir.Model) -> bool:
    """Whether recipe.py imports `math`: for the schedules that compute their rate with it,
    and for log_cosh's log(2)."""
    return (model.optimizer.schedule.kind in ("cosine", "one_cycle", "plateau")
            or any(term.loss.kind == "log_cosh" for term in model.losses))


# The sums over a split that each metric is computed from (batch_statistics gives a batch's):
# `per_class` true positives, predictions and labels per class (or unit), `confusion` the
# confusion matrix, `unit_sums` the labels' sum and sum of squares and the squared error per
# unit, `scores` every sample's scores and labels (kept, not summed: auc ranks them).
METRIC_STATISTICS = {
    "accuracy": "correct", "top_k_accuracy": "top_k_correct", "precision": "per_class",
    "recall": "per_class", "f1": "per_class", "mae": "absolute_error", "mse": "squared_error",
    "rmse": "squared_error", "mape": "relative_error", "r2": "unit_sums", "auc": "scores",
    "balanced_accuracy": "confusion", "mean_iou": "confusion", "confusion_matrix": "confusion",
}
# The statistics that metric_values reads with NumPy (recipe.py imports it for them).
NUMPY_STATISTICS = frozenset({"per_class", "confusion", "unit_sums", "scores"})


@dataclass(frozen=True)
class MetricGroupView:
    """The metrics of one output as the templates need them (training_check.MetricGroup)."""

    term: LossTermView  # the output's loss term: its position, label, loss
    target_index: int  # the position of its labels among the targets
    task: str  # classes, binary or values
    suffix: str  # after each of its metrics' names (and their statistics')
    metrics: tuple[object, ...]
    names: tuple[str, ...]  # each metric's name, suffix included
    statistics: tuple[str, ...]  # METRIC_STATISTICS's, in the order the metrics need them


def metric_group_views(model: ir.Model) -> list[MetricGroupView]:
    """The model's metrics by output (the first output with a loss first when unlabelled)."""
    terms = loss_terms(model)
    labels = [term.label for term in terms]
    views = []
    for group in metric_groups(model):
        index = labels.index(group.value.label)
        needed = [METRIC_STATISTICS[metric.kind] for metric in group.metrics]
        views.append(MetricGroupView(terms[index], index, group.task, group.suffix,
                                     group.metrics, tuple(group.names()),
                                     tuple(dict.fromkeys(needed))))
    return views


def metrics_use_numpy(model: ir.Model) -> bool:
    """Whether recipe.py's metric_values needs NumPy."""
    return any(NUMPY_STATISTICS & set(view.statistics) for view in metric_group_views(model))


def output_loss_names(model: ir.Model) -> list[str]:
    """The names under which metrics.jsonl, TensorBoard and the epoch line show each output's
    loss term (`loss_<output>`, and `val_loss_<output>`), in output order; none when the
    model has a single loss term, which is the loss."""
    terms = loss_terms(model)
    return [f"loss_{term.label}" for term in terms] if len(terms) > 1 else []


def has_regularization(model: ir.Model) -> bool:
    """Whether some layer has a nonzero `l1` or `l2`, whose penalty train.py adds to the
    loss at every training step."""
    return any(
        getattr(node.layer, "l1", 0) or getattr(node.layer, "l2", 0)
        for _, node in model.graph.walk()
    )


def spec_hash(model: ir.Model) -> str:
    """A short hash of what a checkpoint's contents depend on: the network, the loss and the
    optimizer. Source positions, data and `train { }` are left out, so that editing a comment
    or the number of epochs does not stop `--resume`."""
    hashed = {"graph": model.graph, "losses": model.losses, "optimizer": model.optimizer}
    text = json.dumps(_plain(hashed), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _plain(value: object) -> object:
    """`value` as JSON data, each Pydantic model a dict of its fields but spans. (Pydantic's
    model_dump would first build a serializer for the IR's union of every layer kind, which
    takes longer than the rest of `specc compile`.)"""
    if isinstance(value, BaseModel):
        return {name: _plain(getattr(value, name))
                for name in type(value).model_fields if name != "span"}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def memory_context(model: ir.Model, backend: Backend) -> dict[str, object]:
    """The config block's memory_needed (specc.memory's training estimate on `backend`, in
    bytes) and the comment lines above it that say what it counts."""
    memory = estimate(model, backend)
    precision = "fp32" if memory.precision == "auto" else memory.precision
    phrases = [f"activations of a batch of {memory.batch_size} at {precision} "
               f"{format_bytes(size)}" if name == "activations" else f"{name} {format_bytes(size)}"
               for name, size in memory.parts()]
    if not memory.activations_known:
        phrases.append("(tensors with a `?` size not counted)")
    if memory.data is None:
        phrases.append("(the data, read at run time, not counted)")
    words = "what training takes, as specc estimated it from the model's shapes: "
    if memory.training > PROGRAM_MEMORY_CAP:
        phrases.append(f"written as {format_bytes(PROGRAM_MEMORY_CAP)}, more than any machine "
                       "has")
    return {"memory_needed": min(memory.training, PROGRAM_MEMORY_CAP),
            "memory_total": ("at least " if not memory.complete else "")
            + format_bytes(memory.training),
            "memory_comment": _fill(words + ", ".join(phrases), 96)}


def _fill(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width`, breaking after commas and colons only, so that a
    number stays with its unit."""
    lines = [""]
    for piece in text.replace(", ", ",\n").replace(": ", ":\n").split("\n"):
        if lines[-1] and len(lines[-1]) + 1 + len(piece) > width:
            lines.append(piece)
        else:
            lines[-1] = f"{lines[-1]} {piece}".strip()
    return lines


def initial_weights_path(model: ir.Model) -> str | None:
    """Where `train { init_from }` points, as an absolute path: a relative one starts at the
    folder of the spec file. None without init_from."""
    if model.train.init_from is None:
        return None
    return str(resolve_path(model.train.init_from, Path(model.file).resolve().parent).resolve())


def frozen_weights(model: ir.Model,
                   model_manifest: Callable[[ir.Model], Manifest]) -> dict[str, list[str]]:
    """What train.py holds still for `train { freeze }`, by the names of the backend's
    manifest (`model_manifest(model)`, read only when some layer is frozen): the holders of
    the frozen layers' weights (PyTorch: module paths; Keras: layer names), and the frozen
    batchnorms among them, which normalize with their moving statistics and keep them."""
    if not model.frozen:
        return {"frozen_holders": [], "frozen_batchnorms": []}
    entries = [entry for entry in model_manifest(model).entries
               if entry.node in model.frozen and entry.weights]
    return {"frozen_holders": sorted({weight.holder for entry in entries
                                      for weight in entry.weights}),
            "frozen_batchnorms": [entry.name for entry in entries if entry.kind == "batchnorm"]}


# The files of a program that its backend's train_gen writes, each from the template of its
# name (`recipe.py.j2`, ...): the training recipe (settings, loss, metrics, optimizer,
# schedule), the sealed checkpoints, the device (its precision, its memory), the progress
# shown, training on several processes, and the program that runs them.
TRAINING_FILES = ("recipe.py", "checkpoints.py", "devices.py", "progress.py", "processes.py",
                  "train.py")


def import_lines(stdlib: tuple[str, ...], third_party: tuple[str, ...]) -> str:
    """The import block of a generated module: the standard library's lines, a blank line,
    then the others', each group in isort's order (an empty group and its blank line left
    out)."""
    groups = [_isort(group) for group in (stdlib, third_party) if group]
    return "\n\n".join("\n".join(lines) for lines in groups)


def render_training_files(environment: Environment, context: dict[str, object],
                          names: tuple[str, ...] = TRAINING_FILES) -> dict[str, str]:
    """The training files `names` of a program, rendered from `context` by a backend's
    environment (whose own templates come before the common ones)."""
    return {name: environment.get_template(f"{name}.j2").render(context) for name in names}


def training_context(model: ir.Model, backend: Backend,
                     imports: dict[str, str]) -> dict[str, object]:
    """The template context every backend's training files read alike (the memory estimate
    is `backend`'s); `imports` holds each file's import block (`import_lines`), by name."""
    has_validation, has_test = splits(model)
    monitor_name, monitor_mode = monitor(model)
    entry = BACKENDS[backend]
    regularized = has_regularization(model)
    groups = metric_group_views(model) if model.metrics else []
    return {
        "backend_name": entry.name,
        "framework_name": entry.framework,
        "checkpoint_suffix": entry.checkpoint_suffix,
        # the checkpoints of every other backend, which this program refuses to mix with
        "foreign_checkpoints": [(other.framework, other.checkpoint_suffix)
                                for other in BACKENDS.values() if other.name != backend],
        "model": model,
        "spec_file": Path(model.file).name,
        "spec_hash": spec_hash(model),
        "imports": imports,
        "train": model.train,
        # init_from's checkpoint or run directory, as an absolute path (relative paths start
        # at the spec's folder)
        "init_from": initial_weights_path(model),
        "optimizer": model.optimizer,
        "schedule": model.optimizer.schedule,
        "input_labels": [value.label for value in model.graph.inputs],
        "output_labels": [model.graph.value(v).label for v in model.graph.outputs],
        "losses": loss_terms(model),
        "regularized": regularized,
        # what train.py passes compute_loss after the outputs and targets
        "loss_model": ", model" if regularized else "",
        # whether each training sample's loss term is weighted (class_weight, the data's
        # weights): the training split's third part, which the training step passes on
        "weighted": weighs_samples(model),
        "class_weight": model.train.class_weight,
        # with several loss terms, metrics.jsonl's names for each output's own loss
        "output_losses": output_loss_names(model),
        "metrics": model.metrics,
        "metric_kinds": [m.kind for m in model.metrics],
        "metric_task": metric_task(model),
        "metric_groups": groups,
        # the statistics kept per sample (not summed), and the metrics that are matrices
        "per_sample": [f"{name}{group.suffix}" for group in groups if "scores" in group.statistics
                       for name in ("scores", "score_labels")],
        "matrix_metrics": [name for group in groups
                           for name, metric in zip(group.names, group.metrics, strict=True)
                           if metric.kind in MATRIX_METRICS],
        "augment": model.augment,
        "flip_axes": FLIP_AXES,
        "has_validation": has_validation,
        "has_test": has_test,
        "monitor": monitor_name,
        "monitor_mode": monitor_mode,
        # what the plateau schedule watches, and min | max; None without one
        "plateau_monitor": plateau_monitor(model),
        **memory_context(model, backend),
    }
