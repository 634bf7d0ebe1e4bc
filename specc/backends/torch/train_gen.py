"""The PyTorch backend's `train.py`: a standalone training program for one checked model.

`render_train` fills `templates/train.py.j2` from the training plan that every backend shares
(`specc.backends.common.plan`: loss terms, metrics, monitor, splits, spec hash) and what only
PyTorch needs (the model class, its `?` axes for export); the template pastes in the shared
data loader (`specc.backends.common.data`). The generated program itself only reads its
config block.
Spec text reaches the program as `py`-filtered literals or as the identifiers that
`model_gen` makes safe.

What train.py does, in the order it does it: config, argument overrides, the memory check
(specc.memory's estimate against the device's free memory), data (resident on the device),
model (torch.compile on CUDA), loss and metrics, optimizer and schedule, checkpoints,
`--predict`, resume, the training loop, test metrics, export. The template's
docstring and comments document the run directory it writes.
"""

from __future__ import annotations

from pathlib import Path

from specc import ir
from specc.backends.common import template_environment
from specc.backends.common.data import PROGRAM_NAMES
from specc.backends.common.plan import training_context
from specc.backends.naming import candidates
from specc.backends.torch.model_gen import model_class_name
from specc.layers.sequence import Recurrent

_ENVIRONMENT = template_environment(Path(__file__).parent / "templates")

# train.py's own imports; the data loader adds its own, and the two lists are merged.
STDLIB_IMPORTS = ("import argparse", "import hashlib", "import io", "import json",
                  "import math", "import os", "import random", "import sys", "import time",
                  "import warnings", "import zipfile", "from contextlib import nullcontext",
                  "from datetime import timedelta", "from pathlib import Path")
THIRD_PARTY_IMPORTS = ("import numpy as np", "import torch", "import torch.distributed as dist",
                       "import torch.nn.functional as F")

# Top-level names of train.py's own that a model class name could take (it is PascalCase);
# with what it imports from data.py.
TRAIN_MODULE_NAMES = frozenset({"DamagedCheckpointError", "F", "Path", "dist", "np",
                                "nullcontext", "timedelta", "torch"})


def train_context(model: ir.Model) -> dict[str, object]:
    """Everything train.py.j2 reads; its header comment lists the names."""
    class_name = model_class_name(model)
    recurrent = any(isinstance(node.layer, Recurrent) for _, node in model.graph.walk())
    return {
        **training_context(model, "torch", STDLIB_IMPORTS, THIRD_PARTY_IMPORTS),
        "class_name": class_name,
        "class_alias": next(candidates(class_name, TRAIN_MODULE_NAMES | set(PROGRAM_NAMES))),
        # per input, the axes (counting the batch) of its `?` dimensions
        "unknown_axes": [[axis + 1 for axis, dim in enumerate(value.shape) if dim is None]
                         for value in model.graph.inputs],
        "recurrent": recurrent,
        "checkpoint_writer": "torch.save",
        # what `auto` means in the config block's comments, and --no-export's help
        "device_comment": "auto: CUDA when present, else the CPU",
        "precision_comment": "auto: bf16 autocast on CUDA when supported, else fp32",
        "compile_comment": "auto: torch.compile on CUDA only",
        "export_help": "do not write RUN/model.pt2",
        "checkpoint_format": "a torch.save file",
        "export_lines": ["model.pt2         the trained model, torch.export'ed for any batch size"],
        "processes_lines": [
            "Several processes: `torchrun --nproc-per-node N train.py ...` (what `specc train",
            "--nproc N` runs) starts N; DDP averages their gradients, and rank 0 alone prints",
            "and writes RUN.",
        ],
        # what the shared epoch-end code reads the rate and the device's name with
        "current_lr": 'optimizer.param_groups[0]["lr"]',
        "device_text": "str(device)",
    }


def render_train(model: ir.Model) -> str:
    """The source of train.py for `model`."""
    return _ENVIRONMENT.get_template("train.py.j2").render(train_context(model))
