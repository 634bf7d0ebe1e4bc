"""A generated program's files, the same on every backend: model.py (the network, as the
backend's model_gen writes it, with its manifest), data.py (the shared data loader), and
the training files (`plan.TRAINING_FILES`: recipe.py, checkpoints.py, devices.py and
train.py), which the backend's train_gen renders over the shared training plan."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from specc import ir
from specc.backends.common.data import render_data_module
from specc.backends.common.manifest import Manifest
from specc.backends.common.plan import TRAINING_FILES

# Every file of a generated program, in the order program_files gives them.
PROGRAM_FILES = ("model.py", "data.py", *TRAINING_FILES)


def program_files(
    model: ir.Model,
    program_dir: Path,
    write_model: Callable[[ir.Model], tuple[str, Manifest]],
    render_training: Callable[[ir.Model], dict[str, str]],
) -> tuple[dict[str, str], Manifest]:
    """The files of `model`'s program, by name, and the manifest of its model.py; data.py
    finds the spec's data files relative to `program_dir`, where the program is written."""
    source, model_manifest = write_model(model)
    files = {"model.py": source, "data.py": render_data_module(model, program_dir),
             **render_training(model)}
    return files, model_manifest
