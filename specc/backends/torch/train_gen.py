"""The PyTorch backend's `train.py`: a standalone training program for one checked model.

`render_train` reads the model's training sections (loss, optimizer and schedule, metrics,
augmentation, `train { }`) and fills `templates/train.py.j2`, which pastes in the shared data
loader (`specc.backends.common.data`). What differs per spec is decided here or in the
templates' per-kind branches; the generated program itself only reads its config block.
Spec text reaches the program as `py`-filtered literals or as the identifiers that
`model_gen` makes safe.

What train.py does, in the order it does it: config, argument overrides, data (resident on
the device), model (torch.compile on CUDA), loss and metrics, optimizer and schedule,
checkpoints, `--predict`, resume, the training loop, test metrics, export. The template's
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
from specc.layers.sequence import Recurrent
from specc.passes.data_check import labelled_outputs
from specc.passes.training_check import metric_task, monitor, splits
from specc.training import Loss

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
    losses = _loss_terms(model)
    has_validation, has_test = splits(model)
    monitor_name, monitor_mode = monitor(model)
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
        "metric_task": metric_task(model),
        "augment": model.augment,
        "flip_axes": FLIP_AXES,
        "has_validation": has_validation,
        "has_test": has_test,
        "monitor": monitor_name,
        "monitor_mode": monitor_mode,
    }


def render_train(model: ir.Model, program_dir: Path) -> str:
    """The source of train.py for `model`, to be written into `program_dir` (the data
    loader finds the spec's data files relative to it)."""
    context = train_context(model, render_data_code(model, program_dir))
    return _ENVIRONMENT.get_template("train.py.j2").render(context)
