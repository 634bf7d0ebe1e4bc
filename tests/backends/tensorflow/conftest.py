"""Helpers for the Keras model.py tests: specs through the real front end, both generated
programs imported, and the frameworks set up once per process (quiet, one thread each, so
that results do not depend on the CI machine's load)."""

from __future__ import annotations

import importlib.util
import itertools
import os
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

import specc
from specc import ir

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow is first imported

_modules = itertools.count()


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: imports a framework or trains")


def model_spec(inputs: str, body: str, outputs: str = "", blocks: str = "") -> str:
    """A spec with one model `net`: `inputs` lines, a `graph` body (or `layers` when
    `outputs` is empty) and the blocks it uses."""
    section = f"graph {{\n{body}\n}}\noutput {outputs}" if outputs else f"layers {{\n{body}\n}}"
    return f"{blocks}\nmodel net {{\n{inputs}\n{section}\n}}\n"


def load(folder: Path, text: str) -> ir.Model:
    spec = folder / f"spec{next(_modules)}.spec"
    spec.write_text(textwrap.dedent(text))
    return specc.load(spec).models[0]


def import_source(folder: Path, source: str) -> ModuleType:
    """`source` written to a fresh file in `folder` and imported as a module."""
    path = folder / f"generated_{next(_modules)}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def frameworks():
    """(torch, keras), imported once, on one thread each."""
    import keras
    import tensorflow as tf
    import torch

    torch.set_num_threads(1)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # another test module already ran TensorFlow: its settings stand
    return torch, keras
