"""`specc plot`: training curves of one or more runs, from their metrics.jsonl.

One panel per quantity: the loss first (training solid, validation dashed), then each
metric, then the learning rate when a schedule changed it. Runs are overlaid in one colour
each, labelled with their directory's name and backend, so that the same spec trained on
both backends can be compared at a glance. A loss that spans a factor of ten or more is
drawn on a log scale.

matplotlib is imported only here, through its object-oriented `Figure` (no pyplot, no GUI
backend: it draws headless).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from specc.run_files import RunError, backend_of, read_metrics

# Keys of an epoch record that are not curves of their own.
NOT_CURVES = frozenset({"epoch", "time", "lr"})
VALIDATION = "val_"
# A panel is drawn on a log scale when its largest value is this many times its smallest.
LOG_SCALE_SPAN = 10.0
TITLES = {"lr": "learning rate"}
PANELS_PER_ROW = 3
PANEL_SIZE = (5.0, 3.6)  # inches


@dataclass(frozen=True)
class Run:
    """One run's curves: its label and its epoch records."""

    label: str
    epochs: list[dict]


def load_runs(run_dirs: list[Path]) -> list[Run]:
    """Read every run's metrics.jsonl; raises RunError for the first that cannot be read."""
    runs = []
    for run_dir in run_dirs:
        epochs = read_metrics(run_dir)
        if not epochs:
            raise RunError(f"{run_dir}/metrics.jsonl holds no finished epoch yet")
        backend = backend_of(run_dir)
        name = run_dir.resolve().name
        runs.append(Run(f"{name} ({backend})" if backend else name, epochs))
    return runs


def panels(runs: list[Run]) -> list[str]:
    """The quantities to draw, by their training name: `loss`, then the metrics in the
    order the records list them, then `lr` when it changes within a run."""
    names: list[str] = []
    for run in runs:
        for record in run.epochs:
            for key in record:
                name = key.removeprefix(VALIDATION)
                if key not in NOT_CURVES and name not in names:
                    names.append(name)
    names.sort(key=lambda name: name != "loss")  # stable: the loss first, the rest in order
    if any(len({record.get("lr") for record in run.epochs}) > 1 for run in runs):
        names.append("lr")
    return names


def choose_panels(runs: list[Run], metric: str | None) -> list[str]:
    available = panels(runs)
    if metric is None:
        return available
    name = metric.removeprefix(VALIDATION)
    if name not in available:
        raise RunError(f"no metric `{metric}` in these runs (expected one of: "
                       f"{', '.join(available)})")
    return [name]


def curves_figure(runs: list[Run], metric: str | None = None) -> Figure:
    """The figure of `runs`' curves: one axes per panel, one line per run and split."""
    names = choose_panels(runs, metric)
    columns = min(len(names), PANELS_PER_ROW)
    rows = -(-len(names) // columns)
    figure = Figure(figsize=(PANEL_SIZE[0] * columns, PANEL_SIZE[1] * rows),
                    layout="constrained")
    colors = [f"C{index % 10}" for index in range(len(runs))]
    for index, name in enumerate(names):
        axes = figure.add_subplot(rows, columns, index + 1)
        values: list[float] = []
        for run, color in zip(runs, colors, strict=True):
            splits = [("", "-")] if name == "lr" else [("", "-"), (VALIDATION, "--")]
            for prefix, style in splits:
                key = prefix + name
                points = [(record["epoch"], record[key]) for record in run.epochs
                          if isinstance(record.get(key), (int, float))]
                if not points:
                    continue
                epochs, ys = zip(*points, strict=True)
                split = "validation" if prefix else ("training" if name != "lr" else "")
                label = f"{run.label} {split}".rstrip()
                axes.plot(epochs, ys, style, color=color, label=label,
                          marker="o" if len(points) < 20 else None, markersize=3)
                values += ys
        axes.set_title(TITLES.get(name, name))
        axes.set_xlabel("epoch")
        axes.set_ylabel(name)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(True, alpha=0.3)
        positive = [value for value in values if value > 0]
        if (name.endswith("loss") or name == "lr") and len(positive) == len(values) and (
                positive and max(positive) >= LOG_SCALE_SPAN * min(positive)):
            axes.set_yscale("log")
        axes.legend(fontsize="small")
    return figure


def write(run_dirs: list[Path], out: str | Path, metric: str | None = None) -> Path:
    """Draw the runs' curves into `out` (PNG, SVG or PDF, by its suffix)."""
    out = Path(out)
    figure = curves_figure(load_runs(run_dirs), metric)
    figure.savefig(out, dpi=120)
    return out
