"""The PyTorch backend's training files: `train.py`, a standalone training program for one
checked model, and beside it `recipe.py` (settings, loss, metrics, optimizer, schedule),
`checkpoints.py` (sealed checkpoints) and `devices.py` (device, precision, memory check).

`render_training` fills them (`templates/train.py.j2` and the common templates of the other
names, which include this backend's `train_*.j2`) from the training plan that every backend
shares (`specc.backends.common.plan`: loss terms, metrics, monitor, splits, spec hash) and
what only PyTorch needs (the model class, its `?` axes for export). Spec text reaches the
program as `py`-filtered literals or as the identifiers that `model_gen` makes safe.

What train.py does, in the order it does it: the command line, device and precision, the
memory check, model (torch.compile on CUDA) and optimizer, evaluation, `--predict`, data
(resident on the device), resume, the training loop, test metrics, export. The templates'
docstrings and comments document the run directory it writes.
"""

from __future__ import annotations

from pathlib import Path

from specc import ir
from specc.backends.common import template_environment
from specc.backends.common.plan import (
    TRAINING_FILES,
    frozen_weights,
    import_lines,
    metrics_use_numpy,
    recipe_uses_math,
    render_training_files,
    training_context,
)
from specc.backends.naming import candidates
from specc.backends.torch.model_gen import manifest, model_class_name
from specc.layers.sequence import Recurrent

_ENVIRONMENT = template_environment(Path(__file__).parent / "templates")

# Top-level names of train.py's own that a model class name could take (it is PascalCase;
# the program's modules, data and recipe among them, are imported under lowercase names).
TRAIN_MODULE_NAMES = frozenset({"F", "Path", "np", "nullcontext", "torch"})


def _uses_functional(model: ir.Model) -> bool:
    """Whether recipe.py calls torch.nn.functional: every loss's code does but that of
    binary_focal over probabilities, which writes out Keras's binary cross-entropy
    (torch's F.binary_cross_entropy takes log1p(-p), which rounds otherwise)."""
    return any(term.loss.kind != "binary_focal" or term.loss.from_logits  # type: ignore[union-attr]
               for term in model.losses)


def imports(model: ir.Model) -> dict[str, str]:
    """Each training file's import block, holding only what that file uses for `model`."""
    recurrent = _recurrent(model)
    return {
        "recipe.py": import_lines(
            ("import math",) * recipe_uses_math(model),
            ("import numpy as np",) * metrics_use_numpy(model)
            + ("import torch",) + ("import torch.nn.functional as F",) * _uses_functional(model)),
        "checkpoints.py": import_lines(
            ("import hashlib", "import io", "import json", "import os", "import random",
             "import sys", "import zipfile",
             *("from pathlib import Path",) * bool(model.train.init_from)),
            ("import numpy as np", "import torch")),
        "devices.py": import_lines(
            ("import math", "import os", "import sys", "from pathlib import Path"),
            ("import torch",)),
        "progress.py": import_lines(
            ("import sys", "import time", *("import types",) * model.train.tensorboard), ()),
        "processes.py": import_lines(
            ("import hashlib", "import math", "import os", "import sys", "import warnings",
             "from dataclasses import dataclass", "from datetime import timedelta"),
            ("import numpy as np", "import torch", "import torch.distributed as dist")),
        "train.py": import_lines(
            ("import argparse", "import json", "import math", "import os", "import random",
             "import sys", "import time",
             "from contextlib import contextmanager, nullcontext" if model.train.ema
             else "from contextlib import nullcontext",
             "from pathlib import Path", *("import warnings",) * recurrent),
            ("import numpy as np", "import torch",
             *("import torch.nn.functional as F",) * bool(model.augment))),
    }


def _recurrent(model: ir.Model) -> bool:
    return any(isinstance(node.layer, Recurrent) for _, node in model.graph.walk())


def train_context(model: ir.Model) -> dict[str, object]:
    """Everything the training templates read; train.py.j2's header comment lists the
    names."""
    class_name = model_class_name(model)
    return {
        **training_context(model, "torch", imports(model)),
        **frozen_weights(model, manifest),
        "class_name": class_name,
        "class_alias": next(candidates(class_name, TRAIN_MODULE_NAMES)),
        "checkpoint_writer": "torch.save",
        # what `auto` means in the config block's comments, and --no-export's help
        "device_comment": "auto: CUDA when present, else the CPU",
        "precision_comment": "auto: bf16 autocast on CUDA when supported, else fp32",
        "compile_comment": "auto: torch.compile on CUDA only",
        # train.py's --devices: the devices of one process
        "devices_help": None,  # one process per GPU (torchrun), no --devices
        "export_help": "do not write RUN/model.pt2",
        "checkpoint_format": "a torch.save file",
        "export_files": "model.pt2 (torch.export)",
        # who starts the processes of a run on several (processes.py's docstring)
        "launcher": "started by torchrun",
        # for the export: per input, the axes (counting the batch) of its `?` dimensions, and
        # whether recurrent layers are among the model's (torch.export unrolls their steps)
        "unknown_axes": [[axis + 1 for axis, dim in enumerate(value.shape) if dim is None]
                         for value in model.graph.inputs],
        "recurrent": _recurrent(model),
        # what checkpoints.py's save_training_state and load_training_state take
        "training_state": "model, optimizer, scaler" + (", averages" if model.train.ema else ""),
        # what the shared epoch-end code reads the rate and the device's name with
        "current_lr": 'optimizer.param_groups[0]["lr"]',
        "device_text": "str(device)",
    }


def render_training(model: ir.Model, names: tuple[str, ...] = TRAINING_FILES) -> dict[str, str]:
    """The training files `names` of `model`'s program (all of them by default), by name."""
    return render_training_files(_ENVIRONMENT, train_context(model), names)
