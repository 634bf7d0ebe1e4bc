"""`specc parity`: the recipe.py it imports from the generated programs, its verdicts on every seed
spec, and (slow) broken-on-purpose programs that it must catch, naming the right place."""

from __future__ import annotations

import ast
import math
import re
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import specc
from specc import parity
from specc.backends import generate
from specc.backends.tensorflow import model_gen

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.spec"))

SMALL = """
block res(n) {
    h = in -> dense(n, activation=relu) -> dropout(0.5) -> dense(n)
    out = add(in, h) -> relu()
}

model small {
    input x: float[6]
    layers {
        dense(8, activation=tanh)
        batchnorm()
        res(8)
        dense(3)
    }
    loss cross_entropy(label_smoothing=0.1)
    optimizer OPTIMIZER
    data synthetic(n=64)
    train { batch_size = 16 }
}
"""


def small_spec(tmp_path: Path, optimizer: str = "adam(lr=0.01)") -> Path:
    path = tmp_path / "small.spec"
    path.write_text(textwrap.dedent(SMALL.replace("OPTIMIZER", optimizer)))
    return path


# --- without a framework ------------------------------------------------------------------------


def test_importing_parity_imports_no_framework() -> None:
    code = ("import sys, specc.parity; "
            "print(sorted({'torch', 'tensorflow', 'keras'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_dropout_is_switched_off_everywhere(tmp_path: Path) -> None:
    spec = tmp_path / "m.spec"
    spec.write_text(textwrap.dedent("""
        block b() {
            dropout(0.3)
            transformer_encoder(2, 8, dropout=0.2)
        }
        model m {
            input x: float[4, 8]
            layers {
                b()
                multihead_attention(2, dropout=0.1)
                dropout(0.5)
                flatten()
                dense(2)
            }
            loss mse()
            optimizer sgd()
        }
    """))
    model = parity.without_dropout(specc.load(spec).models[0])
    rates = [getattr(node.layer, parity.DROPOUT_FIELDS[node.layer.kind])
             for _, node in model.graph.walk() if node.layer.kind in parity.DROPOUT_FIELDS]
    assert rates == [0.0, 0.0, 0.0, 0.0]


def test_training_noise_is_off_like_dropout() -> None:
    spec = ROOT / "tests" / "vocabulary" / "noise.spec"
    noisy = {"spatial_dropout1d", "spatial_dropout2d", "gaussian_noise", "gaussian_dropout",
             "alpha_dropout"}
    before = specc.load(spec).models[0]
    assert {node.layer.kind for _, node in before.graph.walk()} >= noisy
    model = parity.without_dropout(before)
    amounts = {node.layer.kind: getattr(node.layer, parity.DROPOUT_FIELDS[node.layer.kind])
               for _, node in model.graph.walk() if node.layer.kind in noisy}
    assert amounts == dict.fromkeys(noisy, 0.0)


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_the_training_code_parity_runs_is_recipe_py_a_module_of_its_own(tmp_path: Path,
                                                                       backend: str) -> None:
    model = specc.load(small_spec(tmp_path, "adamw(schedule=cosine(warmup=1))")).models[0]
    files = generate(model, backend, tmp_path)
    recipe = ast.parse(files["recipe.py"])
    # Importing it only imports, assigns settings and defines: nothing runs.
    kinds = {type(node) for node in recipe.body[1:]}  # after the docstring
    assert kinds <= {ast.Import, ast.ImportFrom, ast.Assign, ast.FunctionDef, ast.ClassDef}
    settings = {target.id: ast.literal_eval(node.value) for node in recipe.body
                if isinstance(node, ast.Assign) for target in node.targets
                if isinstance(target, ast.Name) and isinstance(node.value, ast.Constant)}
    assert settings["batch_size"] == 16 and settings["warmup_epochs"] == 1.0
    functions = {node.name for node in recipe.body if isinstance(node, ast.FunctionDef)}
    assert {"compute_loss", "make_optimizer", "learning_rate_at"} <= functions
    # train.py takes them from recipe.py, and defines none of its own.
    train = ast.parse(files["train.py"])
    assert any(isinstance(node, ast.Import) and node.names[0].name == "recipe"
               for node in train.body)
    assert not functions & {node.name for node in train.body
                            if isinstance(node, ast.FunctionDef)}
    assert "parser" not in files["recipe.py"] and "sys.exit" not in files["recipe.py"]


def test_compare_is_elementwise_and_fails_on_nan_and_shape() -> None:
    reference = np.array([1.0, 0.0, -2.0])
    assert parity.compare("a", reference + 5e-6, reference).ok
    assert not parity.compare("a", reference + [0, 2e-5, 0], reference).ok
    assert not parity.compare("a", np.array([1.0, math.nan, -2.0]), reference).ok
    assert not parity.compare("a", reference[:2], reference).ok
    difference = parity.compare("a", reference * 1.001, reference)
    assert difference.max_abs == pytest.approx(0.002) and difference.max_rel == pytest.approx(1e-3)


def test_compare_per_tensor_scales_the_tolerance_by_the_largest_element() -> None:
    reference = np.array([100.0, 0.01, -50.0])
    near_zero_rounding = reference + [0, 5e-4, 0]  # 5e-6 of the tensor's largest
    assert not parity.compare("a", near_zero_rounding, reference).ok
    difference = parity.compare("a", near_zero_rounding, reference, per_tensor=True)
    assert difference.ok and difference.max_rel == pytest.approx(5e-6)
    assert not parity.compare("a", reference * 1.001, reference, per_tensor=True).ok
    assert not parity.compare("a", reference + [0, 0.02, 0], reference, per_tensor=True).ok


def test_the_report_names_the_first_divergence() -> None:
    report = parity.Report("m", "setup", [
        parity.Check("forward", [parity.compare("dense_1", np.ones(2), np.ones(2)),
                                 parity.compare("dense_2", np.ones(2) * 2, np.ones(2)),
                                 parity.compare("dense_3", np.ones(2) * 9, np.ones(2))]),
        parity.Check("gradients", [parity.compare("w", np.ones(2) * 3, np.ones(2))]),
    ])
    assert not report.ok and report.first_divergence.name == "dense_2"
    table = report.table()
    assert "FAILED" in table and table.endswith("first divergence at dense_2 (max |diff| 1)")


# --- the real frameworks --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("spec", SPECS, ids=lambda path: path.stem)
def test_every_seed_spec_has_parity(spec: Path) -> None:
    report = parity.run(spec)
    assert report.ok, report.table()
    titles = [check.title for check in report.checks]
    assert titles[:4] == ["forward (float32): layers", "forward (float32): outputs",
                          "gradients, step 1 (float64)", "gradients, step 2 (float64)"]
    assert all(check.differences for check in report.checks[1:])


# The published architectures of tests/architectures/ (VGG-16's 138 M weights excepted: its
# layers are covered by the others): deep stacks where float32 rounding accumulates (ResNet-20),
# l2 penalties, two bidirectional LSTMs, attention with key_dim * heads != features.
ARCHITECTURES = sorted(p for p in (ROOT / "tests" / "architectures").glob("*.spec")
                       if p.stem != "vgg16")


@pytest.mark.slow
@pytest.mark.parametrize("spec", ARCHITECTURES, ids=lambda path: path.stem)
def test_published_architectures_have_parity(spec: Path) -> None:
    report = parity.run(spec, steps=2)
    assert report.ok, report.table()


@pytest.mark.slow
def test_a_changed_weight_is_found_at_its_layer(tmp_path: Path, monkeypatch) -> None:
    copy = parity.copy_weights

    def copy_then_break(model, net, keras_model):
        copy(model, net, keras_model)
        layer = keras_model.get_layer("res_1__dense_2")  # inside the block
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel, bias + 0.01])

    monkeypatch.setattr(parity, "copy_weights", copy_then_break)
    report = parity.run(small_spec(tmp_path))
    assert not report.ok
    forward = report.checks[0]
    assert [d.name for d in forward.differences] == ["dense_1", "batchnorm_1", "res_1.dense_1",
                                                     "res_1.dense_2", "dense_2"]
    assert [d.ok for d in forward.differences] == [True, True, True, False, False]
    assert report.first_divergence.name == "res_1.dense_2"
    assert "first divergence at res_1.dense_2" in report.table()


@pytest.mark.slow
def test_clipping_by_value_takes_the_same_steps(tmp_path: Path) -> None:
    # sgd(lr=0.5) with every gradient element clipped to 0.01: the steps are the clipped ones.
    path = small_spec(tmp_path, "sgd(lr=0.5)")
    path.write_text(path.read_text().replace("batch_size = 16",
                                             "batch_size = 16\n    grad_clip_value = 0.01"))
    model = specc.load(path).models[0]
    assert model.train.grad_clip_value == 0.01
    report = parity.run(path, steps=2)
    assert report.ok, report.table()
    assert "weights after 2 steps (float64)" in [check.title for check in report.checks]


@pytest.mark.slow
def test_keras_s_own_batchnorm_statistics_are_caught(tmp_path: Path, monkeypatch) -> None:
    # Keras's BatchNormalization moves its variance towards the biased batch variance.
    emit = model_gen.LayerWriter._batchnorm

    def keras_batchnorm(self, site):
        return [replace(statement, function="layers.BatchNormalization")
                for statement in emit(self, site)]

    monkeypatch.setattr(model_gen.LayerWriter, "_batchnorm", keras_batchnorm)
    report = parity.run(small_spec(tmp_path))
    failed = [check for check in report.checks if not check.ok]
    assert failed and failed[0].title == "weights after 3 steps (float64)"
    assert failed[0].shown.name == "batchnorm_1/moving_variance"


@pytest.mark.slow
def test_the_steps_run_recipe_py_s_optimizer(tmp_path: Path, monkeypatch) -> None:
    # Keras's Adam adds epsilon before the bias correction: with a large epsilon, the first
    # step already differs. parity must be running the optimizer recipe.py makes.
    real_program = parity.program

    def with_keras_adam(model, backend, program_dir):
        sources, model_manifest = real_program(model, backend, program_dir)
        if backend == "tensorflow":
            ours = re.compile(r"^    optimizer = TorchAdam\(.*?\)$", re.MULTILINE | re.DOTALL)
            assert ours.search(sources["recipe.py"])
            keras_adam = ("    optimizer = keras.optimizers.Adam(learning_rate, beta1, beta2, "
                          "epsilon)")
            sources["recipe.py"] = ours.sub(keras_adam, sources["recipe.py"])
        return sources, model_manifest

    monkeypatch.setattr(parity, "program", with_keras_adam)
    report = parity.run(small_spec(tmp_path, "adam(lr=0.01, epsilon=0.1)"))
    failed = [check.title for check in report.checks if not check.ok]
    assert failed[0] == "gradients, step 2 (float64)"  # the first step moved other weights
    assert "weights after 3 steps (float64)" in failed


@pytest.mark.slow
def test_the_command_prints_the_table_and_exits_1_on_a_divergence(
        tmp_path: Path, monkeypatch, capsys) -> None:
    from specc.cli import main

    spec = small_spec(tmp_path)
    assert main(["parity", str(spec), "--steps", "1"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(
        "parity of `small`: 2 batches of 16 samples of its synthetic data; 1 adam step;")
    assert "gradients, step 1 (float64)" in printed and "step 2" not in printed
    assert printed.rstrip().endswith("parity: the two programs agree")

    copy = parity.copy_weights

    def copy_then_break(model, net, keras_model):
        copy(model, net, keras_model)
        kernel, bias = keras_model.get_layer("dense_1").get_weights()
        keras_model.get_layer("dense_1").set_weights([-kernel, bias])

    monkeypatch.setattr(parity, "copy_weights", copy_then_break)
    assert main(["parity", str(spec), "--steps", "1"]) == 1
    assert "parity FAILED: first divergence at dense_1 " in capsys.readouterr().out


# The vocabulary added beyond LANGUAGE.md (tests/vocabulary/): each spec uses what one
# addition brings, so a divergence names the addition.
VOCABULARY = sorted((ROOT / "tests" / "vocabulary").glob("*.spec"))


@pytest.mark.slow
@pytest.mark.parametrize("spec", VOCABULARY, ids=lambda path: path.stem)
def test_the_added_vocabulary_has_parity(spec: Path) -> None:
    report = parity.run(spec, steps=2)
    assert report.ok, report.table()
