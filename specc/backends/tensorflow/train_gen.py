"""The TensorFlow backend's `train.py`: a standalone Keras training program for one model.

It is the PyTorch program's twin: the same command line, run directory, config block, data
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
  runs these same classes, cut from the generated train.py.
- Checkpoints are `.npz` files: every model variable (weights, batchnorm statistics, the
  dropout layers' random state), every optimizer variable, and the loop's position as JSON.
- Augmentation draws from stateless random ops seeded by (seed, batch number), so a resumed
  run draws what an uninterrupted one would.

The generated program's sections are marked by `# ---` rule lines and titled comments; the
parity tool reads the config and "optimizer and learning-rate schedule" sections by title.
"""

from __future__ import annotations

from pathlib import Path

from specc import ir
from specc.backends.common import template_environment
from specc.backends.common.data import PROGRAM_NAMES
from specc.backends.common.plan import training_context
from specc.backends.tensorflow.model_gen import BUILDER

_ENVIRONMENT = template_environment(Path(__file__).parent / "templates")

# train.py's own imports; the data loader adds its own, and the two lists are merged.
STDLIB_IMPORTS = ("import argparse", "import hashlib", "import io", "import json",
                  "import math", "import os", "import sys", "import time", "import zipfile",
                  "from pathlib import Path")
THIRD_PARTY_IMPORTS = ("import keras", "import numpy as np", "import tensorflow as tf")

# The optimizer class train.py defines for each optimizer kind.
OPTIMIZER_CLASSES = {"sgd": "TorchSGD", "adam": "TorchAdam", "adamw": "TorchAdam",
                     "rmsprop": "TorchRMSprop", "adagrad": "TorchAdagrad"}


def train_context(model: ir.Model) -> dict[str, object]:
    """Everything train.py.j2 reads; its header comment lists the names."""
    taken = set(PROGRAM_NAMES)  # what train.py imports from data.py
    assert BUILDER not in taken and not taken & set(OPTIMIZER_CLASSES.values())
    return {
        **training_context(model, "tensorflow", STDLIB_IMPORTS, THIRD_PARTY_IMPORTS),
        "builder": BUILDER,
        "optimizer_class": OPTIMIZER_CLASSES[model.optimizer.kind],
        "checkpoint_writer": "np.savez",
        # what `auto` means in the config block's comments, and --no-export's help
        "device_comment": "auto: a GPU when TensorFlow sees one, else the CPU",
        "precision_comment": "auto: mixed bf16 on a GPU that has it, else fp32",
        "compile_comment": "XLA-compile the steps (jit_compile); auto: on a GPU only",
        "export_help": "do not write RUN/model.keras and RUN/saved_model",
        "checkpoint_format": "a NumPy archive (np.load)",
        "export_lines": [
            "model.keras       the trained model (keras.saving.load_model, after importing "
            "model.py)",
            "saved_model/      the same as a TensorFlow SavedModel (model.export), for serving",
        ],
        "processes_lines": [
            "Several processes: one per worker that TF_CONFIG names (`specc train --nproc N`",
            "writes it), under MultiWorkerMirroredStrategy; the chief alone prints and writes RUN.",
        ],
        # what the shared epoch-end code reads the rate and the device's name with
        "current_lr": "lr",
        "device_text": "device",
    }


def render_train(model: ir.Model) -> str:
    """The source of train.py for `model`."""
    return _ENVIRONMENT.get_template("train.py.j2").render(train_context(model))
