"""`specc plot`: the curves drawn are the numbers in metrics.jsonl, runs overlaid with a
legend, a log scale for a loss that spans decades, clear errors for what is not a run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from run_fixtures import epochs, lines_of, write_run

from specc.cli import EXIT_OK, EXIT_SPEC, EXIT_USAGE, main
from specc.plot import curves_figure, load_runs
from specc.run_files import RunError


@pytest.fixture
def two_backends(tmp_path: Path) -> list[Path]:
    return [
        write_run(tmp_path / "digits-torch", epochs([2.0, 0.5, 0.1], [0.5, 0.8, 0.9])),
        write_run(tmp_path / "digits-tf", epochs([2.2, 0.6, 0.2], [0.4, 0.7, 0.95]),
                  backend="tensorflow"),
    ]


def test_each_run_and_split_is_a_line_of_its_own_numbers(two_backends):
    figure = curves_figure(load_runs(two_backends))
    loss, accuracy = figure.axes  # the lr never changed: no panel for it
    assert loss.get_title() == "loss" and accuracy.get_title() == "accuracy"
    assert loss.get_xlabel() == "epoch"
    assert lines_of(loss) == {
        "digits-torch (torch) training": ([1, 2, 3], [2.0, 0.5, 0.1], "-"),
        "digits-torch (torch) validation": ([1, 2, 3], pytest.approx([2.2, 0.55, 0.11]), "--"),
        "digits-tf (tensorflow) training": ([1, 2, 3], [2.2, 0.6, 0.2], "-"),
        "digits-tf (tensorflow) validation": ([1, 2, 3], pytest.approx([2.42, 0.66, 0.22]),
                                              "--"),
    }
    assert lines_of(accuracy) == {
        "digits-torch (torch) validation": ([1, 2, 3], [0.5, 0.8, 0.9], "--"),
        "digits-tf (tensorflow) validation": ([1, 2, 3], [0.4, 0.7, 0.95], "--"),
    }
    # a loss from 2.42 down to 0.11 spans more than a decade; accuracies do not get a log axis
    assert loss.get_yscale() == "log" and accuracy.get_yscale() == "linear"
    legend = [text.get_text() for text in loss.get_legend().get_texts()]
    assert "digits-tf (tensorflow) validation" in legend
    # one colour per run, shared by its training and validation lines
    colors = {label: line.get_color() for line, label in zip(
        loss.get_lines(), [line.get_label() for line in loss.get_lines()], strict=True)}
    assert colors["digits-torch (torch) training"] == colors["digits-torch (torch) validation"]
    assert colors["digits-torch (torch) training"] != colors["digits-tf (tensorflow) training"]


def test_a_loss_within_a_decade_stays_linear_and_a_changing_lr_gets_a_panel(tmp_path):
    run = write_run(tmp_path / "run", epochs([1.0, 0.8, 0.6], [0.5, 0.6, 0.7],
                                             lrs=[0.1, 0.05, 0.01]), results={"backend": "x"})
    loss, _, lr = curves_figure(load_runs([run])).axes
    assert loss.get_yscale() == "linear"
    assert lr.get_title() == "learning rate"
    assert lines_of(lr) == {"run (x)": ([1, 2, 3], [0.1, 0.05, 0.01], "-")}
    assert lr.get_yscale() == "log"


def test_metric_chooses_one_panel(two_backends):
    (panel,) = curves_figure(load_runs(two_backends), metric="val_accuracy").axes
    assert panel.get_title() == "accuracy"
    (panel,) = curves_figure(load_runs(two_backends), metric="loss").axes
    assert len(panel.get_lines()) == 4
    with pytest.raises(RunError, match=r"no metric `f1` in these runs \(expected one of: "
                                       r"loss, accuracy\)"):
        curves_figure(load_runs(two_backends), metric="f1")


def test_a_run_still_training_is_drawn_as_far_as_it_got(tmp_path):
    run = write_run(tmp_path / "live", epochs([1.0, 0.5], [0.5, 0.6]), finished=False)
    with (run / "metrics.jsonl").open("a") as log:
        log.write('{"epoch": 3, "loss": 0.')  # the line being written
    (runs,) = load_runs([run])
    assert runs.label == "live (torch)"  # the backend from the program's first line
    assert [record["epoch"] for record in runs.epochs] == [1, 2]


def test_cli_writes_the_png(two_backends, tmp_path, capsys):
    out = tmp_path / "curves.png"
    assert main(["plot", *map(str, two_backends), "-o", str(out)]) == EXIT_OK
    assert capsys.readouterr().out == f"{out}\n"
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and out.stat().st_size > 10_000


def test_cli_errors(two_backends, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["plot", str(two_backends[0]), str(empty), "-o", str(tmp_path / "c.png")]) == (
        EXIT_SPEC)
    err = capsys.readouterr().err
    assert err.startswith(f"specc plot: {empty} has no metrics.jsonl (expected the directory")
    assert not (tmp_path / "c.png").exists()

    bad = write_run(tmp_path / "bad", epochs([1.0, 0.5], [0.5, 0.6]))
    (bad / "metrics.jsonl").write_text('{"epoch": 1, "loss": 1}\nnot json\n{"epoch": 3}\n')
    assert main(["plot", str(bad), "-o", str(tmp_path / "c.png")]) == EXIT_SPEC
    assert f"{bad}/metrics.jsonl:2: not a JSON line" in capsys.readouterr().err

    assert main(["plot", str(two_backends[0]), "-o", str(tmp_path / "c.gif")]) == EXIT_USAGE
    assert "-o must end with one of .png, .svg, .pdf" in capsys.readouterr().err
    assert main(["plot", str(two_backends[0]), "--metric", "f1",
                 "-o", str(tmp_path / "c.png")]) == EXIT_SPEC
    assert "specc plot: no metric `f1`" in capsys.readouterr().err


def test_without_matplotlib_the_error_says_which_extra(two_backends, tmp_path, capsys,
                                                       monkeypatch):
    monkeypatch.delitem(sys.modules, "specc.plot", raising=False)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # `import` of it fails
    assert main(["plot", str(two_backends[0]), "-o", str(tmp_path / "c.png")]) == EXIT_SPEC
    assert "pip install 'specc[viz]'" in capsys.readouterr().err
    assert not (tmp_path / "c.png").exists()
