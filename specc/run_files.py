"""Reading what a training run left in its directory, for `specc plot` and `specc runs`.

A run directory (README.md, "A run directory") holds `metrics.jsonl`, one JSON object per
finished epoch (epoch, loss, val_loss, val_<metric>, lr, time), `results.json` once training
ended, and `code/train.py`, the program that ran, whose first docstring line names the model
and the framework. Nothing here imports a framework or a plotting library.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from specc.backends.registry import BACKENDS_BY_FRAMEWORK

METRICS_FILE = "metrics.jsonl"
RESULTS_FILE = "results.json"
PROGRAM_FILE = Path("code") / "train.py"
# The generated train.py's first line: """Train `NAME` with PyTorch.
PROGRAM_TITLE = re.compile(r'^"""Train `(?P<model>[^`]+)` with (?P<framework>\w+)\.')


class RunError(Exception):
    """A run directory lacks a file it needs, or holds one that cannot be read."""


def is_run(folder: Path) -> bool:
    """Whether `folder` looks like a run directory: one of its files is there."""
    return any((folder / name).is_file() for name in (METRICS_FILE, RESULTS_FILE, PROGRAM_FILE))


def read_metrics(run_dir: Path) -> list[dict]:
    """The epochs of `run_dir/metrics.jsonl`, in order. A last line cut short (a run killed
    while writing it) is left out; any other line that is not a JSON object is an error."""
    path = run_dir / METRICS_FILE
    if not path.is_file():
        raise RunError(f"{run_dir} has no {METRICS_FILE} (expected the directory of a run "
                       "of `specc train` or of a generated train.py, with one JSON line per "
                       "finished epoch)")
    lines = path.read_text(encoding="utf-8").split("\n")
    epochs = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):  # no newline after it: still being written, or cut
                break
            raise RunError(f"{path}:{number}: not a JSON line (expected one JSON object per "
                           f"epoch, got {line[:40]!r})") from None
        if not isinstance(record, dict) or not isinstance(record.get("epoch"), int):
            raise RunError(f"{path}:{number}: not an epoch record (expected a JSON object "
                           f"with an integer \"epoch\", got {line[:40]!r})")
        epochs.append(record)
    return epochs


def read_results(run_dir: Path) -> dict | None:
    """`run_dir/results.json`, or None when the run has not finished (no such file)."""
    path = run_dir / RESULTS_FILE
    if not path.is_file():
        return None
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise RunError(f"{path}: not JSON ({error})") from None
    if not isinstance(results, dict):
        raise RunError(f"{path}: not a JSON object")
    return results


# The settings' seed line, `seed = 0`: in recipe.py (in train.py in programs of earlier
# versions). Read as text, so that no framework is imported to learn it.
SEED_LINE = re.compile(r"^seed = (\d+)\b", re.MULTILINE)


def read_program_seed(code_dir: Path) -> int | None:
    """The seed the program in `code_dir` (a run's code/) split its data with; None when no
    file there sets one."""
    for path in sorted(code_dir.glob("*.py"), key=lambda path: path.name != "recipe.py"):
        match = SEED_LINE.search(path.read_text(encoding="utf-8", errors="replace"))
        if match:
            return int(match[1])
    return None


def read_program_title(run_dir: Path) -> tuple[str, str] | None:
    """(model name, backend) from the first line of `run_dir/code/train.py`, when it is a
    program specc generated."""
    path = run_dir / PROGRAM_FILE
    if not path.is_file():
        return None
    with path.open(encoding="utf-8", errors="replace") as program:
        match = PROGRAM_TITLE.match(program.readline())
    if match is None or match["framework"] not in BACKENDS_BY_FRAMEWORK:
        return None
    return match["model"], BACKENDS_BY_FRAMEWORK[match["framework"]]


def backend_of(run_dir: Path) -> str | None:
    """The framework a run used: results.json's word for it, else its program's."""
    try:
        results = read_results(run_dir)
    except RunError:
        results = None
    if results is not None and isinstance(results.get("backend"), str):
        return results["backend"]
    title = read_program_title(run_dir)
    return None if title is None else title[1]
