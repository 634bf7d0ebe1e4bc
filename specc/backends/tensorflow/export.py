"""A trained TensorFlow program's model, for `specc export`'s child process (imports
TensorFlow): the model of RUN/code/model.py with a checkpoint's weights, its outputs, its
ONNX graph with the preparation of raw samples in front (tf2onnx), and the Keras files."""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up notes

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

BATCH = 256  # samples per forward pass when computing reference outputs


class LoadError(Exception):
    """The checkpoint's arrays do not fit the variables of model.py's model."""


class UnsupportedError(Exception):
    """The model holds an operation ONNX cannot represent; the message names it."""


def load_model(code_dir: Path, checkpoint: bytes):
    """`build_model()` of `code_dir/model.py` with the weights of `checkpoint` (a train.py
    checkpoint's bytes: one array per model variable, in `model.variables` order)."""
    sys.path.insert(0, str(code_dir))
    import model as model_module  # the run's own model.py

    network = model_module.build_model()
    with np.load(io.BytesIO(checkpoint)) as arrays:
        for index, variable in enumerate(network.variables):
            key = f"model_{index}"
            if key not in arrays.files or arrays[key].shape != tuple(variable.shape):
                raise LoadError(f"variable {index} ({variable.path}) has no array of its shape")
            variable.assign(arrays[key])
    return network


def predict(network, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """The network's outputs (float32) for prepared inputs, BATCH samples at a time."""
    parts: list[list[np.ndarray]] = []
    for start in range(0, len(inputs[0]), BATCH):
        batch = [x[start:start + BATCH] for x in inputs]
        outputs = network(batch if len(batch) > 1 else batch[0], training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else (outputs,)
        if not parts:
            parts = [[] for _ in outputs]
        for part, output in zip(parts, outputs, strict=True):
            part.append(np.asarray(output, dtype=np.float32))
    return [np.concatenate(part) for part in parts]


def prepared(plans, raw):
    """The model's inputs from raw graph inputs, as data.py prepares them
    (specc.export.inputs.InputPlan): cast, standardize or scale, reshape."""
    inputs = []
    for plan, x in zip(plans, raw, strict=True):
        x = tf.cast(x, plan.model_dtype)
        if plan.mean is not None:
            rows = tf.reshape(x, (-1, plan.mean.size))
            x = (rows - tf.constant(plan.mean)) / tf.constant(plan.std)
        elif plan.divide_by is not None:
            x = x / plan.divide_by
        if None not in plan.model_shape:
            x = tf.reshape(x, (-1, *plan.model_shape))
        inputs.append(x)
    return inputs


def onnx_model(network, plans, output_names: list[str], opset: int):
    """The ONNX ModelProto of `network` behind `plans`, for any batch size (and any length
    of a `?` axis), its inputs and outputs named as the spec names them."""
    import tf2onnx

    signature = [tf.TensorSpec((None, *plan.raw_shape), plan.raw_dtype, name=plan.name)
                 for plan in plans]

    @tf.function(input_signature=signature)
    def serve(*raw):
        inputs = prepared(plans, raw)
        outputs = network(inputs if len(inputs) > 1 else inputs[0], training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else (outputs,)
        return [tf.identity(output, name=name)
                for output, name in zip(outputs, output_names, strict=True)]

    try:
        proto, _ = tf2onnx.convert.from_function(serve, input_signature=signature,
                                                 opset=opset, output_path=None)
    except Exception as error:  # tf2onnx raises its own and TensorFlow's classes per op
        raise UnsupportedError(f"{type(error).__name__}: {first_line(error)}") from None
    return rename_io(proto, [plan.name for plan in plans], output_names)


def first_line(error: BaseException) -> str:
    return next((line.strip() for line in str(error).splitlines() if line.strip()), "")


def rename_io(proto, input_names: list[str], output_names: list[str]):
    """`proto` with its graph inputs and outputs renamed, in order, to the given names
    (tf2onnx names them after TensorFlow's tensors: `image:0`, `Identity:0`), and their
    batch axis `batch`."""
    renames = {}
    for value, name in zip(proto.graph.input, input_names, strict=True):
        renames[value.name] = name
    for value, name in zip(proto.graph.output, output_names, strict=True):
        renames[value.name] = name
    for value in (*proto.graph.input, *proto.graph.output):
        value.name = renames[value.name]
        value.type.tensor_type.shape.dim[0].dim_param = "batch"  # as torch.onnx names it
    for node in proto.graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    return proto


def write_native(network, fmt: str, path: Path, model_inputs) -> None:
    """`fmt` "keras": model.keras of Keras's own layers only (as train.py writes it), which
    loads in a Python that cannot import model.py; "savedmodel": a TensorFlow SavedModel
    (model.export). Both take prepared inputs."""
    if fmt == "savedmodel":
        network.export(str(path), verbose=False)
        return
    with tempfile.TemporaryDirectory() as folder:
        core_layers = program_module(Path(folder), "train_export_keras.j2", "core_layers")
        # Keras names the file's format by its suffix: save as .keras, then move it
        saved = Path(folder) / "model.keras"
        core_layers.core_layers_model(network).save(saved)
        shutil.move(saved, path)


def program_module(folder: Path, template: str, name: str):
    """A piece of the generated train.py (`template`, rendered standalone) as a module, so
    that the export runs the very code the program runs."""
    from specc.backends.tensorflow.train_gen import render_piece

    source = folder / f"{name}.py"
    source.write_text(render_piece(template), encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
