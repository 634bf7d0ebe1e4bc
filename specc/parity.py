"""`specc parity SPEC`: the PyTorch and the TensorFlow program of a spec compute the same thing.

Both programs are generated into a temporary folder and both model.py files imported. The
PyTorch model's initial weights are copied into the Keras model (`weights.torch_to_keras`),
the same batches feed both (the spec's training data when it can be read, else synthetic data
shaped like the inputs), and these are compared, each a row of the table printed:

1. forward, in float32 and inference mode: the output of every layer with weights (a Keras
   sub-model's output of the layer named after the node, against a forward hook on the
   PyTorch module of the same path; PyTorch's channels-first tensors are transposed, and an
   `activation=` that the module leaves to `forward` is applied), then the model's outputs;
2. gradients of each program's loss with respect to every weight, in training mode, at each
   of K steps (PyTorch's in Keras's layout);
3. every weight after the K optimizer steps, batchnorm statistics included; then the forward
   pass again.

Each side trains with the code its own train.py runs: `compute_loss` (and the functions it
calls), the optimizer and the learning-rate schedule are cut from the generated train.py (its
config section and its "optimizer and learning-rate schedule" section, executed as they
stand; `section`, `functions_used`), and gradients are clipped as its loop clips them. So the
steps exercise torch.optim in the PyTorch program and the Torch* optimizer classes in the
TensorFlow one.

The training comparisons (2, 3) run both models in float64, built so from the same
model.py files: in float32, rounding decides on which side of a ReLU's kink a value near 0
falls, which flips single gradient elements, and Adam's division by sqrt(v) + epsilon turns
rounding in a tiny gradient into a weight change of up to lr. In float64 what remains is the
programs' meaning. The loss itself stays float32, as each compute_loss casts to it.

Dropout is off throughout: both programs are generated from the spec with every dropout rate
set to 0, since the two frameworks cannot draw the same masks (in inference mode dropout is
the identity anyway). Everything runs on the CPU. Two tensors agree when
|a - b| <= ATOL + RTOL * |b| everywhere, b being PyTorch's. In the float32 forward pass, |b|
there is the largest |b| of the tensor: each element of a float32 sum carries rounding of
the size of its largest terms, not of the sum, so an element that cancels to near zero in a
deep network (ResNet-20's last stage: values up to 88, differences up to 1.5e-4, a relative
1.6e-6 of the tensor) is no more exact than its neighbours. In float64 the check is per
element.

`specc parity` exits 0 when everything agrees, 1 otherwise, naming the first divergence: the
first layer whose output differs, or the first weight whose gradient or value does.
This module imports no framework until `run` is called.
"""

from __future__ import annotations

import ast
import importlib.util
import itertools
import math
import re
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np

import specc
from specc import ir
from specc.backends import _with_synthetic_data, generate, select_model
from specc.backends.common.data import render_data_code
from specc.backends.tensorflow.model_gen import BUILDER, output_layer_name
from specc.backends.tensorflow.weights import Site, torch_to_keras, weighted_layers
from specc.backends.torch.model_gen import LayerWriter, model_class_name

RTOL, ATOL = 1e-4, 1e-5
DEFAULT_STEPS = 3
MAX_BATCH = 16  # samples per batch: the spec's batch size, at most this
# Layers whose `activation=` PyTorch applies after the module (its hook sees the input of it).
FUSED_ACTIVATION = frozenset({"dense", "conv1d", "conv2d", "conv2d_transpose",
                              "depthwise_conv2d"})
OPTIMIZER_SECTION = "optimizer and learning-rate schedule"
CONFIG_SECTION = "config"


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """One pair of tensors compared: `name` says which."""

    name: str
    max_abs: float
    max_rel: float  # |diff| / |reference| at most, over the elements where |reference| > ATOL
    ok: bool


def compare(name: str, ours: np.ndarray, reference: np.ndarray,
            per_tensor: bool = False) -> Difference:
    """Keras's `ours` against PyTorch's `reference`, relative to each element of it, or with
    `per_tensor` to its largest (see the module docstring)."""
    ours, reference = np.asarray(ours, np.float64), np.asarray(reference, np.float64)
    if ours.shape != reference.shape:
        return Difference(f"{name} (shapes {ours.shape} vs {reference.shape})", math.inf,
                          math.inf, False)
    if not ours.size:
        return Difference(name, 0.0, 0.0, True)
    gap = np.abs(ours - reference)
    size = np.abs(reference)
    if per_tensor:
        size = np.full_like(size, size.max())
    sizable = size > ATOL
    relative = float(np.max(gap[sizable] / size[sizable])) if sizable.any() else 0.0
    ok = bool(np.all(gap <= ATOL + RTOL * size))  # nan fails
    return Difference(name, float(np.max(gap)), relative, ok)


@dataclass
class Check:
    """A row of the report: several differences of one kind, in model order."""

    title: str
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(d.ok for d in self.differences)

    @property
    def shown(self) -> Difference | None:
        """The first failure, else the largest difference."""
        failures = [d for d in self.differences if not d.ok]
        if failures:
            return failures[0]
        return max(self.differences, key=lambda d: d.max_abs, default=None)


@dataclass
class Report:
    model: str
    setup: str  # one line: data, batches, optimizer
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def first_divergence(self) -> Difference | None:
        """The first failing comparison, in the order they were made."""
        for check in self.checks:
            if not check.ok:
                return check.shown
        return None

    def table(self) -> str:
        rows = [("check", "first failure or largest |diff|", "max |diff|", "max rel", "")]
        for check in self.checks:
            shown = check.shown
            if shown is None:
                rows.append((check.title, "(nothing to compare)", "", "", "ok"))
                continue
            rows.append((check.title, shown.name, f"{shown.max_abs:.2e}",
                         f"{shown.max_rel:.2e}", "ok" if check.ok else "FAILED"))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = [f"parity of `{self.model}`: {self.setup}",
                 f"tolerance: |keras - torch| <= {ATOL:g} + {RTOL:g} * |torch|, in float32 "
                 "the largest |torch| of the tensor", ""]
        for row in rows:
            lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths,
                                                                              strict=False))
                         + "  " + row[4])
        divergence = self.first_divergence
        lines.append("")
        if divergence is None:
            lines.append("parity: the two programs agree")
        else:
            lines.append(f"parity FAILED: first divergence at {divergence.name} (max |diff| "
                         f"{divergence.max_abs:.3g})")
        return "\n".join(line.rstrip() for line in lines)


# --- the model without dropout ------------------------------------------------------------------

DROPOUT_FIELDS = {"dropout": "rate", "multihead_attention": "dropout",
                  "transformer_encoder": "dropout"}


def without_dropout(model: ir.Model) -> ir.Model:
    """`model` with every dropout rate set to 0 (see the module docstring)."""

    def graph(g: ir.Graph) -> ir.Graph:
        nodes = []
        for node in g.nodes:
            if isinstance(node, ir.BlockNode):
                node = node.model_copy(update={"body": graph(node.body)})
            elif node.layer.kind in DROPOUT_FIELDS:
                layer = node.layer.model_copy(update={DROPOUT_FIELDS[node.layer.kind]: 0.0})
                node = node.model_copy(update={"layer": layer})
            nodes.append(node)
        return g.model_copy(update={"nodes": tuple(nodes)})

    return model.model_copy(update={"graph": graph(model.graph)})


# --- code cut from the generated train.py --------------------------------------------------------

RULE = re.compile(r"^# -{20,}$", re.MULTILINE)


def section(source: str, title: str) -> str:
    """The section of a generated train.py whose title line (after a rule line) starts with
    `# <title>`, up to the next rule line."""
    parts = RULE.split(source)
    for part in parts:
        if part.lstrip("\n").startswith(f"# {title}"):
            return part
    raise LookupError(f"train.py has no section `{title}`")


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


def training_code(source: str, namespace: dict[str, object], **overrides: object) -> dict:
    """Execute a generated train.py's config section, its compute_loss (with what it calls)
    and its optimizer section in `namespace` (which provides the model and the modules);
    `overrides` replace config values after the config runs. Returns the namespace."""
    exec(compile(section(source, CONFIG_SECTION), "train.py:config", "exec"), namespace)
    namespace.update(overrides)
    exec(compile(functions_used(source, "compute_loss"), "train.py:loss", "exec"), namespace)
    exec(compile(section(source, OPTIMIZER_SECTION), "train.py:optimizer", "exec"), namespace)
    return namespace


# --- the two programs ----------------------------------------------------------------------------

_imported = itertools.count()


def import_file(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"specc_parity_{next(_imported)}", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@dataclass
class Programs:
    """Both generated programs: their model.py modules and train.py sources."""

    torch_model: ModuleType
    keras_model: ModuleType
    torch_train: str
    keras_train: str


def write_programs(model: ir.Model, folder: Path) -> Programs:
    sources = {}
    for backend in ("torch", "tensorflow"):
        program = folder / backend
        program.mkdir(parents=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no data section": the data is ours to choose
            sources[backend] = generate(model, backend, program)
        for name, text in sources[backend].items():
            (program / name).write_text(text, encoding="utf-8")
    return Programs(
        torch_model=import_file(folder / "torch" / "model.py"),
        keras_model=import_file(folder / "tensorflow" / "model.py"),
        torch_train=sources["torch"]["train.py"],
        keras_train=sources["tensorflow"]["train.py"],
    )


def copy_weights(model: ir.Model, net, keras_model) -> None:
    """PyTorch's weights (and batchnorm statistics) into the Keras model."""
    state = {key: value.detach().cpu().numpy() for key, value in net.state_dict().items()}
    for name, weights in torch_to_keras(model, state).items():
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
    inputs, targets = (part if isinstance(part, tuple) else (part,) for part in splits["train"])
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
    data = render_data_code(model, folder)
    namespace: dict[str, object] = {"__file__": str(folder / "train.py")}
    exec(compile("\n".join(data.imports) + "\n" + data.code, "loader", "exec"), namespace)
    try:
        splits, _ = namespace["load_splits"](model.train.seed)  # type: ignore[operator]
    except (namespace["DataError"], OSError) as error:  # type: ignore[misc]
        raise LookupError(str(error)) from None
    return splits


# --- the comparison -------------------------------------------------------------------------------


def torch_layout(site: Site) -> str:
    """How PyTorch's module of `site` holds its output: "first" (channels after the batch)
    or "last"; see specc.backends.torch.model_gen."""
    need = LayerWriter.RULES[site.node.layer.kind].need
    return "first" if need == "first" and len(site.node.output.shape) >= 2 else "last"


class Comparison:
    """Both models, in float32 or float64, with the same weights, and the code each train.py
    trains them with."""

    def __init__(self, model: ir.Model, programs: Programs, steps: int, dtype: str) -> None:
        import keras
        import tensorflow as tf
        import torch

        self.torch, self.tf, self.keras = torch, tf, keras
        self.model, self.programs, self.dtype = model, programs, dtype
        torch.manual_seed(model.train.seed)
        keras.utils.set_random_seed(model.train.seed)
        self.net = getattr(programs.torch_model, model_class_name(model))().to(
            getattr(torch, dtype))
        keras.mixed_precision.set_global_policy(dtype)
        try:
            self.keras_model = getattr(programs.keras_model, BUILDER)()
        finally:
            keras.mixed_precision.set_global_policy("float32")
        copy_weights(model, self.net, self.keras_model)
        self.sites = weighted_layers(model)
        self.torch_code = training_code(
            programs.torch_train,
            {"torch": torch, "F": torch.nn.functional, "math": math, "model": self.net,
             "on_cuda": False, "steps_per_epoch": steps},
        )
        self.keras_code = training_code(
            programs.keras_train,
            {"tf": tf, "keras": keras, "np": np, "math": math, "model": self.keras_model,
             "steps_per_epoch": steps},
            precision="fp32",
        )
        for code in (self.torch_code, self.keras_code):
            code["total_steps"] = code["epochs"] * steps

    def cast(self, arrays: tuple) -> tuple:
        """Float arrays in this comparison's float type; token ids as they are."""
        return tuple(x.astype(self.dtype) if x.dtype.kind == "f" else x for x in arrays)

    # --- forward ------------------------------------------------------------------------

    def forward_check(self, title: str, inputs: tuple) -> list[Check]:
        """Layer by layer, then the outputs, in inference mode."""
        torch = self.torch
        per_tensor = self.dtype == "float32"  # rounding: see the module docstring
        captured: dict[str, object] = {}
        handles = [
            self.net.get_submodule(site.torch).register_forward_hook(
                lambda module, args, output, path=site.torch: captured.__setitem__(path, output))
            for site in self.sites
        ]
        self.net.eval()
        try:
            with torch.no_grad():
                torch_outputs = self._torch_forward(inputs)
        finally:
            for handle in handles:
                handle.remove()
        names = [output_layer_name((*site.torch.split("."),), site.node) for site in self.sites]
        probe = self.keras.Model(self.keras_model.input,
                                 [self.keras_model.get_layer(n).output for n in names])
        keras_layers = probe(self._keras_inputs(inputs), training=False) if names else []
        if len(names) == 1:
            keras_layers = [keras_layers]  # a model of one output returns it bare
        layers = Check(f"{title}: layers")
        for site, keras_value in zip(self.sites, keras_layers, strict=True):
            value = self._torch_node_output(site, captured[site.torch])
            if value is None or tuple(value.shape) != tuple(keras_value.shape):
                continue  # the module's output is not the node's (a crop follows): skip it
            layers.differences.append(compare(site.torch, np.asarray(keras_value), value,
                                              per_tensor))
        outputs = Check(f"{title}: outputs")
        keras_outputs = self._keras_forward(inputs, training=False)
        labels = [self.model.graph.value(v).label for v in self.model.graph.outputs]
        for label, ours, theirs in zip(labels, keras_outputs, torch_outputs, strict=True):
            outputs.differences.append(compare(f"output {label}", np.asarray(ours),
                                               theirs.numpy(), per_tensor))
        return [layers, outputs]

    def _torch_node_output(self, site: Site, output) -> np.ndarray | None:
        """A hooked module's output as the node's output, channels-last, or None."""
        torch, layer = self.torch, site.node.layer
        if isinstance(output, tuple):  # a recurrent layer: (sequence, final state)
            if getattr(layer, "return_sequences", False):
                output = output[0]
            else:
                output = self.programs.torch_model.final_state(output)
        if torch_layout(site) == "first":
            output = output.permute(0, *range(2, output.dim()), 1)
        activation = getattr(layer, "activation", None)
        if layer.kind in FUSED_ACTIVATION and activation is not None:
            output = torch_activation(torch, activation)(output)
        return output.detach().numpy()

    def _torch_forward(self, inputs: tuple) -> tuple:
        outputs = self.net(*(self.torch.from_numpy(x) for x in self.cast(inputs)))
        return outputs if isinstance(outputs, tuple) else (outputs,)

    def _keras_inputs(self, inputs: tuple):
        inputs = self.cast(inputs)
        return list(inputs) if len(inputs) > 1 else inputs[0]

    def _keras_forward(self, inputs: tuple, training: bool) -> tuple:
        outputs = self.keras_model(self._keras_inputs(inputs), training=training)
        return tuple(outputs) if isinstance(outputs, (list, tuple)) else (outputs,)

    # --- training steps -----------------------------------------------------------------

    def training_checks(self, batches: Sequence[tuple]) -> list[Check]:
        """A step per batch on both sides, gradients compared at each; then the weights.

        Both optimizers apply PyTorch's gradients (once compared): the weights then differ
        only where the update rules do. Were each side to apply its own, Adam would turn
        rounding in a gradient near zero (in the float32 loss) into a weight change of up
        to lr, since it divides by sqrt(v) + epsilon."""
        checks = []
        for step, (inputs, targets) in enumerate(batches):
            ours = self._keras_gradients(inputs, targets)
            theirs = self._in_keras_layout(self._torch_step(step, inputs, targets))
            checks.append(Check(f"gradients, step {step + 1} (float64)",
                                self._compare(ours, theirs)))
            self._keras_update(step, theirs)
        state = {k: v.detach().numpy() for k, v in self.net.state_dict().items()}
        weights = {layer.name: [np.asarray(w) for w in layer.weights]
                   for layer in self.keras_model.layers if layer.weights}
        checks.append(Check(f"weights after {len(batches)} steps (float64)",
                            self._compare(weights, self._in_keras_layout(state))))
        return checks

    def _torch_step(self, step: int, inputs: tuple, targets: tuple) -> dict[str, np.ndarray]:
        """train.py's step: forward, loss, backward, rate, clipping, optimizer step. Returns
        the gradients (before clipping) as a state dict holds weights; zeros where none."""
        torch, code = self.torch, self.torch_code
        self.net.train()
        outputs = self._torch_forward(inputs)
        loss = code["compute_loss"](outputs, tuple(torch.from_numpy(y) for y in targets))
        loss.backward()
        gradients = {}
        for key, value in self.net.state_dict(keep_vars=True).items():
            grad = getattr(value, "grad", None)
            gradients[key] = np.zeros(value.shape) if grad is None else grad.numpy().copy()
        optimizer = code["optimizer"]
        for group in optimizer.param_groups:
            group["lr"] = code["learning_rate_at"](0, step)
        if code["grad_clip"] is not None:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), code["grad_clip"])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return gradients

    def _keras_gradients(self, inputs: tuple, targets: tuple) -> dict[str, list]:
        """The gradients of train.py's loss in training mode, by layer name in get_weights
        order (None for the weights that do not train). The forward pass moves the batchnorm
        statistics, as PyTorch's does."""
        tf = self.tf
        trainable = self.keras_model.trainable_variables
        with tf.GradientTape() as tape:
            outputs = self._keras_forward(inputs, training=True)
            loss = self.keras_code["compute_loss"](outputs, tuple(map(tf.constant, targets)))
        # An embedding's gradient comes as IndexedSlices (the rows looked up): made dense.
        gradients = {id(v): None if g is None else np.asarray(tf.convert_to_tensor(g))
                     for v, g in zip(trainable, tape.gradient(loss, trainable), strict=True)}
        return {layer.name: [gradients.get(id(w)) for w in layer.weights]
                for layer in self.keras_model.layers if layer.weights}

    def _keras_update(self, step: int, gradients: dict[str, list]) -> None:
        """train.py's optimizer step (rate, clipping, update) on gradients by layer name."""
        by_variable = {id(weight): value for name, values in gradients.items()
                       for weight, value in zip(self.keras_model.get_layer(name).weights,
                                                values, strict=True)}
        trainable = self.keras_model.trainable_variables
        optimizer = self.keras_code["optimizer"]
        optimizer.learning_rate = self.keras_code["learning_rate_at"](0, step)
        optimizer.apply([self.tf.constant(by_variable[id(v)]) for v in trainable], trainable)

    def _in_keras_layout(self, state: dict[str, np.ndarray]) -> dict[str, list]:
        """A PyTorch state dict (of weights, or of their gradients) as Keras weights by
        layer name. A recurrent layer's frozen second bias has a zero gradient, so the
        gradient of Keras's one bias (the sum of PyTorch's two) is that of the first."""
        return torch_to_keras(self.model, state)

    def _compare(self, ours: dict[str, list], theirs: dict[str, list]) -> list[Difference]:
        """Keras's values against PyTorch's, both by layer name; None in `ours` is skipped."""
        differences = []
        for name, references in theirs.items():
            weights = self.keras_model.get_layer(name).weights
            for weight, reference, value in zip(weights, references, ours[name], strict=True):
                if value is not None:
                    differences.append(compare(weight.path, value, reference))
        return differences


def torch_activation(torch, kind: str) -> Callable:
    """The spec's activation `kind` as a function of a channels-last tensor."""
    functional = torch.nn.functional
    return {
        "relu": functional.relu,
        "gelu": functional.gelu,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "softmax": lambda x: functional.softmax(x, dim=-1),
        "silu": functional.silu,
        "elu": functional.elu,
        "leaky_relu": lambda x: functional.leaky_relu(x, 0.01),
    }[kind]


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
        single = Comparison(chosen, programs, steps, "float32")
        report.checks += single.forward_check("forward (float32)", probe)
        double = Comparison(chosen, programs, steps, "float64")
        report.checks += double.training_checks(batches[:steps])
        report.checks += double.forward_check(f"forward after {steps} steps (float64)", probe)
    return report
