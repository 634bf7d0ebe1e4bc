"""Helpers for the PyTorch train.py tests: specs written to a tmp folder, their generated
programs, and train.py runs in a child process (as `specc train` runs them)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import specc
from specc.backends.torch import generate


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: imports a framework or trains")


# A small classifier on synthetic data: 48 training samples, 3 batches of 16 per epoch.
# The dropout makes the run draw from torch's global generator, which resuming restores.
CLASSIFIER = """
model tiny {{
    input x: float[8]
    layers {{
        dense(16, activation=relu)
        dropout(0.25)
        dense(3)
    }}
    loss cross_entropy()
    optimizer {optimizer}
    metrics {metrics}
    data {data}
    train {{
        epochs = 6
        batch_size = 16
        {train}
    }}
}}
"""


def classifier_spec(optimizer: str = "adam(lr=0.01)", metrics: str = "accuracy, f1",
                    data: str = "synthetic(n=96, validation=0.25, test=0.25)",
                    train: str = "") -> str:
    return CLASSIFIER.format(optimizer=optimizer, metrics=metrics, data=data, train=train)


def write_program(folder: Path, spec_text: str) -> Path:
    """Check `spec_text` (written to folder/model.spec) and generate its PyTorch program
    into folder/program; returns the program's folder."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / "model.spec"
    spec.write_text(textwrap.dedent(spec_text))
    model = specc.load(spec).models[0]
    program = folder / "program"
    program.mkdir(exist_ok=True)
    for name, text in generate(model, program).items():
        (program / name).write_text(text)
    return program


def run_train(program: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run program/train.py with `args` (`--no-export` unless "--export" is among them)."""
    options = [str(a) for a in args if a != "--export"]
    if "--export" not in args:
        options.append("--no-export")
    return subprocess.run([sys.executable, str(program / "train.py"), *options],
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def program(tmp_path: Path):
    """`program(spec_text)` → the folder of its generated program, under tmp_path."""
    return lambda spec_text: write_program(tmp_path, spec_text)
