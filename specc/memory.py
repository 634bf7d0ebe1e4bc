"""How much memory a model takes: its parameters, and a training run at the spec's batch size.

Decided here, once, from the IR's shapes (no framework): `specc check` prints it under a
model's totals, and both backends' train.py carry the training figure in their config block
and refuse, before allocating the model or the data, a run that it says cannot fit.

What a training run holds at its peak, and how each part is counted (bytes):

  parameters    every parameter, trainable or not, as float32: mixed precision (bf16, fp16)
                computes in half precision but keeps the weights in float32
  gradients     a float32 per trainable parameter
  <kind> state  the optimizer's float32 slots per trainable parameter (`optimizer_slots`):
                sgd none (one with momentum), adam and adamw two moments, rmsprop one (two
                with momentum), adagrad one
  step scratch  what an adaptive optimizer's update allocates for a moment, one parameter
                tensor at a time (torch.optim's adam: the root of the second moment and its
                quotient): `OPTIMIZER_SCRATCH` tensors as large as the layer with the most
                trainable parameters
  activations   what the forward pass of one batch of `batch_size` samples keeps for the
                backward pass: the batch's inputs and every layer's output, at the
                precision's element size (fp32 and `auto` 4 bytes, bf16 and fp16 2; int64
                ids 8). Layers that only re-label their input (`VIEW_LAYERS`) take none;
                dropout (and gaussian and alpha dropout) keeps a mask as large as its
                output besides (`MASK_LAYERS`). What a
                layer keeps inside, on no edge of the IR, is counted by `internal_bytes`
                with figures measured on torch's CPU kernels: a recurrent layer's gates and
                states per step, attention's projections (and its weights, with dropout;
                a decoder's two attentions are estimated from the encoder's, and attention's
                and additive_attention's scores, not measured),
                max pooling's int64 indices, the input of a fused activation whose
                backward pass reads it (gelu, silu, elu, leaky_relu, softplus, selu, mish,
                the hard ones; softsign, which PyTorch composes of several, as one).
  activation gradients  what the backward pass holds as it runs: the gradient of the
                largest float activation
  data          the dataset the program holds in memory, when its size is known before it
                runs (synthetic, the scikit-learn sets, the standard image and text sets):
                `DATA_COPIES` times, the splits plus each epoch's shuffled training split.
                Files read at run time (npz, csv, text_csv, image_folder) are not counted.

Measured against PyTorch on the CPU (tests/backends/torch/test_memory.py): parameters,
gradients and optimizer state are exact; the activations are within 20 % of what autograd
saves, for each kind that keeps tensors inside and for an MLP and a CNN (for the specs/
models, saved / estimated is 0.91 to 1.00, and 0.63 for the ResNet, which the estimate
overstates); a training step's peak in the allocator is 0.92 (an MLP) and 0.99 (a CNN) of
the estimate less the data. What the allocator keeps cached and the framework itself
(torch's import takes a few hundred MB) are not counted.

A `?` dimension takes the length the data gives it where the data fixes one (synthetic's
sequence length, imdb's and text_csv's `max_len`); where nothing does, the tensors with one
are left out. Either gap (data or activations unknown) makes the estimate a lower bound,
`complete` False, and the report says "at least".

`precision = auto` is counted as fp32, the larger of what it may resolve to at run time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from specc import ir
from specc.data_sources import Synthetic
from specc.errors import Diagnostic, mismatch
from specc.layers.base import Backend, Shape
from specc.passes.data_check import labelled_outputs

# Bytes per element: parameters, gradients and optimizer slots are float32 at any precision.
FLOAT32_BYTES = 4
INT64_BYTES = 8
ACTIVATION_BYTES = {"auto": 4, "fp32": 4, "bf16": 2, "fp16": 2}

# Layers whose output is their input re-labelled (a view): no new memory.
VIEW_LAYERS = frozenset({"identity", "flatten", "reshape"})
# Layers that keep, besides their output, a mask as large as it for the backward pass.
MASK_LAYERS = frozenset({"dropout", "gaussian_dropout", "alpha_dropout"})

# Activations whose backward reads their input: fused into a layer (`activation=`), they
# keep the layer's output before them as well.
INPUT_SAVING_ACTIVATIONS = frozenset({
    "gelu", "silu", "elu", "leaky_relu", "softplus", "softsign", "selu", "mish", "hard_sigmoid",
    "hard_swish",
})
# Values a recurrent layer keeps per time step and direction, as (per unit, and besides),
# fitted to torch's CPU kernels (the input projections, the gates and their activations, the
# cell states) for 16 to 128 units: within 5 % but at 32 units, which it overstates by 20 %.
RECURRENT_INTERNALS = {"lstm": (16, 128), "gru": (7, 0), "simple_rnn": (1, 0)}

# The dataset is held as the loader's splits, and each epoch shuffles the training split
# into a copy of its own (both train.py files do: `x[order]`, `tf.gather(x, order)`).
DATA_COPIES = 2

# Samples in the datasets whose size is fixed (test splits included).
KNOWN_DATASET_SIZES = {
    "digits": 1797, "iris": 150, "breast_cancer": 569, "diabetes": 442,
    "mnist": 70_000, "fashion_mnist": 70_000, "cifar10": 60_000, "imdb": 50_000,
}

# `specc check` warns about a model whose weights alone, for training (parameters, gradients,
# optimizer state and scratch: what no smaller batch reduces), exceed this: more than a
# 16 GiB GPU or a typical laptop holds, so that most machines will refuse any run of it. (A
# large batch is the run's choice: train.py refuses it where it does not fit.)
WARN_WEIGHTS_BYTES = 16 * 2**30

# Temporaries as large as a parameter tensor that each optimizer's update makes.
OPTIMIZER_SCRATCH = {"sgd": 0, "adam": 2, "adamw": 2, "rmsprop": 2, "adagrad": 2, "nadam": 2,
                     "adamax": 2}


def optimizer_slots(optimizer) -> int:
    """Float32 values the optimizer keeps per trainable parameter."""
    kind = optimizer.kind
    if kind in ("adam", "adamw", "nadam"):
        return 2  # first and second moments
    if kind == "adamax":
        return 2  # first moment and infinity norm
    if kind == "rmsprop":
        return 1 + (optimizer.momentum > 0)  # square average, and the momentum buffer
    if kind == "sgd":
        return int(optimizer.momentum > 0)  # the momentum buffer
    if kind == "adagrad":
        return 1  # the sum of squares
    raise ValueError(f"no optimizer-state rule for {kind!r}")


@dataclass(frozen=True)
class MemoryEstimate:
    """One model's memory, in bytes, on one backend (see the module docstring)."""

    backend: Backend
    batch_size: int
    precision: str
    optimizer: str  # its kind
    parameters: int
    gradients: int
    optimizer_state: int
    scratch: int  # the step's temporaries
    activations: int  # per batch
    activation_gradients: int
    data: int | None  # None: the size is known only when the program reads the data
    activations_known: bool  # False: some tensor has a `?` that no data length fixes

    @property
    def training(self) -> int:
        """What a training run needs: every part (the data's when known)."""
        return (self.parameters + self.gradients + self.optimizer_state + self.scratch
                + self.activations + self.activation_gradients + (self.data or 0))

    @property
    def weights(self) -> int:
        """The part no smaller batch reduces: parameters, gradients, optimizer state and
        the step's scratch."""
        return self.parameters + self.gradients + self.optimizer_state + self.scratch

    @property
    def complete(self) -> bool:
        """Whether every part is counted; otherwise `training` is a lower bound."""
        return self.activations_known and self.data is not None

    def parts(self) -> list[tuple[str, int]]:
        """The parts of `training` by name; the data's only when known, the step scratch
        only when the optimizer makes any."""
        parts = [("parameters", self.parameters), ("gradients", self.gradients),
                 (f"{self.optimizer} state", self.optimizer_state)]
        if self.scratch:
            parts.append(("step scratch", self.scratch))
        parts += [("activations", self.activations),
                  ("activation gradients", self.activation_gradients)]
        if self.data is not None:
            parts.append(("data", self.data))
        return parts

    def summary(self) -> str:
        """One line: the training figure and its parts, e.g. for an error message."""
        shown = ", ".join(f"{name} {format_bytes(size)}" for name, size in self.parts())
        bound = "" if self.complete else "at least "
        return f"{bound}{format_bytes(self.training)} ({shown})"


def estimate(model: ir.Model, backend: Backend | None = None) -> MemoryEstimate:
    """The memory of training `model` on `backend` (default: the spec's own)."""
    backend = backend or model.train.backend
    counts = model.graph.params[backend]
    length = sequence_length(model)
    element = ACTIVATION_BYTES[model.train.precision]
    batch = model.train.batch_size

    layers = layers_with_inputs(model.graph)
    largest_layer = max((node.params[backend].trainable for node, _ in layers), default=0)
    activations, largest_edge, known = 0, 0, True
    edges = [(v.shape, v.dtype) for v in model.graph.inputs]
    for node, inputs in layers:
        if node.layer.kind not in VIEW_LAYERS:
            edges += [(node.output.shape, node.output.dtype)] * (
                2 if node.layer.kind in MASK_LAYERS else 1)
        internal = internal_bytes(node.layer, inputs, node.output.shape, length, element)
        if internal is None:
            known = False
        else:
            activations += internal * batch
    for shape, dtype in edges:
        size = elements(shape, length)
        if size is None:
            known = False
        elif dtype == "int64":  # token ids: no gradient
            activations += size * batch * INT64_BYTES
        else:
            activations += size * batch * element
            largest_edge = max(largest_edge, size * batch * element)

    return MemoryEstimate(
        backend=backend,
        batch_size=batch,
        precision=model.train.precision,
        optimizer=model.optimizer.kind,
        parameters=counts.total * FLOAT32_BYTES,
        gradients=counts.trainable * FLOAT32_BYTES,
        optimizer_state=counts.trainable * optimizer_slots(model.optimizer) * FLOAT32_BYTES,
        scratch=largest_layer * OPTIMIZER_SCRATCH[model.optimizer.kind] * FLOAT32_BYTES,
        activations=activations,
        activation_gradients=largest_edge,
        data=data_bytes(model, length),
        activations_known=known,
    )


def layers_with_inputs(graph: ir.Graph) -> list[tuple[ir.LayerNode, list[Shape]]]:
    """Every layer node, blocks' included, with the shapes of the values it reads."""
    shapes = {value.id: value.shape for value in graph.inputs}
    found: list[tuple[ir.LayerNode, list[Shape]]] = []
    for node in graph.nodes:
        if isinstance(node, ir.BlockNode):
            found += layers_with_inputs(node.body)
        else:
            found.append((node, [shapes[value] for value in node.inputs]))
        shapes.update((value.id, value.shape) for value in node.results)
    return found


def internal_bytes(layer, inputs: list[Shape], output: Shape, length: int | None,
                   element: int) -> int | None:
    """Bytes per sample that a layer keeps for the backward pass besides its output (its
    input is the edge before it); None when a `?` that no data length fixes sizes them."""
    kind = layer.kind
    if kind in ("maxpool1d", "maxpool2d"):  # where each maximum came from
        size = elements(output, length)
        return None if size is None else size * INT64_BYTES
    if kind in RECURRENT_INTERNALS:
        time = inputs[0][0] if inputs[0][0] is not None else length
        if time is None:
            return None
        per_unit, besides = RECURRENT_INTERNALS[kind]
        directions = 2 if layer.bidirectional else 1
        return (per_unit * layer.units + besides) * time * directions * element
    if kind in ("multihead_attention", "transformer_encoder", "transformer_decoder"):
        time, features = inputs[0]
        other = inputs[-1][0]  # the keys' steps: the value's, the memory's (self: time)
        time = time if time is not None else length
        other = other if other is not None else length
        if time is None or other is None:
            return None
        heads = layer.heads
        scores = heads * time * other
        if kind == "multihead_attention":
            # queries and the heads' output per query step, keys and values per key step, a
            # softmax statistic per head and query step
            width = heads * layer.head_width(inputs[0])
            kept = 2 * time * width + 2 * other * width + heads * time
            dropped = 0
        elif kind == "transformer_encoder":
            # the attention's, the residuals and norms, the feed-forward layer's hidden values
            kept = 7 * time * features + time * layer.ff + heads * time + 4 * time
            dropped = 2 * time * features + 2 * time * layer.ff  # the dropouts' masks
        else:  # the encoder's, and a cross-attention with its residual and norm besides
            kept = 10 * time * features + 2 * other * features + time * layer.ff
            kept += 2 * heads * time + 6 * time
            dropped = 3 * time * features + 2 * time * layer.ff
            scores += heads * time * time
        if layer.dropout:  # the attention weights, kept with their mask and dropped copy
            kept += 3 * scores + dropped
        return kept * element
    if kind in ("attention", "additive_attention"):
        # the scores and their softmax; concat and additive scores keep the [Tq, Tv,
        # features] sums and their tanh too (estimated, not measured)
        (time, features), other = inputs[0], inputs[1][0]
        time = time if time is not None else length
        other = other if other is not None else length
        if time is None or other is None:
            return None
        summed = kind == "additive_attention" or layer.score_mode == "concat"
        return (2 + 2 * features * summed) * time * other * element
    if getattr(layer, "activation", None) in INPUT_SAVING_ACTIVATIONS:
        size = elements(output, length)
        return None if size is None else size * element
    return 0


def sequence_length(model: ir.Model) -> int | None:
    """The length a `?` dimension takes in the model's data, where the data fixes one."""
    source = model.data.source if model.data is not None else None
    if isinstance(source, Synthetic):
        return source.sequence_length
    return getattr(source, "max_len", None)  # imdb, text_csv


def elements(shape: Shape, length: int | None) -> int | None:
    """Elements per sample, a `?` counted as `length`; None when a `?` stays unknown."""
    if None in shape and length is None:
        return None
    return math.prod(length if dim is None else dim for dim in shape)  # type: ignore[misc]


def data_bytes(model: ir.Model, length: int | None) -> int | None:
    """The bytes of the dataset in memory (`DATA_COPIES` of it), None when its size is
    known only at run time."""
    source = model.data.source if model.data is not None else None
    if isinstance(source, Synthetic):
        samples = source.n
    elif source is not None and source.kind in KNOWN_DATASET_SIZES:  # type: ignore[attr-defined]
        samples = KNOWN_DATASET_SIZES[source.kind]  # type: ignore[attr-defined]
    else:
        return None
    per_sample = 0
    for value in model.graph.inputs:
        size = elements(value.shape, length)
        if size is None:
            return None
        per_sample += size * (INT64_BYTES if value.dtype == "int64" else FLOAT32_BYTES)
    for value, loss in labelled_outputs(model):
        if loss.kind == "cross_entropy":  # an int64 class id per sample (or per position)
            size, element = elements(value.shape[:-1], length), INT64_BYTES
        else:
            size, element = elements(value.shape, length), FLOAT32_BYTES
        if size is None:
            return None
        per_sample += size * element
    return DATA_COPIES * samples * per_sample


def oversize_warning(model: ir.Model) -> Diagnostic | None:
    """A warning at the model when the batch-independent part of its training estimate
    exceeds WARN_WEIGHTS_BYTES, with a note at the layer that holds the most parameters;
    None when it does not."""
    memory = estimate(model)
    if memory.weights <= WARN_WEIGHTS_BYTES:
        return None
    warning = Diagnostic(
        mismatch(f"training `{model.name}` needs more memory than most machines hold, "
                 "whatever the batch size; train.py refuses a run where it does not fit",
                 f"at most {format_bytes(WARN_WEIGHTS_BYTES)} for the parameters, gradients, "
                 f"{memory.optimizer} state and step scratch",
                 f"{format_bytes(memory.weights)}, of an estimated {memory.summary()}"),
        model.span, "warning")
    layers = [node for _, node in model.graph.walk()]
    largest = max(layers, key=lambda node: node.params[memory.backend].total, default=None)
    if largest is not None and largest.params[memory.backend].total:
        count = largest.params[memory.backend].total
        warning = warning.with_note(
            f"the largest layer: {count:,} parameters "
            f"({format_bytes(count * FLOAT32_BYTES)})", largest.span)
    return warning


# Size suffixes of --max-memory (`specc train` and train.py, whose memory_size reads the same
# table): KB, MB, GB, TB count in 1000s, KiB, MiB, GiB, TiB in 1024s; no suffix is bytes.
SIZE_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
              "gb": 10**9, "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20,
              "gib": 2**30, "tib": 2**40}


def parse_size(text: str) -> int:
    """The bytes of a size such as `2GB`, `1.5GiB`, `512M` or `750000000`; ValueError when
    it is not one (or not above zero)."""
    spelled = text.strip().lower()
    number = spelled.rstrip("bgikmt")
    unit = spelled[len(number):]
    try:
        size = float(number) * SIZE_UNITS[unit]
    except (KeyError, ValueError):
        raise ValueError(f"expected a size such as 2GB, 512MiB or 750000000 (bytes), "
                         f"got {text!r}") from None
    if not (math.isfinite(size) and size > 0):
        raise ValueError(f"expected a size above zero, got {text!r}")
    return int(size)


# The largest memory_needed a program's config block holds: a larger estimate is written as
# this, already more than any machine has.
PROGRAM_MEMORY_CAP = 2**64


def format_bytes(size: int) -> str:
    """A byte count in binary units: `512 B`, `1.5 KiB`, `26.1 GiB`; from 1024 PiB on, beyond
    any machine, its order of magnitude: `about 10^19 B`."""
    if size < 1024:
        return f"{size} B"
    if size >= 2**60:
        return f"about 10^{math.floor(math.log10(size))} B"
    value = size
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024
        if value < 1024 or unit == "PiB":
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
    raise AssertionError("unreachable")
