"""The losses that follow Keras's formulas: each program's compute_loss against keras.losses.

Both generated recipes (PyTorch and TensorFlow) score random outputs against random labels
of the form the loss takes, and both must give what Keras's own loss class gives for them
(its mean over the batch and the positions). The metrics of a loss over one-hot labels read
the class of each row.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .test_train import ROOT, load_model, recipe_module, recipe_source

# name: (the spec's loss, Keras's loss class and its arguments, what the output holds, the
# labels' form, the output's shape)
CASES = {
    "categorical_cross_entropy": (
        "categorical_cross_entropy()", ("CategoricalCrossentropy", {"from_logits": True}),
        "logits", "one_hot", [4]),
    "categorical_cross_entropy_smoothed_sequence": (
        "categorical_cross_entropy(label_smoothing=0.2)",
        ("CategoricalCrossentropy", {"from_logits": True, "label_smoothing": 0.2}),
        "logits", "one_hot", [3, 4]),
    "categorical_cross_entropy_of_probabilities": (
        "categorical_cross_entropy(from_logits=false)", ("CategoricalCrossentropy", {}),
        "unnormalized", "distribution", [4]),
    "kl_divergence": ("kl_divergence()", ("KLDivergence", {}), "softmax", "distribution", [4]),
    "poisson": ("poisson()", ("Poisson", {}), "positive", "counts", [3]),
    "cosine_similarity": ("cosine_similarity()", ("CosineSimilarity", {}), "logits", "values",
                          [3, 4]),
    "log_cosh": ("log_cosh()", ("LogCosh", {}), "logits", "values", [3]),
    "hinge": ("hinge()", ("Hinge", {}), "logits", "binary", [2]),
    "hinge_of_signs": ("hinge()", ("Hinge", {}), "logits", "signs", [2]),
    "squared_hinge": ("squared_hinge()", ("SquaredHinge", {}), "logits", "binary", [2]),
    "binary_focal": ("binary_focal()",
                     ("BinaryFocalCrossentropy", {"from_logits": True, "gamma": 2.0}),
                     "logits", "binary", [3]),
    "binary_focal_balanced": (
        "binary_focal(gamma=1.5, alpha=0.3, from_logits=false)",
        ("BinaryFocalCrossentropy", {"apply_class_balancing": True, "alpha": 0.3,
                                     "gamma": 1.5}),
        "sigmoid", "probabilities", [1]),
    "categorical_focal": (
        "categorical_focal(gamma=3, alpha=0.5)",
        ("CategoricalFocalCrossentropy", {"from_logits": True, "gamma": 3.0, "alpha": 0.5}),
        "logits", "one_hot", [4]),
    "categorical_focal_of_probabilities": (
        "categorical_focal(from_logits=false)", ("CategoricalFocalCrossentropy", {}),
        "unnormalized", "distribution", [4]),
}

ONE_HOT_FORMS = ("one_hot", "distribution")
# Keras takes 1 - sigmoid(logit) in float32, where torch's sigmoid and TensorFlow's round
# differently near 1: a relative error of up to 2e-4 in that term for logits of 8.
TOLERANCE = {"binary_focal": 2e-5}


def spec_text(loss: str, shape: list[int], metrics: bool) -> str:
    inputs = "float[3, 5]" if len(shape) == 2 else "float[5]"
    return f"""
        model scored {{
            input x: {inputs}
            layers {{ dense({shape[-1]}) }}
            loss {loss}
            {"metrics accuracy" if metrics else ""}
            data synthetic(n=16)
        }}
    """


def random_outputs(rng, holds: str, shape: tuple[int, ...]) -> np.ndarray:
    scores = rng.normal(size=shape) * 2
    if holds == "softmax":
        scores = np.exp(scores) / np.exp(scores).sum(-1, keepdims=True)
    elif holds == "unnormalized":  # positive, not summing to one: the loss scales them
        scores = np.exp(scores)
    elif holds == "sigmoid":
        scores = 1 / (1 + np.exp(-scores))
    elif holds == "positive":
        scores = np.log1p(np.exp(scores))
    return scores.astype(np.float32)


def random_labels(rng, form: str, shape: tuple[int, ...]) -> np.ndarray:
    if form == "one_hot":
        labels = np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
    elif form == "distribution":
        labels = rng.dirichlet(np.ones(shape[-1]), shape[:-1])
    elif form == "counts":
        labels = rng.poisson(2.0, shape)
    elif form == "binary":
        labels = rng.integers(0, 2, shape)
    elif form == "signs":
        labels = 2 * rng.integers(0, 2, shape) - 1
    elif form == "probabilities":
        labels = rng.uniform(size=shape)
    else:
        labels = rng.normal(size=shape)
    return labels.astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_compute_loss_is_keras_s_loss_on_both_backends(frameworks, tmp_path: Path,
                                                       case: str) -> None:
    torch, keras = frameworks
    import tensorflow as tf

    loss, (keras_class, keras_arguments), holds, form, shape = CASES[case]
    metrics = form in ONE_HOT_FORMS
    model = load_model(tmp_path, spec_text(loss, shape, metrics))
    recipes = {"tf": recipe_module(model, "tensorflow", tmp_path),
               "torch": recipe_module(model, "torch", tmp_path)}
    keras_loss = getattr(keras.losses, keras_class)(**keras_arguments)
    rng = np.random.default_rng(3)
    for _ in range(3):
        outputs = random_outputs(rng, holds, (6, *shape))
        labels = random_labels(rng, form, (6, *shape))
        expected = float(keras_loss(labels, outputs))
        ours = float(recipes["tf"].compute_loss((tf.constant(outputs),), (tf.constant(labels),)))
        theirs = float(recipes["torch"].compute_loss((torch.from_numpy(outputs),),
                                                      (torch.from_numpy(labels),)))
        tolerance = TOLERANCE.get(case, 2e-6)
        assert ours == pytest.approx(expected, rel=tolerance, abs=1e-6), f"{case}: TensorFlow"
        assert theirs == pytest.approx(expected, rel=tolerance, abs=1e-6), f"{case}: PyTorch"
        if not metrics:
            continue
        correct = np.mean(outputs.argmax(-1) == labels.argmax(-1))
        for name, convert in (("tf", tf.constant), ("torch", torch.from_numpy)):
            recipe = recipes[name]
            sums = recipe.batch_statistics((convert(outputs),), (convert(labels),))
            values = recipe.metric_values({key: np.asarray(value) for key, value in sums.items()})
            assert values["accuracy"] == pytest.approx(correct), f"{case}: {name} accuracy"


def test_each_loss_s_recipe_passes_ruff_and_holds_only_its_own_functions(tmp_path: Path) -> None:
    files = []
    for number, (case, (loss, _, _, form, shape)) in enumerate(CASES.items()):
        model = load_model(tmp_path / case, spec_text(loss, shape, form in ONE_HOT_FORMS))
        for backend in ("tensorflow", "torch"):
            source = recipe_source(model, backend)
            kind = loss.split("(")[0]
            others = {"hinge", "squared_hinge", "binary_focal", "categorical_focal",
                      "kl_divergence", "log_cosh"} - {kind}
            assert not [name for name in others if f"def {name}(" in source], (case, backend)
            files.append(tmp_path / f"recipe_{number}_{backend}.py")
            files[-1].write_text(source)
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--config", str(ROOT / "pyproject.toml"),
         "--extend-ignore", "N812", "--output-format", "concise", *map(str, files)],
        capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
