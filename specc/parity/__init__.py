"""`specc parity SPEC`: the PyTorch and the TensorFlow program of a spec compute the same thing.

Both programs are generated into a temporary folder and both model.py files imported. What
each model.py holds for a node (its module or layer, the layout of its output, an activation
applied after it, its weights) is read from the generators' manifests, never from their
tables. The PyTorch model's initial weights are copied into the Keras model (`transfer`),
the same batches feed both (the spec's training data when it can be read, else synthetic data
shaped like the inputs), and these are compared, each a row of the table printed:

1. forward, in float32 and inference mode: the output of every layer with weights (a Keras
   sub-model's output of the node's layer, against a forward hook on its PyTorch module; an
   `activation=` that the module leaves to `forward` is applied as `forward` applies it, and
   channels-first tensors are transposed), then the model's outputs;
2. gradients of each program's loss with respect to every weight, in training mode, at each
   of K steps (PyTorch's in Keras's layout);
3. every weight after the K optimizer steps, batchnorm statistics included; then the forward
   pass again.

Each side trains with the code its own train.py runs: `compute_loss`, `make_optimizer` and
`learning_rate_at` come from the generated recipe.py, imported as a module, and gradients
are clipped as train.py's loop clips them. So the steps exercise torch.optim in the PyTorch
program and the Torch* optimizer classes in the TensorFlow one.

The training comparisons (2, 3) run both models in float64, built so from the same
model.py files: in float32, rounding decides on which side of a ReLU's kink a value near 0
falls, which flips single gradient elements, and Adam's division by sqrt(v) + epsilon turns
rounding in a tiny gradient into a weight change of up to lr. In float64 what remains is the
programs' meaning. The loss itself stays float32, as each compute_loss casts to it.

Dropout is off throughout: both programs are generated from the spec with every dropout rate
(and gaussian_noise's standard deviation) set to 0, since the two frameworks cannot draw the
same masks or noise (in inference mode all of them are the identity anyway). Everything runs
on the CPU. Two tensors agree when |a - b| <= ATOL + RTOL * |b| everywhere, b being PyTorch's.
In the float32 forward pass, |b| there is the largest |b| of the tensor: each element of a
float32 sum carries rounding of the size of its largest terms, not of the sum, so an element
that cancels to near zero in a deep network (ResNet-20's last stage: values up to 88,
differences up to 1.5e-4, a relative 1.6e-6 of the tensor) is no more exact than its
neighbours. In float64 the check is per element.

`specc parity` exits 0 when everything agrees, 1 otherwise, naming the first divergence: the
first layer whose output differs, or the first weight whose gradient or value does.
The package: `transfer` (weights from one program into the other), `compare` (both models
side by side), `report` (tolerances, results, the table). It
imports no framework until `run` is called.
"""

from __future__ import annotations

import importlib.util
import itertools
import tempfile
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np

import specc
from specc import ir
from specc.backends import _with_synthetic_data, program, select_model
from specc.backends.common.data import render_data_module
from specc.parity.compare import Comparison, Manifests, Programs
from specc.parity.report import ATOL, RTOL, Check, Difference, Report, compare
from specc.parity.transfer import Transfer

DEFAULT_STEPS = 3
MAX_BATCH = 16  # samples per batch: the spec's batch size, at most this

__all__ = [
    "ATOL",
    "DROPOUT_FIELDS",
    "RTOL",
    "Check",
    "Comparison",
    "Difference",
    "Programs",
    "Report",
    "compare",
    "copy_weights",
    "dropout_fields",
    "import_file",
    "load_splits",
    "program",
    "run",
    "training_batches",
    "without_dropout",
    "write_programs",
]


# --- the model without dropout ------------------------------------------------------------------

DROPOUT_FIELDS = {"dropout": "rate", "multihead_attention": "dropout",
                  "transformer_encoder": "dropout", "spatial_dropout1d": "rate",
                  "spatial_dropout2d": "rate", "gaussian_noise": "stddev",
                  "gaussian_dropout": "rate", "alpha_dropout": "rate",
                  "transformer_decoder": "dropout", "attention": "dropout",
                  "additive_attention": "dropout",
                  **dict.fromkeys(("simple_rnn", "lstm", "gru"),
                                  ("dropout", "recurrent_dropout"))}


def dropout_fields(kind: str) -> tuple[str, ...]:
    """The arguments of a layer kind that act only while training (DROPOUT_FIELDS)."""
    fields = DROPOUT_FIELDS.get(kind, ())
    return (fields,) if isinstance(fields, str) else fields


def without_dropout(model: ir.Model) -> ir.Model:
    """`model` with every dropout rate set to 0 (see the module docstring)."""

    def graph(g: ir.Graph) -> ir.Graph:
        nodes = []
        for node in g.nodes:
            if isinstance(node, ir.BlockNode):
                node = node.model_copy(update={"body": graph(node.body)})
            elif node.layer.kind in DROPOUT_FIELDS:
                off = dict.fromkeys(dropout_fields(node.layer.kind), 0.0)
                node = node.model_copy(update={"layer": node.layer.model_copy(update=off)})
            nodes.append(node)
        return g.model_copy(update={"nodes": tuple(nodes)})

    return model.model_copy(update={"graph": graph(model.graph)})


# --- the two programs ----------------------------------------------------------------------------

_imported = itertools.count()


def import_file(path: Path) -> ModuleType:
    """The module of the Python file at `path`, under a name of its own (both programs have a
    model.py and a recipe.py; neither is put in sys.modules under its file's name)."""
    spec = importlib.util.spec_from_file_location(f"specc_parity_{next(_imported)}", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def write_programs(model: ir.Model, folder: Path) -> Programs:
    """Both programs of `model` written into `folder`, their model.py and recipe.py files
    imported."""
    sources, manifests = {}, {}
    for backend in ("torch", "tensorflow"):
        program_dir = folder / backend
        program_dir.mkdir(parents=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no data section": the data is ours to choose
            sources[backend], manifests[backend] = program(model, backend, program_dir)
        for name, text in sources[backend].items():
            (program_dir / name).write_text(text, encoding="utf-8")
    torch_manifest, keras_manifest = manifests["torch"], manifests["tensorflow"]
    return Programs(
        torch_model=import_file(folder / "torch" / "model.py"),
        keras_model=import_file(folder / "tensorflow" / "model.py"),
        torch_recipe=import_file(folder / "torch" / "recipe.py"),
        keras_recipe=import_file(folder / "tensorflow" / "recipe.py"),
        transfer=Manifests(torch_manifest, keras_manifest,
                           Transfer(model, torch_manifest, keras_manifest)),
    )


def copy_weights(transfer: Transfer, net, keras_model) -> None:
    """PyTorch's weights (and batchnorm statistics) into the Keras model."""
    state = {key: value.detach().cpu().numpy() for key, value in net.state_dict().items()}
    for name, weights in transfer.to_keras(state).items():
        keras_model.get_layer(name).set_weights(weights)


# --- data -----------------------------------------------------------------------------------------


def training_batches(model: ir.Model, folder: Path, count: int) -> tuple[list, str]:
    """`count` batches (inputs, targets) of the training split, as numpy tuples, and a few
    words on where they come from. The spec's data when its loader can read it, else
    synthetic data (the loader of `synthetic()` for the same model)."""
    try:
        splits = load_splits(model, folder)
        source = f"its {model.data.source.kind} data"  # type: ignore[union-attr]
    except (LookupError, ImportError) as error:
        message = str(error).split(";")[0]  # what is missing, not how to get it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            synthetic = _with_synthetic_data(model.model_copy(update={"data": None}))
            splits = load_splits(synthetic, folder)
        source = f"synthetic data (the spec's data: {message})" if model.data else (
            "synthetic data")
    # (a weighted training split's third part, the samples' loss weights, is not compared)
    inputs, targets = (part if isinstance(part, tuple) else (part,)
                       for part in splits["train"][:2])
    size = min(model.train.batch_size, MAX_BATCH, len(targets[0]))
    batches = []
    for index in range(count):
        rows = np.arange(index * size, (index + 1) * size) % len(targets[0])
        batches.append((tuple(x[rows] for x in inputs), tuple(y[rows] for y in targets)))
    return batches, f"{count} batches of {size} samples of {source}"


def load_splits(model: ir.Model, folder: Path) -> dict:
    """The splits that the data loader of a program in `folder` makes, as its train.py
    loads them; LookupError when it cannot (its DataError: a missing file, data that does
    not fit)."""
    if model.data is None:
        raise LookupError("no data section")
    # The program's data.py, as generate() writes it for `folder`.
    namespace: dict[str, object] = {"__file__": str(folder / "data.py")}
    exec(compile(render_data_module(model, folder), "data.py", "exec"), namespace)
    try:
        splits, _ = namespace["load_splits"](model.train.seed)  # type: ignore[operator]
    except (namespace["DataError"], OSError) as error:  # type: ignore[misc]
        raise LookupError(str(error)) from None
    return splits


# --- the whole run --------------------------------------------------------------------------------


def run(spec_path: str | Path, steps: int = DEFAULT_STEPS, model: str | None = None) -> Report:
    """Compare the two programs of a model of the spec (the first unless `model` names one).
    Raises SpecError when the spec has errors."""
    chosen = without_dropout(select_model(specc.load(spec_path), model))
    with tempfile.TemporaryDirectory(prefix="specc-parity-") as folder:
        programs = write_programs(chosen, Path(folder))
        batches, data = training_batches(chosen, Path(folder) / "torch", steps + 1)
        plural = "s" if steps > 1 else ""
        report = Report(chosen.name, f"{data}; {steps} {chosen.optimizer.kind} step{plural}; "
                                     "on the CPU, dropout off")
        probe = batches[-1][0]  # inputs the steps do not train on
        single = Comparison(chosen, programs, steps, "float32", copy_weights)
        report.checks += single.forward_check("forward (float32)", probe)
        double = Comparison(chosen, programs, steps, "float64", copy_weights)
        report.checks += double.training_checks(batches[:steps])
        report.checks += double.forward_check(f"forward after {steps} steps (float64)", probe)
    return report
