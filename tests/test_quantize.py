"""int8 quantization (specc/quantize.py, `specc quantize`) of ONNX models made in the test
(tests/onnx_models.py) from PyTorch modules trained briefly on scikit-learn's digits: the
quantized file is smaller, keeps the metadata, and keeps accuracy within a point, or is
refused."""

import numpy as np
import onnx
import pytest

from specc.cli import main

pytestmark = pytest.mark.slow  # the models come from PyTorch


@pytest.fixture(scope="module")
def digits():
    from onnx_models import digits_splits

    return digits_splits()


@pytest.fixture(scope="module")
def convnet(tmp_path_factory, digits):
    from onnx_models import trained_digits_convnet

    return trained_digits_convnet(tmp_path_factory.mktemp("quantize") / "convnet.onnx", digits)


@pytest.fixture(scope="module")
def breakable(tmp_path_factory, digits):
    from onnx_models import linear_classifier_that_int8_breaks

    return linear_classifier_that_int8_breaks(tmp_path_factory.mktemp("quantize") /
                                              "linear.onnx", digits)


def operators(path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def test_static_int8_of_a_digits_convnet_is_smaller_and_as_accurate(convnet, digits, tmp_path):
    from specc.quantize import choose_method, compare, quantize_onnx, read_metadata

    assert choose_method(convnet) == "static"
    (train_images, _), (test_images, test_labels) = digits["train"], digits["test"]
    out = quantize_onnx(convnet, tmp_path / "int8.onnx", calibration={"image": train_images},
                        method="static")
    # QDQ form: the convolutions' inputs and weights pass through int8.
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= operators(out)
    comparison = compare(convnet, out, {"image": test_images}, test_labels)
    print("\n" + "\n".join(comparison.lines()))
    assert comparison.metric == "accuracy"
    assert comparison.before > 0.9  # a trained model, so that the check means something
    assert comparison.before - comparison.after <= 0.01
    assert comparison.size_after < 0.5 * comparison.size_before
    original, quantized = read_metadata(convnet), read_metadata(out)
    assert quantized.quantized == "int8" and original.quantized is None
    assert quantized.model_copy(update={"quantized": None}) == original
    # The quantized file serves like any other export.
    import onnxruntime
    from fastapi.testclient import TestClient

    from specc.serve import build_app

    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"image": test_images[:8]})[0]
    answer = TestClient(build_app(out)).post("/predict", json={
        "image": test_images[:8].tolist()}).json()
    np.testing.assert_allclose(answer["logits"], expected, rtol=0, atol=1e-6)
    assert answer["class_id"] == expected.argmax(axis=1).tolist()


def test_static_quantization_needs_calibration_samples_that_fit(convnet, tmp_path):
    from specc.quantize import QuantizeError, quantize_onnx

    with pytest.raises(QuantizeError, match="needs calibration samples"):
        quantize_onnx(convnet, tmp_path / "int8.onnx", method="static")
    with pytest.raises(QuantizeError, match=r"shape \[5, 5\] cannot feed input `image`"):
        quantize_onnx(convnet, tmp_path / "int8.onnx", method="static",
                      calibration={"image": np.zeros((4, 5, 5), np.float32)})
    with pytest.raises(QuantizeError, match="no samples for input `image`"):
        quantize_onnx(convnet, tmp_path / "int8.onnx", method="static",
                      calibration={"pixels": np.zeros((4, 64), np.float32)})


def test_dynamic_int8_whose_accuracy_collapses_is_refused(breakable, digits, tmp_path):
    from specc.quantize import AccuracyDropError, choose_method, compare, quantize_onnx

    model = breakable
    assert choose_method(model) == "dynamic"
    out = quantize_onnx(model, tmp_path / "int8.onnx", method="dynamic")
    assert "DynamicQuantizeLinear" in operators(out)
    inputs, labels = {"image": digits["test"][0]}, digits["test"][1]
    with pytest.raises(AccuracyDropError) as refused:
        compare(model, out, inputs, labels)
    comparison = refused.value.comparison
    assert comparison.before > 0.9 and comparison.drop_points > 20
    assert "expected at most 1, which --max-drop sets" in str(refused.value)
    # A threshold above the loss lets it through, and says the same numbers.
    allowed = compare(model, out, inputs, labels, max_drop=100)
    assert allowed.after == comparison.after


def test_evaluate_takes_rows_and_measures_a_regression_model_by_squared_error(
        convnet, digits, tmp_path):
    import onnxruntime

    from specc.export_metadata import attach
    from specc.quantize import evaluate, read_metadata

    images, labels = digits["test"][0][:50], digits["test"][1][:50]
    metric, accuracy = evaluate(convnet, {"image": images}, labels)
    session = onnxruntime.InferenceSession(str(convnet), providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"image": images})[0]
    assert (metric, accuracy) == ("accuracy", float((logits.argmax(axis=1) == labels).mean()))
    # Rows of 64 values feed the [8, 8, 1] input, as the data source yields digits.
    assert evaluate(convnet, {"image": images.reshape(50, 64)}, labels) == (metric, accuracy)
    # The same graph, its output not a classifier's: its mean squared error to the targets.
    metadata = read_metadata(convnet)
    output = metadata.outputs[0].model_copy(update={"classes": None, "class_names": None})
    proto = onnx.load(str(convnet))
    attach(proto, metadata.model_copy(update={"outputs": [output]}))
    regression = tmp_path / "regression.onnx"
    onnx.save(proto, str(regression))
    targets = np.linspace(-1, 1, 500, dtype=np.float32).reshape(50, 10)
    metric, error = evaluate(regression, {"image": images}, targets)
    assert metric == "mse"
    assert error == pytest.approx(float(((logits - targets) ** 2).mean()), rel=1e-6)


def compiled_run(tmp_path):
    """A run directory of specs/digits_cnn.spec, as far as quantize reads one: its code."""
    from pathlib import Path

    spec = Path(__file__).resolve().parent.parent / "specs" / "digits_cnn.spec"
    run = tmp_path / "run"
    assert main(["compile", str(spec), "--backend", "torch", "-o", str(run / "code")]) == 0
    return run


def test_quantize_command_reads_the_run_splits_and_reports(convnet, tmp_path, capsys):
    from specc.quantize import run_splits

    run = compiled_run(tmp_path)
    # The run's own splits (1,797 digits: 20 % held out for test, 10 % for validation), raw:
    # pixel values 0..16 as the data source reads them, not standardized.
    splits = run_splits(run)
    (train_inputs, train_labels), (test_inputs, test_labels) = splits["train"], splits["test"]
    assert len(test_labels) == 359 and len(train_labels) == 1797 - 359 - 180
    pixels = np.concatenate([train_inputs["image"], test_inputs["image"]])
    assert pixels.min() == 0 and pixels.max() == 16
    assert set(np.unique(pixels)) <= set(range(17))
    assert test_labels.dtype == np.int64 and set(test_labels) == set(range(10))
    capsys.readouterr()
    out = tmp_path / "digits.int8.onnx"
    assert main(["quantize", str(convnet), "--data", str(run), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"{out}: static int8 quantization" in printed
    assert "size: " in printed and "test accuracy: " in printed
    assert out.is_file()


def test_quantize_command_refuses_and_removes_a_model_that_lost_accuracy(breakable, tmp_path,
                                                                           capsys):
    model = tmp_path / "linear.onnx"
    model.write_bytes(breakable.read_bytes())
    run = compiled_run(tmp_path)
    capsys.readouterr()
    assert main(["quantize", str(model), "--data", str(run)]) == 1
    captured = capsys.readouterr()
    assert "test accuracy: " in captured.out
    assert "points of accuracy" in captured.err and "--max-drop" in captured.err
    assert not (tmp_path / "linear.int8.onnx").exists()


def test_quantize_command_errors(tmp_path, capsys):
    assert main(["quantize", str(tmp_path / "missing.onnx"), "--data", str(tmp_path)]) == 1
    assert "missing.onnx not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["quantize", "model.onnx", "--data", str(tmp_path), "--max-drop", "-1"])
    assert exit_.value.code == 2
