"""The TensorFlow backend: model.py (the network, in Keras) and train.py (everything else)."""

from __future__ import annotations

from pathlib import Path

from specc import ir
from specc.backends.common.data import render_data_module
from specc.backends.common.manifest import Manifest
from specc.backends.tensorflow.model_gen import manifest, write_model
from specc.backends.tensorflow.train_gen import render_train


def generate(model: ir.Model, program_dir: Path) -> dict[str, str]:
    """The files of a standalone training program for `model`, by name."""
    return program(model, program_dir)[0]


def program(model: ir.Model, program_dir: Path) -> tuple[dict[str, str], Manifest]:
    """The files of the program, and the manifest of its model.py."""
    source, model_manifest = write_model(model)
    files = {"model.py": source, "data.py": render_data_module(model, program_dir),
             "train.py": render_train(model)}
    return files, model_manifest


__all__ = ["generate", "manifest", "program"]
