"""The generated train.py: it passes ruff, and (slow) it trains, logs, checkpoints, resumes
bit-for-bit, stops on nan, stops early, predicts and exports as its docstring says."""

from __future__ import annotations

import ast
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import specc
from specc import parity
from specc.backends.common.data import render_data_code
from specc.backends.common.plan import spec_hash
from specc.backends.torch.train_gen import render_training
from specc.errors import SpecError

from .conftest import classifier_spec, run_train, write_program

ROOT = Path(__file__).resolve().parents[3]

# One spec per family of branches in the templates: every loss, optimizer, schedule,
# metric and augmentation kind appears in at least one.
VARIANTS = {
    "images": """
        model convnet {
            input image: float[8, 8, 1]
            layers {
                conv2d(4, 3, padding=same, activation=relu)
                maxpool2d(2)
                flatten()
                dense(10)
            }
            loss cross_entropy(label_smoothing=0.1)
            optimizer sgd(lr=0.05, momentum=0.9, nesterov=true, schedule=step(every=2, gamma=0.5))
            metrics accuracy, top_k_accuracy(k=3), precision, recall, f1
            augment {
                random_flip(horizontal_and_vertical)
                random_rotation(10)
                random_translation(0.1)
                random_zoom(0.1)
                random_crop(8, padding=1)
            }
            data synthetic(n=64, validation=0.25)
            train {
                epochs = 2
                batch_size = 8
                grad_clip = 1.0
                grad_accum = 2
                early_stopping(monitor=val_accuracy, patience=2, min_delta=0.01)
                checkpoint(every=2, keep=1)
                precision = fp32
                compile = false
            }
        }
    """,
    "regression": """
        model regressor {
            input features: float[5]
            layers {
                dense(8, activation=tanh, l2=0.01)
                dense(2)
            }
            loss huber(delta=0.5)
            optimizer rmsprop(lr=0.01, momentum=0.5, schedule=exponential(0.9))
            metrics mae, mse
            data synthetic(n=40)
            train { epochs = 2 }
        }
    """,
    "binary": """
        model detector {
            input x: float[6]
            layers {
                dense(1, activation=sigmoid)
            }
            loss binary_cross_entropy(from_logits=false)
            optimizer adagrad(schedule=plateau(factor=0.5, patience=1, monitor=val_accuracy))
            metrics accuracy, precision, recall, f1
            data synthetic(n=40, validation=0.2)
            train {
                epochs = 2
                grad_clip_value = 0.5
            }
        }
    """,
    "two_outputs": """
        model two_heads {
            input x: float[6]
            graph {
                h = x -> dense(8, activation=relu, l1=0.001)
                class = h -> dense(4)
                value = h -> dense(1)
            }
            output class, value
            loss class: cross_entropy(), value: mse(weight=0.5)
            optimizer adamw(schedule=one_cycle(max_lr=0.01))
            metrics accuracy
            data synthetic(n=40, validation=0.25, test=0.25)
            train { epochs = 2 }
        }
    """,
    "sequence": """
        model tagger {
            input tokens: int[12]
            layers {
                embedding(20, 8)
                dense(5)
                softmax()
            }
            loss cross_entropy(from_logits=false, label_smoothing=0.1)
            optimizer adam(schedule=cosine(warmup=1, min_lr=1e-4))
            metrics accuracy, top_k_accuracy(k=2)
            data synthetic(n=40, validation=0.25)
            train { epochs = 2 }
        }
    """,
    "plain": """
        model plain {
            input x: float[3]
            layers {
                dense(2)
            }
            loss mae()
            optimizer sgd()
            data synthetic(n=20, test=0.2)
            train { epochs = 2 }
        }
    """,
}


def render_train(model) -> str:
    """The generated train.py of `model`."""
    return render_training(model, ("train.py",))["train.py"]



def load_model(tmp_path: Path, spec_text: str):
    spec = tmp_path / "model.spec"
    spec.write_text(spec_text)
    return specc.load(spec).models[0]


@pytest.mark.parametrize("variant", VARIANTS)
def test_generated_train_py_passes_ruff_and_stands_alone(tmp_path: Path, variant: str) -> None:
    files = render_training(load_model(tmp_path, VARIANTS[variant]))
    assert list(files) == ["recipe.py", "checkpoints.py", "devices.py", "progress.py",
                           "processes.py", "train.py"]
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    source = files["train.py"]
    # Ruff's own defaults (what a user running ruff on the program gets), and the project's
    # stricter rules less the two that pyproject.toml waives for generated programs.
    for options in (["--isolated"], ["--config", str(ROOT / "pyproject.toml"),
                                     "--extend-ignore", "N812,E402"]):
        lint = subprocess.run(
            [sys.executable, "-m", "ruff", "check", *options, "--output-format", "concise",
             *(str(tmp_path / name) for name in files)],
            capture_output=True, text=True, check=False)
        assert lint.returncode == 0, lint.stdout + lint.stderr
    imported = {alias.name.split(".")[0] for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(ast.parse(source))
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert "specc" not in imported
    assert {"torch", "model", "data", "recipe", "checkpoints", "devices"} <= imported


def test_spec_text_reaches_train_py_only_as_literals(tmp_path: Path) -> None:
    # A path with a quote and a newline escape stays inside its string literal.
    text = classifier_spec(data='npz(path="a\\"b\\nc.npz", validation=0.25)')
    source = render_train(load_model(tmp_path, text))
    ast.parse(source)
    assert 'a"b\nc.npz' not in source


@pytest.mark.parametrize(("name", "import_line", "bound_as"), [
    ("tiny", "from model import Tiny", "Tiny"),
    ("path", "from model import Path as Path_", "Path_"),  # pathlib's, which train.py uses
])
def test_the_model_class_never_shadows_a_name_of_train_py(
        tmp_path: Path, name: str, import_line: str, bound_as: str) -> None:
    text = classifier_spec().replace("model tiny", f"model {name}")
    source = render_train(load_model(tmp_path, text))
    assert f"\n{import_line}\n" in source
    assert f"\nmodel = {bound_as}().to(device)\n" in source
    assert "\nfrom pathlib import Path\n" in source  # imported under its own name


# A model for each data source whose loader code differs (files need not exist to generate).
SOURCES = {
    "synthetic": ("float[8]", "dense(3)", "synthetic(n=40)"),
    "digits": ("float[64]", "dense(10)", "digits(validation=0.1)"),
    "npz": ("float[8]", "dense(3)", 'npz(path="data.npz")'),
    "csv": ("float[8]", "dense(3)", 'csv(path="data.csv", target="y")'),
    "text_csv": ("int[20]", "embedding(50, 4)\n flatten()\n dense(2)",
                 'text_csv(path="t.csv", text="text", label="label", vocab=50, max_len=20)'),
    "mnist": ("float[28, 28, 1]", "flatten()\n dense(10)", 'mnist(path="mnist.npz")'),
    "image_folder": ("float[16, 16, 3]", "flatten()\n dense(2)",
                     'image_folder(path="images", size=16)'),
}


def bound_at_top_level(tree: ast.Module) -> set[str]:
    """Names a module binds outside functions and classes (their own names included)."""
    names: set[str] = set()
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif not isinstance(node, (ast.Lambda, ast.GeneratorExp, ast.ListComp, ast.DictComp,
                                   ast.SetComp)):
            pending.extend(ast.iter_child_nodes(node))
    return names


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
            data {data}
        }}
    """)
    program = tmp_path / "program"
    loader = render_data_code(model, program)
    ours = render_train(model).replace(loader.code, "")
    assert not bound_at_top_level(ast.parse(ours)) & bound_at_top_level(ast.parse(loader.code))


def test_spec_hash_ignores_training_settings_but_not_the_network(tmp_path: Path) -> None:
    base = load_model(tmp_path, classifier_spec())
    longer = load_model(tmp_path, classifier_spec(train="seed = 3"))
    other_optimizer = load_model(tmp_path, classifier_spec(optimizer="sgd()"))
    assert spec_hash(base) == spec_hash(longer)
    assert spec_hash(base) != spec_hash(other_optimizer)


def test_loss_terms_take_the_labels_in_output_order(tmp_path: Path) -> None:
    # The loader gives labels in output order, whatever order the loss section names them.
    text = VARIANTS["two_outputs"].replace("loss class: cross_entropy(), value: mse(weight=0.5)",
                                           "loss value: mse(weight=0.5), class: cross_entropy()")
    source = render_training(load_model(tmp_path, text))["recipe.py"]
    # each output's term in output_losses, in output order, and the weights with them
    assert ("        # cross_entropy on `class`\n"
            "        F.cross_entropy(outputs[0].float(), targets[0]),\n"
            "        # mse on `value`\n"
            "        F.mse_loss(outputs[1].float(), targets[1]),\n") in source
    assert "    loss = terms[0] + 0.5 * terms[1]\n" in source


def test_a_metric_that_does_not_fit_the_loss_is_a_check_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="metric accuracy does not fit the huber loss"):
        load_model(tmp_path, VARIANTS["regression"].replace("metrics mae, mse",
                                                            "metrics accuracy"))


def test_monitoring_a_value_that_is_not_reported_is_a_check_error(tmp_path: Path) -> None:
    text = classifier_spec(data="synthetic(n=40)",
                           train="early_stopping(monitor=val_accuracy)")
    with pytest.raises(SpecError, match="no validation split"):
        load_model(tmp_path, text)


# --- the learning-rate schedules, run from the generated source ----------------------------


def schedule(tmp_path: Path, optimizer: str, steps_per_epoch: int, epochs: int):
    """The generated `learning_rate_at` (of a run of `epochs` epochs of `steps_per_epoch`
    steps; and `end_of_epoch_schedule`, for plateau) with the settings they read, executed
    from the rendered recipe.py without its framework."""
    text = classifier_spec(optimizer=optimizer, train=f"epochs = {epochs}").replace(
        "epochs = 6\n", "")
    tree = ast.parse(render_training(load_model(tmp_path, text))["recipe.py"])
    wanted = {"learning_rate_at", "end_of_epoch_schedule"}
    kept = [node for node in tree.body if isinstance(node, ast.Assign)
            or (isinstance(node, ast.FunctionDef) and node.name in wanted)]
    namespace = {"math": math}
    exec(compile(ast.Module(body=kept, type_ignores=[]), "recipe.py", "exec"), namespace)
    rate = namespace["learning_rate_at"]
    total_steps = epochs * steps_per_epoch
    namespace["learning_rate_at"] = lambda epoch, step: rate(epoch, step, steps_per_epoch,
                                                            total_steps)
    return namespace


def test_step_and_exponential_schedules_count_epochs(tmp_path: Path) -> None:
    step = schedule(tmp_path, "sgd(lr=0.1, schedule=step(every=2, gamma=0.5))", 3, 5)
    rates = [step["learning_rate_at"](epoch, epoch * 3) for epoch in range(5)]
    assert rates == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    exponential = schedule(tmp_path, "sgd(lr=0.1, schedule=exponential(0.9))", 3, 3)
    rates = [exponential["learning_rate_at"](epoch, 0) for epoch in range(3)]
    assert rates == pytest.approx([0.1, 0.09, 0.081])


def test_cosine_schedule_warms_up_then_reaches_min_lr_at_the_last_step(tmp_path: Path) -> None:
    cosine = schedule(tmp_path, "sgd(lr=0.1, schedule=cosine(warmup=1, min_lr=0.001))", 4, 5)
    rate = cosine["learning_rate_at"]
    assert [rate(0, s) for s in range(4)] == pytest.approx([0.025, 0.05, 0.075, 0.1])
    assert rate(1, 4) == pytest.approx(0.1)  # the decay starts at the full rate
    # decay over steps 4..19: a third of the way, cos(pi / 3) = 0.5
    assert rate(2, 9) == pytest.approx(0.001 + 0.099 * (1 + 0.5) / 2)
    assert rate(4, 19) == pytest.approx(0.001)


def test_plateau_schedule_cuts_the_rate_after_patience_epochs(tmp_path: Path) -> None:
    plateau = schedule(tmp_path, "sgd(lr=0.1, schedule=plateau(factor=0.5, patience=2))", 3, 9)
    rates = []
    for val_loss in [1.0, 0.9, 0.95, 0.95, 0.8, 0.85, 0.85, 0.9, 0.9]:
        plateau["end_of_epoch_schedule"](val_loss)
        rates.append(plateau["learning_rate_at"](0, 0))
    assert rates == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.0125])


def test_plateau_schedule_on_a_value_to_maximize(tmp_path: Path) -> None:
    plateau = schedule(tmp_path, "sgd(lr=0.1, schedule=plateau(factor=0.5, patience=2, "
                                 "monitor=val_accuracy))", 3, 6)
    assert (plateau["plateau_monitor"], plateau["plateau_mode"]) == ("val_accuracy", "max")
    rates = []
    for accuracy in [0.5, 0.6, 0.55, 0.6, 0.7, 0.7]:
        plateau["end_of_epoch_schedule"](accuracy)
        rates.append(plateau["learning_rate_at"](0, 0))
    # 0.55 and 0.6 are no better than 0.6: the cut after the second; 0.7 is, then 0.7 is not
    assert rates == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05])


@pytest.mark.slow
def test_one_cycle_schedule_is_pytorchs_one_cycle(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    one_cycle = schedule(tmp_path, "sgd(lr=0.1, schedule=one_cycle(max_lr=0.3))", 7, 3)
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    reference = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.3, total_steps=21,
                                                    cycle_momentum=False)
    expected = []
    for _ in range(21):
        expected.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        reference.step()
    ours = [one_cycle["learning_rate_at"](step // 7, step) for step in range(21)]
    assert ours == pytest.approx(expected, rel=1e-9)


# --- training runs -------------------------------------------------------------------------


def read_metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def six_epochs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The classifier trained for 6 epochs in one go: (its program, its run directory)."""
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
    results = json.loads((run / "results.json").read_text())
    assert list(results) == ["backend", "device", "epochs_run", "train_samples_per_s",
                             "world_size", "nodes", "replicas", "test"]
    # one process alone, on one device
    assert (results["world_size"], results["nodes"], results["replicas"]) == (1, 1, 1)
    assert results["backend"] == "torch" and results["device"] == "cpu"
    assert results["epochs_run"] == 6 and results["train_samples_per_s"] > 0
    assert list(results["test"]) == ["loss", "accuracy", "f1"]
    # the newest 3 epoch checkpoints (checkpoint(keep=3) by default) and the best one
    saved = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert saved == ["best.pt", "epoch-0004.pt", "epoch-0005.pt", "epoch-0006.pt"]
    assert (run / "model.pt2").is_file()


@pytest.mark.slow
def test_the_exported_model_takes_any_batch_size(six_epochs: tuple[Path, Path]) -> None:
    torch = pytest.importorskip("torch")
    _, run = six_epochs
    exported = torch.export.load(run / "model.pt2").module()
    assert exported(torch.zeros(5, 8)).shape == (5, 3)
    assert exported(torch.zeros(1, 8)).shape == (1, 3)


@pytest.mark.slow
def test_checkpoints_hold_the_documented_state(six_epochs: tuple[Path, Path]) -> None:
    torch = pytest.importorskip("torch")
    _, run = six_epochs
    checkpoint = torch.load(run / "checkpoints" / "epoch-0006.pt", weights_only=True)
    # the spec hash is in the file's seal (tests/test_checkpoints.py)
    assert set(checkpoint) == {"epoch", "step", "model", "optimizer", "scaler", "schedule",
                               "best", "world_size", "rng"}
    assert checkpoint["world_size"] == 1  # a resume needs as many processes
    assert set(checkpoint["rng"]) == {"python", "numpy", "torch", "cuda"}
    assert checkpoint["epoch"] == 6 and checkpoint["step"] == 18  # 3 batches per epoch


@pytest.mark.slow
def test_resuming_3_epochs_to_6_equals_training_6_straight(
        tmp_path: Path, six_epochs: tuple[Path, Path]) -> None:
    torch = pytest.importorskip("torch")
    program, straight = six_epochs
    run = tmp_path / "run"
    first = run_train(program, "--out", run, "--epochs", "3")
    assert first.returncode == 0, first.stderr
    second = run_train(program, "--out", run, "--epochs", "6", "--resume")
    assert second.returncode == 0, second.stderr
    assert "resuming from" in second.stdout

    def without_time(records: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "time"} for r in records]

    assert without_time(read_metrics(run)) == without_time(read_metrics(straight))
    resumed = torch.load(run / "checkpoints" / "epoch-0006.pt", weights_only=True)["model"]
    reference = torch.load(straight / "checkpoints" / "epoch-0006.pt", weights_only=True)["model"]
    assert resumed.keys() == reference.keys()
    assert all(torch.equal(resumed[name], reference[name]) for name in reference)


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
    # Edit recipe.py's settings, as a user may, so that the rate explodes once resumed.
    exploding = tmp_path / "exploding"
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
    message = result.stderr.strip().splitlines()
    assert len(message) == 1
    assert message[0].startswith("error: the training loss became nan in epoch 7")
    assert message[0].endswith(f"the last good checkpoint is {run / 'checkpoints'}"
                               f"/epoch-0006.pt")
    assert not (run / "checkpoints" / "epoch-0007.pt").exists()
    assert len(read_metrics(run)) == 6


@pytest.mark.slow
def test_early_stopping_stops_after_patience_epochs_without_improvement(
        program) -> None:
    # No epoch improves val_loss by 1e9, so the second epoch is the first without one.
    folder = program(classifier_spec(train="early_stopping(patience=1, min_delta=1e9)"))
    run = folder.parent / "run"
    result = run_train(folder, "--out", run)
    assert result.returncode == 0, result.stderr
    assert "early stopping: val_loss has not improved for 1 epochs" in result.stdout
    assert [r["epoch"] for r in read_metrics(run)] == [1, 2]
    assert (run / "checkpoints" / "epoch-0002.pt").is_file()  # the last epoch is kept


@pytest.mark.slow
def test_max_steps_stops_within_an_epoch(program) -> None:
    folder = program(classifier_spec())
    run = folder.parent / "run"
    result = run_train(folder, "--out", run, "--max-steps", "4")
    assert result.returncode == 0, result.stderr
    assert "stopped by --max-steps after 4 optimizer steps, within epoch 2" in result.stdout
    assert [r["epoch"] for r in read_metrics(run)] == [1, 2]
    assert not (run / "checkpoints" / "epoch-0002.pt").exists()  # a partial epoch


@pytest.mark.slow
def test_a_missing_data_file_exits_1_with_the_message(program) -> None:
    folder = program(classifier_spec(data='npz(path="missing.npz", validation=0.25)'))
    result = run_train(folder, "--out", folder.parent / "run")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and "missing.npz" in result.stderr


# Two layers of four held still by `train { freeze }`, a batchnorm among them: its moving
# statistics stay as they are too.
FROZEN = """
    model frozen {
        input x: float[6]
        layers {
            dense(8, activation=tanh)
            batchnorm()
            dense(8, activation=relu)
            dense(3)
        }
        loss cross_entropy()
        optimizer adam(lr=0.05)
        data synthetic(n=48, validation=0.25)
        train {
            epochs = 2
            batch_size = 12
            freeze = [dense_1, batchnorm_1]
        }
    }
"""
FROZEN_LAYERS = ("dense_1", "batchnorm_1")


@pytest.mark.slow
def test_frozen_layers_keep_their_initial_weights(program) -> None:
    torch = pytest.importorskip("torch")
    from specc.backends.torch import manifest

    folder = program(FROZEN)
    run, _ = trained_run(folder)
    trained = torch.load(run / "checkpoints" / "epoch-0002.pt", weights_only=True)["model"]
    torch.manual_seed(0)  # as train.py seeds it before building the model (seed 0)
    builder = manifest(load_model(folder.parent, FROZEN)).builder
    initial = getattr(parity.import_file(folder / "model.py"), builder)().state_dict()
    for key, value in initial.items():
        frozen = key.split(".")[0] in FROZEN_LAYERS
        assert torch.equal(trained[key], value) == frozen, key


# A run to start from (FROZEN, nothing frozen, one epoch), and a network that takes all
# its layers but the last, which has one more class; its first layer frozen, so that it
# ends with the weights it started from.
INIT_SOURCE = FROZEN.replace("freeze = [dense_1, batchnorm_1]", "").replace("epochs = 2",
                                                                         "epochs = 1")
INIT_TARGET = INIT_SOURCE.replace("dense(3)", "dense(4)").replace("epochs = 1", """epochs = 1
            init_from = "../source/run"
            init_partial = true
            freeze = [dense_1]""")


def trained_run(program: Path, run=run_train) -> tuple[Path, subprocess.CompletedProcess]:
    """The run directory beside `program` once `run(program, *args)` trained it, and what it
    printed."""
    folder = program.parent / "run"
    result = run(program, "--out", folder)
    assert result.returncode == 0, result.stderr
    return folder, result


def initialized_runs(tmp_path: Path, write, run, suffix: str,
                     mismatch: str) -> tuple[Path, Path, Path]:
    """The source run trained, then the target from it, written by `write(folder, spec)`
    and trained by `run(program, *args)`; what it reports of the layers it loaded, the
    different last one's `mismatch` among them, checked. Returns the source's best
    checkpoint, the target's program and its run."""
    source_run, _ = trained_run(write(tmp_path / "source", INIT_SOURCE), run)
    program = write(tmp_path / "target", INIT_TARGET)
    target_run, result = trained_run(program, run)
    best = source_run.resolve() / "checkpoints" / f"best{suffix}"
    assert f"init_from: 3 of 4 layers from {best}" in result.stdout
    assert f"init_from: dense_3 keeps its initial weights ({mismatch})" in result.stdout
    return best, program, target_run


@pytest.mark.slow
def test_init_from_starts_from_an_earlier_run(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    best, program, run = initialized_runs(tmp_path, write_program, run_train, ".pt",
                                          "dense_3.weight is [3, 8] there, [4, 8] here")
    source = torch.load(best, weights_only=True)["model"]
    trained = torch.load(run / "checkpoints" / "epoch-0001.pt", weights_only=True)["model"]
    assert torch.equal(trained["dense_1.weight"], source["dense_1.weight"])  # frozen: as loaded
    assert not torch.equal(trained["dense_2.weight"], source["dense_2.weight"])  # it trained on
    # --resume comes first: the run continues its own weights
    resumed = run_train(program, "--out", run, "--resume", "--epochs", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert "init_from:" not in resumed.stdout and "resuming from" in resumed.stdout
    # without init_partial, a layer that does not match is an error naming it
    strict = write_program(tmp_path / "strict", INIT_TARGET.replace(
        "init_partial = true", ""))
    refused = run_train(strict, "--out", tmp_path / "strict" / "run")
    assert refused.returncode == 1
    assert "error: init_from: 1 layer(s) do not match" in refused.stderr
    assert "dense_3: dense_3.weight is [3, 8] there, [4, 8] here" in refused.stderr


# A moving average of the weights, which validation, best.pt and the test metrics use.
AVERAGED = FROZEN.replace("freeze = [dense_1, batchnorm_1]", "ema = 0.9").replace(
    "validation=0.25)", "validation=0.25, test=0.25)")


@pytest.mark.slow
def test_best_weights_are_the_moving_average(program) -> None:
    torch = pytest.importorskip("torch")
    run, result = trained_run(program(AVERAGED))
    best = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    epoch = torch.load(run / "checkpoints" / f"epoch-{best['best']['epoch']:04d}.pt",
                       weights_only=True)
    parameters = [key for key in epoch["model"] if "running" not in key
                  and "num_batches" not in key]  # model.parameters()'s order
    assert len(parameters) == len(epoch["averages"]) == 8
    for key, average in zip(parameters, epoch["averages"], strict=True):
        assert torch.equal(best["model"][key], average), key  # what the test metrics use
        assert not torch.equal(epoch["model"][key], average), key  # the raw weights go on
    # the batchnorm's moving statistics are the raw model's own
    assert torch.equal(best["model"]["batchnorm_1.running_mean"],
                       epoch["model"]["batchnorm_1.running_mean"])
    assert "test  loss" in result.stdout


# Optimizer steps in two epochs: `images` accumulates 2 of its 6 batches of 8 per step
# (and clips); the others train on one or two batches per epoch.
STEPS_IN_TWO_EPOCHS = {"images": 6, "regression": 4, "binary": 2, "two_outputs": 2,
                       "sequence": 2, "plain": 2}


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_trains(program, variant: str) -> None:
    torch = pytest.importorskip("torch")
    folder = program(VARIANTS[variant])
    run = folder.parent / "run"
    # Export only where layers need more than a matmul (layout permutes, embeddings).
    export = ["--export"] if variant in ("images", "sequence") else []
    result = run_train(folder, "--out", run, *export)
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stdout, result.stdout
    assert len(read_metrics(run)) == 2
    checkpoint = torch.load(run / "checkpoints" / "epoch-0002.pt", weights_only=True)
    assert checkpoint["step"] == STEPS_IN_TWO_EPOCHS[variant]
    results = json.loads((run / "results.json").read_text())
    assert (results["test"] is None) == (variant not in ("two_outputs", "plain"))
    assert (run / "model.pt2").exists() == bool(export)
