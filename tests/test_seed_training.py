"""Every seed model in specs/ trains, and the offline ones reach real accuracy.

The specs that read standard files (MNIST, CIFAR-10, IMDB) train on tiny files in those
formats, written here; the scikit-learn ones use the real bundled data.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import specc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "data"))  # the writers of tiny standard-format files
from data_files import write_cifar10, write_imdb, write_mnist_npz  # noqa: E402

SPECS = sorted((ROOT / "specs").glob("*.spec"))

def mnist_file(folder: Path) -> Path:
    write_mnist_npz(folder / "mnist.npz", train=48, test=16)
    return folder / "mnist.npz"


def cifar10_folder(folder: Path) -> Path:
    write_cifar10(folder / "cifar-10-batches-py", per_batch=8)
    return folder / "cifar-10-batches-py"


def imdb_file(folder: Path) -> Path:
    write_imdb(folder / "imdb.npz", train=48, test=16)
    return folder / "imdb.npz"


# What to pass as --data for the specs whose data is a file the repository does not ship.
STANDARD_FILES = {"mnist_cnn": mnist_file, "cifar10_cnn": cifar10_folder,
                  "lstm_text": imdb_file, "transformer_text": imdb_file}


def run_program(spec: Path, run_dir: Path, *options: str) -> dict:
    """Compile `spec` for torch into RUN/code, run its train.py, return results.json."""
    code = run_dir / "code"
    specc.compile(spec, backend="torch", out=code)
    result = subprocess.run(
        [sys.executable, str(code / "train.py"), "--out", str(run_dir), "--no-export", *options],
        capture_output=True, text=True, check=False, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    return json.loads((run_dir / "results.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_seed_spec_trains_a_few_steps(spec: Path, tmp_path: Path) -> None:
    options = ["--epochs", "1", "--max-steps", "3"]
    if spec.stem in STANDARD_FILES:
        options += ["--data", str(STANDARD_FILES[spec.stem](tmp_path / "data"))]
    results = run_program(spec, tmp_path / "run", *options)
    assert results["backend"] == "torch"
    assert results["epochs_run"] == 1
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["epoch"] == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("spec", "metric", "at_least"),
    [("logistic_regression", "accuracy", 0.93), ("iris_graph", "accuracy", 0.85),
     ("resnet", "accuracy", 0.95)],
)
def test_offline_spec_reaches_its_accuracy(spec: str, metric: str, at_least: float,
                                           tmp_path: Path) -> None:
    results = run_program(ROOT / "specs" / f"{spec}.spec", tmp_path / "run")
    assert results["test"][metric] >= at_least, results
