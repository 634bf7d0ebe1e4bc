"""The data-side options of training: stratified held-out splits, class weights, per-sample
weights and explicit validation and test files, as the generated loader realizes them."""

from __future__ import annotations

import runpy
import textwrap
from pathlib import Path

import numpy as np
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
    return [f"{d.span.start.line}:{d.span.start.column} {d.message}"
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
