"""The PyTorch backend: model.py (the network), data.py (the data loader), and the training
files: recipe.py (settings, loss, metrics, optimizer, schedule), checkpoints.py,
devices.py and train.py (the program that runs them)."""

from __future__ import annotations

from pathlib import Path

from specc import ir
from specc.backends.common.manifest import Manifest
from specc.backends.common.program import program_files
from specc.backends.torch.model_gen import manifest, write_model
from specc.backends.torch.train_gen import render_training


def generate(model: ir.Model, program_dir: Path) -> dict[str, str]:
    """The files of a standalone training program for `model`, by name."""
    return program(model, program_dir)[0]


def program(model: ir.Model, program_dir: Path) -> tuple[dict[str, str], Manifest]:
    """The files of the program, and the manifest of its model.py."""
    return program_files(model, program_dir, write_model, render_training)


__all__ = ["generate", "manifest", "program"]
