"""The TensorFlow backend: model.py (the network, in Keras) and train.py (everything else)."""

from __future__ import annotations

from pathlib import Path

from specc import ir
from specc.backends.common.manifest import Manifest
from specc.backends.tensorflow.model_gen import manifest, render_model
from specc.backends.tensorflow.train_gen import render_train


def generate(model: ir.Model, program_dir: Path) -> dict[str, str]:
    """The files of a standalone training program for `model`, by name."""
    return {"model.py": render_model(model), "train.py": render_train(model, program_dir)}


def program(model: ir.Model, program_dir: Path) -> tuple[dict[str, str], Manifest]:
    """The files of the program, and the manifest of its model.py."""
    return generate(model, program_dir), manifest(model)


__all__ = ["generate", "manifest", "program"]
