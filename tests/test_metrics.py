"""The metrics of a run equal scikit-learn's on the same predictions, on both backends: a model
with three outputs (classes, binary units, regression) trains with metrics per output, its
test metrics in results.json are compared with sklearn.metrics on what `--predict` gives for
the test split, and each epoch's line in metrics.jsonl holds every output's metrics."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import specc
from specc.backends import generate

sklearn_metrics = pytest.importorskip("sklearn.metrics")

SPEC = """
model heads {
    input x: float[6]
    graph {
        h = x -> dense(16, activation=relu)
        logits = h -> dense(4)
        flag = h -> dense(2)
        value = h -> dense(2)
    }
    output logits, flag, value
    loss logits: cross_entropy(), flag: binary_cross_entropy(), value: mse()
    metrics accuracy, logits: auc, auc(curve=pr), balanced_accuracy, mean_iou,
        confusion_matrix, flag: auc, auc(curve=pr), balanced_accuracy, mean_iou,
        confusion_matrix, value: r2, rmse, mape, mae
    data synthetic(n=200, validation=0.2, test=0.3)
    train {
        epochs = 1
        batch_size = 16
        early_stopping(monitor=val_auc_logits)
        tensorboard = false
    }
}
"""
QUIET = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
ROOT = Path(__file__).resolve().parent.parent


def run(program: Path, *args: str | Path) -> None:
    done = subprocess.run([sys.executable, str(program / "train.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=300, check=False, env=QUIET)
    assert done.returncode == 0, done.stderr[-3000:]


def softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits.astype(np.float64) - logits.max(-1, keepdims=True))
    return exp / exp.sum(-1, keepdims=True)


def sklearn_values(predicted: dict[str, np.ndarray], labels: tuple) -> dict[str, object]:
    """The metrics of SPEC as scikit-learn computes them from the predictions and labels."""
    m = sklearn_metrics
    classes, flags, values = labels
    logits, flag, value = predicted["logits"], predicted["flag"], predicted["value"]
    chosen = logits.argmax(-1)
    one_hot = classes[:, None] == np.arange(4)
    flags, decided = flags > 0.5, flag > 0  # a positive logit: a probability above 0.5
    return {
        "accuracy": m.accuracy_score(classes, chosen),
        "auc_logits": m.roc_auc_score(classes, softmax(logits), multi_class="ovr"),
        "auc_pr_logits": m.average_precision_score(one_hot, softmax(logits)),
        "balanced_accuracy_logits": m.balanced_accuracy_score(classes, chosen),
        "mean_iou_logits": m.jaccard_score(classes, chosen, average="macro"),
        "confusion_matrix_logits": m.confusion_matrix(classes, chosen,
                                                      labels=range(4)).tolist(),
        # one-vs-rest per unit (sklearn's multilabel average="macro"), the decisions of
        # every unit together
        "auc_flag": m.roc_auc_score(flags, flag),
        "auc_pr_flag": m.average_precision_score(flags, flag),
        "balanced_accuracy_flag": m.balanced_accuracy_score(flags.ravel(), decided.ravel()),
        "mean_iou_flag": m.jaccard_score(flags.ravel(), decided.ravel(), average="macro"),
        "confusion_matrix_flag": m.confusion_matrix(flags.ravel(), decided.ravel()).tolist(),
        "r2_value": m.r2_score(values, value),
        # the root of the mse over every unit (Keras's RootMeanSquaredError), where sklearn's
        # root_mean_squared_error would average each unit's root
        "rmse_value": np.sqrt(m.mean_squared_error(values, value)),
        "mape_value": 100 * m.mean_absolute_percentage_error(values, value),
        "mae_value": m.mean_absolute_error(values, value),
    }


def program_module(program: Path, name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_{program.parent.name}",
                                                  program / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_the_programs_pass_ruff_and_leave_out_what_no_metric_needs(tmp_path: Path,
                                                                   backend: str) -> None:
    spec = tmp_path / "heads.spec"
    spec.write_text(textwrap.dedent(SPEC))
    files = generate(specc.load(spec).models[0], backend, tmp_path)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--config", str(ROOT / "pyproject.toml"),
         "--extend-ignore", "N812,E402,E501", "--output-format", "concise",
         *(str(tmp_path / name) for name in files if name.endswith(".py"))],
        capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert 'PER_SAMPLE = ["scores_logits", "score_labels_logits", "scores_flag", ' \
        '"score_labels_flag"]' in files["recipe.py"]
    assert "recipe.PER_SAMPLE" in files["train.py"] and "recipe.MATRICES" in files["train.py"]
    # without auc or a matrix, neither is there
    spec.write_text(textwrap.dedent(SPEC).replace("auc, auc(curve=pr), ", "")
                    .replace("confusion_matrix, ", "").replace("val_auc_logits", "val_loss"))
    files = generate(specc.load(spec).models[0], backend, tmp_path)
    for word in ("PER_SAMPLE", "MATRICES", "ranked_counts", "scores_", "confusion_matrix_"):
        assert word not in files["recipe.py"] + files["train.py"], word


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_test_metrics_are_sklearn_s_on_the_predictions(tmp_path: Path, backend: str) -> None:
    spec = tmp_path / "heads.spec"
    spec.write_text(textwrap.dedent(SPEC))
    model = specc.load(spec).models[0]
    program = tmp_path / "program"
    program.mkdir()
    for name, text in generate(model, backend, program).items():
        (program / name).write_text(text)
    out = tmp_path / "run"
    run(program, "--no-export", "--out", out, "--device", "cpu")

    # the test split, as the program's data.py cuts it, through --predict
    splits, _ = program_module(program, "data").load_splits(model.train.seed)
    test_inputs, test_labels = splits["test"]
    np.savez(tmp_path / "test.npz", x=test_inputs)
    run(program, "--out", out, "--device", "cpu", "--predict", tmp_path / "test.npz")
    with np.load(out / "predictions.npz") as archive:
        predicted = {name: archive[name] for name in ("logits", "flag", "value")}

    test = json.loads((out / "results.json").read_text())["test"]
    expected = sklearn_values(predicted, test_labels)
    assert sorted(set(test) - {"loss", "loss_logits", "loss_flag", "loss_value"}) == \
        sorted(expected)
    for name, value in expected.items():
        if isinstance(value, list):
            assert test[name] == value, name
        else:
            assert test[name] == pytest.approx(value, rel=1e-5, abs=1e-9), name
    assert sum(map(sum, test["confusion_matrix_logits"])) == len(test_labels[0])

    # every output's metrics in each epoch's line, a matrix in results.json only
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert [name for name in record if name.startswith("val_") and "loss" not in name] == [
        "val_accuracy", "val_auc_logits", "val_auc_pr_logits", "val_balanced_accuracy_logits",
        "val_mean_iou_logits", "val_auc_flag", "val_auc_pr_flag", "val_balanced_accuracy_flag",
        "val_mean_iou_flag", "val_r2_value", "val_rmse_value", "val_mape_value",
        "val_mae_value"]
    assert 0 <= record["val_auc_logits"] <= 1
