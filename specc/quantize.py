"""Post-training int8 quantization of an exported ONNX model, with onnxruntime's tools, and
the check that the smaller model still predicts as well as the original.

Two methods (onnxruntime.quantization):
- dynamic: weights stored as int8, activations quantized on the fly from their range in each
  batch. No calibration data; it covers the matrix products of dense and recurrent models.
- static: weights and activations int8, in QDQ form (QuantizeLinear/DequantizeLinear pairs
  around each quantized operator), activation ranges calibrated on batches of the training
  split. Convolutions need it: dynamic quantization leaves them in float.
Both start with `quant_pre_process` (shape inference and graph optimization), which the
quantizers expect. The quantized file keeps the original's `specc` metadata, marked
`quantized: "int8"`.

`compare` measures both files on the same samples (accuracy for a classifier's first output,
else its mean squared error) and refuses a quantized classifier whose accuracy dropped by more
than `max_drop` points (default 1). Nothing here imports a framework.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from onnxruntime.quantization import (
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_dynamic,
    quantize_static,
)

from specc.export_metadata import ExportMetadata, MetadataError, attach, loads
from specc.run_files import read_program_seed

QUANTIZED = "int8"
DEFAULT_MAX_DROP = 1.0  # points of accuracy a quantized classifier may lose
CALIBRATION_SAMPLES = 512  # training samples whose activations set the static ranges
CALIBRATION_BATCH = 64
EVALUATION_BATCH = 256
# Operators that only static quantization turns into int8.
CONVOLUTIONS = frozenset({"Conv", "ConvTranspose"})


class QuantizeError(Exception):
    """The model cannot be quantized or measured: no specc metadata, samples that do not fit
    its inputs, no calibration data for static quantization."""


class AccuracyDropError(QuantizeError):
    """The quantized model is too much worse than the original; `comparison` says by how
    much."""

    def __init__(self, comparison: Comparison, max_drop: float):
        self.comparison = comparison
        super().__init__(f"{comparison.quantized_path}: quantization costs "
                         f"{comparison.drop_points:.2f} points of accuracy (from "
                         f"{comparison.before:.2%} to {comparison.after:.2%}; expected at "
                         f"most {max_drop:g}, which --max-drop sets)")


def read_metadata(path: str | Path) -> ExportMetadata:
    """The `specc` metadata of an ONNX file (onnx only: no session is made)."""
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # onnx raises protobuf's DecodeError and others for bad files
        raise QuantizeError(f"{path} is not an ONNX file ({error})") from None
    try:
        return loads({prop.key: prop.value for prop in proto.metadata_props}, path)
    except MetadataError as error:
        raise QuantizeError(str(error)) from None


def choose_method(path: str | Path) -> str:
    """"static" for a model with convolutions (which only static quantization covers), else
    "dynamic"."""
    proto = onnx.load(str(path), load_external_data=False)
    operators = {node.op_type for node in proto.graph.node}
    for function in proto.functions:  # the dynamo exporter may keep modules as functions
        operators.update(node.op_type for node in function.node)
    return "static" if operators & CONVOLUTIONS else "dynamic"


class CalibrationBatches:
    """onnxruntime's CalibrationDataReader over samples held in memory: `get_next` gives one
    batch (input name -> array) at a time, then None."""

    def __init__(self, inputs: dict[str, np.ndarray], batch_size: int = CALIBRATION_BATCH):
        count = len(next(iter(inputs.values())))
        self.batches = iter([{name: array[start:start + batch_size]
                              for name, array in inputs.items()}
                             for start in range(0, count, batch_size)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.batches, None)


def quantize_onnx(model_path: str | Path, out_path: str | Path,
                  calibration: dict[str, np.ndarray] | None = None,
                  method: str = "dynamic") -> Path:
    """Write an int8 version of the ONNX model at `model_path` to `out_path`. `method` is
    "dynamic" or "static"; static takes `calibration`, raw samples of each input (the
    training split: the first CALIBRATION_SAMPLES are used)."""
    if method not in ("dynamic", "static"):
        raise ValueError(f"method must be dynamic or static, not {method!r}")
    metadata = read_metadata(model_path)
    if method == "static":
        if not calibration:
            raise QuantizeError("static quantization needs calibration samples (a batch of "
                                "the training split for each input)")
        calibration = {name: array[:CALIBRATION_SAMPLES]
                       for name, array in check_inputs(calibration, metadata).items()}
    out_path = Path(out_path)
    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(model_path), str(prepared))
        if method == "dynamic":
            quantize_dynamic(prepared, out_path, weight_type=QuantType.QInt8)
        else:
            # Unsigned activations and signed per-channel weights (U8S8), the pairing
            # onnxruntime's documentation recommends for CPUs.
            quantize_static(prepared, out_path,
                            CalibrationBatches(graph_feed(session_of(prepared), calibration)),
                            quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    write_metadata(out_path, metadata.model_copy(update={"quantized": QUANTIZED}))
    return out_path


def session_of(path: str | Path):
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def graph_feed(session, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`arrays` (by the metadata's input names, in its order) under the names of the inputs
    of the session's graph, which are in the same order (a converter may have renamed
    them)."""
    return dict(zip([tensor.name for tensor in session.get_inputs()], arrays.values(),
                    strict=True))


def write_metadata(path: Path, metadata: ExportMetadata) -> None:
    proto = onnx.load(str(path))
    attach(proto, metadata)
    onnx.save(proto, str(path))


def check_inputs(inputs: dict[str, np.ndarray], metadata: ExportMetadata
                 ) -> dict[str, np.ndarray]:
    """Samples of each of the model's inputs, in its dtype and per-sample shape: samples with
    as many values as a fixed-shape input are reshaped to it (rows of 64 values feed
    [8, 8, 1])."""
    arrays = {}
    for tensor in metadata.inputs:
        if tensor.name not in inputs:
            raise QuantizeError(f"no samples for input `{tensor.name}` (expected samples of "
                                f"every input: {', '.join(t.name for t in metadata.inputs)})")
        array = np.asarray(inputs[tensor.name])
        sample = array.shape[1:]
        if None not in tensor.shape and np.prod(sample) == np.prod(tensor.shape):
            array = array.reshape(len(array), *tensor.shape)
        elif not tensor.accepts(sample):
            raise QuantizeError(f"samples of shape {list(sample)} cannot feed input "
                                f"`{tensor.name}` of shape {tensor.shape} (None is any length)")
        arrays[tensor.name] = array.astype(tensor.dtype, copy=False)
    return arrays


def evaluate(model_path: str | Path, inputs: dict[str, np.ndarray], labels: np.ndarray
             ) -> tuple[str, float]:
    """The model's metric on (inputs, labels) through onnxruntime, for its first output:
    ("accuracy", fraction right) for a classifier (labels are class ids), else ("mse", mean
    squared error)."""
    metadata = read_metadata(model_path)
    arrays = check_inputs(inputs, metadata)
    session = session_of(model_path)
    feed = graph_feed(session, arrays)
    first, first_output = metadata.outputs[0], session.get_outputs()[0].name
    outputs = np.concatenate([
        session.run([first_output], {name: array[start:start + EVALUATION_BATCH]
                                     for name, array in feed.items()})[0]
        for start in range(0, len(labels), EVALUATION_BATCH)])
    labels = np.asarray(labels)
    if first.scores_classes():
        return "accuracy", float((outputs.argmax(axis=-1) == labels.reshape(
            outputs.shape[:-1])).mean())
    return "mse", float(((outputs - labels.reshape(outputs.shape)) ** 2).mean())


@dataclass(frozen=True)
class Comparison:
    """The original and the quantized model side by side: file sizes (bytes) and the metric
    of each on the same samples."""

    original_path: Path
    quantized_path: Path
    size_before: int
    size_after: int
    metric: str  # accuracy or mse
    before: float
    after: float

    @property
    def drop_points(self) -> float:
        """Points of accuracy lost (negative: gained); 0 for a regression model."""
        return (self.before - self.after) * 100 if self.metric == "accuracy" else 0.0

    def lines(self) -> list[str]:
        def size(value: int) -> str:
            return f"{value / 1024:.1f} KiB"

        def score(value: float) -> str:
            return f"{value:.2%}" if self.metric == "accuracy" else f"{value:.6g}"

        return [f"size: {size(self.size_before)} -> {size(self.size_after)} "
                f"({self.size_after / self.size_before:.0%} of the original)",
                f"test {self.metric}: {score(self.before)} -> {score(self.after)}"]


def compare(original: str | Path, quantized: str | Path, inputs: dict[str, np.ndarray],
            labels: np.ndarray, max_drop: float = DEFAULT_MAX_DROP) -> Comparison:
    """Both models measured on (inputs, labels) (the test split). Raises AccuracyDropError
    when the quantized classifier's accuracy is more than `max_drop` points below the
    original's; a regression model's mean squared error is reported, never refused."""
    metric, before = evaluate(original, inputs, labels)
    _, after = evaluate(quantized, inputs, labels)
    comparison = Comparison(Path(original), Path(quantized), Path(original).stat().st_size,
                            Path(quantized).stat().st_size, metric, before, after)
    if comparison.drop_points > max_drop:
        raise AccuracyDropError(comparison, max_drop)
    return comparison


# The samples of a run --------------------------------------------------------------------------
# `specc quantize MODEL.onnx --data RUN` calibrates on the run's training split and measures on
# its test split, raw, as the exported model takes them. The run's own data.py (RUN/code)
# makes the splits: its load_splits with prepare_inputs left out gives the samples exactly as
# training split them, before preprocessing, and the labels as the loss took them.



def run_splits(run_dir: str | Path) -> dict[str, tuple[dict[str, np.ndarray], np.ndarray]]:
    """The run's "train" and "test" splits as (raw inputs by name, labels of the first
    output)."""
    code = Path(run_dir) / "code"
    data_file = code / "data.py"
    if not data_file.is_file():
        raise QuantizeError(f"{run_dir} has no code/data.py (expected the directory of a run "
                            "of `specc train`)")
    seed = read_program_seed(code)
    if seed is None:
        raise QuantizeError(f"{code}: no program there sets `seed = N` (expected the settings "
                            "of a generated recipe.py)")
    spec = importlib.util.spec_from_file_location(f"_specc_run_data_{id(code)}", data_file)
    data = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(code))  # data.py may import its neighbours
    try:
        spec.loader.exec_module(data)
        data.prepare_inputs = lambda features, preprocessing: features
        try:
            splits, _ = data.load_splits(seed)
        except data.DataError as error:
            raise QuantizeError(f"{run_dir}: {error}") from None
    finally:
        sys.path.remove(str(code))
    names = list(data.MODEL_INPUTS)
    result = {}
    for split in ("train", "test"):
        if split not in splits:
            raise QuantizeError(f"{run_dir}: the data has no {split} split (expected "
                                "`test=` above 0 in the spec's data source)")
        features, labels = splits[split][:2]  # a weighted training split has weights third
        features = features if isinstance(features, tuple) else (features,)
        labels = labels[0] if isinstance(labels, tuple) else labels
        result[split] = (dict(zip(names, features, strict=True)), labels)
    return result
