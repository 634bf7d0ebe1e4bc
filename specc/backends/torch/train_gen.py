"""The PyTorch backend's `train.py`: a standalone training program for one checked model.

`render_train` reads the model's training sections (loss, optimizer and schedule, metrics,
augmentation, `train { }`) and fills `templates/train.py.j2`, which pastes in the shared data
loader (`specc.backends.common.data`). What differs per spec is decided here or in the
templates' per-kind branches; the generated program itself only reads its config block.
Spec text reaches the program as `py`-filtered literals or as the identifiers that
`model_gen` makes safe.

What train.py does, in the order it does it: config, argument overrides, the memory check
(specc.memory's estimate against the device's free memory), data (resident on the device),
model (torch.compile on CUDA), loss and metrics, optimizer and schedule, checkpoints,
`--predict`, resume, the training loop, test metrics, export. The template's
docstring and comments document the run directory it writes.
"""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from specc import ir
from specc.backends.common import template_environment
from specc.backends.common.data import DataCode, _isort, render_data_code
from specc.backends.naming import candidates
from specc.backends.torch.model_gen import has_regularization, model_class_name
from specc.errors import SpecError, mismatch
from specc.layers.base import Backend
from specc.layers.sequence import Recurrent
from specc.memory import PROGRAM_MEMORY_CAP, estimate, format_bytes
from specc.passes.data_check import labelled_outputs
from specc.training import CLASSIFICATION_METRICS, Loss

_ENVIRONMENT = template_environment(Path(__file__).parent / "templates")

# train.py's own imports; the data loader adds its own, and the two lists are merged.
STDLIB_IMPORTS = ("import argparse", "import json", "import math", "import os",
                  "import random", "import sys", "import time",
                  "from contextlib import nullcontext", "from pathlib import Path")
THIRD_PARTY_IMPORTS = ("import numpy as np", "import torch",
                       "import torch.nn.functional as F")

# Top-level names of train.py's own that a model class name could take (it is PascalCase);
# the data loader's are added per program (`_top_level_names`).
TRAIN_MODULE_NAMES = frozenset({"F", "Path", "np", "nullcontext", "torch"})

# Metrics where higher is better; losses, mae and mse are minimized.
HIGHER_IS_BETTER = CLASSIFICATION_METRICS

# How outputs become predictions for the metrics, by the loss of the first output that has
# one: `classes` (argmax over the last axis), `binary` (a threshold per unit) or `values`
# (regression); and the metrics each way supports.
METRIC_TASKS = {"cross_entropy": "classes", "binary_cross_entropy": "binary"}
TASK_METRICS = {
    "classes": CLASSIFICATION_METRICS,
    "binary": CLASSIFICATION_METRICS - {"top_k_accuracy"},
    "values": frozenset({"mae", "mse"}),
}

# The image axes (of [batch, height, width, channels]) that each random_flip mode mirrors.
FLIP_AXES = {"horizontal": (2,), "vertical": (1,), "horizontal_and_vertical": (1, 2)}


@dataclass(frozen=True)
class LossTermView:
    """One loss term as the template needs it."""

    output_index: int  # position of its output in the tuple the model returns
    label: str  # the spec's name of that output
    loss: Loss
    sequence: bool  # cross-entropy over class scores per position ([time, classes])


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


def _loss_terms(model: ir.Model) -> list[LossTermView]:
    """The loss terms in output order: the order in which the data gives their labels."""
    return [
        LossTermView(model.graph.outputs.index(value.id), value.label, loss,
                     sequence=loss.kind == "cross_entropy" and len(value.shape) > 1)
        for value, loss in labelled_outputs(model)
    ]


def _metric_task(model: ir.Model, first: LossTermView) -> str:
    """How the metrics read the first output that has a loss; every metric must fit it."""
    task = METRIC_TASKS.get(first.loss.kind, "values")
    for metric in model.metrics:
        if metric.kind not in TASK_METRICS[task]:
            raise SpecError.at(model.span, mismatch(
                f"metric {metric.kind} does not fit the {first.loss.kind} loss on "
                f"`{first.label}`", "one of " + ", ".join(sorted(TASK_METRICS[task])),
                metric.kind))
    return task


def _splits(model: ir.Model) -> tuple[bool, bool]:
    """Whether the data has a validation split and a test split (the loader holds out at
    least one sample for any fraction above 0)."""
    source = model.data.source if model.data else None
    validation = bool(getattr(source, "validation", 0))
    test = bool(getattr(source, "test", 0)) or bool(getattr(source, "fixed_test_split", False))
    return validation, test


def _monitor(model: ir.Model, has_validation: bool) -> tuple[str, str]:
    """The value that picks the best weights (and stops early), and "min" or "max". Without
    validation data the training loss stands in for val_loss."""
    stopping = model.train.early_stopping
    monitor = stopping.monitor if stopping else "val_loss"
    if monitor == "val_loss" and not has_validation:
        monitor = "loss"
    available = ["loss"]
    if has_validation:
        available += ["val_loss", *(f"val_{m.kind}" for m in model.metrics)]
    if monitor not in available:
        raise SpecError.at(model.span, mismatch(
            "early_stopping monitors a value this model does not report"
            + ("" if has_validation else " (the data has no validation split)"),
            "one of " + ", ".join(available), repr(monitor)))
    return monitor, "max" if monitor.removeprefix("val_") in HIGHER_IS_BETTER else "min"


def _check_augmentation(model: ir.Model) -> None:
    """Augmentation keeps the image size: a random crop must cut back to the input's size."""
    image = model.graph.inputs[0]
    for step in model.augment:
        if step.kind == "random_crop":
            size = step.size if isinstance(step.size, list) else [step.size, step.size]
            if tuple(size) != tuple(image.shape[:2]):
                raise SpecError.at(model.span, mismatch(
                    "random_crop must cut windows of the input's height and width",
                    list(image.shape[:2]), size))


def memory_context(model: ir.Model, backend: Backend) -> dict[str, object]:
    """The config block's memory_needed (specc.memory's training estimate, in bytes) and the
    comment lines above it that say what it counts."""
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


def _top_level_names(data: DataCode) -> set[str]:
    """The names the data loader's imports and code bind at the top of train.py."""
    tree = ast.parse("\n".join(data.imports) + "\n" + data.code)
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def train_context(model: ir.Model, data: DataCode) -> dict[str, object]:
    """Everything train.py.j2 reads; its header comment lists the names."""
    _check_augmentation(model)
    losses = _loss_terms(model)
    has_validation, has_test = _splits(model)
    monitor, monitor_mode = _monitor(model, has_validation)
    class_name = model_class_name(model)
    recurrent = any(isinstance(node.layer, Recurrent) for _, node in model.graph.walk())
    stdlib_imports = (*STDLIB_IMPORTS, *data.stdlib_imports, *(("import warnings",) * recurrent))
    return {
        "model": model,
        "spec_file": Path(model.file).name,
        "class_name": class_name,
        "class_alias": next(candidates(class_name,
                                       TRAIN_MODULE_NAMES | _top_level_names(data))),
        "spec_hash": spec_hash(model),
        "stdlib_imports": _isort(stdlib_imports),
        "third_party_imports": _isort((*THIRD_PARTY_IMPORTS, *data.third_party_imports)),
        "data_code": data.code,
        "train": model.train,
        "optimizer": model.optimizer,
        "schedule": model.optimizer.schedule,
        "input_labels": [value.label for value in model.graph.inputs],
        # per input, the axes (counting the batch) of its `?` dimensions
        "unknown_axes": [[axis + 1 for axis, dim in enumerate(value.shape) if dim is None]
                         for value in model.graph.inputs],
        "recurrent": recurrent,
        "output_labels": [model.graph.value(v).label for v in model.graph.outputs],
        "losses": losses,
        "regularized": has_regularization(model),
        "metrics": model.metrics,
        "metric_kinds": [m.kind for m in model.metrics],
        "metric_task": _metric_task(model, losses[0]),
        "augment": model.augment,
        "flip_axes": FLIP_AXES,
        "has_validation": has_validation,
        "has_test": has_test,
        "monitor": monitor,
        "monitor_mode": monitor_mode,
        **memory_context(model, "torch"),
    }


def render_train(model: ir.Model, program_dir: Path) -> str:
    """The source of train.py for `model`, to be written into `program_dir` (the data
    loader finds the spec's data files relative to it)."""
    context = train_context(model, render_data_code(model, program_dir))
    return _ENVIRONMENT.get_template("train.py.j2").render(context)
