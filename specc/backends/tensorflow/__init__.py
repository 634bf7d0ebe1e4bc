"""The TensorFlow backend: model.py (the network, in Keras) and train.py (everything else)."""

from __future__ import annotations

from pathlib import Path

from specc import ir
from specc.backends.common.data import render_data_module
from specc.backends.tensorflow.model_gen import render_model
from specc.backends.tensorflow.train_gen import render_train


def generate(model: ir.Model, program_dir: Path) -> dict[str, str]:
    """The files of a standalone training program for `model`, by name."""
    return {"model.py": render_model(model), "data.py": render_data_module(model, program_dir),
            "train.py": render_train(model)}
