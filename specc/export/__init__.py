"""`specc export RUN`: a trained run's model as a file that serves without specc.

`--format onnx` (every backend) writes an ONNX graph that takes raw samples, as the data
source yields them, wherever the program's preparation of them is arithmetic
(`specc.export.inputs`), names its inputs and outputs as the spec does, and carries the
metadata of `specc.export_metadata`. It is verified before it is kept: onnxruntime runs it on
the run's test split, and the largest absolute difference from the framework's outputs for
the same samples (through the program's own preprocessing) must be within the tolerance.
The framework's own formats (the registry's `export_formats`) are written from the same
checkpoint: PyTorch's model.pt2, Keras's model.keras (of Keras's own layers only) and a
TensorFlow SavedModel.

The work runs in a child process (`specc.export.worker`) that imports the run's model.py and
data.py and the framework; this one imports neither. Nothing is left at the output path when
the export fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from specc.backends.registry import BACKENDS
from specc.run_files import backend_of

DEFAULT_TOLERANCE = 1e-4  # largest absolute difference from the framework, float32 outputs
ONNX_FILE = "model.onnx"
# Where in RUN the exports go by default (RUN/export/model.onnx, which `specc serve RUN`
# reads), apart from the files the program itself writes (RUN/model.pt2, RUN/model.keras).
EXPORT_DIR = "export"


class ExportUsageError(Exception):
    """RUN is not a run that can be exported, or not in the asked format."""


def formats() -> list[str]:
    """Every format `--format` takes: onnx, then each backend's own."""
    return ["onnx", *sorted({name for entry in BACKENDS.values() for name in entry.export_formats})]


def export(run_dir: str | Path, fmt: str = "onnx", out: str | Path | None = None,
           tolerance: float = DEFAULT_TOLERANCE, data_path: str | None = None) -> int:
    """Export the run at `run_dir` as `fmt` to `out` (default: in RUN/export/); returns
    the child's exit status (0 written, 1 refused: it printed why, 3 a bug). Raises
    ExportUsageError before starting it when RUN or the format does not fit."""
    run_dir = Path(run_dir)
    for needed in ("code/model.py", "code/data.py", "checkpoints"):
        if not (run_dir / needed).exists():
            raise ExportUsageError(f"{run_dir} has no {needed} (expected the directory of a "
                                   "run of `specc train`)")
    backend = backend_of(run_dir)
    if backend not in BACKENDS:
        raise ExportUsageError(f"{run_dir}: cannot tell which framework trained it (no "
                               "results.json, and code/train.py is not specc's)")
    entry = BACKENDS[backend]
    own = {"onnx": ONNX_FILE, **entry.export_formats}
    if fmt not in own:
        raise ExportUsageError(f"{run_dir} was trained with {entry.framework}: --format "
                               f"{fmt} does not apply (expected {' or '.join(own)})")
    if not tolerance >= 0:
        raise ExportUsageError(f"--tolerance must be a number from 0 up (got {tolerance})")
    target = Path(out) if out is not None else run_dir / EXPORT_DIR / own[fmt]
    command = [sys.executable, "-m", "specc.export.worker", str(run_dir), backend, fmt,
               str(target), repr(tolerance)]
    if data_path is not None:
        command.append(data_path)
    # The child finds this specc first, whichever is installed. It sees no GPU: the outputs
    # the ONNX graph is checked against are computed on the CPU, as onnxruntime runs it
    # there (a GPU's TF32 matmuls alone would differ by more than the tolerance).
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": os.pathsep.join(
        part for part in (root, os.environ.get("PYTHONPATH")) if part)}
    status = subprocess.run(command, env=env, check=False).returncode
    return 128 - status if status < 0 else status  # killed by signal N: the shell's 128 + N
