"""The data-side options of training: stratified held-out splits, class weights, per-sample
weights and explicit validation and test files, as the generated loader realizes them."""

from __future__ import annotations

import runpy
import textwrap
from pathlib import Path

import numpy as np
import pytest
from data_files import write_program

import specc
from specc.backends.common.data import render_data_code

CLASSIFIER = """
model m {{
    input x: float[{features}]
    layers {{
        dense({classes})
    }}
    loss {loss}
    data {data}
    train {{ {train} }}
}}
"""


def checked(tmp_path: Path, data: str, train: str = "epochs = 1", features: int = 4,
            classes: int = 3, loss: str = "cross_entropy()"):
    folder = tmp_path / "specs"
    folder.mkdir(exist_ok=True)
    path = folder / "model.spec"
    path.write_text(textwrap.dedent(CLASSIFIER.format(
        features=features, classes=classes, loss=loss, data=data, train=train)))
    return specc.check(path)


def model_of(tmp_path: Path, data: str, **options):
    result = checked(tmp_path, data, **options)
    assert not result.diagnostics.errors, [d.message for d in result.diagnostics.errors]
    return result.program.models[0]


def loaded(tmp_path: Path, model) -> dict:
    program_dir = tmp_path / "program"
    return runpy.run_path(str(write_program(render_data_code(model, program_dir), program_dir)))


def class_counts(splits: dict, classes: int) -> dict[str, list[int]]:
    return {name: np.bincount(np.asarray(y).reshape(-1).astype(int), minlength=classes).tolist()
            for name, (_, y) in splits.items()}


def errors_of(tmp_path: Path, data: str, **options) -> list[str]:
    result = checked(tmp_path, data, **options)
    return [f"{d.span.line}:{d.span.column} {d.message}"
            for d in result.diagnostics.errors]


# --- stratified splits --------------------------------------------------------------------


def test_iris_held_out_splits_keep_the_class_proportions(tmp_path):
    module = loaded(tmp_path, model_of(tmp_path, "iris(validation=0.2, test=0.2)"))
    for seed in (0, 1, 7):
        splits, _ = module["load_splits"](seed)
        assert class_counts(splits, 3) == {"train": [30, 30, 30], "val": [10, 10, 10],
                                           "test": [10, 10, 10]}
    first, _ = module["load_splits"](0)
    again, _ = module["load_splits"](0)
    other, _ = module["load_splits"](1)
    for name in first:
        np.testing.assert_array_equal(first[name][0], again[name][0])
    assert not np.array_equal(first["val"][0], other["val"][0])


def test_stratify_false_splits_at_random_as_before(tmp_path):
    module = loaded(tmp_path, model_of(tmp_path, "iris(validation=0.2, test=0.2)",
                                       train="stratify = false"))
    counts = [class_counts(module["load_splits"](seed)[0], 3)["val"] for seed in range(5)]
    assert all(sum(c) == 30 for c in counts)
    assert any(c != [10, 10, 10] for c in counts)


def test_an_imbalanced_classifier_holds_out_its_rare_class_in_proportion(tmp_path):
    rng = np.random.default_rng(0)
    y = np.array([0] * 90 + [1] * 10)
    (tmp_path / "specs").mkdir()
    np.savez(tmp_path / "specs" / "data.npz",
             x=rng.normal(size=(100, 4)).astype(np.float32), y=y)
    module = loaded(tmp_path, model_of(tmp_path, 'npz("data.npz", validation=0.2, test=0.1)',
                                       classes=2))
    for seed in range(4):
        counts = class_counts(module["load_splits"](seed)[0], 2)
        assert counts == {"train": [63, 7], "val": [18, 2], "test": [9, 1]}


def test_binary_labels_are_stratified_too(tmp_path):
    (tmp_path / "specs").mkdir()
    y = np.array([0.0] * 80 + [1.0] * 20, dtype=np.float32)[:, None]
    np.savez(tmp_path / "specs" / "data.npz", x=np.zeros((100, 4), np.float32), y=y)
    module = loaded(tmp_path, model_of(tmp_path, 'npz("data.npz", validation=0.25)', classes=1,
                                       loss="binary_cross_entropy()"))
    splits, _ = module["load_splits"](3)
    assert class_counts(splits, 2) == {"train": [60, 15], "val": [20, 5]}


def test_regression_splits_stay_random_and_carry_no_stratification(tmp_path):
    model = model_of(tmp_path, "diabetes(validation=0.2)", features=10, classes=1,
                     loss="mse()")
    assert "stratif" not in render_data_code(model, tmp_path / "program").code
    classifier = model_of(tmp_path, "iris(validation=0.2)", train="stratify = false")
    assert "stratif" not in render_data_code(classifier, tmp_path / "program").code


# --- class weights and sample weights: the check ------------------------------------------


def write_imbalanced(tmp_path: Path, count: int = 100, rare: int = 10, **extra) -> dict:
    """x [count, 4], y: class 1 for the last `rare` samples, 0 before; `extra` arrays too."""
    folder = tmp_path / "specs"
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {"x": rng.normal(size=(count, 4)).astype(np.float32),
              "y": np.array([0] * (count - rare) + [1] * rare), **extra}
    np.savez(folder / "data.npz", **arrays)
    return arrays


def test_class_weight_needs_one_weight_per_class_at_its_place(tmp_path):
    write_imbalanced(tmp_path)
    errors = errors_of(tmp_path, 'npz("data.npz")', classes=2,
                       train="class_weight = [1.0, 2.0, 3.0]")
    assert errors == ["9:28 class_weight gives one weight per class of `dense_1` (2 classes) "
                      "(expected 2 weights, got 3 weights)"]


def test_class_weight_needs_a_classifier(tmp_path):
    errors = errors_of(tmp_path, "diabetes()", features=10, classes=1, loss="mse()",
                       train="class_weight = balanced")
    assert errors == ["9:28 class_weight weighs the classes of a classifier, but `dense_1` is "
                      "trained by mse over [1] (expected cross_entropy over [classes] or "
                      "binary_cross_entropy over [1], got mse over [1])"]


def test_weights_need_a_loss_that_gives_each_samples_own_value(tmp_path):
    errors = errors_of(tmp_path, "iris()", loss="kl_divergence()",
                       train="class_weight = balanced")
    assert ("9:28 class_weight: weighting needs each sample's own loss, which kl_divergence "
            "does not give (expected binary_cross_entropy or cross_entropy or huber or mae or "
            "mse, got kl_divergence)") in errors
    write_imbalanced(tmp_path, w=np.ones(100))
    (error,) = errors_of(tmp_path, 'npz("data.npz", weight="w")', classes=1, loss="hinge()")
    assert error.startswith("8:33 the data's sample weights: weighting needs each sample's own "
                            "loss, which hinge does not give")


def test_class_weight_is_balanced_or_a_list_of_weights(tmp_path):
    errors = errors_of(tmp_path, "iris()", train="class_weight = equal")
    assert len(errors) == 1 and errors[0].startswith("9:28 ")
    assert "balanced" in errors[0] and "equal" in errors[0]
    assert errors_of(tmp_path, "iris()", train="class_weight = [1, 2, -1]")[0].startswith("9:")
    assert errors_of(tmp_path, "iris()", train="class_weight = [1, 2.5, 0]") == []


def test_sample_weights_name_an_array_of_one_weight_per_sample(tmp_path):
    write_imbalanced(tmp_path, w=np.ones((100, 2)))
    (error,) = errors_of(tmp_path, 'npz("data.npz", weight="w")', classes=2)
    assert error.startswith("8:10 npz array 'w' in ") and error.endswith(
        "must hold one weight per sample (expected an array of rank 1, got shape [100, 2])")
    (error,) = errors_of(tmp_path, 'npz("data.npz", weight="v")', classes=2)
    assert "has no array 'v'" in error
    (error,) = errors_of(tmp_path, 'npz("data.npz", weight="x")', classes=2)
    assert error.startswith("8:") and "neither features nor labels" in error


def test_csv_weight_is_a_column_apart_from_the_features(tmp_path):
    folder = tmp_path / "specs"
    folder.mkdir()
    rows = ["a,b,w,label\n"] + [f"{i},{i % 3},{1 + i % 2},{i % 2}\n" for i in range(10)]
    (folder / "data.csv").write_text("".join(rows))
    model = model_of(tmp_path, 'csv("data.csv", "label", weight="w")', features=2, classes=2)
    module = loaded(tmp_path, model)
    splits, _ = module["load_splits"](0)
    x, y, weights = splits["train"]
    assert x.shape == (10, 2)  # a and b: neither the target nor the weight
    by_row = dict(zip(y.tolist(), weights.tolist(), strict=True))
    assert by_row == {0: 1.0, 1: 2.0}  # w is 1 on even rows (label 0), 2 on odd ones
    (error,) = errors_of(tmp_path, 'csv("data.csv", "label", weight="label")', features=2,
                         classes=2)
    assert "must not be the target column" in error
    (error,) = errors_of(tmp_path, 'csv("data.csv", "label", weight="z")', features=2,
                         classes=2)
    assert "has no column 'z' (named by `weight`)" in error


def test_sample_weights_with_several_loss_terms_are_refused_at_the_data(tmp_path):
    folder = tmp_path / "specs"
    folder.mkdir()
    np.savez(folder / "data.npz", x=np.zeros((8, 4), np.float32), a=np.zeros(8), b=np.zeros(8),
             w=np.ones(8))
    path = folder / "model.spec"
    path.write_text(textwrap.dedent("""
        model m {
            input x: float[4]
            graph {
                a = x -> dense(2)
                b = x -> dense(1)
            }
            output a, b
            loss a: cross_entropy(), b: mse()
            data npz("data.npz", y=["a", "b"], weight="w")
        }
    """))
    errors = [f"{d.span.line}:{d.span.column} {d.message}"
              for d in specc.check(path).diagnostics.errors]
    assert errors == ["10:47 the data's sample weights weigh the loss of a model with one loss "
                      "term (expected one output with a loss, got 2 loss terms)"]


# --- class weights and sample weights: the loader -----------------------------------------


def test_balanced_class_weights_are_fitted_on_the_training_split(tmp_path):
    from sklearn.utils.class_weight import compute_class_weight

    write_imbalanced(tmp_path)
    module = loaded(tmp_path, model_of(tmp_path, 'npz("data.npz", validation=0.2)', classes=2,
                                       train="class_weight = balanced"))
    splits, preprocessing = module["load_splits"](0)
    x, y, weights = splits["train"]
    assert len(splits["val"]) == 2  # held-out splits are not weighted
    expected = compute_class_weight("balanced", classes=np.array([0, 1]), y=y)
    np.testing.assert_allclose(preprocessing["class_weight"], expected)
    np.testing.assert_allclose(preprocessing["class_weight"], [80 / (2 * 72), 80 / (2 * 8)])
    assert weights.dtype == np.float32
    np.testing.assert_allclose(weights, expected[y], rtol=1e-6)


def test_class_weights_and_sample_weights_multiply(tmp_path):
    arrays = write_imbalanced(tmp_path, w=np.linspace(0.5, 2.0, 100).astype(np.float32))
    module = loaded(tmp_path, model_of(tmp_path, 'npz("data.npz", weight="w", test=0.1)',
                                       classes=2, train="class_weight = [1.0, 4.0]"))
    splits, preprocessing = module["load_splits"](2)
    x, y, weights = splits["train"]
    assert preprocessing["class_weight"] == [1.0, 4.0]
    # each training sample's row of the file, found by its features
    rows = [int(np.flatnonzero((arrays["x"] == row).all(axis=1))[0]) for row in x]
    np.testing.assert_allclose(weights, arrays["w"][rows] * np.where(y == 1, 4.0, 1.0),
                               rtol=1e-6)


def test_bad_sample_weights_stop_before_training_naming_the_file(tmp_path):


    weights = np.ones(100)
    weights[3] = -1.0
    write_imbalanced(tmp_path, w=weights)
    module = loaded(tmp_path, model_of(tmp_path, 'npz("data.npz", weight="w")', classes=2))
    with pytest.raises(module["DataError"]) as stopped:
        module["load_splits"](0)
    message = str(stopped.value)
    assert message.startswith(str((tmp_path / "specs" / "data.npz").resolve()))
    assert "sample weights must be finite and not negative (got values from -1.0" in message


def test_unweighted_programs_carry_no_weighting(tmp_path):
    from specc.backends import generate

    model = model_of(tmp_path, "iris()")
    files = generate(model, "torch", tmp_path / "program")
    for name in ("data.py", "recipe.py", "train.py"):
        assert "weighted_mean" not in files[name] and "class_weight" not in files[name]
        assert "train_weights" not in files[name]


# --- class weights and sample weights: the programs, against Keras ------------------------


def program_files(tmp_path: Path, backend: str, data: str, **options) -> Path:
    result = checked(tmp_path, data, **options)
    assert not result.diagnostics.errors, [d.message for d in result.diagnostics.errors]
    out = tmp_path / backend
    specc.compile(tmp_path / "specs" / "model.spec", backend=backend, out=out)
    return out


def recipe_of(folder: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"recipe_{folder.name}", folder / "recipe.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    return recipe


def program_loss(recipe, backend: str, outputs: np.ndarray, labels: np.ndarray,
                 weights: np.ndarray | None) -> float:
    if backend == "torch":
        import torch

        tensor = torch.as_tensor
        loss = recipe.compute_loss((tensor(outputs),), (tensor(labels),),
                                   None if weights is None else tensor(weights))
        return float(loss)
    import tensorflow as tf

    loss = recipe.compute_loss((tf.constant(outputs),), (tf.constant(labels),),
                               None if weights is None else tf.constant(weights))
    return float(loss)


def keras_fit_loss(x: np.ndarray, y: np.ndarray, kernel: np.ndarray, loss, **fit) -> float:
    """The loss Keras's model.fit reports for one epoch of one batch, with a learning rate of 0
    (so that the weights do not move): a Dense layer of `kernel` and no bias."""
    import keras

    model = keras.Sequential([keras.Input((x.shape[1],)),
                              keras.layers.Dense(kernel.shape[1], use_bias=False)])
    model.layers[0].set_weights([kernel])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss=loss)
    history = model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0, **fit)
    return history.history["loss"][0]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_class_weights_change_the_loss_as_keras_fit_class_weight_does(tmp_path, backend):
    import keras

    arrays = write_imbalanced(tmp_path, count=40, rare=6)
    recipe = recipe_of(program_files(tmp_path, backend, 'npz("data.npz")', classes=2,
                                     train="class_weight = [0.5, 3.0]"))
    kernel = np.random.default_rng(1).normal(size=(4, 2)).astype(np.float32)
    x, y = arrays["x"], arrays["y"]
    logits = x @ kernel
    weights = np.array([0.5, 3.0], np.float32)[y]
    expected = keras_fit_loss(x, y, kernel,
                              keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                              class_weight={0: 0.5, 1: 3.0})
    weighted = program_loss(recipe, backend, logits, y, weights)
    assert weighted == pytest.approx(expected, rel=1e-5)
    # Keras divides by the batch, not by the weights' sum: the mean is not normalized
    per_sample = -np.log(np.exp(logits[np.arange(40), y]) / np.exp(logits).sum(axis=1))
    assert weighted == pytest.approx((weights * per_sample).sum() / 40, rel=1e-5)
    assert weighted != pytest.approx((weights * per_sample).sum() / weights.sum(), rel=1e-3)
    # evaluation (no weights) is the plain mean
    assert program_loss(recipe, backend, logits, y, None) == pytest.approx(per_sample.mean(),
                                                                          rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_sample_weights_of_the_data_weigh_losses_as_keras_sample_weight(tmp_path, backend):
    import keras

    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, 4)).astype(np.float32)
    targets = rng.normal(size=(30, 3)).astype(np.float32)
    w = rng.uniform(0, 2, size=30).astype(np.float32)
    (tmp_path / "specs").mkdir()
    np.savez(tmp_path / "specs" / "data.npz", x=x, y=targets, w=w)
    for loss, keras_loss in (("mse()", keras.losses.MeanSquaredError()),
                             ("huber(delta=0.5)", keras.losses.Huber(delta=0.5))):
        folder = tmp_path / loss.split("(")[0]
        folder.mkdir()
        recipe = recipe_of(program_files(folder, backend, 'npz("../specs/data.npz", weight="w")',
                                         classes=3, loss=loss))
        kernel = rng.normal(size=(4, 3)).astype(np.float32)
        expected = keras_fit_loss(x, targets, kernel, keras_loss, sample_weight=w)
        assert program_loss(recipe, backend, x @ kernel, targets, w) == pytest.approx(
            expected, rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_an_imbalanced_classifier_trains_with_balanced_class_weights(tmp_path, backend):
    import json
    import subprocess
    import sys

    write_imbalanced(tmp_path, count=60, rare=6)
    np.savez(tmp_path / "specs" / "test.npz", x=np.ones((4, 4), np.float32),
             y=np.array([0, 1] * 2))
    program = program_files(tmp_path, backend,
                            'npz("data.npz", validation=0.2, test_path="test.npz")', classes=2,
                            train="class_weight = balanced\n epochs = 2\n batch_size = 16")
    run = tmp_path / "run"
    done = subprocess.run([sys.executable, str(program / "train.py"), "--out", str(run),
                           "--no-export"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    results = json.loads((run / "results.json").read_text())
    # 48 training samples, stratified: 43 of class 0 and 5 of class 1
    assert results["class_weight"] == pytest.approx([48 / (2 * 43), 48 / (2 * 5)])
    losses = [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert np.isfinite(results["test"]["loss"])  # the test file's, unweighted


# --- validation and test files of their own -----------------------------------------------


def test_validation_and_test_files_are_used_and_nothing_is_cut_from_the_data(tmp_path):
    arrays = write_imbalanced(tmp_path, count=40, rare=8)
    rng = np.random.default_rng(5)
    held_out = {name: {"x": rng.normal(size=(count, 4)).astype(np.float32),
                       "y": rng.integers(0, 2, count)}
                for name, count in (("val", 7), ("test", 5))}
    for name, part in held_out.items():
        np.savez(tmp_path / "specs" / f"{name}.npz", **part)
    model = model_of(tmp_path, 'npz("data.npz", val_path="val.npz", test_path="test.npz")',
                     classes=2)
    splits, _ = loaded(tmp_path, model)["load_splits"](0)
    assert len(splits["train"][0]) == 40  # every sample of data.npz
    np.testing.assert_array_equal(np.sort(splits["train"][1]), np.sort(arrays["y"]))
    for name, part in held_out.items():
        np.testing.assert_array_equal(splits[name][0], part["x"])
        np.testing.assert_array_equal(splits[name][1], part["y"])
    from specc.passes.training_check import splits as has_splits

    assert has_splits(model) == (True, True)


def test_a_test_file_goes_with_a_validation_fraction(tmp_path):
    write_imbalanced(tmp_path, count=40, rare=8)
    np.savez(tmp_path / "specs" / "test.npz", x=np.ones((3, 4), np.float32), y=np.zeros(3))
    model = model_of(tmp_path, 'npz("data.npz", validation=0.25, test_path="test.npz")',
                     classes=2)
    splits, _ = loaded(tmp_path, model)["load_splits"](0)
    assert {name: len(y) for name, (_, y) in splits.items()} == {"train": 30, "val": 10,
                                                                 "test": 3}


def test_held_out_csv_files_are_standardized_with_the_training_statistics(tmp_path):
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "train.csv").write_text("a,b,kind\n1,10,cat\n3,30,dog\n5,50,cat\n7,70,dog\n")
    (folder / "val.csv").write_text("a,b,kind\n4,40,dog\n")  # its only class: dog, id 1
    model = model_of(tmp_path, 'csv("train.csv", "kind", val_path="val.csv")', features=2,
                     classes=2)
    splits, preprocessing = loaded(tmp_path, model)["load_splits"](0)
    x, y = splits["val"]
    np.testing.assert_allclose(x, [[0.0, 0.0]], atol=1e-6)  # the training mean is (4, 40)
    assert y.tolist() == [1] and preprocessing["class_names"] == ["cat", "dog"]
    (folder / "val.csv").write_text("a,b,kind\n4,40,bird\n")
    module = loaded(tmp_path, model)
    with pytest.raises(module["DataError"]) as stopped:
        module["load_splits"](0)
    assert str(stopped.value) == (f"{(folder / 'val.csv').resolve()}: class 'bird' is not a "
                                  "class of the data file (expected one of 'cat', 'dog')")


def test_held_out_files_are_checked_like_the_data_file_and_named(tmp_path):
    write_imbalanced(tmp_path)
    folder = tmp_path / "specs"
    np.savez(folder / "val.npz", x=np.zeros((5, 3), np.float32), y=np.zeros(5))
    np.savez(folder / "test.npz", inputs=np.zeros((5, 4), np.float32), y=np.zeros(5))
    errors = errors_of(tmp_path, 'npz("data.npz", val_path="val.npz", test_path="test.npz")',
                       classes=2)
    assert errors == [
        f"8:10 val_path {folder / 'val.npz'}: npz array 'x' yields samples of shape [3] "
        "(3 values), which cannot feed input `x: float[4]` (4 values)",
        f"8:10 test_path {folder / 'test.npz'}: {folder / 'test.npz'} has no array 'x' "
        "(expected one of 'inputs', 'y', got 'x')",
    ]
    (error,) = errors_of(tmp_path, 'npz("data.npz", validation=0.1, val_path="val.npz")',
                         classes=2)
    assert "`val_path` gives the validation samples, so none are cut from the data" in error


def test_a_missing_held_out_file_stops_the_run_naming_it(tmp_path):
    write_imbalanced(tmp_path)
    model = model_of(tmp_path, 'npz("data.npz", val_path="later.npz")', classes=2)
    module = loaded(tmp_path, model)
    with pytest.raises(module["DataError"]) as stopped:
        module["load_splits"](0)
    later = (tmp_path / "specs" / "later.npz").resolve()
    assert str(stopped.value) == (f"val file not found at {later} (named by the data "
                                  "section's val_path); put it there")
    np.savez(tmp_path / "specs" / "later.npz", x=np.zeros((2, 4), np.float32),
             y=np.array([0, 5]))
    with pytest.raises(module["DataError"]) as stopped:
        module["load_splits"](0)
    assert str(stopped.value) == (
        f"{(tmp_path / 'specs' / 'later.npz').resolve()}: the val split has class ids from 0 "
        "to 5 for output `dense_1` (expected 0 to 1: the output has 2 units)")


def test_export_reads_the_test_file_as_the_run_did(tmp_path):
    import importlib.util

    from specc.export.inputs import held_out_split, with_prepared

    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "train.csv").write_text("a,b,kind\n1,10,cat\n3,30,dog\n5,50,cat\n7,70,dog\n")
    (folder / "test.csv").write_text("a,b,kind\n2,20,dog\n6,60,dog\n")
    program = program_files(tmp_path, "torch", 'csv("train.csv", "kind", test_path="test.csv")',
                            features=2, classes=2)
    spec = importlib.util.spec_from_file_location("data_of_the_run", program / "data.py")
    data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(data)
    splits, preprocessing = data.load_splits(0)
    held = with_prepared(data, held_out_split(data, 0, None), preprocessing)
    assert held.split == "test"
    np.testing.assert_array_equal(held.prepared[0], splits["test"][0])
    assert held.labels[0].tolist() == splits["test"][1].tolist() == [1, 1]

