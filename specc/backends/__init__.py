"""Code generators, one package per backend, each exposing
`generate(model: ir.Model, program_dir: Path) -> dict[str, str]` (file name → source) and
`manifest(model: ir.Model) -> Manifest` (what its model.py holds, node by node)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from specc.backends.registry import BACKEND_NAMES, BACKENDS

# Imported where used: the layer catalog and the CLI read specc.backends.registry, and
# importing this package first must not pull in the IR (which reads the catalog).
if TYPE_CHECKING:
    from specc import ir
    from specc.backends.common.manifest import Manifest


def program(
    model: ir.Model, backend: str, program_dir: Path
) -> tuple[dict[str, str], Manifest]:
    """The `backend` program of `model`, to be written into `program_dir`: its files by name,
    and the manifest of its model.py."""
    from specc.errors import SpecError

    if backend not in BACKENDS:
        raise SpecError.at(
            None, f"unknown backend `{backend}` (expected one of: {', '.join(BACKEND_NAMES)})"
        )
    module = BACKENDS[backend].generator()
    if not hasattr(module, "program"):
        raise SpecError.at(None, f"the {backend} backend is not available yet")
    if not model.losses:
        raise SpecError.at(
            model.span,
            f"model `{model.name}` has no `loss` section (needed to "
            "train; expected e.g. `loss cross_entropy()`)",
        )
    if model.data is None:
        model = _with_synthetic_data(model)
    return module.program(model, Path(program_dir))


def generate(model: ir.Model, backend: str, program_dir: Path) -> dict[str, str]:
    """The files of the `backend` program of `model`, by name."""
    return program(model, backend, program_dir)[0]


def manifest(model: ir.Model, backend: str) -> Manifest:
    """What the `backend` program's model.py holds for each layer node of `model`."""
    return BACKENDS[backend].generator().manifest(model)


# What a model without a `data` section trains on: enough random samples for a few batches.
SYNTHETIC_SAMPLES = 1024


def _with_synthetic_data(model: ir.Model) -> ir.Model:
    from specc import ir
    from specc.data_sources import Synthetic

    warnings.warn(
        f"model `{model.name}` has no `data` section: the program trains on "
        f"synthetic({SYNTHETIC_SAMPLES}) random data",
        stacklevel=3,
    )
    data = ir.DataSource.model_construct(
        source=Synthetic(n=SYNTHETIC_SAMPLES), spec_dir=str(Path(model.file).resolve().parent),
        span=model.span,
    )
    return model.model_copy(update={"data": data})


def select_model(program: ir.Program, name: str | None) -> ir.Model:
    """The model called `name`, or the file's first model."""
    from specc.errors import SpecError

    if name is None:
        return program.models[0]
    for model in program.models:
        if model.name == name:
            return model
    known = ", ".join(m.name for m in program.models)
    raise SpecError.at(None, f"no model `{name}` in {program.file} (expected one of: {known})")
