"""The TensorFlow backend's training files: `train.py`, a standalone Keras training program
for one model, and beside it `recipe.py` (settings, loss, metrics, optimizer, schedule),
`checkpoints.py` (sealed checkpoints) and `devices.py` (device, precision, memory check).

They are the PyTorch program's twins: the same command line, run directory, settings, data
loader (`specc.backends.common.data`), losses, metrics, schedules, checkpoints and messages,
so that a spec trains the same way whichever backend runs it. What is framework-neutral about
it (which loss term reads which output, what the metrics can be, which value picks the best
weights, the spec hash) is decided once, in the training plan (`specc.backends.common.plan`),
and read here.

What differs, and why:
- The training step is a `tf.function` written out (forward, loss, gradients, optimizer), XLA
  compiled (`jit_compile`) on a GPU, and it never syncs with the host: the epoch's loss adds
  up in a variable, read every `log_every` steps.
- The optimizers are small `keras.optimizers.Optimizer` subclasses with torch.optim's update
  formulas, which the spec's optimizers mean (`training.py`); Keras's own Adam and RMSprop
  put epsilon elsewhere and its SGD keeps a learning-rate-scaled momentum. `specc parity`
  runs these same classes, imported from the generated recipe.py.
- Checkpoints are `.npz` files: every model variable (weights, batchnorm statistics, the
  dropout layers' random state), every optimizer variable, and the loop's position as JSON.
- Augmentation draws from stateless random ops seeded by (seed, batch number), so a resumed
  run draws what an uninterrupted one would.
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
from specc.backends.tensorflow.model_gen import BUILDER, manifest

_ENVIRONMENT = template_environment(Path(__file__).parent / "templates")

def imports(model: ir.Model) -> dict[str, str]:
    """Each training file's import block, holding only what that file uses for `model`."""
    return {
        "recipe.py": import_lines(
            ("import math",) * recipe_uses_math(model),
            ("import keras",
             *("import numpy as np",) * metrics_use_numpy(model),
             "import tensorflow as tf")),
        "checkpoints.py": import_lines(
            ("import hashlib", "import io", "import json", "import os", "import sys",
             "import zipfile", *("from pathlib import Path",) * bool(model.train.init_from)),
            ("import numpy as np",)),
        # Keras and TensorFlow are loaded here first, their start-up notices filtered
        # (templates/devices_framework.j2); train.py imports this module before them.
        "devices.py": import_lines(
            ("import math", "import os", "import sys", "import tempfile",
             "from pathlib import Path"), ()),
        "progress.py": import_lines(
            ("import sys", "import time"), ("import tensorflow as tf",) * model.train.tensorboard),
        "processes.py": import_lines(
            ("import hashlib", "import json", "import math", "import os", "import sys",
             "from dataclasses import dataclass"),
            ("import numpy as np", "import tensorflow as tf")),
        # Keras and TensorFlow come after devices.py (templates/train_program_imports.j2).
        "train.py": import_lines(
            ("import argparse", "import json", "import math", "import os", "import sys",
             "import time", "from pathlib import Path",
             *("from contextlib import contextmanager",) * bool(model.train.ema)),
            ("import numpy as np",)),
    }


# The optimizer class train.py defines for each optimizer kind.
OPTIMIZER_CLASSES = {"sgd": "TorchSGD", "adam": "TorchAdam", "adamw": "TorchAdam",
                     "rmsprop": "TorchRMSprop", "adagrad": "TorchAdagrad", "nadam": "TorchNAdam",
                     "adamax": "TorchAdamax"}


def train_context(model: ir.Model) -> dict[str, object]:
    """Everything the training templates read; train.py.j2's header comment lists the
    names."""
    return {
        **training_context(model, "tensorflow", imports(model)),
        **frozen_weights(model, manifest),
        "builder": BUILDER,
        "optimizer_class": OPTIMIZER_CLASSES[model.optimizer.kind],
        "keras_conversions": keras_conversions(model),
        "standalone": False,  # train_export_keras.j2 as a part of train.py
        "checkpoint_writer": "np.savez",
        # what `auto` means in the config block's comments, and --no-export's help
        "device_comment": "auto: a GPU when TensorFlow sees one, else the CPU",
        "precision_comment": "auto: mixed bf16 on a GPU that has it, else fp32",
        "compile_comment": "XLA-compile the steps (jit_compile); auto: on a GPU only",
        # train.py's --devices: the devices of one process
        "devices_help": ("train on N devices of this process (MirroredStrategy): ",
                         "the first N GPUs (default: all), or the CPU split in N (default: 1)"),
        "export_help": "do not write RUN/model.keras and RUN/saved_model",
        "checkpoint_format": "a NumPy archive (np.load)",
        "export_files": "model.keras and saved_model/ (a SavedModel)",
        # who starts the processes of a run on several (processes.py's docstring)
        "launcher": "the workers of TF_CONFIG",
        # what checkpoints.py's save_training_state and load_training_state take
        "training_state": "model, optimizer" + (", averages" if model.train.ema else ""),
        # what the shared epoch-end code reads the rate and the device's name with
        "current_lr": "lr",
        "device_text": "device",
    }


def render_training(model: ir.Model, names: tuple[str, ...] = TRAINING_FILES) -> dict[str, str]:
    """The training files `names` of `model`'s program (all of them by default), by name."""
    return render_training_files(_ENVIRONMENT, train_context(model), names)


def render_piece(template: str) -> str:
    """A piece of train.py as a module of its own (`standalone`), for `specc export`."""
    return _ENVIRONMENT.get_template(template).render(standalone=True, keras_conversions=[])


def keras_conversions(model: ir.Model) -> list[str]:
    """The kinds of layer the model holds that model.keras rebuilds from Keras's own layers
    (templates/train_export_keras.j2): model.py's classes and functions for them are its own."""
    found = set()
    for _, node in model.graph.walk():
        layer = node.layer
        if layer.kind in ("batchnorm", "positional_embedding"):
            found.add(layer.kind)
        if getattr(layer, "activation", None) == "leaky_relu":
            found.add("leaky_relu")
    return sorted(found)
