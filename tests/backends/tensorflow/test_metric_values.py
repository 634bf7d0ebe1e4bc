"""recipe.py's metrics over a split of several batches, on both backends, equal
sklearn.metrics's on the same outputs: classes per time step of probabilities
(`from_logits=false`) and one binary unit, with tied scores, for the metrics that need the
whole split (auc ranks every sample; the others sum counts), and regression's r2, rmse and
mape; mean_iou, r2, rmse and mape also equal Keras's metrics of those names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .test_train import load_model, recipe_module

sklearn_metrics = pytest.importorskip("sklearn.metrics")

TAGGER = """
model tagger {
    input tokens: int[6]
    layers {
        embedding(20, 8)
        dense(4)
        softmax()
    }
    loss cross_entropy(from_logits=false)
    metrics auc, auc(curve=pr), balanced_accuracy, mean_iou, confusion_matrix
    data synthetic(n=40)
}
"""
DETECTOR = """
model detector {
    input x: float[3]
    layers {
        dense(1, activation=sigmoid)
    }
    loss binary_cross_entropy(from_logits=false)
    metrics auc, auc(curve=pr), balanced_accuracy, mean_iou, confusion_matrix
    data synthetic(n=40)
}
"""

REGRESSOR = """
model regressor {
    input x: float[3]
    layers {
        dense(2)
    }
    loss mse()
    metrics r2, rmse, mape
    data synthetic(n=40)
}
"""


def split_in_batches(model, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """Three batches of outputs and labels, the outputs rounded so that scores tie."""
    batches = []
    for size in (16, 16, 9):
        if model.name == "regressor":
            labels = rng.normal(2, 1, (size, 2)).astype(np.float32)
            scores = labels + rng.normal(0, 0.5, (size, 2))
        elif model.name == "tagger":
            scores = rng.dirichlet(np.ones(4), size=(size, 6))
            labels = rng.integers(0, 4, (size, 6))
        else:
            scores = rng.uniform(size=(size, 1))
            labels = rng.integers(0, 2, (size, 1)).astype(np.float32)
        batches.append((np.round(scores, 1).astype(np.float32), labels))
    return batches


def split_metrics(recipe, to_tensor, concat, batches) -> dict:
    """metric_values over the batches, their statistics added up as train.py's evaluate adds
    them (each batch's per-sample ones kept)."""
    totals = {}
    for scores, labels in batches:
        statistics = recipe.batch_statistics((to_tensor(scores),), (to_tensor(labels),))
        for name, value in statistics.items():
            if name in getattr(recipe, "PER_SAMPLE", ()):
                totals.setdefault(name, []).append(value)
            else:
                totals[name] = totals.get(name, 0) + value
    totals = {name: np.asarray(concat(value) if isinstance(value, list) else value)
              for name, value in totals.items()}
    return recipe.metric_values(totals)


def both_recipes(model, folder: Path, torch):
    """Each backend's recipe.py, with how its framework makes a tensor and joins tensors."""
    import tensorflow as tf

    return ((recipe_module(model, "torch", folder), torch.from_numpy, torch.cat),
            (recipe_module(model, "tensorflow", folder), tf.constant,
             lambda parts: tf.concat(parts, 0)))


def sklearn_values(batches, classes: int) -> dict:
    m = sklearn_metrics
    scores = np.concatenate([s for s, _ in batches]).reshape(-1, classes)
    labels = np.concatenate([y for _, y in batches]).reshape(-1)
    if classes > 1:
        chosen = scores.argmax(-1)
        one_hot = labels[:, None] == np.arange(classes)
        # one class against the rest at a time (multi_class="ovr" would refuse the rounded
        # probabilities, which no longer sum to 1)
        roc = np.mean([m.roc_auc_score(one_hot[:, c], scores[:, c]) for c in range(classes)])
        pr = m.average_precision_score(one_hot, scores)
        confusion = m.confusion_matrix(labels, chosen, labels=range(classes))
    else:
        scores, chosen = scores[:, 0], scores[:, 0] > 0.5
        roc = m.roc_auc_score(labels, scores)
        pr = m.average_precision_score(labels, scores)
        confusion = m.confusion_matrix(labels, chosen)
    return {"auc": roc, "auc_pr": pr,
            "balanced_accuracy": m.balanced_accuracy_score(labels, chosen),
            "mean_iou": m.jaccard_score(labels, chosen, average="macro"),
            "confusion_matrix": confusion.tolist()}


@pytest.mark.slow
@pytest.mark.parametrize("spec", [TAGGER, DETECTOR], ids=["classes_per_step", "binary"])
def test_split_metrics_are_sklearn_s(frameworks, tmp_path: Path, spec: str) -> None:
    torch = frameworks[0]
    model = load_model(tmp_path, spec)
    batches = split_in_batches(model, np.random.default_rng(1))
    classes = model.graph.value(model.graph.outputs[0]).shape[-1]
    expected = sklearn_values(batches, classes)
    assert len({s for s, _ in batches for s in s.reshape(-1)}) < 12  # scores do tie
    for recipe, to_tensor, concat in both_recipes(model, tmp_path, torch):
        ours = split_metrics(recipe, to_tensor, concat, batches)
        assert ours["confusion_matrix"] == expected["confusion_matrix"]
        assert sum(map(sum, ours["confusion_matrix"])) == sum(len(y.reshape(-1))
                                                              for _, y in batches)
        for name in ("auc", "auc_pr", "balanced_accuracy", "mean_iou"):
            assert ours[name] == pytest.approx(expected[name], rel=1e-9), name


def keras_value(metric, labels: np.ndarray, outputs: np.ndarray) -> float:
    metric.update_state(labels, outputs)
    return float(metric.result())


@pytest.mark.slow
def test_regression_metrics_are_sklearn_s_and_keras_s(frameworks, tmp_path: Path) -> None:
    torch, keras = frameworks
    model = load_model(tmp_path, REGRESSOR)
    batches = split_in_batches(model, np.random.default_rng(2))
    outputs = np.concatenate([s for s, _ in batches]).astype(np.float64)
    labels = np.concatenate([y for _, y in batches]).astype(np.float64)
    m = sklearn_metrics
    expected = {"r2": m.r2_score(labels, outputs),
                # the root of the mse over every value, where sklearn's
                # root_mean_squared_error would average each unit's root
                "rmse": np.sqrt(m.mean_squared_error(labels, outputs)),
                "mape": 100 * m.mean_absolute_percentage_error(labels, outputs)}
    keras_expected = {
        "r2": keras_value(keras.metrics.R2Score(), labels, outputs),
        "rmse": keras_value(keras.metrics.RootMeanSquaredError(), labels, outputs),
        "mape": keras_value(keras.metrics.MeanAbsolutePercentageError(), labels, outputs)}
    assert keras_expected == pytest.approx(expected, rel=1e-5)
    for recipe, to_tensor, concat in both_recipes(model, tmp_path, torch):
        # the outputs are float32 in the programs: so are their errors
        assert split_metrics(recipe, to_tensor, concat, batches) == pytest.approx(expected,
                                                                                 rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("spec", [TAGGER, DETECTOR], ids=["classes_per_step", "binary"])
def test_mean_iou_is_keras_s(frameworks, tmp_path: Path, spec: str) -> None:
    keras = frameworks[1]
    import tensorflow as tf

    model = load_model(tmp_path, spec)
    batches = split_in_batches(model, np.random.default_rng(3))
    classes = model.graph.value(model.graph.outputs[0]).shape[-1]
    scores = np.concatenate([s for s, _ in batches]).reshape(-1, classes)
    labels = np.concatenate([y for _, y in batches]).reshape(-1)
    chosen = scores.argmax(-1) if classes > 1 else scores[:, 0] > 0.5
    theirs = keras_value(keras.metrics.MeanIoU(num_classes=max(classes, 2)), labels, chosen)
    recipe = recipe_module(model, "tensorflow", tmp_path)
    ours = split_metrics(recipe, tf.constant, lambda parts: tf.concat(parts, 0), batches)
    assert ours["mean_iou"] == pytest.approx(theirs, rel=1e-6)
