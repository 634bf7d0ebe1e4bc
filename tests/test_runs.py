"""`specc runs`: one row per run directory with what its files say, unfinished runs shown
as incomplete, clear errors for a folder that is not there."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from run_fixtures import epochs, lines_of, write_run

from specc.cli import EXIT_OK, EXIT_SPEC, main
from specc.plot import curves_figure, load_runs

ROOT = Path(__file__).resolve().parent.parent


def table(capsys, *args: str) -> tuple[int, list[list[str]], str]:
    """The exit status, the rows split on runs of two or more spaces, stderr."""
    code = main(["runs", *args])
    captured = capsys.readouterr()
    rows = [re.split(r"\s{2,}", line.strip()) for line in captured.out.splitlines()]
    return code, rows, captured.err


def age(path: Path, seconds_ago: int) -> None:
    """Set the times of a run's files, so that the order of the rows is known."""
    for file in (path / "metrics.jsonl", path / "results.json"):
        if file.exists():
            os.utime(file, (file.stat().st_atime - seconds_ago, file.stat().st_mtime
                            - seconds_ago))


def test_a_row_per_run_with_results_and_best_metric(tmp_path, capsys):
    torch_run = write_run(tmp_path / "digits_cnn", epochs([1.0, 0.5, 0.4], [0.7, 0.9, 0.85]))
    tf_run = write_run(tmp_path / "digits_cnn-2", epochs([1.1, 0.6], [0.6, 0.8]),
                       backend="tensorflow",
                       results={"device": "cuda:0", "train_samples_per_s": 987.4,
                                "test": {"loss": 0.5, "accuracy": 0.75}})
    live = write_run(tmp_path / "resnet", epochs([2.0], [0.3]), model="resnet",
                     finished=False)
    (tmp_path / "notes").mkdir()  # not a run: no metrics, results or program
    age(torch_run, 300)
    age(tf_run, 200)
    age(live, 100)
    code, rows, err = table(capsys, str(tmp_path))
    assert code == EXIT_OK and err == ""
    header, rule, *runs = rows
    assert header == ["run", "model", "backend", "device", "epochs", "best val", "test",
                      "samples/s", "date", "status"]
    assert set(rule[0]) == {"-"}
    assert [row[0] for row in runs] == [str(torch_run), str(tf_run), str(live)]  # oldest first
    torch_row = runs[0]
    assert torch_row[1:6] == ["digits_cnn", "torch", "cpu", "3", "val_accuracy 0.9 (epoch 2)"]
    assert torch_row[6:8] == ["loss 0.125, accuracy 0.9688", "12,346"]
    assert torch_row[-1] == "done"
    tf_row = runs[1]
    assert tf_row[1:6] == ["digits_cnn", "tensorflow", "cuda:0", "2",
                           "val_accuracy 0.8 (epoch 2)"]
    assert tf_row[6:8] == ["loss 0.5, accuracy 0.75", "987"]
    # an unfinished run: what its metrics and program say so far
    assert runs[2][:6] == [str(live), "resnet", "torch", "-", "1", "val_accuracy 0.3 (epoch 1)"]
    assert runs[2][6:8] == ["-", "-"] and runs[2][-1] == "incomplete"
    assert all(len(row) == len(header) for row in runs)


def test_smaller_is_better_for_error_metrics(tmp_path, capsys):
    records = [{"epoch": 1, "loss": 3.0, "val_loss": 3.0, "val_mae": 1.5, "lr": 0.01},
               {"epoch": 2, "loss": 2.0, "val_loss": 2.5, "val_mae": 1.2, "lr": 0.01},
               {"epoch": 3, "loss": 1.0, "val_loss": 2.8, "val_mae": 1.3, "lr": 0.01}]
    write_run(tmp_path / "regression", records, results={"test": {"loss": 2.6, "mae": 1.25}})
    only_loss = [{key: value for key, value in record.items() if key != "val_mae"}
                 for record in records]
    write_run(tmp_path / "plain", only_loss)
    _, rows, _ = table(capsys, str(tmp_path))
    best = {row[0]: row[5] for row in rows[2:]}
    assert best[str(tmp_path / "regression")] == "val_mae 1.2 (epoch 2)"
    assert best[str(tmp_path / "plain")] == "val_loss 2.5 (epoch 2)"


def test_an_output_s_error_metric_is_smaller_better_and_a_matrix_stays_out(tmp_path,
                                                                            capsys):
    records = [{"epoch": 1, "loss": 3.0, "val_loss": 3.0, "val_rmse_value": 1.5},
               {"epoch": 2, "loss": 2.0, "val_loss": 2.5, "val_rmse_value": 1.2},
               {"epoch": 3, "loss": 1.0, "val_loss": 2.8, "val_rmse_value": 1.3}]
    test = {"loss": 2.6, "rmse_value": 1.25, "confusion_matrix_logits": [[3, 1], [0, 4]]}
    write_run(tmp_path / "heads", records, results={"test": test})
    _, rows, _ = table(capsys, str(tmp_path))
    assert rows[2][5:7] == ["val_rmse_value 1.2 (epoch 2)", "loss 2.6, rmse_value 1.25"]


def test_a_run_directory_itself_is_a_table_of_one(tmp_path, capsys):
    run = write_run(tmp_path / "one", epochs([1.0], [0.5]))
    _, rows, _ = table(capsys, str(run))
    assert [row[0] for row in rows[2:]] == [str(run)]


def test_damaged_files_are_shown_not_fatal(tmp_path, capsys):
    run = write_run(tmp_path / "cut", epochs([1.0, 0.5], [0.5, 0.6]))
    (run / "results.json").write_text('{"backend": "torch", "dev')
    code, rows, _ = table(capsys, str(tmp_path))
    assert code == EXIT_OK
    assert rows[2][-1].startswith("damaged results.json")
    assert rows[2][4] == "2"  # the epochs that metrics.jsonl holds


def test_default_folder_and_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = table(capsys)
    assert code == EXIT_SPEC
    assert err.startswith("specc runs: no folder runs (expected a folder of run directories")
    (tmp_path / "runs").mkdir()
    code, rows, _ = table(capsys)
    assert code == EXIT_OK and rows == [["no runs in runs"]]
    write_run(tmp_path / "runs" / "digits_cnn", epochs([1.0], [0.5]))
    code, rows, _ = table(capsys)
    assert code == EXIT_OK and rows[2][0] == "runs/digits_cnn"


@pytest.mark.slow
def test_trained_runs_of_both_backends_are_listed_and_plotted(tmp_path, capsys):
    """`specc train` digits for 2 epochs on each backend, then `specc runs` and `specc plot`
    read what the two programs wrote."""
    spec = ROOT / "specs" / "digits_cnn.spec"
    runs = tmp_path / "runs"
    for backend in ("torch", "tensorflow"):
        trained = subprocess.run(
            [sys.executable, "-m", "specc.cli", "train", str(spec), "--backend", backend,
             "--epochs", "2", "--out", str(runs / backend)],
            capture_output=True, text=True, timeout=600, cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert trained.returncode == 0, trained.stdout + trained.stderr

    code, rows, _ = table(capsys, str(runs))
    assert code == EXIT_OK
    by_run = {row[0]: row for row in rows[2:]}
    assert set(by_run) == {str(runs / "torch"), str(runs / "tensorflow")}
    for backend in ("torch", "tensorflow"):
        row = by_run[str(runs / backend)]
        assert row[1:5] == ["digits_cnn", backend, "cpu", "2"]
        assert re.fullmatch(r"val_accuracy 0\.\d+ \(epoch [12]\)", row[5]), row[5]
        assert row[6].startswith("loss ") and ", accuracy " in row[6]
        assert row[-1] == "done"

    figure = curves_figure(load_runs([runs / "torch", runs / "tensorflow"]))
    loss = figure.axes[0]
    for backend in ("torch", "tensorflow"):
        records = [json.loads(line) for line in
                   (runs / backend / "metrics.jsonl").read_text().splitlines()]
        x, y, _ = lines_of(loss)[f"{backend} ({backend}) training"]
        assert x == [1, 2] and y == [record["loss"] for record in records]
    out = tmp_path / "curves.png"
    assert main(["plot", str(runs / "torch"), str(runs / "tensorflow"), "-o", str(out)]) == (
        EXIT_OK)
    assert out.read_bytes().startswith(b"\x89PNG")


def test_the_program_seed_is_read_from_recipe_py_before_the_other_files(tmp_path):
    from specc.run_files import read_program_seed

    assert read_program_seed(tmp_path) is None
    (tmp_path / "data.py").write_text("def split(seed = 3):\n    pass\n")
    assert read_program_seed(tmp_path) is None  # an argument default is not the setting
    (tmp_path / "train.py").write_text("seed = 5\n")  # a program of an earlier version
    assert read_program_seed(tmp_path) == 5
    (tmp_path / "recipe.py").write_text('"""Settings."""\n\nseed = 11  # the split\n')
    assert read_program_seed(tmp_path) == 11
