"""PyTorch `model.py`: a spec model's network as nn.Modules.

Conventions of the generated file (train.py, the parity tool and readers rely on them):

- One class per model, named `model_class_name(model)`: the PascalCase of the model's name
  (`mnist_cnn` → `MnistCnn`). Its `forward` takes one tensor per spec input, in declaration
  order, and returns the output (a tuple in `output` order when there are several). Tensors
  that enter or leave it are in the spec's canonical layout, batch first and channels-last
  ([B, H, W, C] images, [B, T, F] sequences), so inputs and weights port to Keras unchanged.
- One class per spec block, named after the block (`Residual`), written once for all its
  uses by `block_code.share`: the numbers that differ between uses (a block argument, an
  input's channel count, a padding) are its constructor's parameters, and each use calls it
  with its own (`ConvBn(in_channels=16, filters=32, stride=2)`). Uses whose code differs in
  more than numbers get a class each (`ConvBn2`), as their docstrings say. A block's
  `forward` takes its input in one layout at every use (`block_input_layout`; the caller
  permutes first) and returns its output in the layout its body ends in; its docstring
  says which.
- A repeated call (`call * N`) whose repeats are the same module is an nn.ModuleList
  (`self.residual_blocks`), applied in a loop; the manifest lists each repeat at its place
  in the list (`residual_blocks.0`).
- Other submodules are attributes named by IR node ids (`self.conv2d_1`), so state-dict keys
  read `conv2d_1.weight`, `residual_1.conv_bn_1.conv2d_1.weight`.
- Inside, convolution-family layers (and pooling, upsampling, batchnorm) run channels-first.
  The generator tracks the layout in which each value is held and permutes only where a layer
  needs the other one; axis arguments (softmax, concat) are canonical and remapped here.
- Every weight is initialized explicitly in its class's `_init_weights`, as Keras would
  (glorot_uniform kernels with Keras's fans, zero biases, orthogonal recurrent kernels, ...).
- `regularization()` exists only when some layer has `l1`/`l2` (`has_regularization`); it
  returns the penalty to add to the loss at every training step.

How each layer kind becomes code is decided in one table, `LayerWriter.RULES`: simple kinds as
data, the rest as methods; a kind missing from it is reported by `unsupported`. Each emitter
also records what it wrote for the manifest (`write_model`): the tensors its module holds, in
state-dict order, and the activation `forward` applies after it.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Literal

from jinja2 import Environment

from specc import ir
from specc.backends.common import template_environment
from specc.backends.common.block_code import Definition, Use, repeated_call, share
from specc.backends.common.code import (
    LINE_LIMIT,
    Code,
    Layout,
    axes,
    call,
    keeping_defaults,
    lit,
    names_used,
    shape_comment,
    unless,
)
from specc.backends.common.manifest import Entry, Manifest, Weight
from specc.backends.naming import (
    PYTHON_RESERVED,
    Namer,
    candidates,
    graph_steps,
    identifier,
    pascal_case,
    variable_names,
)
from specc.errors import SpecError
from specc.layers import masking
from specc.layers.args import per_axis
from specc.layers.attention import query_value_key
from specc.layers.base import Shape
from specc.layers.window import Window

# A value of rank ≥ 2 is held inside `forward` channels-last (the canonical layout) or
# channels-first (what torch's conv layers take): `Layout`. A value of rank < 2 has one
# layout only, recorded as "last".
# What a layer needs of its input: a layout, or "any" (it adapts to what it is given).
Need = Literal["first", "last", "any"]

# Module-level names of every generated model.py. Model and block classes avoid all of them
# (whether or not a given file defines the helper), so a class name never depends on which
# helpers a model happens to use. A helper (templates/model_helpers.j2) is emitted when the
# model's code names it, in this order.
IMPORTED = ("math", "torch", "nn", "F")
HELPERS = (
    "truncated_normal_",
    "variance_scaling_",
    "same_padding",
    "average_inside",
    "final_state",
    "with_states",
    "masked_mean",
    "recurrent_steps",
    "SteppedRNN",
    "SteppedLSTM",
    "SteppedGRU",
    "PositionalEmbedding",
    "MultiheadAttention",
    "TransformerEncoder",
    "TransformerDecoder",
    "Attention",
    "AdditiveAttention",
    "SeparableConv",
)
# Helpers that use other helpers.
HELPER_NEEDS = {
    **{f"Stepped{cls}": ("recurrent_steps",) for cls in ("RNN", "LSTM", "GRU")},
    "TransformerEncoder": ("MultiheadAttention",),
    "TransformerDecoder": ("MultiheadAttention",),
    "variance_scaling_": ("truncated_normal_",),
}
MODULE_NAMES = frozenset(IMPORTED + HELPERS)

# Keras's VarianceScaling initializers: name → (scale, fan mode, distribution).
VARIANCE_SCALING = {
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "normal"),
}
# torch.nn.init's equivalents of the uniform ones, valid when torch's fans equal Keras's.
TORCH_UNIFORM = {
    "glorot_uniform": "nn.init.xavier_uniform_({w})",
    "he_uniform": 'nn.init.kaiming_uniform_({w}, nonlinearity="relu")',
    "lecun_uniform": 'nn.init.kaiming_uniform_({w}, nonlinearity="linear")',
}
# Keras's truncated normal keeps draws within two standard deviations; its VarianceScaling
# divides the standard deviation by this factor first, so the truncated draws keep the
# intended one. (The cut itself is the helper truncated_normal_.)
TRUNCATION_CORRECTION = 0.87962566103423978

# Activations as functions of a tensor; `leaky_relu` and `softmax` take extra arguments.
ACTIVATIONS = {
    "relu": "F.relu",
    "gelu": "F.gelu",  # the exact erf form, as Keras's default approximate=False
    "sigmoid": "torch.sigmoid",
    "tanh": "torch.tanh",
    "softmax": "F.softmax",
    "silu": "F.silu",
    "elu": "F.elu",
    "leaky_relu": "F.leaky_relu",
    "softplus": "F.softplus",
    "softsign": "F.softsign",
    "selu": "F.selu",
    "mish": "F.mish",
    "hard_sigmoid": "F.hardsigmoid",  # relu6(x + 3) / 6, as Keras 3's hard_sigmoid
    "hard_swish": "F.hardswish",
    "exponential": "torch.exp",
}

TEMPLATES = Path(__file__).parent / "templates"
# A BatchNorm module's tensors besides num_batches_tracked, in state-dict order.
BATCHNORM_STATE = ("weight", "bias", "running_mean", "running_var")


# --- layouts --------------------------------------------------------------------------------


def to_layout(layout: Layout, rank: int) -> tuple[int, ...]:
    """The `permute` that turns a rank-`rank` value (batch excluded) into `layout`."""
    if layout == "first":
        return (0, rank, *range(1, rank))
    return (0, *range(2, rank + 1), 1)


def torch_axis(axis: int, rank: int, layout: Layout) -> int:
    """A canonical axis (batch = 0, channels last) as a dim of the tensor held in `layout`."""
    if layout == "last" or rank < 2:
        return axis
    position = axis if axis > 0 else rank + 1 + axis  # 1..rank, rank being the channels
    return 1 if position == rank else position + 1


def spatial_dims(rank: int, layout: Layout) -> tuple[int, ...]:
    """The dims of the spatial axes of a value of `rank` (channels excluded) as held."""
    first = 2 if layout == "first" else 1
    return tuple(range(first, first + rank - 1))


@dataclass(frozen=True)
class Line:
    """One statement of generated code and its trailing comment."""

    code: str  # empty for a comment-only line
    comment: str = ""


# --- initializers ---------------------------------------------------------------------------


def keras_fans(shape: Sequence[int]) -> tuple[int, int]:
    """Keras's compute_fans: a kernel is [..., fan_in axis, fan_out axis]."""
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def torch_fans(shape: Sequence[int]) -> tuple[int, int]:
    """torch.nn.init's fans: a weight is [fan_out axis, fan_in axis, ...]."""
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def init_statement(
    initializer: str, weight: str, torch_shape: Shape = (), keras_shape: Shape = ()
) -> Line:
    """The torch statement that draws `weight` as the Keras initializer `initializer` does.

    The fan-scaled initializers need the weight's shape in both frameworks: torch.nn.init
    reads fans off its own layout, which agrees with Keras's for dense, convolution and
    recurrent kernels but not for depthwise kernels or embeddings; there the bounds are
    computed here from Keras's fans.
    """
    if initializer == "zeros":
        return Line(f"nn.init.zeros_({weight})")
    if initializer == "ones":
        return Line(f"nn.init.ones_({weight})")
    if initializer == "uniform":
        return Line(f"nn.init.uniform_({weight}, -0.05, 0.05)")
    if initializer == "orthogonal":
        # Keras draws one (semi-)orthogonal matrix for the whole kernel (all gates of a
        # recurrent kernel together); torch's orthogonal_ does the same on its transpose.
        return Line(f"nn.init.orthogonal_({weight})")
    scale, mode, distribution = VARIANCE_SCALING[initializer]
    fan = _fan(mode, keras_fans(keras_shape))
    # torch.nn.init finds no fans in a vector (an attention's scale): bounds computed here.
    torch_fan = _fan(mode, torch_fans(torch_shape)) if len(torch_shape) >= 2 else None
    if distribution == "uniform":
        if fan == torch_fan:
            return Line(TORCH_UNIFORM[initializer].format(w=weight))
        limit = math.sqrt(3.0 * scale / fan)
        return Line(
            f"nn.init.uniform_({weight}, {-limit!r}, {limit!r})",
            f"{initializer} with Keras's fans of a {list(keras_shape)} kernel",
        )
    if fan == torch_fan:
        # The helper reads the fan off the weight, so a block's class needs no number per use.
        return Line(f"variance_scaling_({weight}, {scale!r}, {lit(mode)})", initializer)
    std = math.sqrt(scale / fan) / TRUNCATION_CORRECTION
    return Line(
        f"truncated_normal_({weight}, std={std!r})",
        f"{initializer} with Keras's fans of a {list(keras_shape)} kernel",
    )


def _fan(mode: str, fans: tuple[int, int]) -> float:
    fan_in, fan_out = fans
    return {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]


# --- what a layer contributes to its class --------------------------------------------------


@dataclass(frozen=True)
class Held:
    """A value as `forward` holds it: in which variable, in which layout, and the variable of
    its padding mask when the IR says it carries one ([batch, time], False at padding)."""

    var: str
    layout: Layout
    shape: Shape
    mask: str | None = None


@dataclass
class Emission:
    """One node's share of its class."""

    expr: str  # computes the node's output from its inputs' variables
    module: str | ClassSpec | None = None  # constructor of `self.<node id>`
    init: list[Line] = field(default_factory=list)  # statements of `_init_weights`
    penalties: list[tuple[str, float, float]] = field(default_factory=list)  # (weight, l1, l2)
    # The weights `self.<node id>` holds, in state-dict order: (attribute path, shape).
    weights: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    activation_outside: str | None = None  # applied to the module's output, in terms of `x`
    entries: list[Entry] = field(default_factory=list)  # a block's manifest entries


@dataclass(frozen=True)
class Repeated:
    """The modules of a repeated call (`call * N`): N of one module, in an nn.ModuleList."""

    module: str | ClassSpec
    count: int


@dataclass(frozen=True)
class ClassSpec:
    """Everything the class template needs. Hashable: identical blocks share one class."""

    block: str  # the block's name; "" for the model class
    args: tuple[tuple[str, object], ...]
    doc: str
    modules: tuple[tuple[str, str | ClassSpec | Repeated], ...]
    init: tuple[Line, ...]
    params: tuple[str, ...]
    forward: tuple[Line, ...]
    returns: str
    penalties: tuple[tuple[str, float, float], ...]  # (weight path from self, l1, l2)


@dataclass(frozen=True)
class Rule:
    """How one layer kind becomes code.

    `need`: the layout its input must be in. Either `emit` names a LayerWriter method for
    everything data cannot say, or the data says it: `module` constructs `self.<id>` and
    `expr` computes the output. In both templates `{x}` is the input variable, `{self}` the
    submodule and `{<argument>}` a layer argument as a literal.
    """

    need: Need
    expr: str = "{self}({x})"
    module: str | None = None
    emit: str | None = None


def unsupported(what: str, node: ir.Node) -> SpecError:
    """The one way this backend refuses something; never a silent default."""
    return SpecError.at(node.span, f"the torch backend does not support {what}")


class LayerWriter:
    """Turns layer nodes into Emissions."""

    RULES: dict[str, Rule] = {
        "dense": Rule("last", emit="dense"),
        "dropout": Rule("any", module="nn.Dropout({rate})"),
        # nn.Dropout1d/2d zero whole channels of channels-first input, as Keras's spatial ones.
        "spatial_dropout1d": Rule("first", module="nn.Dropout1d({rate})"),
        "spatial_dropout2d": Rule("first", module="nn.Dropout2d({rate})"),
        "gaussian_noise": Rule(
            "any", expr="{x} + {stddev} * torch.randn_like({x}) if self.training else {x}"
        ),
        "gaussian_dropout": Rule("any", emit="gaussian_dropout"),
        "alpha_dropout": Rule("any", module="nn.AlphaDropout({rate})"),
        "flatten": Rule("last", expr="{x}.flatten(1)"),
        "reshape": Rule("last", emit="reshape"),
        "permute": Rule("last", emit="permute"),
        "identity": Rule("any", expr="{x}"),
        **{kind: Rule("any", emit="activation") for kind in ACTIVATIONS},
        "conv1d": Rule("first", emit="conv"),
        "conv2d": Rule("first", emit="conv"),
        "conv3d": Rule("first", emit="conv"),
        "conv2d_transpose": Rule("first", emit="conv_transpose"),
        "depthwise_conv2d": Rule("first", emit="depthwise_conv"),
        "separable_conv1d": Rule("first", emit="separable_conv"),
        "separable_conv2d": Rule("first", emit="separable_conv"),
        "maxpool1d": Rule("first", emit="pool"),
        "maxpool2d": Rule("first", emit="pool"),
        "maxpool3d": Rule("first", emit="pool"),
        "avgpool1d": Rule("first", emit="pool"),
        "avgpool2d": Rule("first", emit="pool"),
        "avgpool3d": Rule("first", emit="pool"),
        "global_avgpool1d": Rule("any", emit="global_pool"),
        "global_avgpool2d": Rule("any", emit="global_pool"),
        "global_avgpool3d": Rule("any", emit="global_pool"),
        "global_maxpool1d": Rule("any", emit="global_pool"),
        "global_maxpool2d": Rule("any", emit="global_pool"),
        "global_maxpool3d": Rule("any", emit="global_pool"),
        "upsample1d": Rule("first", emit="upsample"),
        "upsample2d": Rule("first", emit="upsample"),
        "upsample3d": Rule("first", emit="upsample"),
        "zeropad1d": Rule("any", emit="zeropad"),
        "zeropad2d": Rule("any", emit="zeropad"),
        "cropping1d": Rule("any", emit="crop"),
        "cropping2d": Rule("any", emit="crop"),
        "batchnorm": Rule("first", emit="batchnorm"),
        "layernorm": Rule("last", emit="layernorm"),
        "embedding": Rule("last", emit="embedding"),
        "positional_embedding": Rule("last", emit="positional_embedding"),
        "simple_rnn": Rule("last", emit="recurrent"),
        "lstm": Rule("last", emit="recurrent"),
        "gru": Rule("last", emit="recurrent"),
        "multihead_attention": Rule("last", emit="attention"),
        "transformer_encoder": Rule("last", emit="transformer"),
        "transformer_decoder": Rule("last", emit="transformer"),
        "attention": Rule("last", emit="scores_attention"),
        "additive_attention": Rule("last", emit="scores_attention"),
        "prelu": Rule("first", emit="prelu"),
        "add": Rule("any", emit="merge"),
        "subtract": Rule("any", emit="merge"),
        "multiply": Rule("any", emit="merge"),
        "average": Rule("any", emit="merge"),
        "maximum": Rule("any", emit="extremum"),
        "minimum": Rule("any", emit="extremum"),
        "concat": Rule("any", emit="concat"),
        "dot": Rule("last", emit="dot"),
    }

    def rule(self, node: ir.LayerNode) -> Rule:
        kind = node.layer.kind
        if kind not in self.RULES:
            raise unsupported(f"the layer `{kind}`", node)
        return self.RULES[kind]

    def emit(self, node: ir.LayerNode, attr: str, ins: list[Held]) -> Emission:
        rule = self.rule(node)
        if rule.emit is not None:
            return getattr(self, f"_{rule.emit}")(node, attr, ins)
        fields = {name: lit(value) for name, value in node.layer if name != "kind"}
        fill = {**fields, "x": ins[0].var, "self": f"self.{attr}"}
        module = rule.module.format(**fill) if rule.module else None
        return Emission(rule.expr.format(**fill), module)

    # --- activations -------------------------------------------------------------------

    def activate(self, kind: str | None, x: str, layout: Layout, rank: int, **args) -> str:
        """`x` passed through the activation `kind` (None: unchanged)."""
        if kind is None:
            return x
        if kind == "softmax":
            return call("F.softmax", Code(x), dim=torch_axis(args.get("axis", -1), rank, layout))
        if kind == "leaky_relu":
            return call("F.leaky_relu", Code(x), args.get("slope", 0.01))
        return f"{ACTIVATIONS[kind]}({x})"

    def _activation(self, node: ir.LayerNode, attr: str, ins: list[Held]) -> Emission:
        (x,) = ins
        args = {name: value for name, value in node.layer if name != "kind"}
        return Emission(self.activate(node.layer.kind, x.var, x.layout, len(x.shape), **args))

    def _prelu(self, node: ir.LayerNode, attr: str, ins: list[Held]) -> Emission:
        # nn.PReLU's alphas run along dim 1: the channels of a channels-first tensor.
        layer, (x,), me = node.layer, ins, f"self.{attr}"
        alphas = layer.alphas(x.shape)
        module = call(
            "nn.PReLU", num_parameters=unless(alphas, 1), init=unless(layer.alpha, 0.25)
        )
        init = [Line(call("nn.init.constant_", Code(f"{me}.weight"), layer.alpha))]
        return Emission(f"{me}({x.var})", module, init, weights=[(f"{me}.weight", (alphas,))])

    def _then_activate(self, node: ir.LayerNode, emission: Emission, layout: Layout) -> Emission:
        """Apply a weighted layer's `activation=` to its output."""
        rank = len(node.output.shape)
        emission.expr = self.activate(node.layer.activation, emission.expr, layout, rank)
        if node.layer.activation is not None:
            emission.activation_outside = self.activate(node.layer.activation, "x", layout, rank)
        return emission

    # --- weights -----------------------------------------------------------------------

    def _kernel_and_bias(
        self, layer, module: str, torch_shape, keras_shape, outputs: int, weights: list
    ) -> list[Line]:
        """Initialization of `module.weight` (shapes in both frameworks) and its bias (of
        `outputs` elements); both are appended to `weights`."""
        lines = [init_statement(layer.init, f"{module}.weight", torch_shape, keras_shape)]
        weights.append((f"{module}.weight", tuple(torch_shape)))
        if getattr(layer, "bias", True):
            lines.append(init_statement(layer.bias_init, f"{module}.bias"))
            weights.append((f"{module}.bias", (outputs,)))
        return lines

    def _penalties(self, layer, self_attr: str) -> list[tuple[str, float, float]]:
        if layer.l1 or layer.l2:
            return [(f"{self_attr}.weight", layer.l1, layer.l2)]
        return []

    # --- core --------------------------------------------------------------------------

    def _dense(self, node: ir.LayerNode, attr: str, ins: list[Held]) -> Emission:
        layer, (x,) = node.layer, ins
        features = x.shape[-1]
        module = call("nn.Linear", features, layer.units, bias=unless(layer.bias, True))
        me, weights = f"self.{attr}", []
        init = self._kernel_and_bias(
            layer, me, (layer.units, features), (features, layer.units), layer.units, weights
        )
        emission = Emission(
            f"{me}({x.var})", module, init, penalties=self._penalties(layer, me), weights=weights
        )
        return self._then_activate(node, emission, "last")

    def _gaussian_dropout(self, node: ir.LayerNode, attr: str, ins: list[Held]) -> Emission:
        # Keras's GaussianDropout: noise N(1, rate / (1 - rate)), while training only.
        x, rate = ins[0].var, node.layer.rate
        stddev = lit(math.sqrt(rate / (1 - rate)))
        return Emission(f"{x} * (1 + {stddev} * torch.randn_like({x})) if self.training else {x}")

    def _reshape(self, node: ir.LayerNode, attr: str, ins: list[Held]) -> Emission:
        x = ins[0].var
        return Emission(call(f"{x}.reshape", Code(f"{x}.shape[0]"), *node.layer.shape))

    def _permute(self, node: ir.LayerNode, attr: str, ins: list[Held]) -> Emission:
        # Spec axes count from 1 after the batch, so they are the tensor's dims already.
        return Emission(call(f"{ins[0].var}.permute", 0, *node.layer.axes))

    # --- convolution -------------------------------------------------------------------

    def __init__(self) -> None:
        # The window layers of blocks whose `same` padding is written as F.pad even where it
        # is symmetric: (block, node id), for nodes whose block's uses would otherwise write
        # it in two ways (see `explicit_padding`); `block` is the block being written.
        self.explicit_padding: set[tuple[str, str]] = set()
        self.block = ""

    def _padding(
        self, window: Window, x: Held, node: ir.LayerNode | None = None
    ) -> tuple[tuple[int, ...], str | None]:
        """How a windowed layer realizes its padding: (the module's own symmetric padding,
        per axis; the F.pad amounts for `x` when it must pad more on one side, or None).

        `same` is TensorFlow's: total = max((ceil(n/s)-1)*s + (k-1)*d + 1 - n, 0), the odd
        pixel after. Sizes are known at generation time when the input's are (or the stride
        is 1, where n cancels out); otherwise `same_padding` computes them at run time. A
        node in `explicit_padding` pads with F.pad whatever the amounts.
        """
        rank = window.rank
        if window.padding == "valid":
            return (0,) * rank, None
        if window.padding == "causal":  # conv1d: zeros before the sequence only
            return (0,), lit((window.causal_padding(), 0))
        if window.padding != "same":
            return tuple(window.padding), None
        spatial = x.shape[:rank]
        if any(n is None and s > 1 for n, s in zip(spatial, window.stride, strict=True)):
            runtime = call(
                "same_padding", Code(x.var), window.kernel, window.stride, window.dilation
            )
            return (0,) * rank, runtime
        # At stride 1 the padding does not depend on n, so any size stands in for `?`.
        sizes = tuple(1 if n is None else n for n in spatial)
        pads = window.same_padding(sizes)  # type: ignore[arg-type]
        explicit = node is not None and (self.block, node.id) in self.explicit_padding
        if all(before == after for before, after in pads) and not explicit:
            return tuple(before for before, _ in pads), None
        # F.pad lists the last dim first.
        flat = tuple(p for before_after in reversed(pads) for p in before_after)
        return (0,) * rank, lit(flat)

    def _conv(self, node: ir.LayerNode, attr: str, ins: list[Held]) -> Emission:
        layer, (x,) = node.layer, ins
        window, channels = layer.window, x.shape[-1]
        padding, pad = self._padding(window, x, node)
        module = call(
            f"nn.Conv{window.rank}d",
            channels,
            layer.filters,
            kernel_size=axes(window.kernel),
            stride=unless(axes(window.stride), 1),
            padding=unless(axes(padding), 0),
            dilation=unless(axes(window.dilation), 1),
            groups=unless(layer.groups, 1),
            bias=unless(layer.bias, True),
        )
        me = f"self.{attr}"
        per_group = channels // layer.groups
        torch_shape = (layer.filters, per_group, *window.kernel)
        keras_shape = (*window.kernel, per_group, layer.filters)
        weights: list = []
        emission = Emission(
            f"{me}({_padded(pad, x.var)})",
            module,
            self._kernel_and_bias(layer, me, torch_shape, keras_shape, layer.filters, weights),
            penalties=self._penalties(layer, me),
            weights=weights,
        )
        return self._then_activate(node, emission, "first")

    def _depthwise_conv(self, node: ir.LayerNode, attr: str, ins: list[Held]) -> Emission:
        # A grouped convolution with one group per input channel; its output channel
        # c * multiplier + j is Keras's (channel c, multiplier j), so the order agrees.
        layer, (x,) = node.layer, ins
        window, channels = layer.window, x.shape[-1]
        padding, pad = self._padding(window, x, node)
        outputs = channels * layer.multiplier
        module = call(
            "nn.Conv2d",
            channels,
            outputs,
            kernel_size=axes(window.kernel),
            stride=unless(axes(window.stride), 1),
            padding=unless(axes(padding), 0),
            dilation=unless(axes(window.dilation), 1),
            groups=channels,
            bias=unless(layer.bias, True),
        )
        me = f"self.{attr}"
        torch_shape = (outputs, 1, *window.kernel)
        keras_shape = (*window.kernel, channels, layer.multiplier)
        weights: list = []
        init = self._kernel_and_bias(layer, me, torch_shape, keras_shape, outputs, weights)
        emission = Emission(f"{me}({_padded(pad, x.var)})", module, init, weights=weights)
        return self._then_activate(node, emission, "first")

    def _separable_conv(self, node: ir.LayerNode, attr: str, ins: list[Held]) -> Emission:
        """Keras's separable convolution: the helper SeparableConv's depthwise step (one
        grouped convolution, no bias), then its pointwise 1x1 step with the only bias."""
        layer, (x,) = node.layer, ins
        window, channels = layer.window, x.shape[-1]
        padding, pad = self._padding(window, x)
        middle = channels * layer.multiplier
        module = call(
            "SeparableConv",
            window.rank,
            channels,
            layer.filters,
            axes(window.kernel),
            multiplier=unless(layer.multiplier, 1),
            bias=unless(layer.bias, True),
            stride=unless(axes(window.stride), 1),
            padding=unless(axes(padding), 0),
            dilation=unless(axes(window.dilation), 1),
        )
        me, ones = f"self.{attr}", (1,) * window.rank
        depthwise = (f"{me}.depthwise.weight", (middle, 1, *window.kernel))
        pointwise = (f"{me}.pointwise.weight", (layer.filters, middle, *ones))
        init = [
            init_statement(layer.init, depthwise[0], depthwise[1],
                           (*window.kernel, channels, layer.multiplier)),
            init_statement(layer.init, pointwise[0], pointwise[1],
                           (*ones, middle, layer.filters)),
        ]
        weights = [depthwise, pointwise]
        if layer.bias:
            init.append(init_statement(layer.bias_init, f"{me}.pointwise.bias"))
            weights.append((f"{me}.pointwise.bias", (layer.filters,)))
        emission = Emission(f"{me}({_padded(pad, x.var)})", module, init, weights=weights)
        return self._then_activate(node, emission, "first")

    def _conv_transpose(self, node: ir.LayerNode, attr: str, ins: list[Held]) -> Emission:
        """Keras's output sizes: `valid` gives (n-1)*s + max(k, s), `same` n*s, an int p
        crops p from both sides of (n-1)*s + k (torch's own meaning)."""
        layer, (x,) = node.layer, ins
        window, channels = layer.window, x.shape[-1]
        kernel, stride = window.kernel, window.stride
        padding, extra, crop = (0,) * 2, [0, 0], [False, False]
        if isinstance(window.padding, tuple):
            padding = window.padding
        else:
            for axis, (k, s) in enumerate(zip(kernel, stride, strict=True)):
                extra[axis] = max(s - k, 0)  # output_padding: (n-1)*s + k falls short of it
                if window.padding == "same":
                    # TensorFlow crops the k - s surplus, the odd one at the end; torch crops
                    # symmetrically, so crop the smaller share and slice off the last one.
                    total = max(k - s, 0)
                    crop[axis] = total % 2 == 1
                    padding = (*padding[:axis], total // 2, *padding[axis + 1 :])
        module = call(
            "nn.ConvTranspose2d",
            channels,
            layer.filters,
            kernel_size=axes(kernel),
            stride=unless(axes(stride), 1),
            padding=unless(axes(padding), 0),
            output_padding=unless(axes(extra), 0),
            bias=unless(layer.bias, True),
        )
        me = f"self.{attr}"
        expr = f"{me}({x.var})"
        if any(crop):
            expr += "[:, :, " + ", ".join(":-1" if c else ":" for c in crop) + "]"
        torch_shape = (channels, layer.filters, *kernel)
        keras_shape = (*kernel, layer.filters, channels)
        weights: list = []
        init = self._kernel_and_bias(layer, me, torch_shape, keras_shape, layer.filters, weights)
        emission = Emission(expr, module, init, weights=weights)
        return self._then_activate(node, emission, "first")

    # --- pooling and resampling --------------------------------------------------------

    def _pool(self, node: ir.LayerNode, attr: str, ins: list[Held]) -> Emission:
        layer, (x,) = node.layer, ins
        window = layer.window
        padding, pad = self._padding(window, x, node)
        is_max = layer.op == "max"
        module = call(
            f"nn.{'Max' if is_max else 'Avg'}Pool{window.rank}d",
            axes(window.kernel),
            stride=unless(axes(window.stride), axes(window.kernel)),
            padding=unless(axes(padding), 0),
            # TensorFlow's average counts only the input's own elements under the window.
            count_include_pad=None if is_max or not any(padding) else False,
        )
        me = f"self.{attr}"
        if pad is None:
            return Emission(f"{me}({x.var})", module)
        if is_max:  # TensorFlow's max ignores the padding: pad with -inf
            return Emission(f"{me}(F.pad({x.var}, {pad}, value=-math.inf))", module)
        return Emission(f"average_inside({me}, {x.var}, {pad})", module)

    def _global_pool(self, node: ir.LayerNode, attr: str, ins: list[Held]) -> Emission:
        (x,) = ins
        dims = spatial_dims(len(x.shape), x.layout)
        reduce = "amax" if node.layer.op == "max" else "mean"
        if x.mask is not None and node.layer.kind in masking.READS:
            # global_avgpool1d: the mean of the real steps only
            return Emission(call("masked_mean", Code(x.var), Code(x.mask), dim=unless(dims[0], 1)))
        return Emission(call(f"{x.var}.{reduce}", dim=axes(dims) if len(dims) > 1 else dims[0]))

    def _upsample(self, node: ir.LayerNode, attr: str, ins: list[Held]) -> Emission:
        layer, (x,) = node.layer, ins
        scale = axes(per_axis(layer.scale, layer.rank))
        return Emission(call("F.interpolate", Code(x.var), scale_factor=scale, mode="nearest"))

    def _zeropad(self, node: ir.LayerNode, attr: str, ins: list[Held]) -> Emission:
        (x,) = ins
        # F.pad lists the last dim first; channels-last, the channels come first, unpadded.
        pads = tuple(p for before_after in reversed(node.layer.pads) for p in before_after)
        if x.layout == "last":
            pads = (0, 0, *pads)
        return Emission(call("F.pad", Code(x.var), pads))

    def _crop(self, node: ir.LayerNode, attr: str, ins: list[Held]) -> Emission:
        """A slice of the spatial dims, in whichever layout the input is held: `x[:, 1:-2]`."""
        (x,) = ins
        index = [":"] * (1 + len(x.shape))
        for dim, (before, after) in zip(spatial_dims(len(x.shape), x.layout), node.layer.crops,
                                        strict=True):
            index[dim] = f"{before or ''}:{-after if after else ''}"
        while index[-1] == ":":  # trailing full slices say nothing
            index.pop()
        return Emission(f"{x.var}[{', '.join(index)}]")

    # --- normalization -----------------------------------------------------------------

    def _batchnorm(self, node: ir.LayerNode, attr: str, ins: list[Held]) -> Emission:
        layer, (x,) = node.layer, ins
        rank = len(x.shape)
        if rank > 4:
            raise unsupported(f"batchnorm over a rank-{rank} input (at most 4 dimensions)", node)
        dims = max(rank - 1, 1)  # [C] and [T, C] are BatchNorm1d, [H, W, C] BatchNorm2d
        module = call(
            f"nn.BatchNorm{dims}d",
            x.shape[-1],
            eps=unless(layer.epsilon, 1e-5),
            momentum=unless(layer.momentum, 0.1),  # weight of the new batch statistic
        )
        me, channels = f"self.{attr}", (x.shape[-1],)
        weights = [(f"{me}.{name}", channels) for name in BATCHNORM_STATE]
        weights.append((f"{me}.num_batches_tracked", ()))
        return Emission(f"{me}({x.var})", module, weights=weights)

    def _layernorm(self, node: ir.LayerNode, attr: str, ins: list[Held]) -> Emission:
        (x,) = ins
        module = call("nn.LayerNorm", x.shape[-1], eps=unless(node.layer.epsilon, 1e-5))
        me = f"self.{attr}"
        weights = [(f"{me}.weight", (x.shape[-1],)), (f"{me}.bias", (x.shape[-1],))]
        return Emission(f"{me}({x.var})", module, weights=weights)

    # --- sequences ---------------------------------------------------------------------

    def _embedding(self, node: ir.LayerNode, attr: str, ins: list[Held]) -> Emission:
        layer, me = node.layer, f"self.{attr}"
        shape = (layer.vocab, layer.dim)
        init = [init_statement(layer.init, f"{me}.weight", shape, shape)]
        weights = [(f"{me}.weight", shape)]
        return Emission(f"{me}({ins[0].var})", call("nn.Embedding", *shape), init, weights=weights)

    def _positional_embedding(self, node: ir.LayerNode, attr: str, ins: list[Held]) -> Emission:
        layer, (x,), me = node.layer, ins, f"self.{attr}"
        shape = (layer.max_len, x.shape[-1])
        init = [init_statement(layer.init, f"{me}.weight", shape, shape)]
        module = call("PositionalEmbedding", *shape)
        return Emission(f"{me}({x.var})", module, init, weights=[(f"{me}.weight", shape)])

    def _recurrent(self, node: ir.LayerNode, attr: str, ins: list[Held]) -> Emission:
        layer, (x, *initial), me = node.layer, ins, f"self.{attr}"
        features, units, gates = x.shape[-1], layer.units, layer.gates
        cls = {"simple_rnn": "nn.RNN", "lstm": "nn.LSTM", "gru": "nn.GRU"}[layer.kind]
        # Masks and these options need Keras's step loop (the module's forward then), over
        # the weights of the framework's own layer.
        stepped = x.mask is not None or layer.has_options
        if stepped:
            cls = cls.replace("nn.", "Stepped")
        module = call(
            cls, features, units, batch_first=True, bidirectional=unless(layer.bidirectional, False)
        )
        # Keras's GRU (reset_after) has a recurrent bias too; its RNN and LSTM have one bias,
        # which torch's second one must not change: it stays zero and does not train (if it
        # trained, Adam would move the sum of the two twice as far as Keras moves its one).
        one_bias = layer.keras_biases == 1
        recurrent_bias = "zeros" if one_bias else layer.bias_init
        width = gates * units  # the gates stacked
        init, weights = [], []
        for suffix in ("", "_reverse")[: layer.directions]:
            weights += [
                (f"{me}.weight_ih_l0{suffix}", (width, features)),
                (f"{me}.weight_hh_l0{suffix}", (width, units)),
                (f"{me}.bias_ih_l0{suffix}", (width,)),
                (f"{me}.bias_hh_l0{suffix}", (width,)),
            ]
            init += [
                init_statement(
                    layer.init, f"{me}.weight_ih_l0{suffix}", (width, features), (features, width)
                ),
                init_statement(
                    layer.recurrent_init,
                    f"{me}.weight_hh_l0{suffix}",
                    (width, units),
                    (units, width),
                ),
                init_statement(layer.bias_init, f"{me}.bias_ih_l0{suffix}"),
                init_statement(recurrent_bias, f"{me}.bias_hh_l0{suffix}"),
            ]
            if one_bias:
                init.append(Line(f"{me}.bias_hh_l0{suffix}.requires_grad_(False)",
                                 "Keras has one bias here"))
        if stepped:
            steps = call(
                me,
                Code(x.var),
                *(() if x.mask is None else (Code(x.mask),)),
                return_sequences=unless(layer.return_sequences, False),
                go_backwards=unless(layer.go_backwards, False),
                dropout=unless(layer.dropout, 0.0),
                recurrent_dropout=unless(layer.recurrent_dropout, 0.0),
            )
            return Emission(steps, module, init, weights=weights)
        # initial_state: [batch, units] each, as torch's (h_0, c_0) of [layers, batch, units]
        starts = [f"{state.var}.unsqueeze(0)" for state in initial]
        start = starts[0] if len(starts) == 1 else f"({', '.join(starts)})"
        run = f"{me}({x.var}, {start})" if starts else f"{me}({x.var})"
        if layer.return_state:  # the output and the final states, as Keras gives them
            every_step = lit(layer.return_sequences)
            return Emission(f"with_states({run}, every_step={every_step})", module, init,
                            weights=weights)
        if layer.return_sequences:
            return Emission(f"{run}[0]", module, init, weights=weights)
        return Emission(f"final_state({run})", module, init, weights=weights)

    def _projections(
        self, me: str, names: Sequence[str], layer, shapes, weights: list
    ) -> list[Line]:
        """Initialization of nn.Linear submodules `me.<name>` of [in, out] `shapes`, whose
        weights are appended to `weights`."""
        init = []
        for name, (fan_in, fan_out) in zip(names, shapes, strict=True):
            init += self._kernel_and_bias(
                layer, f"{me}.{name}", (fan_out, fan_in), (fan_in, fan_out), fan_out, weights
            )
        return init

    def _attention(self, node: ir.LayerNode, attr: str, ins: list[Held]) -> Emission:
        """Self-attention (one input) or cross-attention: the spec's (query, value, key) in
        Keras's order, the helper's (query, key, value) in nn.MultiheadAttention's."""
        layer, me = node.layer, f"self.{attr}"
        query, value, key = query_value_key(ins)
        features = query.shape[-1]
        key_dim = layer.head_width(query.shape)
        module = call(
            "MultiheadAttention",
            features,
            layer.heads,
            key_dim,
            dropout=unless(layer.dropout, 0.0),
            causal=unless(layer.causal, False),
            kdim=unless(key.shape[-1], features),
            vdim=unless(value.shape[-1], features),
        )
        width = layer.heads * key_dim
        shapes = [(features, width), (key.shape[-1], width), (value.shape[-1], width),
                  (width, features)]
        weights: list = []
        init = self._projections(me, ("query", "key", "value", "output"), layer, shapes, weights)
        mask = "" if query.mask is None else f", {query.mask}"  # self-attention's only
        return Emission(f"{me}({query.var}, {key.var}, {value.var}{mask})", module, init,
                        weights=weights)

    def _transformer(self, node: ir.LayerNode, attr: str, ins: list[Held]) -> Emission:
        """transformer_encoder (one input), transformer_decoder (the target, the memory)."""
        layer, x, me = node.layer, ins[0], f"self.{attr}"
        features = x.shape[-1]
        activation = layer.activation
        function = "nn.Softmax(dim=-1)" if activation == "softmax" else ACTIVATIONS[activation]
        decoder = layer.kind == "transformer_decoder"
        module = call(
            "TransformerDecoder" if decoder else "TransformerEncoder",
            features,
            layer.heads,
            layer.ff,
            dropout=layer.dropout,
            activation=Code(function),
            norm_first=layer.norm_first,
            causal=unless(layer.causal, True) if decoder else None,
            epsilon=unless(layer.epsilon, 1e-5),
        )
        # In the order TransformerEncoder / TransformerDecoder (templates/model_helpers.j2)
        # registers them.
        weights: list = []
        attentions = ("self_attention", "cross_attention") if decoder else ("attention",)
        init = []
        for attention in attentions:
            init += self._projections(
                f"{me}.{attention}", ("query", "key", "value", "output"), layer,
                [(features, features)] * 4, weights,
            )
        init += self._projections(
            me, ("linear1", "linear2"), layer, [(features, layer.ff), (layer.ff, features)],
            weights,
        )
        for norm in ("norm1", "norm2", "norm3")[: len(attentions) + 1]:
            weights += [(f"{me}.{norm}.weight", (features,)), (f"{me}.{norm}.bias", (features,))]
        args = ", ".join(i.var for i in ins) if decoder else _with_mask(x)
        return Emission(f"{me}({args})", module, init, weights=weights)

    def _scores_attention(self, node: ir.LayerNode, attr: str, ins: list[Held]) -> Emission:
        """attention (Luong) and additive_attention (Bahdanau), Keras's layers of no
        projections: the helpers Attention and AdditiveAttention, called (query, value,
        key)."""
        layer, me = node.layer, f"self.{attr}"
        query, value, key = query_value_key(ins)
        init, weights = [], []
        if layer.kind == "attention":
            module = call(
                "Attention",
                score_mode=unless(layer.score_mode, "dot"),
                use_scale=unless(layer.use_scale, False),
                dropout=unless(layer.dropout, 0.0),
            )
            scalars = ["scale"] * layer.use_scale + ["concat_score_weight"] * (
                layer.score_mode == "concat"
            )
            for name in scalars:
                init.append(init_statement("ones", f"{me}.{name}"))
                weights.append((f"{me}.{name}", ()))
        else:
            features = query.shape[-1]
            module = call(
                "AdditiveAttention",
                features,
                use_scale=unless(layer.use_scale, True),
                dropout=unless(layer.dropout, 0.0),
            )
            if layer.use_scale:  # Keras draws it glorot_uniform
                init.append(init_statement("glorot_uniform", f"{me}.scale", (features,),
                                           (features,)))
                weights.append((f"{me}.scale", (features,)))
        expr = f"{me}({query.var}, {value.var}, {key.var})"
        return Emission(expr, module, init, weights=weights)

    # --- merges ------------------------------------------------------------------------

    def _merge(self, node: ir.LayerNode, attr: str, ins: list[Held]) -> Emission:
        names = [x.var for x in ins]
        if node.layer.kind == "add":
            return Emission(" + ".join(names))
        if node.layer.kind == "subtract":  # exactly two inputs
            return Emission(" - ".join(names))
        if node.layer.kind == "multiply":
            return Emission(" * ".join(names))
        return Emission(f"({' + '.join(names)}) / {len(names)}")

    def _extremum(self, node: ir.LayerNode, attr: str, ins: list[Held]) -> Emission:
        """Element by element, over any number of inputs: torch.maximum(torch.maximum(a, b), c)."""
        function = f"torch.{node.layer.kind}"
        expr = ins[0].var
        for x in ins[1:]:
            expr = f"{function}({expr}, {x.var})"
        return Emission(expr)

    def _concat(self, node: ir.LayerNode, attr: str, ins: list[Held]) -> Emission:
        x = ins[0]
        dim = torch_axis(node.layer.axis, len(x.shape), x.layout)
        return Emission(f"torch.cat([{', '.join(i.var for i in ins)}], dim={dim})")

    def _dot(self, node: ir.LayerNode, attr: str, ins: list[Held]) -> Emission:
        return Emission(_dot_product(node, ins))


def _dot_product(node: ir.LayerNode, ins: list[Held]) -> str:
    """keras.layers.Dot over [B, d] or [B, T, d] inputs held channels-last: a's remaining
    axis, then b's, as a batched matrix product; `normalize` first divides each input by
    its L2 norm along the axis (at least 1e-7, Keras's epsilon)."""
    layer, (a, b) = node.layer, ins
    rank = len(a.shape)
    dims = [axis if axis > 0 else rank + 1 + axis for axis in layer.pair()]
    x, y = a.var, b.var
    if layer.normalize:
        x, y = (
            call("F.normalize", Code(v), dim=d, eps=1e-7)
            for v, d in zip((x, y), dims, strict=True)
        )
    if rank == 1:
        return f"({x} * {y}).sum(-1, keepdim=True)"
    left = x if dims[0] == 2 else f"{x}.transpose(1, 2)"  # [B, m, d]
    right = y if dims[1] == 1 else f"{y}.transpose(1, 2)"  # [B, d, n]
    return f"{left} @ {right}"


def _with_mask(x: Held) -> str:
    """The arguments of a layer that reads a padding mask: `x`, and its mask if it has one."""
    return x.var if x.mask is None else f"{x.var}, {x.mask}"


def _padded(pad: str | None, x: str) -> str:
    """`x`, zero-padded first when the layer pads unevenly."""
    return x if pad is None else f"F.pad({x}, {pad})"


# --- one class from one graph ----------------------------------------------------------------


class ClassBuilder:
    """Builds the ClassSpec of one graph: the model's, or one block instantiation's."""

    def __init__(self, module: ModuleBuilder, graph: ir.Graph, input_layouts: Sequence[Layout]):
        self.module, self.graph = module, graph
        self.held: dict[str, Held] = {}
        self.modules: list[tuple[str, str | ClassSpec | Repeated]] = []
        self.init: list[Line] = []
        self.lines: list[Line] = []
        self.penalties: list[tuple[str, float, float]] = []
        self.entries: list[Entry] = []  # the manifest of this graph's layer nodes
        self.names = self._variable_names()
        self.attributes = Namer()  # the names of this class's ModuleLists
        self.masks: list[str] = []  # the variables of padding masks in `forward`
        self.token_masks: dict[str, str] = {}  # token ids' variable -> the mask made of them
        self.mask_lines: list[Line] = []  # the lines that make them
        self.params = tuple(self.names[v.id] for v in graph.inputs)
        for value, layout in zip(graph.inputs, input_layouts, strict=True):
            self.held[value.id] = Held(
                self.names[value.id], _layout(layout, value.shape), value.shape
            )

    def _variable_names(self) -> dict[str, str]:
        """Spec names for named values; `x` for the unnamed ones (sequence layers, the middle
        of a chain), which the checker labels with their node id."""
        graph = self.graph
        named = any(node.output.label != node.id for node in graph.nodes)
        inputs = [(v.id, "x" if v.id == "in" and not named else v.label) for v in graph.inputs]
        return variable_names(inputs, graph_steps(graph.nodes), graph.outputs,
                              reserved=MODULE_NAMES)

    def convert(self, value_id: str, layout: Layout) -> Held:
        """The value, permuted in its variable to `layout` first if it is held otherwise."""
        held = self.held[value_id]
        rank = len(held.shape)
        if held.layout == layout or rank < 2:
            return held
        converted = replace(held, layout=layout)
        order = ", ".join(map(str, to_layout(layout, rank)))
        note = "channels-first" if layout == "first" else "channels-last"
        self.lines.append(
            Line(
                f"{held.var} = {held.var}.permute({order})",
                f"{shape_comment(held.shape, layout)} {note}",
            )
        )
        self.held[value_id] = converted
        self.module.channels_first |= layout == "first"
        return converted

    def add_all(self, nodes: Sequence[ir.Node]) -> None:
        """Add `nodes` in order; a repeated call (`call * N`) whose repeats are the same
        module becomes one nn.ModuleList and a loop (`add_repeated`)."""
        index = 0
        while index < len(nodes):
            run = repeated_call(nodes, index)
            if len(run) < 2 or not self.add_repeated(run):
                run = [nodes[index]]
                self.add(nodes[index])
            index += len(run)

    def add_repeated(self, run: Sequence[ir.Node]) -> bool:
        """Add the nodes of one `call * N` as an nn.ModuleList of their modules, applied in a
        loop, when each is the same module applied the same way to a value it replaces (the
        variable it reads is the one it writes). False, having added nothing, when not."""
        need = self._need(run[0])
        first_in = self.held[run[0].inputs[0]]
        layout = first_in.layout if need == "any" else _layout(need, first_in.shape)
        var = first_in.var
        if any(self.names[n.output.id] != var or n.output.shape != first_in.shape for n in run):
            return False
        attrs = [identifier(n.id) for n in run]
        emissions = []
        mask = first_in.mask  # a repeat that keeps the mask keeps its input's
        for node, attr in zip(run, attrs, strict=True):
            held = Held(var, _layout(layout, node.output.shape), node.output.shape, mask)
            emission, out_layout = self._emission(node, attr, [held])
            if out_layout != layout:
                return False
            emissions.append(emission)
        loop = self._loop_variable()
        generic = [_generic(e, f"self.{a}", loop) for e, a in zip(emissions, attrs, strict=True)]
        if any(g != generic[0] for g in generic):
            return False
        self._inputs(run[0].inputs, need)  # the first one's input, converted once
        module, init, expr = generic[0]
        kind = run[0].block if isinstance(run[0], ir.BlockNode) else run[0].layer.kind
        word = "blocks" if isinstance(run[0], ir.BlockNode) else "layers"
        holder = self.attributes.name(f"{identifier(kind)}_{word}")
        self.modules.append((holder, Repeated(module, len(run))))
        if init:
            self.init.append(Line(f"for {loop} in self.{holder}:"))
            self.init += [_indented(line) for line in init]
        for position, (node, attr, emission) in enumerate(
            zip(run, attrs, emissions, strict=True)
        ):
            out = node.output
            held = Held(var, _layout(layout, out.shape), out.shape, mask if out.masked else None)
            name = f"{holder}.{position}"
            # regularization() reaches the kernels of each repeat through the list.
            self.penalties += [
                (_swap(path, f"self.{attr}", f"self.{holder}[{position}]"), l1, l2)
                for path, l1, l2 in emission.penalties
            ]
            if isinstance(node, ir.BlockNode):
                self.entries += [_inside(node.id, name, entry) for entry in emission.entries]
            else:
                self.entries.append(_renamed(_entry(node, attr, held.layout, emission), name))
            self.held[out.id] = held
        comment = shape_comment(run[-1].output.shape, layout)
        self.lines += [
            Line(f"for {loop} in self.{holder}:"),
            Line(f"    {var} = {expr}", comment),
        ]
        return True

    def _loop_variable(self) -> str:
        """The loop's variable over a ModuleList: `layer`, unless the spec names a value so."""
        taken = set(self.names.values()) | MODULE_NAMES
        return next(c for c in candidates("layer", PYTHON_RESERVED) if c not in taken)

    def _need(self, node: ir.Node) -> Need:
        if isinstance(node, ir.BlockNode):
            return self.module.block_input_layout(node)
        return self.module.layers.rule(node).need

    def _emission(self, node: ir.Node, attr: str, ins: list[Held]) -> tuple[Emission, Layout]:
        """The node's share of its class, and the layout of its output, given its inputs."""
        if isinstance(node, ir.BlockNode):
            return self.module.block(node, attr, ins)
        emission = self.module.layers.emit(node, attr, ins)
        need = self.module.layers.rule(node).need
        return emission, ins[0].layout if need == "any" else need

    def add(self, node: ir.Node) -> None:
        attr = identifier(node.id)
        if isinstance(node, ir.BlockNode):
            need: Need = self.module.block_input_layout(node)
        else:
            need = self.module.layers.rule(node).need
        ins = self._inputs(node.inputs, need)
        if isinstance(node, ir.BlockNode):
            emission, out_layout = self.module.block(node, attr, ins)
        else:
            if node.reuses:  # a shared layer's later use calls the first use's module
                attr = identifier(node.sharing.first)  # type: ignore[union-attr]
            emission = self.module.layers.emit(node, attr, ins)
            out_layout = ins[0].layout if need == "any" else need
        out = node.output
        mask = self._mask(node, ins)
        held = Held(self.names[out.id], _layout(out_layout, out.shape), out.shape, mask)
        targets = ", ".join(self.names[value.id] for value in node.results)
        for state in node.results[1:]:  # [batch, units]: no layout of their own
            self.held[state.id] = Held(self.names[state.id], "last", state.shape)
        if isinstance(node, ir.LayerNode) and node.reuses:
            # Its module, initialization and penalties are the first use's; so are its weights.
            emission = replace(emission, module=None, init=[], penalties=[], weights=[])
        if emission.module is not None:
            self.modules.append((attr, emission.module))
        self.init += emission.init
        self.penalties += emission.penalties
        if isinstance(node, ir.BlockNode):
            self.entries += [_inside(node.id, attr, entry) for entry in emission.entries]
        else:
            self.entries.append(_entry(node, attr, held.layout, emission))
        comment = shape_comment(out.shape, held.layout)
        if emission.expr == held.var:
            self.lines.append(Line("", f"{node.id}: {held.var} passes through {comment}"))
        else:
            if len(node.results) > 1:
                comment = ", ".join(shape_comment(v.shape, held.layout if v is out else "last")
                                    for v in node.results)
            self.lines.append(Line(f"{targets} = {emission.expr}", comment))
        self.held[out.id] = held

    def _mask(self, node: ir.Node, ins: list[Held]) -> str | None:
        """The variable of the padding mask of `node`'s output, when the IR says it carries
        one: made from the token ids by a masking embedding, else its inputs' (where several
        masks meet in a merge, a new one where all of them are True)."""
        if not node.output.masked:
            return None
        if isinstance(node, ir.LayerNode) and node.layer.kind == "embedding":
            tokens = ins[0].var
            if tokens not in self.token_masks:  # one mask per input, however many embed it
                self.token_masks[tokens] = self._mask_variable()
                self.lines.append(Line(f"{self.token_masks[tokens]} = {tokens} != 0",
                                       "False at padding (id 0)"))
                self.mask_lines.append(self.lines[-1])
            return self.token_masks[tokens]
        masks = list(dict.fromkeys(x.mask for x in ins if x.mask is not None))
        if len(masks) == 1:
            return masks[0]
        mask = self._mask_variable()
        self.lines.append(Line(f"{mask} = {' & '.join(masks)}", "real where every input is"))
        self.mask_lines.append(self.lines[-1])
        return mask

    def _forward_lines(self) -> tuple[Line, ...]:
        """`forward`'s lines without the masks that no layer reads (a flatten or a
        convolution drops the mask, as Keras's do)."""
        lines = list(self.lines)
        while True:
            unread = [
                line for line in lines if line in self.mask_lines
                and not any(line.code.split(" = ")[0] in names_used(other.code)
                            for other in lines if other is not line)
            ]
            if not unread:
                return tuple(lines)
            lines = [line for line in lines if line not in unread]

    def _mask_variable(self) -> str:
        """A new variable for a padding mask: `mask`, then `mask_2`..., clear of the spec's."""
        taken = set(self.names.values()) | MODULE_NAMES | set(self.masks)
        name = next(c for c in candidates("mask", PYTHON_RESERVED) if c not in taken)
        self.masks.append(name)
        return name

    def _inputs(self, value_ids: Sequence[str], need: Need) -> list[Held]:
        if need == "any":
            # Merges need one layout: the first input's (of rank ≥ 2) decides.
            layouts = [self.held[v].layout for v in value_ids if len(self.held[v].shape) >= 2]
            need = layouts[0] if layouts else "last"
        return [self.convert(v, need) for v in value_ids]

    def finish(
        self, output_layout: Layout | None, block: str = "", args=(), doc: str = ""
    ) -> ClassSpec:
        """The class; outputs are converted to `output_layout` (None: left as they are)."""
        outputs = [
            self.convert(v, output_layout) if output_layout else self.held[v]
            for v in self.graph.outputs
        ]
        return ClassSpec(
            block=block,
            args=tuple(args),
            doc=doc,
            modules=tuple(self.modules),
            init=tuple(self.init),
            params=self.params,
            forward=self._forward_lines(),
            returns=", ".join(o.var for o in outputs),
            penalties=tuple(self.penalties),
        )

    def output_layout(self) -> Layout:
        return self.held[self.graph.outputs[0]].layout


def _entry(node: ir.LayerNode, attr: str, layout: Layout, emission: Emission) -> Entry:
    """The manifest entry of a layer node held by `self.<attr>`."""
    prefix = f"self.{attr}."
    weights = tuple(Weight(attr, path.removeprefix(prefix), shape)
                    for path, shape in emission.weights)
    return Entry((node.id,), node.layer.kind, attr, layout, emission.activation_outside, weights)


def _renamed(entry: Entry, name: str) -> Entry:
    """A layer node's manifest entry with its module at `name` (a place in a ModuleList)."""
    weights = tuple(replace(w, holder=name + w.holder[len(entry.name):]) for w in entry.weights)
    return replace(entry, name=name, weights=weights)


def _generic(emission: Emission, me: str, loop: str) -> tuple[object, tuple[Line, ...], str]:
    """What an emission is with its own attribute (`me`) written as the loop's variable: the
    same for every repeat that a ModuleList can hold."""
    init = tuple(replace(line, code=_swap(line.code, me, loop)) for line in emission.init)
    return emission.module, init, _swap(emission.expr, me, loop)


def _swap(code: str, me: str, loop: str) -> str:
    return re.sub(rf"{re.escape(me)}\b", loop, code)


def _indented(line: Line) -> Line:
    return replace(line, code=f"    {line.code}")


def _inside(block_id: str, attr: str, entry: Entry) -> Entry:
    """A block's manifest entry as seen from the class holding the block as `self.<attr>`."""
    weights = tuple(replace(w, holder=f"{attr}.{w.holder}") for w in entry.weights)
    return replace(entry, node=(block_id, *entry.node), name=f"{attr}.{entry.name}",
                   weights=weights)


def _layout(layout: Layout, shape: Shape) -> Layout:
    return layout if len(shape) >= 2 else "last"


# --- the whole module ------------------------------------------------------------------------


class ModuleBuilder:
    """Builds every class of one model.py: the model's and its blocks' (shared when equal)."""

    def __init__(self) -> None:
        self.layers = LayerWriter()
        self.blocks: dict[ClassSpec, None] = {}  # distinct block classes, in definition order
        self.channels_first = False  # whether any value is ever held channels-first

    def block(self, node: ir.BlockNode, attr: str, ins: list[Held]) -> tuple[Emission, Layout]:
        # The code of one use, with every default kept, for `block_code.share` to line up
        # with the block's other uses.
        outer, self.layers.block = self.layers.block, node.block
        try:
            with keeping_defaults():
                builder = ClassBuilder(self, node.body, [x.layout for x in ins])
                builder.add_all(node.body.nodes)
        finally:
            self.layers.block = outer
        layout_out = builder.output_layout()
        doc = (
            f"The `{identifier(node.block)}` block: takes "
            f"{_layout_words(ins[0].shape, ins[0].layout)} and returns "
            f"{_layout_words(node.output.shape, layout_out)}."
        )
        args = tuple((k, _hashable(v)) for k, v in node.args.items())
        spec = builder.finish(None, node.block, args, doc)
        self.blocks.setdefault(spec, None)
        # The model's regularization() reaches a block's kernels through the block.
        penalties = [
            (f"self.{attr}.{path[len('self.') :]}", l1, l2) for path, l1, l2 in spec.penalties
        ]
        expr = f"self.{attr}({', '.join(x.var for x in ins)})"
        emission = Emission(expr, spec, penalties=penalties, entries=builder.entries)
        return emission, layout_out

    def block_input_layout(self, node: ir.BlockNode) -> Layout:
        """The layout a block's class takes its input in, the same at every use so that the
        uses share code: what the first of its layers that needs one needs (channels-last
        when none does). The caller converts its value before the call."""
        for inner in node.body.nodes:
            if isinstance(inner, ir.BlockNode):
                return self.block_input_layout(inner)
            need = self.layers.rule(inner).need
            if need != "any":
                return need
        return "last"

    def plan_padding(self, graph: ir.Graph, block: str = "") -> None:
        """Find the window layers of blocks whose `same` padding some uses of the block would
        give the module (symmetric) and others F.pad (uneven): those pad with F.pad at every
        use (`LayerWriter.explicit_padding`), so that one class serves them all."""
        ways: dict[tuple[str, str], set[bool]] = {}
        self._padding_ways(graph, block, ways)
        self.layers.explicit_padding = {key for key, found in ways.items() if len(found) > 1}

    def _padding_ways(self, graph: ir.Graph, block: str, ways) -> None:
        for node in graph.nodes:
            if isinstance(node, ir.BlockNode):
                self._padding_ways(node.body, node.block, ways)
            elif block and self.layers.rule(node).emit in ("conv", "depthwise_conv", "pool"):
                shape = graph.value(node.inputs[0]).shape
                _, pad = self.layers._padding(node.layer.window, Held("x", "first", shape))
                ways.setdefault((block, node.id), set()).add(pad is None)


def _hashable(value: object) -> object:
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


def _layout_words(shape: Shape, layout: Layout) -> str:
    if len(shape) < 2:
        return f"{shape_comment(shape, 'last')} tensors"
    words = "channels-first" if layout == "first" else "channels-last"
    return f"{words} {shape_comment(shape, layout)} tensors"


# --- names and rendering ---------------------------------------------------------------------


def model_class_name(model: ir.Model) -> str:
    """The name of the model's class in model.py (`from model import <name>`)."""
    return next(candidates(pascal_case(model.name), _CLASS_RESERVED, escape="Model", sep=""))


_CLASS_RESERVED = frozenset(Namer().reserved | MODULE_NAMES)


@cache
def _environment() -> Environment:
    return template_environment(TEMPLATES)


def _docstring(text: str) -> str:
    """A class docstring's text: one line when it fits beside the quotes and indent, else
    wrapped with the closing quotes on a line of their own."""
    if len(text) <= LINE_LIMIT - 10:
        return text
    wrapped = textwrap.fill(
        text, width=LINE_LIMIT - 8, subsequent_indent="    ", break_on_hyphens=False
    )
    return wrapped + "\n    "


def render_model(model: ir.Model) -> str:
    """The source of a standalone model.py for `model` (see the module docstring)."""
    return write_model(model)[0]


def manifest(model: ir.Model) -> Manifest:
    """What model.py holds for each layer node of `model` (see specc.backends.common.manifest)."""
    return write_model(model)[1]


def write_model(model: ir.Model) -> tuple[str, Manifest]:
    """The source of model.py and its manifest, from one pass over the model."""
    module = ModuleBuilder()
    graph = model.graph
    module.plan_padding(graph)
    builder = ClassBuilder(module, graph, ["last"] * len(graph.inputs))
    builder.add_all(graph.nodes)
    name = model_class_name(model)
    ins = ", ".join(f"{builder.names[v.id]} {shape_comment(v.shape, 'last')}" for v in graph.inputs)
    outs = ", ".join(
        f"{builder.names[v]} {shape_comment(graph.value(v).shape, 'last')}" for v in graph.outputs
    )
    doc = f"The `{identifier(model.name)}` model: takes {ins} and returns {outs}, channels-last."
    spec = builder.finish("last", doc=doc)

    namer = Namer(_CLASS_RESERVED, escape="Block", sep="")
    namer.taken.add(name)
    classes = _share_classes(list(module.blocks), spec, name, namer)
    env = _environment()
    classes_source = env.get_template("model_classes.j2").render(classes=classes)
    helpers_source = env.get_template("model_helpers.j2").render(
        helpers=_helpers_named(classes_source),
        masked_attention=bool(model.graph.reading_masks() & masking.ATTENTION),
    )
    source = env.get_template("model.py.j2").render(
        model_name=identifier(model.name),
        class_name=name,
        source=Path(model.file).name,
        channels_first=module.channels_first,
        imports=_imports(helpers_source + classes_source),
        helpers=helpers_source.strip(),
        classes=classes_source.strip(),
    )
    return source.rstrip() + "\n", Manifest("torch", name, tuple(builder.entries))


def _helpers_named(source: str) -> list[str]:
    """The helpers `source` calls, with the helpers they call, in HELPERS order."""
    used = names_used(source) & set(HELPERS)
    for helper in list(used):
        used.update(HELPER_NEEDS.get(helper, ()))
    return [h for h in HELPERS if h in used]


# The positional parameters of the calls a block's code makes, which name a block class's
# parameter where its uses pass different numbers (block_code.share).
POSITIONAL = {
    **{f"nn.Conv{n}d": ("in_channels", "out_channels") for n in (1, 2, 3)},
    "SeparableConv": ("dims", "channels", "filters", "kernel_size"),
    "nn.ConvTranspose2d": ("in_channels", "out_channels"),
    "nn.Linear": ("in_features", "out_features"),
    **{f"nn.BatchNorm{n}d": ("num_features",) for n in (1, 2, 3)},
    "nn.LayerNorm": ("features",),
    "nn.Embedding": ("vocab", "dim"),
    **{
        f"{prefix}{cls}": ("input_size", "hidden_size")
        for prefix in ("nn.", "Stepped")
        for cls in ("RNN", "LSTM", "GRU")
    },
    "nn.Dropout": ("rate",),
    **{f"nn.{op}Pool{n}d": ("kernel_size",) for op in ("Max", "Avg") for n in (1, 2, 3)},
    "F.pad": ("x", "padding"),
    "average_inside": ("pool", "x", "padding"),
    "PositionalEmbedding": ("max_len", "features"),
    "MultiheadAttention": ("features", "heads", "key_dim"),
    "TransformerEncoder": ("features", "heads", "ff"),
    "TransformerDecoder": ("features", "heads", "ff"),
    "AdditiveAttention": ("features",),
    "nn.init.uniform_": ("weight", "low", "limit"),
}
# nn.Module's own attributes, which a parameter kept on `self` must not shadow.
MODULE_ATTRIBUTES = frozenset(
    "training forward parameters buffers children modules state_dict to cuda cpu eval train "
    "half float double apply zero_grad register_buffer named_parameters add_module type".split()
)


def _share_classes(
    blocks: Sequence[ClassSpec], model_spec: ClassSpec, model_name: str, namer: Namer
) -> list[dict[str, object]]:
    """The class templates' contexts: one class per spec block, written once for all its
    uses (block_code.share), then the model's class, each block's class before the classes
    that hold it."""
    constructors: dict[ClassSpec, str] = {}  # a block use → its constructor call
    classes: list[tuple[int, dict[str, object]]] = []
    position = {spec: index for index, spec in enumerate(blocks)}
    ordered = _blocks_inside_out(blocks)
    # A constructor's parameter never shadows a class that its __init__ may call.
    class_names = {pascal_case(block) for block, _ in ordered} | {model_name}
    for block, specs in ordered:
        uses = [_use(spec, constructors) for spec in specs]
        attributes = {attr for spec in specs for attr, _ in spec.modules}
        reserved = MODULE_NAMES | MODULE_ATTRIBUTES | attributes | class_names
        definitions = share(uses, POSITIONAL, frozenset(reserved))
        for index, definition in enumerate(definitions):
            name = namer.name(pascal_case(block))
            for member, arguments in zip(definition.members, definition.arguments, strict=True):
                given = ", ".join(f"{p}={value}" for p, value in arguments.items())
                constructors[specs[member]] = f"{name}({given})"
            variant = (index + 1, len(definitions)) if len(definitions) > 1 else None
            first = min(position[specs[m]] for m in definition.members)
            if not definition.comments[0]:  # its uses' docstrings differ in their words
                definition.comments[0] = f"The `{identifier(block)}` block."
            classes.append((first, _class_context(definition, name, variant)))
    (model,) = share([_use(model_spec, constructors)], POSITIONAL)
    return [c for _, c in sorted(classes, key=lambda c: c[0])] + [
        _class_context(model, model_name, None, penalties=model_spec.penalties)
    ]


def _blocks_inside_out(blocks: Sequence[ClassSpec]) -> list[tuple[str, list[ClassSpec]]]:
    """The uses of each block, grouped by block, every block after the blocks it holds."""
    groups: dict[str, list[ClassSpec]] = {}
    for spec in blocks:
        groups.setdefault(spec.block, []).append(spec)
    ordered: list[tuple[str, list[ClassSpec]]] = []
    done: set[str] = set()

    def visit(block: str) -> None:
        if block in done:
            return
        done.add(block)
        for spec in groups[block]:
            for _, module in spec.modules:
                child = module.module if isinstance(module, Repeated) else module
                if isinstance(child, ClassSpec):
                    visit(child.block)
        ordered.append((block, groups[block]))

    for block in groups:
        visit(block)
    return ordered


# The sections of a class's code that `_use` hands to block_code.share.
MODULES, INIT, FORWARD, RETURNS, PARAMS = range(5)


def _use(spec: ClassSpec, constructors: dict[ClassSpec, str]) -> Use:
    """One use of a block (or the model) as block_code.share reads it."""
    def constructor(module: str | ClassSpec) -> str:
        return constructors[module] if isinstance(module, ClassSpec) else module

    modules = [
        f"self.{attr} = nn.ModuleList({constructor(c.module)} for _ in range({c.count}))"
        if isinstance(c, Repeated)
        else f"self.{attr} = {constructor(c)}"
        for attr, c in spec.modules
    ]
    sections = [modules, [line.code for line in spec.init],
                [line.code for line in spec.forward], [spec.returns], [", ".join(spec.params)]]
    comments = [spec.doc, *(line.comment for line in spec.init),
                *(line.comment for line in spec.forward)]
    return Use(sections, comments, dict(spec.args))


def _class_context(
    definition: Definition, name: str, variant: tuple[int, int] | None, penalties=()
) -> dict[str, object]:
    """The class template's view of a class: statements laid out as indented source lines.
    Parameters that `_init_weights` or `forward` read are kept on `self`."""
    kept = [p for p in definition.params
            if p in definition.used_in(INIT) + definition.used_in(FORWARD)
            + definition.used_in(RETURNS)]
    on_self = {p: f"self.{p}" for p in kept}

    def spell(p: str) -> str:
        return on_self.get(p, p)

    modules = [Line(f"self.{p} = {p}") for p in kept]
    modules += [Line(code) for code in definition.render(MODULES)]
    doc, *comments = definition.comments
    init_comments = comments[: len(definition.render(INIT))]
    forward_comments = comments[len(init_comments) :]
    init = [Line(code, comment) for code, comment in
            zip(definition.render(INIT, spell), init_comments, strict=True)]
    forward = [Line(code, comment) for code, comment in
               zip(definition.render(FORWARD, spell), forward_comments, strict=True)]
    if variant is not None:
        doc += (
            f" One of {variant[1]} classes for this block (this is number {variant[0]}): its"
            " uses differ in more than their numbers."
        )
    # Shape comments line up in a column, unless one long line would push it too far right.
    column = min(max((len(line.code) for line in forward if line.comment), default=0), 56)
    terms = []
    for weight, l1, l2 in penalties:
        if l1:
            terms.append(f"{lit(l1)} * {weight}.abs().sum()")
        if l2:
            terms.append(f"{lit(l2)} * {weight}.square().sum()")
    return {
        "name": name,
        "doc": _docstring(doc),
        "params": definition.params,
        "modules": _layout_lines(modules),
        "init": _layout_lines(init),
        "forward_params": definition.render(PARAMS)[0],
        "forward": _layout_lines(forward, column),
        "returns": definition.render(RETURNS, spell)[0],
        "penalties": terms,
    }


BODY_INDENT = 8  # method bodies, where every generated statement goes


def _layout_lines(lines: Sequence[Line], column: int = 0) -> list[str]:
    """Statements as source lines within LINE_LIMIT: a comment trails its code (from
    `column` on) when it fits, else goes above it; a long call breaks after its opening
    parenthesis, as ruff format would break it."""
    out = []
    room = LINE_LIMIT - BODY_INDENT
    for line in lines:
        if not line.code:
            out.append(f"# {line.comment}")
            continue
        if not line.comment:
            out += _break_call(line.code, room)
            continue
        trailing = f"{line.code.ljust(column)}  # {line.comment}"
        if len(trailing) <= room:
            out.append(trailing)
        else:
            out += [f"# {line.comment}", *_break_call(line.code, room)]
    return out


def _break_call(code: str, room: int) -> list[str]:
    """`code` as is when it fits in `room`; else, when it ends in a call whose parenthesis
    opens first, its arguments on a line of their own."""
    if len(code) <= room or not code.endswith(")"):
        return [code]
    opening = code.index("(")
    depth = 0
    for position, char in enumerate(code[opening:], opening):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and position < len(code) - 1:
            return [code]  # the first parenthesis closes early: no single call to break
    inner = code[opening + 1 : -1]
    if len(inner) + 4 <= room:
        return [code[: opening + 1], f"    {inner}", ")"]
    if " for " in inner:  # a generator expression: its loop apart
        element, loop = inner.rsplit(" for ", 1)
        return [code[: opening + 1], f"    {element}", f"    for {loop}", ")"]
    return [code[: opening + 1], *(f"    {arg}," for arg in _arguments(inner)), ")"]


def _arguments(inner: str) -> list[str]:
    """The arguments of a call, given the text between its parentheses: split at the commas
    outside any bracket or string."""
    args, depth, start, quote = [], 0, 0, ""
    for position, char in enumerate(inner):
        if quote:
            quote = "" if char == quote and inner[position - 1] != "\\" else quote
        elif char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            args.append(inner[start:position].strip())
            start = position + 1
    return [*args, inner[start:].strip()]


def _imports(source: str) -> list[str]:
    """The import lines for the modules `source` uses."""
    names = names_used(source)
    lines = ["import math", ""] if "math" in names else []
    if "torch" in names:
        lines.append("import torch")
    if "F" in names:
        lines.append("import torch.nn.functional as F")
    lines.append("from torch import nn")
    return lines
