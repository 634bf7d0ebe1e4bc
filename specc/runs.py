"""`specc runs`: the run directories under a folder as one table, newest last.

Per run: the model and backend (results.json, else the program's first line), the device,
the epochs run, the best validation metric and its epoch (metrics.jsonl), the test metrics
and training speed (results.json), and when it last wrote (file times). A run without
results.json has not finished (still training, killed, or stopped by an error) and is shown
as incomplete, with what its metrics.jsonl holds so far.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from specc.run_files import (
    METRICS_FILE,
    RESULTS_FILE,
    RunError,
    is_run,
    read_metrics,
    read_program_title,
    read_results,
)

# Metrics where smaller is better (also as an output's, `mae_value`); every other metric is
# better larger.
SMALLER_IS_BETTER = ("loss", "mae", "mse", "rmse", "mape")
COLUMNS = ("run", "model", "backend", "device", "epochs", "best val", "test", "samples/s",
           "date", "status")
MISSING = "-"


@dataclass(frozen=True)
class RunSummary:
    """One row of the table, every cell already text."""

    run: str
    model: str
    backend: str
    device: str
    epochs: str
    best_val: str
    test: str
    samples_per_s: str
    date: str
    status: str
    modified: float  # for ordering: the time of the run's newest file

    def cells(self) -> tuple[str, ...]:
        return (self.run, self.model, self.backend, self.device, self.epochs, self.best_val,
                self.test, self.samples_per_s, self.date, self.status)


def find_runs(folder: Path) -> list[Path]:
    """`folder` itself when it is a run directory, else its sub-folders that are."""
    if is_run(folder):
        return [folder]
    return sorted(child for child in folder.iterdir() if child.is_dir() and is_run(child))


def summarize(run_dir: Path, shown_as: str) -> RunSummary:
    problems = []
    try:
        results = read_results(run_dir)
    except RunError as error:
        results, problems = None, [f"damaged {RESULTS_FILE}: {error}"]
    try:
        epochs = read_metrics(run_dir) if (run_dir / METRICS_FILE).is_file() else []
    except RunError:
        epochs, problems = [], [*problems, f"damaged {METRICS_FILE}"]
    title = read_program_title(run_dir)
    results = results or {}

    backend = results.get("backend") or (title[1] if title else MISSING)
    epochs_run = results.get("epochs_run", len(epochs) if epochs else None)
    speed = results.get("train_samples_per_s")
    test = results.get("test")
    files = [run_dir / name for name in (RESULTS_FILE, METRICS_FILE) if (run_dir / name).is_file()]
    modified = max((path.stat().st_mtime for path in files), default=run_dir.stat().st_mtime)
    if problems:
        status = "; ".join(problems)
    else:
        status = "done" if (run_dir / RESULTS_FILE).is_file() else "incomplete"
    return RunSummary(
        run=shown_as,
        model=title[0] if title else MISSING,
        backend=str(backend),
        device=str(results.get("device", MISSING)),
        epochs=MISSING if epochs_run is None else str(epochs_run),
        best_val=best_validation(epochs),
        test=MISSING if not isinstance(test, dict) else ", ".join(
            f"{name} {number(value)}" for name, value in test.items()
            if not isinstance(value, list)),  # a confusion matrix is too big for the table
        samples_per_s=f"{speed:,.0f}" if isinstance(speed, (int, float)) else MISSING,
        date=datetime.fromtimestamp(modified).strftime("%Y-%m-%d %H:%M"),
        status=status,
        modified=modified,
    )


def best_validation(epochs: list[dict]) -> str:
    """`val_accuracy 0.981 (epoch 12)`: the best epoch of the first validation metric, or
    of the validation loss when the run reports no other."""
    keys = [key for key in (epochs[0] if epochs else {}) if key.startswith("val_")]
    if not keys:
        return MISSING
    metrics = [key for key in keys if key != "val_loss"]
    key = metrics[0] if metrics else keys[0]
    scored = [(record[key], record["epoch"]) for record in epochs
              if isinstance(record.get(key), (int, float))]
    if not scored:
        return MISSING
    name = key.removeprefix("val_")
    smaller = name.endswith(SMALLER_IS_BETTER) or name.startswith(
        tuple(f"{metric}_" for metric in SMALLER_IS_BETTER))
    value, epoch = (min if smaller else max)(scored, key=lambda pair: pair[0])
    return f"{key} {number(value)} (epoch {epoch})"


def number(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def runs_table(folder: Path) -> str:
    """The table of the runs under `folder`, oldest first; raises RunError when `folder`
    is not a folder."""
    if not folder.is_dir():
        raise RunError(f"no folder {folder} (expected a folder of run directories, such as "
                       "runs/ where `specc train` writes)")
    run_dirs = find_runs(folder)
    if not run_dirs:
        return f"no runs in {folder}"
    summaries = sorted(
        (summarize(run_dir, str(run_dir)) for run_dir in run_dirs),
        key=lambda summary: (summary.modified, summary.run))
    table = [COLUMNS, *(summary.cells() for summary in summaries)]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    right = {COLUMNS.index("epochs"), COLUMNS.index("samples/s")}
    lines = ["  ".join(cell.rjust(width) if i in right else cell.ljust(width)
                       for i, (cell, width) in enumerate(zip(row, widths, strict=True))).rstrip()
             for row in table]
    rule = "-" * max(len(line) for line in lines)
    return "\n".join([lines[0], rule, *lines[1:]])
