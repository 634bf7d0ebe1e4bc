"""A trained PyTorch program's model, for `specc export`'s child process (imports torch):
the model of RUN/code/model.py with a checkpoint's weights, its outputs, and its ONNX graph
with the preparation of raw samples in front (torch.onnx's dynamo exporter)."""

from __future__ import annotations

import inspect
import io
import logging
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

BATCH = 256  # samples per forward pass when computing reference outputs


class LoadError(Exception):
    """No class of model.py takes the checkpoint's weights."""


class UnsupportedError(Exception):
    """The model holds an operation ONNX cannot represent; the message names it."""


def load_model(code_dir: Path, checkpoint: bytes) -> nn.Module:
    """The network of `code_dir/model.py` with the weights of `checkpoint` (a train.py
    checkpoint's bytes), in eval mode on the CPU. The network is the class of model.py that
    builds without arguments and whose state dict has exactly the checkpoint's tensors."""
    sys.path.insert(0, str(code_dir))
    import model as model_module  # the run's own model.py

    weights = torch.load(io.BytesIO(checkpoint), map_location="cpu", weights_only=True)["model"]
    wanted = {name: tuple(tensor.shape) for name, tensor in weights.items()}
    for _, cls in inspect.getmembers(model_module, inspect.isclass):
        if not issubclass(cls, nn.Module) or cls.__module__ != model_module.__name__:
            continue
        try:
            network = cls()
        except TypeError:  # a block's class, which takes its parameters
            continue
        if {name: tuple(t.shape) for name, t in network.state_dict().items()} == wanted:
            network.load_state_dict(weights)
            return network.eval()
    raise LoadError("no class of model.py has the checkpoint's tensors")


def predict(network: nn.Module, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """The network's outputs (float32) for prepared inputs, BATCH samples at a time."""
    parts: list[list[np.ndarray]] = []
    with torch.inference_mode():
        for start in range(0, len(inputs[0]), BATCH):
            outputs = network(*(torch.as_tensor(x[start:start + BATCH]) for x in inputs))
            outputs = outputs if isinstance(outputs, tuple) else (outputs,)
            if not parts:
                parts = [[] for _ in outputs]
            for part, output in zip(parts, outputs, strict=True):
                part.append(output.float().numpy())
    return [np.concatenate(part) for part in parts]


class RawInputs(nn.Module):
    """The trained network behind the preparation of raw samples that data.py applies
    (specc.export.inputs.InputPlan): cast, standardize or scale, reshape."""

    def __init__(self, network: nn.Module, plans) -> None:
        super().__init__()
        self.network = network
        self.plans = plans
        for index, plan in enumerate(plans):
            if plan.mean is not None:
                self.register_buffer(f"mean_{index}", torch.from_numpy(plan.mean))
                self.register_buffer(f"std_{index}", torch.from_numpy(plan.std))

    def forward(self, *raw):
        inputs = []
        for index, (plan, x) in enumerate(zip(self.plans, raw, strict=True)):
            x = x.to(getattr(torch, plan.model_dtype))
            if plan.mean is not None:
                rows = x.reshape(x.shape[0], plan.mean.size)
                x = (rows - getattr(self, f"mean_{index}")) / getattr(self, f"std_{index}")
            elif plan.divide_by is not None:
                x = x / plan.divide_by
            if None not in plan.model_shape:
                x = x.reshape(x.shape[0], *plan.model_shape)
            inputs.append(x)
        return self.network(*inputs)


def onnx_model(network: nn.Module, plans, output_names: list[str], opset: int):
    """The ONNX ModelProto of `network` behind `plans`, for any batch size (and any length
    of a `?` axis), its inputs and outputs named as the spec names them."""
    wrapped = RawInputs(network, plans).eval()
    examples = tuple(torch.zeros((2, *(3 if size is None else size for size in plan.raw_shape)),
                                 dtype=getattr(torch, plan.raw_dtype)) for plan in plans)
    batch = torch.export.Dim("batch")
    # forward(*raw): one entry of `raw` per input, each free in its batch and `?` axes
    dynamic_shapes = {"raw": tuple(
        {0: batch, **{axis + 1: torch.export.Dim(f"{plan.name}_{axis + 1}")
                      for axis, size in enumerate(plan.raw_shape) if size is None}}
        for plan in plans)}
    # The exporter logs a warning per torchvision operator it cannot register when torchvision
    # is not installed: nothing a spec uses.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes on its own internals
            program = torch.onnx.export(
                wrapped, examples, dynamo=True, opset_version=opset, verbose=False,
                input_names=[plan.name for plan in plans], output_names=output_names,
                dynamic_shapes=dynamic_shapes, report=False)
    except Exception as error:  # the exporter raises its own classes for any op it lacks
        raise UnsupportedError(root_cause(error)) from None
    return program.model_proto


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")  # the exporter colours its messages


def root_cause(error: BaseException) -> str:
    """The first line of the innermost exception `error` was raised from: where the exporter
    names the operation it could not convert (its own message says only which step failed)."""
    while error.__cause__ is not None:
        error = error.__cause__
    lines = [line.strip() for line in ANSI_ESCAPE.sub("", str(error)).splitlines()]
    return f"{type(error).__name__}: {next((line for line in lines if line), '')}"


def write_native(network: nn.Module, fmt: str, path: Path, model_inputs) -> None:
    """`fmt` "torch": the network as torch.export saves it (model.pt2, as train.py writes
    it), for any batch size and length of a `?` axis; it takes prepared inputs
    (`model_inputs`: name -> (per-sample shape, dtype))."""
    batch = torch.export.Dim("batch")
    examples, dynamic_shapes = [], []
    for name, (shape, dtype) in model_inputs.items():
        examples.append(torch.zeros((2, *(3 if size is None else size for size in shape)),
                                    dtype=getattr(torch, dtype)))
        dynamic_shapes.append({0: batch, **{axis + 1: torch.export.Dim(f"{name}_{axis + 1}")
                                            for axis, size in enumerate(shape) if size is None}})
    try:
        exported = torch.export.export(network, tuple(examples), dynamic_shapes=dynamic_shapes)
    except Exception as error:  # torch.export raises its own classes for what it cannot trace
        raise UnsupportedError(root_cause(error)) from None
    torch.export.save(exported, path)
