"""`specc export`: a trained run's ONNX file takes raw samples, agrees with the framework and
with `--predict`, and carries the metadata `specc serve` reads; model.keras loads in a Python
that cannot import the generated code; bad runs and formats are refused before anything runs.

The slow tests train the digits convnets (PyTorch) and the digits resnet (TensorFlow: its
batchnorm is model.py's own layer class) for a few steps and export them for real."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from run_fixtures import epochs, write_run
from sklearn.datasets import load_digits

from specc.cli import main

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 600  # seconds for one training or export command, far above what each takes
RAW_SAMPLES = 40  # raw digit rows run through the ONNX file and --predict
DIFFERENCE = re.compile(r"largest absolute difference from the framework (\S+) \(tolerance")


def specc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`specc ARGS` in a child process that runs this tree's specc."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "specc.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)


def import_data_module(code_dir: Path):
    """The data.py of a generated program, imported under a name of its own."""
    spec = importlib.util.spec_from_file_location(f"data_{code_dir.parent.name}",
                                                  code_dir / "data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- refused before anything runs ------------------------------------------------------------


def test_a_folder_that_is_not_a_run_is_a_usage_error(tmp_path: Path, capsys) -> None:
    assert main(["export", str(tmp_path)]) == 2
    assert "has no code/model.py" in capsys.readouterr().err


def test_a_format_of_the_other_framework_is_refused(tmp_path: Path, capsys) -> None:
    run = write_run(tmp_path / "run", epochs([0.5], [0.9]), backend="torch")
    (run / "code" / "model.py").write_text("")
    (run / "code" / "data.py").write_text("")
    (run / "checkpoints").mkdir()
    assert main(["export", str(run), "--format", "keras"]) == 2
    assert "--format keras does not apply (expected onnx or torch)" in capsys.readouterr().err


# --- the TensorFlow program's model.keras (generated code, no framework) --------------------


@pytest.mark.parametrize(("spec", "conversions"), [
    ("digits_cnn", []), ("resnet", ["batchnorm"]), ("transformer_text", ["positional_embedding"]),
])
def test_train_py_rebuilds_only_the_layers_its_model_has(spec: str, conversions: list[str]
                                                         ) -> None:
    import specc
    from specc.backends import generate
    from specc.backends.tensorflow.train_gen import keras_conversions

    model = specc.load(ROOT / "specs" / f"{spec}.spec").models[0]
    assert keras_conversions(model) == conversions
    train_py = generate(model, "tensorflow", ROOT / "examples" / spec / "tensorflow")["train.py"]
    assert ("def core_layers_model(model):" in train_py) == bool(conversions)
    assert ("specc>TorchBatchNormalization" in train_py) == ("batchnorm" in conversions)
    assert ("specc>PositionalEmbedding" in train_py) == ("positional_embedding" in conversions)


# --- which preparation goes inside the graph (NumPy only) ------------------------------------


def test_standardization_and_the_reshape_go_inside(tmp_path: Path) -> None:
    from specc import compile
    from specc.export.inputs import held_out_split, input_plans, with_prepared

    code = tmp_path / "digits" / "code"
    compile(ROOT / "specs" / "digits_cnn.spec", backend="torch", out=code)
    data = import_data_module(code)
    splits, preprocessing = data.load_splits(0)
    held = with_prepared(data, held_out_split(data, 0, None), preprocessing)
    assert np.array_equal(held.prepared[0], splits["test"][0])
    [plan] = input_plans(data, held, preprocessing)
    assert (plan.raw_shape, plan.raw_dtype, plan.model_shape) == ((64,), "float32", (8, 8, 1))
    assert plan.mean is not None and plan.divide_by is None and plan.takes_raw
    assert np.array_equal(plan.apply(held.raw[0]), splits["test"][0])


def test_pixels_are_scaled_inside(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "data"))
    from data_files import write_mnist_npz

    from specc import compile
    from specc.export.inputs import held_out_split, input_plans, with_prepared

    write_mnist_npz(tmp_path / "mnist.npz")
    code = tmp_path / "mnist" / "code"
    compile(ROOT / "specs" / "mnist_cnn.spec", backend="torch", out=code)
    data = import_data_module(code)
    held = with_prepared(data, held_out_split(data, 0, str(tmp_path / "mnist.npz")), {})
    [plan] = input_plans(data, held, {})
    assert (plan.raw_shape, plan.raw_dtype, plan.divide_by) == ((28, 28), "uint8", 255.0)
    assert np.array_equal(plan.apply(held.raw[0]), held.prepared[0])


# --- trained and exported for real -----------------------------------------------------------


def train(tmp_path: Path, spec: str, backend: str) -> Path:
    run = tmp_path / f"{spec}_{backend}"
    result = specc("train", str(ROOT / "specs" / f"{spec}.spec"), "--backend", backend,
                   "--max-steps", "4", "--out", str(run), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    return run


def predicted_classes(run: Path, raw: np.ndarray, tmp_path: Path) -> np.ndarray:
    """The classes the run's own `train.py --predict` gives raw samples."""
    np.savez(tmp_path / "raw.npz", x=raw)
    result = subprocess.run([sys.executable, str(run / "code" / "train.py"), "--out", str(run),
                             "--predict", str(tmp_path / "raw.npz")],
                            capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    with np.load(run / "predictions.npz") as predictions:
        return predictions["y_class_id"]


def check_onnx_export(run: Path, tmp_path: Path, backend: str, model: str) -> None:
    import onnxruntime

    from specc.export_metadata import loads

    result = specc("export", str(run), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    difference = float(DIFFERENCE.search(result.stdout)[1])
    assert difference <= 1e-4
    assert "test split through onnxruntime: accuracy" in result.stdout

    session = onnxruntime.InferenceSession(str(run / "export" / "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    metadata = loads(session.get_modelmeta().custom_metadata_map, run / "export" / "model.onnx")
    assert (metadata.model, metadata.backend, metadata.opset) == (model, backend, 18)
    assert [(i.name, i.shape, i.dtype) for i in metadata.inputs] == [("image", [64], "float32")]
    [output] = metadata.outputs
    assert [o.name for o in session.get_outputs()] == [output.name]
    assert [session.get_inputs()[0].shape, session.get_outputs()[0].shape] == [
        ["batch", 64], ["batch", 10]]  # any batch size
    assert output.classes == 10 and output.class_names == [str(d) for d in range(10)]
    assert metadata.preprocessing_inside
    assert metadata.max_abs_difference == pytest.approx(difference, rel=0.01)  # printed: 3 digits
    results = json.loads((run / "results.json").read_text())
    assert metadata.test_metrics["accuracy"] == pytest.approx(results["test"]["accuracy"])
    # the runtime's accuracy is the framework's, up to a sample whose top two scores tie
    assert metadata.runtime_test_metrics["accuracy"] == pytest.approx(
        results["test"]["accuracy"], abs=0.01)

    # raw pixel rows, as scikit-learn gives them: the graph standardizes and reshapes them
    raw = load_digits().data.astype(np.float32)[:RAW_SAMPLES]
    [scores] = session.run(None, {"image": raw})
    assert np.array_equal(scores.argmax(axis=-1), predicted_classes(run, raw, tmp_path))


def check_refused_above_tolerance(run: Path, tmp_path: Path) -> None:
    target = tmp_path / "strict.onnx"
    result = specc("export", str(run), "--tolerance", "1e-12", "-o", str(target), cwd=tmp_path)
    assert result.returncode == 1
    assert "above the tolerance 1e-12: not exported" in result.stderr
    assert not list(tmp_path.glob("strict*"))  # nothing left behind, not even a partial file


@pytest.mark.slow
def test_torch_run_exports_verified_onnx(tmp_path: Path) -> None:
    run = train(tmp_path, "digits_cnn", "torch")
    check_onnx_export(run, tmp_path, "torch", "digits_cnn")
    check_refused_above_tolerance(run, tmp_path)


@pytest.mark.slow
def test_tensorflow_run_exports_verified_onnx_and_a_self_contained_keras_file(
        tmp_path: Path) -> None:
    run = train(tmp_path, "resnet", "tensorflow")
    check_onnx_export(run, tmp_path, "tensorflow", "resnet")

    # model.keras, as train.py wrote it and as `specc export --format keras` writes it, loads
    # in a Python whose path and working directory cannot see the generated code
    assert specc("export", str(run), "--format", "keras", "-o", str(tmp_path / "again.keras"),
                 cwd=tmp_path).returncode == 0
    raw = load_digits().data.astype(np.float32)[:RAW_SAMPLES]  # what check_onnx_export predicted
    preprocessing = json.loads((run / "preprocessing.json").read_text())
    prepared = ((raw - np.float32(preprocessing["mean"])) / np.float32(preprocessing["std"]))
    np.save(tmp_path / "prepared.npy", prepared.reshape(-1, 8, 8, 1))
    with np.load(run / "predictions.npz") as predictions:
        expected = predictions["y"]
    clean = tmp_path / "clean"
    clean.mkdir()
    load = ("import importlib.util, sys, numpy as np, keras\n"
            "assert importlib.util.find_spec('model') is None  # no model.py to be seen\n"
            "for number, path in enumerate(sys.argv[2:]):\n"
            "    model = keras.saving.load_model(path)\n"
            "    print(sorted({type(layer).__module__.split('.')[0] for layer in model.layers}))\n"
            "    np.save(f'out{number}.npy', model(np.load(sys.argv[1]), training=False))\n")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    keras_files = [run / "model.keras", tmp_path / "again.keras"]
    result = subprocess.run([sys.executable, "-c", load, str(tmp_path / "prepared.npy"),
                             *map(str, keras_files)], cwd=clean, env=env,
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-2:] == ["['keras']"] * 2
    for number in range(len(keras_files)):
        np.testing.assert_allclose(np.load(clean / f"out{number}.npy"), expected, atol=1e-5)


WORDS_SPEC = """
model words {
    input tokens: int[12]
    layers {
        embedding(60, 8)
        global_avgpool1d()
        dense(2)
    }
    loss cross_entropy()
    optimizer adam()
    metrics accuracy
    data text_csv(path="texts.csv", text="text", label="label", vocab=60, max_len=12,
                  validation=0.2, test=0.25)
    train {
        epochs = 1
        batch_size = 8
    }
}
"""


def tokenize(text: str, contract: dict, vocabulary: list[str]) -> list[int]:
    """Token ids for `text`, made by following the metadata's tokenizer contract alone."""
    ids = {word: index + contract["first_word_id"] for index, word in enumerate(vocabulary)}
    words = re.findall(contract["word_pattern"], text.lower())
    kept = [ids.get(word, contract["oov_id"]) for word in words][-contract["max_len"]:]
    return [contract["pad_id"]] * (contract["max_len"] - len(kept)) + kept


@pytest.mark.slow
def test_text_export_ships_its_vocabulary_and_tokenizer_contract(tmp_path: Path) -> None:
    import onnxruntime

    from specc.export_metadata import loads

    rng = np.random.default_rng(3)
    good, bad = ["fine", "great", "lovely", "good"], ["awful", "poor", "dull", "bad"]
    rows = ["text,label"]
    for number in range(48):
        label = number % 2
        words = rng.choice(good if label else bad, size=5).tolist() + ["the", "film"]
        rows.append(f"{' '.join(words)},{'yes' if label else 'no'}")
    (tmp_path / "texts.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "words.spec").write_text(WORDS_SPEC)
    run = tmp_path / "run"
    result = specc("train", "words.spec", "--max-steps", "3", "--out", str(run), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr

    result = specc("export", str(run), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert float(DIFFERENCE.search(result.stdout)[1]) <= 1e-4
    session = onnxruntime.InferenceSession(str(run / "export" / "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    metadata = loads(session.get_modelmeta().custom_metadata_map, run / "export" / "model.onnx")
    assert [(i.name, i.shape, i.dtype) for i in metadata.inputs] == [("tokens", [12], "int64")]
    assert not metadata.preprocessing_inside
    contract = metadata.tokenizer
    assert contract["kind"] == "words" and contract["vocabulary_file"] == "model.vocab.json"
    vocabulary = json.loads((run / "export" / "model.vocab.json").read_text())
    assert vocabulary == json.loads((run / "preprocessing.json").read_text())["vocabulary"]
    assert metadata.outputs[0].class_names == ["no", "yes"]

    texts = ["great lovely fine film", "the dull awful poor bad film", "unknown words only"]
    tokens = np.array([tokenize(text, contract, vocabulary) for text in texts])
    [scores] = session.run(None, {"tokens": tokens})
    np.savez(tmp_path / "texts.npz", x=np.array(texts))
    predicted = subprocess.run([sys.executable, str(run / "code" / "train.py"), "--out",
                                str(run), "--predict", str(tmp_path / "texts.npz")],
                               capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    with np.load(run / "predictions.npz") as predictions:
        np.testing.assert_allclose(scores, predictions["y"], atol=1e-5)
