"""The TensorFlow train.py: it passes ruff and stands alone; its schedules, losses, metrics
and optimizers compute what the PyTorch program's do (the optimizers: torch.optim's formulas);
and (slow) it trains, logs, checkpoints, resumes bit-for-bit, stops on nan, stops early,
predicts and exports as its docstring says. The digits convnet reaches 95% on both backends.

The PyTorch tests' specs are reused: one per family of template branches, so that every loss,
optimizer, schedule, metric and augmentation kind appears in at least one.
"""

from __future__ import annotations

import ast
import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import specc
from specc import parity
from specc.backends.common.data import render_data_code
from specc.backends.common.plan import has_regularization
from specc.backends.tensorflow import generate
from specc.backends.tensorflow.train_gen import render_training
from specc.backends.torch.train_gen import render_training as render_torch_training
from specc.passes.data_check import labelled_outputs

from ..torch.conftest import classifier_spec
from ..torch.test_train import (
    AVERAGED,
    FROZEN,
    FROZEN_LAYERS,
    INIT_TARGET,
    SOURCES,
    VARIANTS,
    bound_at_top_level,
    initialized_runs,
    trained_run,
)

ROOT = Path(__file__).resolve().parents[3]
QUIET = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}  # TensorFlow's C++ start-up lines


def render_train(model) -> str:
    """The generated train.py of `model`."""
    return render_training(model, ("train.py",))["train.py"]



def load_model(folder: Path, spec_text: str):
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / "model.spec"
    spec.write_text(textwrap.dedent(spec_text))
    return specc.load(spec).models[0]


def write_program(folder: Path, spec_text: str) -> Path:
    """The TensorFlow program of `spec_text` in folder/program."""
    model = load_model(folder, spec_text)
    program = folder / "program"
    program.mkdir(exist_ok=True)
    for name, text in generate(model, program).items():
        (program / name).write_text(text)
    return program


def run_train(program: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run program/train.py with `args` (`--no-export` unless "--export" is among them)."""
    options = [str(a) for a in args if a != "--export"]
    if "--export" not in args:
        options.append("--no-export")
    return subprocess.run([sys.executable, str(program / "train.py"), *options],
                          capture_output=True, text=True, timeout=300, check=False, env=QUIET)


def read_metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def last_line(stderr: str) -> str:
    """What train.py printed last (TensorFlow's own start-up lines may come before)."""
    return stderr.strip().splitlines()[-1] if stderr.strip() else ""


# --- the generated source ---------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_generated_train_py_passes_ruff_and_stands_alone(tmp_path: Path, variant: str) -> None:
    model = load_model(tmp_path, VARIANTS[variant])
    sources = generate(model, tmp_path / "program")
    for name, source in sources.items():
        (tmp_path / name).write_text(source)
    paths = [str(tmp_path / name) for name in sources]
    # Ruff's own defaults, and the project's rules less the one pyproject.toml waives for
    # generated programs (model.py is imported after train.py puts its folder on sys.path).
    for options in (["--isolated"], ["--config", str(ROOT / "pyproject.toml"),
                                     "--extend-ignore", "E402"]):
        lint = subprocess.run(
            [sys.executable, "-m", "ruff", "check", *options, "--output-format", "concise",
             *paths],
            capture_output=True, text=True, check=False)
        assert lint.returncode == 0, lint.stdout + lint.stderr
    tree = ast.parse(sources["train.py"])
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert "specc" not in imported and "torch" not in imported
    assert {"tensorflow", "keras", "model"} <= imported


def test_spec_text_reaches_train_py_only_as_literals(tmp_path: Path) -> None:
    text = classifier_spec(data='npz(path="a\\"b\\nc.npz", validation=0.25)')
    source = render_train(load_model(tmp_path, text))
    ast.parse(source)
    assert 'a"b\nc.npz' not in source


@pytest.mark.parametrize("source", SOURCES)
def test_train_py_rebinds_no_name_of_the_data_loader(tmp_path: Path, source: str) -> None:
    input_type, layers, data = SOURCES[source]
    model = load_model(tmp_path, f"""
        model m {{
            input x: {input_type}
            layers {{
                {layers}
            }}
            loss cross_entropy()
            optimizer adam()
            metrics accuracy, precision
            data {data}
        }}
    """)
    program = tmp_path / "program"
    loader = render_data_code(model, program)
    ours = render_train(model).replace(loader.code, "")
    assert not bound_at_top_level(ast.parse(ours)) & bound_at_top_level(ast.parse(loader.code))


def functions_used(source: str, root: str) -> str:
    """The source of the top-level function `root` of a module and of every top-level
    function it calls, directly or not."""
    tree = ast.parse(source)
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    wanted, pending = set(), [root]
    while pending:
        name = pending.pop()
        if name in wanted or name not in functions:
            continue
        wanted.add(name)
        pending += [n.id for n in ast.walk(functions[name]) if isinstance(n, ast.Name)]
    return "\n\n".join(ast.get_source_segment(source, functions[name])
                       for name in functions if name in wanted)


def recipe_source(model, backend: str) -> str:
    """The generated recipe.py of `model` on `backend`."""
    render = render_training if backend == "tensorflow" else render_torch_training
    return render(model)["recipe.py"]


def recipe_module(model, backend: str, folder: Path):
    """The generated recipe.py of `model` on `backend`, imported (it imports its framework)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"recipe_{backend}.py").write_text(recipe_source(model, backend))
    return parity.import_file(folder / f"recipe_{backend}.py")


def test_both_backends_write_the_same_settings(tmp_path: Path) -> None:
    # Users edit them; switching backends must not change what they say, comments aside.
    for variant in VARIANTS:
        model = load_model(tmp_path / variant, VARIANTS[variant])
        # the block between recipe.py's two rule lines
        blocks = [recipe_source(model, backend).split("# " + "-" * 77)[1]
                  for backend in ("tensorflow", "torch")]
        code = [[line.split("#")[0].rstrip() for line in block.splitlines()
                 if not line.startswith("#")] for block in blocks]
        assert code[0] == code[1], variant


def test_specc_train_never_overwrites_a_tensorflow_run(tmp_path: Path) -> None:
    from specc.run import unused_run_dir

    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    assert unused_run_dir(tmp_path / "run") == tmp_path / "run"
    (tmp_path / "run" / "checkpoints" / "epoch-0001.npz").write_bytes(b"")
    assert unused_run_dir(tmp_path / "run") == tmp_path / "run-2"


# --- the learning-rate schedules: the same numbers as the PyTorch program's -------------------


def schedule_functions(source: str) -> dict:
    """A recipe.py's `learning_rate_at` (and `end_of_epoch_schedule`) with its settings,
    executed without a framework."""
    tree = ast.parse(source)
    wanted = {"learning_rate_at", "end_of_epoch_schedule"}
    kept = [node for node in tree.body if isinstance(node, ast.Assign)
            or (isinstance(node, ast.FunctionDef) and node.name in wanted)]
    namespace = {"math": math}
    exec(compile(ast.Module(body=kept, type_ignores=[]), "recipe.py", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("schedule", [
    "constant()", "step(every=2, gamma=0.5)", "exponential(0.9)",
    "cosine(warmup=1, min_lr=0.001)", "one_cycle(max_lr=0.3)", "plateau(factor=0.5, patience=2)",
])
def test_schedules_give_the_pytorch_program_s_rates(tmp_path: Path, schedule: str) -> None:
    model = load_model(tmp_path, classifier_spec(optimizer=f"sgd(lr=0.1, schedule={schedule})"))
    ours, theirs = (schedule_functions(recipe_source(model, backend))
                    for backend in ("tensorflow", "torch"))
    val_losses = [1.0, 0.9, 0.95, 0.95, 0.8, 0.85]
    for namespace in (ours, theirs):
        rates = []
        for step in range(42):
            if step % 7 == 0 and "end_of_epoch_schedule" in namespace and step:
                namespace["end_of_epoch_schedule"](val_losses[step // 7 - 1])
            rates.append(namespace["learning_rate_at"](step // 7, step, 7, 42))
        namespace["rates"] = rates
    assert ours["rates"] == theirs["rates"]
    assert (len(set(ours["rates"])) == 1) == (schedule == "constant()")


# --- losses, metrics and optimizers, computed by both programs --------------------------------


def random_batch(model, rng: np.random.Generator, samples: int = 8):
    """Outputs as the model might give them (probabilities where the loss takes them) and
    labels as the data loader gives them."""
    outputs, targets = [], []
    for value in (model.graph.value(v) for v in model.graph.outputs):
        outputs.append(rng.normal(size=(samples, *value.shape)).astype(np.float32))
    for value, loss in labelled_outputs(model):
        index = model.graph.outputs.index(value.id)
        output = outputs[index]
        if loss.kind == "cross_entropy":
            targets.append(rng.integers(0, value.shape[-1], output.shape[:-1]))
            if not loss.from_logits:
                exp = np.exp(output)
                outputs[index] = (exp / exp.sum(-1, keepdims=True)).astype(np.float32)
        elif loss.kind == "binary_cross_entropy":
            targets.append(rng.integers(0, 2, output.shape).astype(np.float32))
            if not loss.from_logits:
                outputs[index] = (1 / (1 + np.exp(-output))).astype(np.float32)
        else:
            targets.append(rng.normal(size=output.shape).astype(np.float32))
    return tuple(outputs), tuple(targets)


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_losses_and_metrics_are_the_pytorch_program_s(frameworks, tmp_path: Path,
                                                      variant: str) -> None:
    torch = frameworks[0]
    import tensorflow as tf

    model = load_model(tmp_path, VARIANTS[variant])
    namespaces = {"tf": vars(recipe_module(model, "tensorflow", tmp_path)),
                  "torch": vars(recipe_module(model, "torch", tmp_path))}
    # Models whose layer penalties are zero: the loss terms alone are compared.
    penalties = {"tf": (SimpleNamespace(losses=[tf.constant(0.0)]),),
                 "torch": (SimpleNamespace(regularization=lambda: 0.0),)}
    if not has_regularization(model):
        penalties = {"tf": (), "torch": ()}
    rng = np.random.default_rng(0)
    for _ in range(3):
        outputs, targets = random_batch(model, rng)
        ours = namespaces["tf"]["compute_loss"](tuple(map(tf.constant, outputs)),
                                                tuple(map(tf.constant, targets)), *penalties["tf"])
        theirs = namespaces["torch"]["compute_loss"](tuple(map(torch.from_numpy, outputs)),
                                                     tuple(map(torch.from_numpy, targets)),
                                                     *penalties["torch"])
        assert float(ours) == pytest.approx(float(theirs), rel=1e-6, abs=1e-7)
        if "metric_values" not in namespaces["tf"]:
            continue
        our_sums = namespaces["tf"]["batch_statistics"](tuple(map(tf.constant, outputs)),
                                                        tuple(map(tf.constant, targets)))
        their_sums = namespaces["torch"]["batch_statistics"](
            tuple(map(torch.from_numpy, outputs)), tuple(map(torch.from_numpy, targets)))
        our_metrics = namespaces["tf"]["metric_values"](
            {name: np.asarray(value) for name, value in our_sums.items()})
        # Both programs hand metric_values the split's sums as NumPy arrays.
        their_metrics = namespaces["torch"]["metric_values"](
            {name: torch.as_tensor(value).numpy() for name, value in their_sums.items()})
        assert our_metrics == pytest.approx(their_metrics, rel=1e-6), variant


OPTIMIZERS = {
    "sgd": "sgd(lr=0.1)",
    "sgd_nesterov": "sgd(lr=0.1, momentum=0.9, nesterov=true, weight_decay=0.01)",
    "adam": "adam(lr=0.01, weight_decay=0.1)",
    "adamw": "adamw(lr=0.01, beta1=0.8, epsilon=1e-6)",
    "rmsprop": "rmsprop(lr=0.01)",
    "rmsprop_momentum": "rmsprop(lr=0.01, rho=0.8, momentum=0.5)",
    "adagrad": "adagrad(lr=0.1)",
    "nadam": "nadam(lr=0.01, weight_decay=0.1)",
    "nadam_momentum_decay": "nadam(beta1=0.8, beta2=0.99, epsilon=1e-6, momentum_decay=0.05)",
    "adamax": "adamax(lr=0.01)",
    "adamax_decay": "adamax(beta1=0.8, beta2=0.9, epsilon=1e-6, weight_decay=0.1)",
}


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_optimizers_update_as_torch_optim_does(frameworks, tmp_path: Path,
                                               optimizer: str) -> None:
    """The optimizer train.py defines, against the PyTorch program's torch.optim, in float64:
    five steps with a learning rate that changes, clipping on, tiny gradients among them
    (where epsilon's place shows), the last as IndexedSlices (an embedding's gradient).
    Keras keeps the learning rate in float32: hence 1e-8 of slack per step."""
    torch, keras = frameworks
    import tensorflow as tf

    spec = classifier_spec(optimizer=OPTIMIZERS[optimizer], train="grad_clip = 2.0")
    model = load_model(tmp_path, spec)
    rng = np.random.default_rng(1)
    start = [rng.normal(size=(4, 3)), rng.normal(size=5)]
    ours = [keras.Variable(w, dtype="float64") for w in start]
    theirs = [torch.tensor(w, requires_grad=True) for w in start]
    code = {
        "tf": {"optimizer": recipe_module(model, "tensorflow", tmp_path).make_optimizer(
            SimpleNamespace(trainable_variables=ours))},
        "torch": {"optimizer": recipe_module(model, "torch", tmp_path).make_optimizer(
            SimpleNamespace(parameters=lambda: theirs))},
    }
    for step, lr in enumerate([0.1, 0.05, 0.2, 0.01, 0.1]):
        gradients = [rng.normal(size=w.shape) * 10.0 ** -rng.integers(0, 9) for w in start]
        gradients[1][:2] = [1e-9, -3e-10]
        keras_gradients = [tf.constant(g) for g in gradients]
        if step == 4:  # rows 0 and 2 of the first weight, as an embedding's lookup gives
            keras_gradients[0] = tf.IndexedSlices(tf.constant(gradients[0][[0, 2]]),
                                                  tf.constant([0, 2]), tf.constant([4, 3]))
            gradients[0][[1, 3]] = 0.0
        code["tf"]["optimizer"].learning_rate = lr
        code["tf"]["optimizer"].apply(keras_gradients, ours)
        for weight, gradient in zip(theirs, gradients, strict=True):
            weight.grad = torch.tensor(gradient)
        for group in code["torch"]["optimizer"].param_groups:
            group["lr"] = lr
        torch.nn.utils.clip_grad_norm_(theirs, 2.0)
        code["torch"]["optimizer"].step()
        for our, their in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(np.asarray(our), their.detach().numpy(), rtol=1e-7,
                                       atol=1e-8, err_msg=f"{optimizer}, step {step + 1}")


@pytest.mark.slow
def test_clipping_by_value_bounds_each_update_as_torch_does(frameworks, tmp_path: Path) -> None:
    """grad_clip_value clips each gradient element (torch.nn.utils.clip_grad_value_ in the
    PyTorch program's clip_gradients, tf.clip_by_value in the Keras optimizer's apply), before
    grad_clip's norm: with sgd(lr=1) no step moves a weight by more than the bound, some
    move by exactly it, and both programs take the same steps in float64."""
    torch, keras = frameworks
    import tensorflow as tf

    spec = classifier_spec(optimizer="sgd(lr=1.0)",
                           train="grad_clip_value = 0.5\n        grad_clip = 4.0")
    model = load_model(tmp_path, spec)
    rng = np.random.default_rng(2)
    start = [rng.normal(size=(4, 3)), rng.normal(size=5)]
    ours = [keras.Variable(w, dtype="float64") for w in start]
    theirs = [torch.tensor(w, requires_grad=True) for w in start]
    tf_optimizer = recipe_module(model, "tensorflow", tmp_path).make_optimizer(
        SimpleNamespace(trainable_variables=ours))
    torch_recipe = recipe_module(model, "torch", tmp_path)
    torch_optimizer = torch_recipe.make_optimizer(SimpleNamespace(parameters=lambda: theirs))
    for step in range(3):
        before = [np.asarray(w).copy() for w in ours]
        gradients = [rng.normal(size=w.shape) * 3.0 for w in start]
        tf_optimizer.apply([tf.constant(g) for g in gradients], ours)
        for weight, gradient in zip(theirs, gradients, strict=True):
            weight.grad = torch.tensor(gradient)
        torch_recipe.clip_gradients(theirs)
        torch_optimizer.step()
        moves = np.concatenate([np.abs(np.asarray(w) - b).ravel()
                                for w, b in zip(ours, before, strict=True)])
        assert moves.max() <= 0.5 + 1e-12, step
        assert np.isclose(moves, 0.5).any(), step  # the bound was reached: clipping acted
        for our, their in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(np.asarray(our), their.detach().numpy(), rtol=1e-12,
                                       err_msg=f"step {step + 1}")


@pytest.mark.slow
def test_frozen_layers_keep_their_initial_weights(frameworks, tmp_path: Path) -> None:
    _, keras = frameworks
    program = write_program(tmp_path, FROZEN)
    run, _ = trained_run(program, run_train)
    keras.utils.set_random_seed(0)  # as train.py seeds it before building the model (seed 0)
    model = parity.import_file(program / "model.py").build_model()
    with np.load(run / "checkpoints" / "epoch-0002.npz") as trained:
        for i, variable in enumerate(model.variables):
            frozen = variable.path.split("/")[0] in FROZEN_LAYERS
            same = np.array_equal(trained[f"model_{i}"], np.asarray(variable))
            assert same == frozen, variable.path


@pytest.mark.slow
def test_best_weights_are_the_moving_average(frameworks, tmp_path: Path) -> None:
    program = write_program(tmp_path, AVERAGED)
    run, result = trained_run(program, run_train)
    model = parity.import_file(program / "model.py").build_model()
    trained = [i for i, variable in enumerate(model.variables) if variable.trainable]
    with (np.load(run / "checkpoints" / "best.npz") as best,
          np.load(run / "checkpoints" / "epoch-0002.npz") as last,
          np.load(run / "checkpoints" / "epoch-0001.npz") as first):
        epoch = json.loads(str(best["position"]))["best"]["epoch"]
        saved = {1: first, 2: last}[epoch]
        assert len(trained) == len([name for name in saved if name.startswith("average_")]) == 8
        for j, i in enumerate(trained):
            average = saved[f"average_{j}"]
            assert np.array_equal(best[f"model_{i}"], average), i  # what the test metrics use
            assert not np.array_equal(saved[f"model_{i}"], average), i  # the raw ones go on
        moving = [i for i, variable in enumerate(model.variables) if "moving" in variable.path]
        for i in moving:  # the batchnorm's moving statistics are the raw model's own
            assert np.array_equal(best[f"model_{i}"], saved[f"model_{i}"])
    assert "test  loss" in result.stdout


@pytest.mark.slow
def test_the_moving_average_is_one_formula_on_both_backends(frameworks, tmp_path: Path) -> None:
    """Each train.py's update_averages, run on the same weights: the first step copies
    them, each later one gives ema * average + (1 - ema) * weights."""
    torch, _ = frameworks
    import tensorflow as tf

    model = load_model(tmp_path, AVERAGED)
    recipe = SimpleNamespace(ema=model.train.ema)
    rng = np.random.default_rng(3)
    start = [rng.normal(size=(4, 3)), rng.normal(size=5)]
    parameters = [torch.tensor(w, requires_grad=True) for w in start]
    theirs = {"torch": torch, "recipe": recipe, "parameters": parameters,
              "averages": [p.detach().clone() for p in parameters]}
    torch_source = render_torch_training(model, ("train.py",))["train.py"]
    exec(functions_used(torch_source, "update_averages"), theirs)
    assert "@torch.no_grad()\ndef update_averages" in torch_source  # a decorator left behind
    theirs["update_averages"] = torch.no_grad()(theirs["update_averages"])
    trainable = [tf.Variable(w) for w in start]
    iterations = tf.Variable(0, dtype=tf.int64)
    ours = {"tf": tf, "recipe": recipe, "trainable": trainable,
            "averages": [tf.Variable(w) for w in start],
            "optimizer": SimpleNamespace(iterations=iterations)}
    exec(functions_used(render_train(model), "update_averages"), ours)
    expected = None
    for step in range(4):
        weights = [rng.normal(size=w.shape) for w in start]
        with torch.no_grad():
            for parameter, value in zip(parameters, weights, strict=True):
                parameter.copy_(torch.from_numpy(value))
        for variable, value in zip(trainable, weights, strict=True):
            variable.assign(value)
        iterations.assign_add(1)  # the optimizer counts the step before the average moves
        theirs["update_averages"](first=step == 0)
        ours["update_averages"]()
        expected = weights if step == 0 else [0.9 * e + 0.1 * w
                                              for e, w in zip(expected, weights, strict=True)]
        for mine, torch_average, reference in zip(ours["averages"], theirs["averages"],
                                                  expected, strict=True):
            np.testing.assert_allclose(np.asarray(mine), reference, rtol=1e-12)
            np.testing.assert_allclose(torch_average.numpy(), reference, rtol=1e-12)


def tensorflow_spec(folder: Path, spec: str) -> Path:
    """The TensorFlow program of a spec written for the PyTorch tests."""
    return write_program(folder, spec.replace("train {",
                                              "train {\n            backend = tensorflow"))


@pytest.mark.slow
def test_init_from_starts_from_an_earlier_run(frameworks, tmp_path: Path) -> None:
    best, _, run = initialized_runs(tmp_path, tensorflow_spec, run_train, ".npz",
                                    "dense_3/kernel is [8, 3] there, [8, 4] here")
    with (np.load(best) as source, np.load(run / "checkpoints" / "epoch-0001.npz") as trained):
        source_names, names = (list(map(str, arrays["variable_names"]))
                               for arrays in (source, trained))
        kernel = ("dense_1/kernel", "dense_2/kernel")
        source_kernels = [source[f"model_{source_names.index(name)}"] for name in kernel]
        kernels = [trained[f"model_{names.index(name)}"] for name in kernel]
    assert np.array_equal(kernels[0], source_kernels[0])  # frozen: as loaded
    assert not np.array_equal(kernels[1], source_kernels[1])  # it trained on
    strict = tensorflow_spec(tmp_path / "strict", INIT_TARGET.replace("init_partial = true", ""))
    refused = run_train(strict, "--out", tmp_path / "strict" / "run")
    assert refused.returncode == 1
    assert "error: init_from: 1 layer(s) do not match" in refused.stderr
    assert "dense_3: dense_3/kernel is [8, 3] there, [8, 4] here" in refused.stderr


@pytest.mark.slow
def test_augmentation_is_seeded_and_keeps_images_whole(frameworks, tmp_path: Path) -> None:
    import tensorflow as tf

    model = load_model(tmp_path, VARIANTS["images"])
    namespace = {"tf": tf, "math": math}
    exec(functions_used(render_train(model), "augment"), namespace)
    images = tf.constant(np.random.default_rng(0).normal(size=(16, 8, 8, 1)), tf.float32)
    seed = tf.constant([0, 1], tf.int64)
    # No rotation, shift or zoom, no padding: every pixel stays where it is.
    same = namespace["random_affine"](images, seed)
    np.testing.assert_allclose(np.asarray(same), np.asarray(images), atol=1e-6)
    np.testing.assert_array_equal(namespace["random_crop"](images, seed, padding=0), images)
    # A flip mirrors each image or leaves it, about half of them.
    flipped = np.asarray(namespace["random_flip"](images, seed, axes=(2,)))
    mirrored = [np.array_equal(f, i[:, ::-1]) for f, i in zip(flipped, np.asarray(images),
                                                                 strict=True)]
    kept = [np.array_equal(f, i) for f, i in zip(flipped, np.asarray(images), strict=True)]
    assert all(m != k for m, k in zip(mirrored, kept, strict=True)) and 2 < sum(mirrored) < 14
    # The spec's whole augment { }: a function of the seed, the images' shape kept.
    first = np.asarray(namespace["augment"](images, seed))
    assert first.shape == images.shape and np.isfinite(first).all()
    np.testing.assert_array_equal(first, namespace["augment"](images, seed))
    assert not np.array_equal(first, namespace["augment"](images, tf.constant([0, 2], tf.int64)))


# --- training runs -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def six_epochs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The classifier trained for 6 epochs in one go, exported: (program, run directory)."""
    folder = tmp_path_factory.mktemp("six_epochs")
    program = write_program(folder, classifier_spec())
    run = folder / "run"
    result = run_train(program, "--out", run, "--export")
    assert result.returncode == 0, result.stderr
    return program, run


@pytest.mark.slow
def test_a_run_writes_the_documented_files_and_keys(six_epochs: tuple[Path, Path]) -> None:
    _, run = six_epochs
    records = read_metrics(run)
    assert [r["epoch"] for r in records] == [1, 2, 3, 4, 5, 6]
    for record in records:
        assert list(record) == ["epoch", "loss", "val_loss", "val_accuracy", "val_f1", "lr",
                                "time"]
        assert all(math.isfinite(value) for value in record.values())
        assert record["lr"] == 0.01
    results = json.loads((run / "results.json").read_text())
    assert list(results) == ["backend", "device", "epochs_run", "train_samples_per_s",
                             "world_size", "nodes", "replicas", "test"]
    # one process alone, on one device
    assert (results["world_size"], results["nodes"], results["replicas"]) == (1, 1, 1)
    assert results["backend"] == "tensorflow" and results["device"] == "cpu"
    assert results["epochs_run"] == 6 and results["train_samples_per_s"] > 0
    assert list(results["test"]) == ["loss", "accuracy", "f1"]
    saved = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert saved == ["best.npz", "epoch-0004.npz", "epoch-0005.npz", "epoch-0006.npz"]
    assert json.loads((run / "preprocessing.json").read_text()) == {"class_names": []}
    with np.load(run / "checkpoints" / "epoch-0006.npz") as checkpoint:
        position = json.loads(str(checkpoint["position"]))
        optimizer_arrays = [name for name in checkpoint if name.startswith("optimizer_")]
    assert position["epoch"] == 6 and position["step"] == 18  # 3 batches per epoch
    assert len(optimizer_arrays) == 2 + 2 * 4  # iterations, rate; m and v of 4 weights
    assert (run / "model.keras").is_file() and (run / "saved_model" / "saved_model.pb").is_file()


@pytest.mark.slow
def test_the_exported_model_computes_the_trained_one(frameworks,
                                                     six_epochs: tuple[Path, Path]) -> None:
    keras = frameworks[1]
    _, run = six_epochs
    loaded = keras.saving.load_model(run / "model.keras")
    x = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    assert loaded(x).shape == (5, 3)
    served = keras.layers.TFSMLayer(str(run / "saved_model"), call_endpoint="serve")
    np.testing.assert_allclose(np.asarray(served(x)), np.asarray(loaded(x)), rtol=1e-5,
                               atol=1e-6)


@pytest.mark.slow
def test_resuming_3_epochs_to_6_equals_training_6_straight(
        tmp_path: Path, six_epochs: tuple[Path, Path]) -> None:
    program, straight = six_epochs
    run = tmp_path / "run"
    first = run_train(program, "--out", run, "--epochs", "3")
    assert first.returncode == 0, first.stderr
    second = run_train(program, "--out", run, "--epochs", "6", "--resume")
    assert second.returncode == 0, second.stderr
    assert "resuming from" in second.stdout

    def without_time(records: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "time"} for r in records]

    # Bit for bit: the dropout layers' random state travels in the checkpoint.
    assert without_time(read_metrics(run)) == without_time(read_metrics(straight))
    with (np.load(run / "checkpoints" / "epoch-0006.npz") as resumed,
          np.load(straight / "checkpoints" / "epoch-0006.npz") as reference):
        assert set(resumed) == set(reference)
        assert all(np.array_equal(resumed[name], reference[name]) for name in reference
                   if name != "position")


@pytest.mark.slow
def test_training_again_into_a_run_with_checkpoints_is_refused(
        six_epochs: tuple[Path, Path]) -> None:
    program, run = six_epochs
    result = run_train(program, "--out", run)
    assert result.returncode == 2
    assert "pass --resume" in result.stderr


@pytest.mark.slow
def test_predict_writes_one_prediction_per_input_row(
        tmp_path: Path, six_epochs: tuple[Path, Path]) -> None:
    program, run = six_epochs
    inputs = tmp_path / "new.npz"
    np.savez(inputs, x=np.random.default_rng(0).normal(size=(7, 8)).astype(np.float32))
    result = run_train(program, "--out", run, "--predict", inputs)
    assert result.returncode == 0, result.stderr
    with np.load(run / "predictions.npz") as predictions:
        assert list(predictions) == ["y", "y_class_id"]  # synthetic classes have no names
        assert predictions["y"].shape == (7, 3)
        assert np.isfinite(predictions["y"]).all()
        np.testing.assert_array_equal(predictions["y_class_id"], predictions["y"].argmax(axis=1))


@pytest.mark.slow
def test_a_nan_loss_stops_with_a_message_and_keeps_the_last_checkpoint(
        tmp_path: Path, six_epochs: tuple[Path, Path]) -> None:
    program, straight = six_epochs
    run = tmp_path / "run"
    shutil.copytree(straight, run)
    exploding = tmp_path / "exploding"  # the config block edited, as a user may
    exploding.mkdir()
    for path in program.glob("*.py"):
        shutil.copy(path, exploding)
    source = (program / "recipe.py").read_text()
    assert "learning_rate = 0.01\n" in source
    (exploding / "recipe.py").write_text(source.replace("learning_rate = 0.01\n",
                                                        "learning_rate = 1e30\n"))
    result = run_train(exploding, "--out", run, "--epochs", "8", "--resume")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    message = last_line(result.stderr)
    assert message.startswith("error: the training loss became nan in epoch 7"), message
    assert message.endswith(f"the last good checkpoint is {run / 'checkpoints'}/epoch-0006.npz")
    assert not (run / "checkpoints" / "epoch-0007.npz").exists()
    assert len(read_metrics(run)) == 6


@pytest.mark.slow
def test_early_stopping_stops_after_patience_epochs_without_improvement(tmp_path: Path) -> None:
    program = write_program(tmp_path, classifier_spec(
        train="early_stopping(patience=1, min_delta=1e9)"))
    run = tmp_path / "run"
    result = run_train(program, "--out", run)
    assert result.returncode == 0, result.stderr
    assert "early stopping: val_loss has not improved for 1 epochs" in result.stdout
    assert [r["epoch"] for r in read_metrics(run)] == [1, 2]
    assert (run / "checkpoints" / "epoch-0002.npz").is_file()  # the last epoch is kept


@pytest.mark.slow
def test_a_missing_data_file_exits_1_with_the_message(tmp_path: Path) -> None:
    program = write_program(tmp_path, classifier_spec(
        data='npz(path="missing.npz", validation=0.25)'))
    result = run_train(program, "--out", tmp_path / "run")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert last_line(result.stderr).startswith("error: ") and "missing.npz" in result.stderr


# Optimizer steps in two epochs: `images` accumulates 2 of its 6 batches of 8 per step; the
# others train on one or two batches per epoch.
STEPS_IN_TWO_EPOCHS = {"images": 6, "two_outputs": 2, "sequence": 2}


@pytest.mark.slow
@pytest.mark.parametrize("variant", STEPS_IN_TWO_EPOCHS)
def test_variants_train(tmp_path: Path, variant: str) -> None:
    # images: every augmentation, grad_accum, clipping, early stopping on val_accuracy;
    # two_outputs: two outputs with a loss each, a test split; sequence: token ids in,
    # a class per position out (an embedding's sparse gradient through the optimizer).
    program = write_program(tmp_path, VARIANTS[variant])
    run = tmp_path / "run"
    result = run_train(program, "--out", run)
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stdout, result.stdout
    records = read_metrics(run)
    assert [r["epoch"] for r in records] == [1, 2]
    assert all(math.isfinite(value) for r in records for value in r.values())
    with np.load(run / "checkpoints" / "epoch-0002.npz") as checkpoint:
        assert json.loads(str(checkpoint["position"]))["step"] == STEPS_IN_TWO_EPOCHS[variant]
    results = json.loads((run / "results.json").read_text())
    assert (results["test"] is None) == (variant != "two_outputs")


@pytest.mark.slow
def test_max_steps_stops_within_an_epoch(tmp_path: Path) -> None:
    program = write_program(tmp_path, classifier_spec())
    run = tmp_path / "run"
    result = run_train(program, "--out", run, "--max-steps", "4")
    assert result.returncode == 0, result.stderr
    assert "stopped by --max-steps after 4 optimizer steps, within epoch 2" in result.stdout
    assert [r["epoch"] for r in read_metrics(run)] == [1, 2]
    assert not (run / "checkpoints" / "epoch-0002.npz").exists()  # a partial epoch


# --- the digits convnet, trained by `specc train` on both backends --------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "torch"])
def test_digits_convnet_reaches_95_percent(tmp_path: Path, monkeypatch, backend: str) -> None:
    from specc.run import train

    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    run = tmp_path / "run"
    assert train(ROOT / "specs" / "digits_cnn.spec", backend=backend, out=run) == 0
    results = json.loads((run / "results.json").read_text())
    assert results["backend"] == backend
    assert results["test"]["accuracy"] >= 0.95, results
