"""TensorFlow/Keras `model.py`: a spec model's network as a Keras 3 functional model.

Conventions of the generated file (the TensorFlow train.py, the parity tool and readers rely
on them):

- `build_model()` (BUILDER) returns a functional keras.Model named after the model. Its inputs
  are `keras.Input`s named by the spec's inputs, in declaration order; its outputs come in
  `output` order (a list when there are several). Tensors are batch first and channels-last,
  the spec's canonical layout and Keras's own, so no layout conversion appears anywhere.
- Every layer is named explicitly (Keras's automatic names could collide with ours): by its IR
  node id (`conv2d_1`), after the ids of the blocks that contain it, joined by `__`
  (`residual_1__conv_bn_1__conv2d_1`; `layer_name`). With `.` for `__` that is the PyTorch
  program's submodule holding the same weights (the manifest, `manifest`, lists both). A second
  layer that a node needs in Keras (explicit convolution padding, transposed-convolution
  cropping) has no weights and takes the node's name and a suffix (`conv2d_1_pad`).
- One function per spec block, `def conv_bn(x, filters, stride, name)`, named after the block
  and written once for all its uses by `block_code.share`: the numbers that differ between
  uses are its parameters, which each call passes by keyword, and `name` is the block node's
  layer name, which the function's own layer names extend. Uses whose code differs in more
  than numbers get a function each (`conv_bn_2`), as their docstrings say.
- A repeated call (`call * N`) of one statement per repeat is a loop over the node numbers
  (`for i in range(1, 3): x = residual(x, filters=16, name=f"residual_{i}")`), so layer
  names stay those of the nodes.
- Helpers, emitted when a model uses them (HELPERS order): `leaky_relu`, the `activation=` form
  of the spec's leaky_relu (slope 0.01; Keras's string default is 0.2);
  `TorchBatchNormalization`, the spec's batchnorm: Keras's BatchNormalization except that
  training updates the moving variance with the unbiased batch variance, as PyTorch does;
  `PositionalEmbedding`, a registered-serializable layer; `transformer_encoder`, a function
  that builds one encoder layer from Keras layers named as the PyTorch program's
  TransformerEncoder submodules.
- One statement per node, its output shape as a comment; two where Keras needs two layers.
- Normative numbers Keras spells differently are passed explicitly: BatchNormalization's
  momentum is 1 - the spec's (Keras's weighs the running average), the epsilons of both
  normalizations, LSTM `unit_forget_bias=False` (the spec's biases start at zero), GRU
  `reset_after=True` (PyTorch's only form).

Which Keras layer each layer kind becomes is one table, `LayerWriter.RULES` (data for the
simple kinds, methods for the rest); `unsupported` reports a kind the table lacks, the
backend's one way of refusing. Each emitter
also records the variables its layers hold (`Site.holds`), for the manifest (`write_model`).
"""

from __future__ import annotations

import keyword
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cache
from pathlib import Path

from specc import ir
from specc.backends.common import template_environment
from specc.backends.common.block_code import Use, repeated_call, share
from specc.backends.common.code import (
    LINE_LIMIT,
    Code,
    axes,
    keeping_defaults,
    keyword_argument,
    lit,
    names_used,
    shape_comment,
    unless,
)
from specc.backends.common.manifest import Entry, Manifest, Weight
from specc.backends.naming import (
    Namer,
    candidates,
    graph_steps,
    identifier,
    snake_case,
    variable_names,
)
from specc.errors import SpecError
from specc.layers import ACTIVATIONS as ACTIVATION_KINDS
from specc.layers.args import per_axis
from specc.layers.attention import query_value_key
from specc.layers.base import Shape

TEMPLATES = Path(__file__).parent / "templates"

BUILDER = "build_model"
IMPORTED = ("keras", "layers", "ops")
HELPERS = (
    "leaky_relu",
    "TorchBatchNormalization",
    "PositionalEmbedding",
    "transformer_encoder",
    "transformer_decoder",
)
# Block functions and variables never take these names, whether or not a file defines them.
MODULE_NAMES = frozenset((*IMPORTED, *HELPERS, BUILDER))
PREFIX = "name"  # a block function's parameter: the layer-name prefix of its layers

SEPARATOR = "__"  # joins block node ids and a node id into a layer name


def layer_name(path: Sequence[str]) -> str:
    """The Keras layer name of the node reached through the block node ids of `path`, its
    own id last: `residual_1__conv2d_1` (the PyTorch module `residual_1.conv2d_1`). Node ids
    never start with `_`, which a root name scope of TensorFlow's cannot."""
    return SEPARATOR.join(identifier(part) for part in path)


# The second Keras layer of a node, after the layer named by `layer_name`, when there is one.
CROP_SUFFIX = "_crop"  # conv2d_transpose with an int padding: the cropping


def node_name(name: str, fallback: str) -> str:
    """`name` as TensorFlow accepts a node or root scope name, which cannot start with `_`:
    without its leading underscores (`_m` is `m`), `fallback` when nothing is left. The
    keras.Model and its Inputs are named so."""
    return identifier(name).lstrip("_") or fallback


# What a keras.Input may not be called: `model.export` makes the input names the argument
# names of a traced method, whose first argument is `self`, and TensorFlow's node names
# cannot start with `_`.
INPUT_RESERVED = frozenset({*keyword.kwlist, "self"})


def input_names(labels: Sequence[str]) -> list[str]:
    """The keras.Inputs' names: the spec's as a node name (`_` is `input`), a Python keyword
    or `self` with a trailing `_` (`class_`), each distinct."""
    names: list[str] = []
    for label in labels:  # builtins (`input`, `print`) are valid argument names: kept
        base = node_name(label, "input")
        names.append(next(c for c in candidates(base, INPUT_RESERVED) if c not in names))
    return names


def output_layer_name(path: Sequence[str], node: ir.LayerNode) -> str:
    """The Keras layer whose output is the output of the layer node at `path` (its own id
    last): the node's layer, or the last of the layers it becomes (the cropping after a
    padded transposed convolution, the last residual or norm of a transformer encoder)."""
    name = layer_name(path)
    layer = node.layer
    if layer.kind == "conv2d_transpose" and not isinstance(layer.window.padding, str):
        return name + CROP_SUFFIX
    if layer.kind == "transformer_encoder":
        return f"{name}{SEPARATOR}{'residual2' if layer.norm_first else 'norm2'}"
    if layer.kind == "transformer_decoder":
        return f"{name}{SEPARATOR}{'residual3' if layer.norm_first else 'norm3'}"
    return name


# `activation=` values: Keras's own names (its "gelu" is the exact erf form, its "elu" has
# alpha 1, as the spec's), except leaky_relu, whose slope needs the helper.
ACTIVATIONS: dict[str, Code] = {
    **{kind: Code(lit(kind)) for kind in ACTIVATION_KINDS if kind != "leaky_relu"},
    "leaky_relu": Code("leaky_relu"),
}

RECURRENT = {"simple_rnn": "layers.SimpleRNN", "lstm": "layers.LSTM", "gru": "layers.GRU"}
POOLS = {"avg": "AveragePooling", "max": "MaxPooling"}
MERGES = {
    "add": "layers.Add",
    "subtract": "layers.Subtract",
    "multiply": "layers.Multiply",
    "average": "layers.Average",
    "maximum": "layers.Maximum",
    "minimum": "layers.Minimum",
}


def arguments(*args: object, **kwargs: object) -> tuple[str, ...]:
    """A call's arguments as source: literals (`lit`) unless they are `Code`. Keyword
    arguments given as None are left out, so callers pass None for defaults."""
    return (
        *(lit(a) for a in args),
        *(keyword_argument(key, value) for key, value in kwargs.items() if value is not None),
    )


def keras_momentum(momentum: float) -> float:
    """Keras's momentum (the running average's weight) for the spec's (the new batch
    statistic's), subtracted in decimal: 0.07 gives 0.93, not 0.9299999999999999."""
    return float(Decimal(1) - Decimal(repr(momentum)))


def unsupported(what: str, node: ir.Node) -> SpecError:
    """The one way this backend refuses something; never a silent default."""
    return SpecError.at(node.span, f"the tensorflow backend does not support {what}")


# --- statements -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    """`target = function(args)` or, for a layer, `target = function(args)(inputs)`; a
    `target` of "return" returns the value instead."""

    target: str
    function: str
    args: tuple[str, ...]
    inputs: tuple[str, ...] | None = None
    comment: str = ""
    loop: str = ""  # `for ...:`, when the statement is the body of a loop

    def head(self) -> str:
        assign = "return " if self.target == "return" else f"{self.target} = "
        return f"{assign}{self.function}("

    def tail(self) -> str:
        return ")" if self.inputs is None else f")({', '.join(self.inputs)})"

    def one_line(self) -> str:
        return f"{self.head()}{', '.join(self.args)}{self.tail()}"


INDENT = 4  # function bodies, where every generated statement goes; and each nesting level
ROOM = LINE_LIMIT - INDENT


class Call(Code):
    """A call as an argument of another, which `layout` may break over lines too."""

    function: str
    args: tuple[str, ...]

    def __new__(cls, function: str, args: Sequence[str]) -> Call:
        call = super().__new__(cls, f"{function}({', '.join(args)})")
        call.function, call.args = function, tuple(args)
        return call


def layout(statements: Sequence[Statement], column: int | None = None) -> list[str]:
    """Statements as source lines (without the function's indent) within LINE_LIMIT, the
    way ruff format writes them: a call that does not fit breaks after its parenthesis, its
    arguments on one line or, when they do not fit either, one per line (a nested call
    breaking in turn). Shape comments line up in a column, unless one long line would push
    it too far right; a broken call's comment trails its last line."""

    def fits(s: Statement) -> bool:
        return len(s.one_line()) + (len(s.comment) + 4 if s.comment else 0) <= ROOM

    if column is None:
        fitting = (len(s.one_line()) for s in statements if fits(s) and not s.loop)
        column = min(max(fitting, default=0), 60)
    lines: list[str] = []
    for s in statements:
        if s.loop:
            lines.append(s.loop)
            inner = layout([replace(s, loop="")], max(column - INDENT, 0))
            lines += [" " * INDENT + line for line in inner]
            continue
        comment = f"  # {s.comment}" if s.comment else ""
        if fits(s):
            code = s.one_line()
            aligned = code.ljust(column) + comment if comment else code
            lines.append(aligned if len(aligned) <= ROOM else code + comment)
        else:
            broken = _broken(s.head(), s.args, s.tail(), depth=0)
            lines += [*broken[:-1], broken[-1] + comment]
    return lines


def _broken(head: str, args: Sequence[str], tail: str, depth: int) -> list[str]:
    """`head`, the arguments and `tail` broken over lines, indented relative to `depth`."""
    pad = " " * INDENT
    inner = ", ".join(args)
    if depth + INDENT + len(inner) <= ROOM:
        return [head, pad + inner, tail]
    lines = [head]
    for arg in args:
        if depth + INDENT + len(arg) + 1 <= ROOM or not isinstance(arg, Call):
            lines.append(f"{pad}{arg},")
        else:
            nested = _broken(f"{arg.function}(", arg.args, "),", depth + INDENT)
            lines += [pad + line for line in nested]
    lines.append(tail)
    return lines


# --- what a node becomes --------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """A layer node where its function builds it: input variables and shapes, the output
    variable, and the expression of its layer name (a literal, or an f-string of `prefix`)."""

    node: ir.LayerNode
    ins: tuple[str, ...]
    shapes: tuple[Shape, ...]
    out: str
    name_of: Callable[[str], Code]
    # The weights its layers hold, as the emitter records them: (layer-name suffix, the
    # variable's name, its shape), in each layer's `get_weights` order.
    weights: list[tuple[str, str, tuple[int, ...]]] = field(default_factory=list)

    def name(self, suffix: str = "") -> Code:
        return self.name_of(identifier(self.node.id) + suffix)

    def holds(self, variable: str, shape: Sequence[int], suffix: str = "") -> None:
        """Record a weight of the layer named with `suffix`."""
        self.weights.append((suffix, variable, tuple(shape)))

    def holds_kernel_and_bias(self, kernel: Sequence[int], outputs: int, suffix: str = "",
                              bias: bool = True) -> None:
        self.holds("kernel", kernel, suffix)
        if bias:
            self.holds("bias", (outputs,), suffix)


@dataclass(frozen=True)
class Rule:
    """How one layer kind becomes code: either `layer`, a Keras layer taking the layer's
    arguments named in `args` (positionally) and its name; or `emit`, the LayerWriter method
    for everything data cannot say."""

    layer: str | None = None
    args: tuple[str, ...] = ()
    emit: str | None = None


class LayerWriter:
    """Turns layer nodes into Statements, recording the helpers they use."""

    RULES: dict[str, Rule] = {
        "dense": Rule(emit="dense"),
        "dropout": Rule("layers.Dropout", ("rate",)),
        "spatial_dropout1d": Rule("layers.SpatialDropout1D", ("rate",)),
        "spatial_dropout2d": Rule("layers.SpatialDropout2D", ("rate",)),
        "gaussian_noise": Rule("layers.GaussianNoise", ("stddev",)),
        "gaussian_dropout": Rule("layers.GaussianDropout", ("rate",)),
        "alpha_dropout": Rule("layers.AlphaDropout", ("rate",)),
        "flatten": Rule("layers.Flatten"),
        "reshape": Rule(emit="reshape"),
        "permute": Rule(emit="permute"),
        "identity": Rule("layers.Identity"),
        **{kind: Rule(emit="activation") for kind in ACTIVATIONS},
        "conv1d": Rule(emit="conv"),
        "conv2d": Rule(emit="conv"),
        "conv3d": Rule(emit="conv"),
        "conv2d_transpose": Rule(emit="conv_transpose"),
        "depthwise_conv2d": Rule(emit="depthwise_conv"),
        "separable_conv1d": Rule(emit="separable_conv"),
        "separable_conv2d": Rule(emit="separable_conv"),
        "maxpool1d": Rule(emit="pool"),
        "maxpool2d": Rule(emit="pool"),
        "maxpool3d": Rule(emit="pool"),
        "avgpool1d": Rule(emit="pool"),
        "avgpool2d": Rule(emit="pool"),
        "avgpool3d": Rule(emit="pool"),
        "global_avgpool1d": Rule("layers.GlobalAveragePooling1D"),
        "global_avgpool2d": Rule("layers.GlobalAveragePooling2D"),
        "global_avgpool3d": Rule("layers.GlobalAveragePooling3D"),
        "global_maxpool1d": Rule("layers.GlobalMaxPooling1D"),
        "global_maxpool2d": Rule("layers.GlobalMaxPooling2D"),
        "global_maxpool3d": Rule("layers.GlobalMaxPooling3D"),
        "upsample1d": Rule(emit="upsample"),
        "upsample2d": Rule(emit="upsample"),
        "upsample3d": Rule(emit="upsample"),
        "zeropad1d": Rule(emit="zeropad"),
        "zeropad2d": Rule(emit="zeropad"),
        "cropping1d": Rule(emit="crop"),
        "cropping2d": Rule(emit="crop"),
        "batchnorm": Rule(emit="batchnorm"),
        "layernorm": Rule(emit="layernorm"),
        "embedding": Rule(emit="embedding"),
        "positional_embedding": Rule(emit="positional_embedding"),
        "simple_rnn": Rule(emit="recurrent"),
        "lstm": Rule(emit="recurrent"),
        "gru": Rule(emit="recurrent"),
        "multihead_attention": Rule(emit="attention"),
        "transformer_encoder": Rule(emit="transformer"),
        "transformer_decoder": Rule(emit="transformer"),
        "attention": Rule(emit="scores_attention"),
        "additive_attention": Rule(emit="scores_attention"),
        "prelu": Rule(emit="prelu"),
        "add": Rule(emit="merge"),
        "subtract": Rule(emit="merge"),
        "multiply": Rule(emit="merge"),
        "average": Rule(emit="merge"),
        "maximum": Rule(emit="merge"),
        "minimum": Rule(emit="merge"),
        "concat": Rule(emit="merge"),
        "dot": Rule(emit="merge"),
    }

    def __init__(self) -> None:
        self.helpers: set[str] = set()

    def emit(self, site: Site) -> list[Statement]:
        kind = site.node.layer.kind
        if kind not in self.RULES:
            raise unsupported(f"the layer `{kind}`", site.node)
        rule = self.RULES[kind]
        if rule.emit is not None:
            method: Callable[[Site], list[Statement]] = getattr(self, f"_{rule.emit}")
            return method(site)
        values = [getattr(site.node.layer, name) for name in rule.args]
        return [self.layer(site, rule.layer, *values)]  # type: ignore[arg-type]

    def layer(
        self,
        site: Site,
        function: str,
        *args: object,
        inputs: tuple[str, ...] | None = None,
        **kwargs: object,
    ) -> Statement:
        """`out = function(args, name=<the node's name>)(inputs)`, the site's inputs unless
        given."""
        kwargs.setdefault("name", site.name())
        return Statement(site.out, function, arguments(*args, **kwargs), inputs or site.ins)

    # --- arguments shared by weighted layers --------------------------------------------

    def activation(self, kind: str | None) -> Code | None:
        if kind == "leaky_relu":
            self.helpers.add("leaky_relu")
        return None if kind is None else ACTIVATIONS[kind]

    @staticmethod
    def initializers(layer, kernel: str = "kernel_initializer") -> dict[str, object]:
        """The initializer arguments that differ from Keras's defaults (glorot_uniform
        kernels, zero biases: the spec's defaults too)."""
        found: dict[str, object] = {kernel: unless(layer.init, "glorot_uniform")}
        if getattr(layer, "bias", True):
            found["bias_initializer"] = unless(layer.bias_init, "zeros")
        return found

    @staticmethod
    def regularizer(layer) -> Code | None:
        """Keras's kernel penalty l1 * sum(|w|) + l2 * sum(w^2), added to the loss."""
        if not (layer.l1 or layer.l2):
            return None
        penalties = arguments(l1=unless(layer.l1, 0), l2=unless(layer.l2, 0))
        return Call("keras.regularizers.L1L2", penalties)

    # --- core ---------------------------------------------------------------------------

    def _dense(self, site: Site) -> list[Statement]:
        layer = site.node.layer
        site.holds_kernel_and_bias((site.shapes[0][-1], layer.units), layer.units, bias=layer.bias)
        return [
            self.layer(
                site,
                "layers.Dense",
                layer.units,
                activation=self.activation(layer.activation),
                use_bias=unless(layer.bias, True),
                **self.initializers(layer),
                kernel_regularizer=self.regularizer(layer),
            )
        ]

    def _reshape(self, site: Site) -> list[Statement]:
        return [self.layer(site, "layers.Reshape", tuple(site.node.layer.shape))]

    def _permute(self, site: Site) -> list[Statement]:
        # The spec numbers axes from 1 after the batch, as Keras's Permute does.
        return [self.layer(site, "layers.Permute", tuple(site.node.layer.axes))]

    def _activation(self, site: Site) -> list[Statement]:
        layer = site.node.layer
        if layer.kind == "softmax":
            return [self.layer(site, "layers.Softmax", axis=unless(layer.axis, -1))]
        if layer.kind == "leaky_relu":
            return [self.layer(site, "layers.LeakyReLU", negative_slope=layer.slope)]
        return [self.layer(site, "layers.Activation", layer.kind)]

    # --- convolution --------------------------------------------------------------------

    def _explicit_padding(self, site: Site, window) -> tuple[list[Statement], str, str]:
        """Keras convolutions pad only by a word (`valid`, `same`, `causal`): explicit zeros
        come first, from a ZeroPadding layer. Returns its statements, the variable the
        convolution reads and the convolution's own `padding`."""
        if isinstance(window.padding, str):
            return [], site.ins[0], window.padding
        pad = self.layer(site, f"layers.ZeroPadding{window.rank}D", axes(window.padding),
                         name=site.name("_pad"))
        return [pad], site.out, "valid"

    def _conv(self, site: Site) -> list[Statement]:
        layer = site.node.layer
        window = layer.window
        steps, x, padding = self._explicit_padding(site, window)
        per_group = site.shapes[0][-1] // layer.groups
        site.holds_kernel_and_bias((*window.kernel, per_group, layer.filters), layer.filters,
                                   bias=layer.bias)
        conv = self.layer(
            site,
            f"layers.Conv{window.rank}D",
            layer.filters,
            axes(window.kernel),
            strides=unless(axes(window.stride), 1),
            padding=unless(padding, "valid"),
            dilation_rate=unless(axes(window.dilation), 1),
            groups=unless(layer.groups, 1),
            activation=self.activation(layer.activation),
            use_bias=unless(layer.bias, True),
            **self.initializers(layer),
            kernel_regularizer=self.regularizer(layer),
            inputs=(x,),
        )
        return [*steps, conv]

    def _depthwise_conv(self, site: Site) -> list[Statement]:
        layer = site.node.layer
        window = layer.window
        steps, x, padding = self._explicit_padding(site, window)
        channels = site.shapes[0][-1]
        site.holds_kernel_and_bias((*window.kernel, channels, layer.multiplier),
                                   channels * layer.multiplier, bias=layer.bias)
        conv = self.layer(
            site,
            "layers.DepthwiseConv2D",
            axes(window.kernel),
            strides=unless(axes(window.stride), 1),
            padding=unless(padding, "valid"),
            depth_multiplier=unless(layer.multiplier, 1),
            dilation_rate=unless(axes(window.dilation), 1),
            activation=self.activation(layer.activation),
            use_bias=unless(layer.bias, True),
            **self.initializers(layer, kernel="depthwise_initializer"),
            inputs=(x,),
        )
        return [*steps, conv]

    def _separable_conv(self, site: Site) -> list[Statement]:
        layer = site.node.layer
        window = layer.window
        steps, x, padding = self._explicit_padding(site, window)
        channels = site.shapes[0][-1]
        middle = channels * layer.multiplier
        site.holds("depthwise_kernel", (*window.kernel, channels, layer.multiplier))
        site.holds("pointwise_kernel", (*(1,) * window.rank, middle, layer.filters))
        if layer.bias:
            site.holds("bias", (layer.filters,))
        init = unless(layer.init, "glorot_uniform")
        conv = self.layer(
            site,
            f"layers.SeparableConv{window.rank}D",
            layer.filters,
            axes(window.kernel),
            strides=unless(axes(window.stride), 1),
            padding=unless(padding, "valid"),
            depth_multiplier=unless(layer.multiplier, 1),
            dilation_rate=unless(axes(window.dilation), 1),
            activation=self.activation(layer.activation),
            use_bias=unless(layer.bias, True),
            depthwise_initializer=init,
            pointwise_initializer=init,
            bias_initializer=unless(layer.bias_init, "zeros") if layer.bias else None,
            inputs=(x,),
        )
        return [*steps, conv]

    def _conv_transpose(self, site: Site) -> list[Statement]:
        """`valid` and `same` are Keras's own ((n-1)*s + max(k, s) and n*s). An int p crops p
        from both sides of (n-1)*s + k: output_padding=0 asks Keras for exactly that length
        where a stride exceeds the kernel, and a Cropping2D layer then crops."""
        layer = site.node.layer
        window = layer.window
        explicit = not isinstance(window.padding, str)
        short = any(s > k for k, s in zip(window.kernel, window.stride, strict=True))
        site.holds_kernel_and_bias((*window.kernel, layer.filters, site.shapes[0][-1]),
                                   layer.filters, bias=layer.bias)
        conv = self.layer(
            site,
            "layers.Conv2DTranspose",
            layer.filters,
            axes(window.kernel),
            strides=unless(axes(window.stride), 1),
            padding=None if explicit else unless(window.padding, "valid"),
            output_padding=0 if explicit and short else None,
            activation=self.activation(layer.activation),
            use_bias=unless(layer.bias, True),
            **self.initializers(layer),
        )
        if not explicit:
            return [conv]
        crop = self.layer(
            site,
            "layers.Cropping2D",
            axes(window.padding),  # type: ignore[arg-type]
            name=site.name(CROP_SUFFIX),
            inputs=(site.out,),
        )
        return [conv, crop]  # the activation commutes with the cropping

    # --- pooling and resampling ---------------------------------------------------------

    def _pool(self, site: Site) -> list[Statement]:
        layer = site.node.layer
        window = layer.window
        return [
            self.layer(
                site,
                f"layers.{POOLS[layer.op]}{window.rank}D",
                axes(window.kernel),
                strides=unless(axes(window.stride), axes(window.kernel)),
                padding=unless(window.padding, "valid"),
                # TensorFlow's 3-D pooling has no float64 kernel, so this layer computes in
                # float32 whatever the global policy (`specc parity` builds in float64).
                dtype="float32" if window.rank == 3 else None,
            )
        ]

    def _upsample(self, site: Site) -> list[Statement]:
        layer = site.node.layer
        scale = axes(per_axis(layer.scale, layer.rank))
        return [self.layer(site, f"layers.UpSampling{layer.rank}D", scale)]

    def _zeropad(self, site: Site) -> list[Statement]:
        layer = site.node.layer
        return [self.layer(site, f"layers.ZeroPadding{layer.rank}D", _sides(layer.pads))]

    def _crop(self, site: Site) -> list[Statement]:
        layer = site.node.layer
        return [self.layer(site, f"layers.Cropping{layer.rank}D", _sides(layer.crops))]

    # --- normalization ------------------------------------------------------------------

    def _batchnorm(self, site: Site) -> list[Statement]:
        self.helpers.add("TorchBatchNormalization")
        layer = site.node.layer
        for variable in ("gamma", "beta", "moving_mean", "moving_variance"):
            site.holds(variable, site.shapes[0][-1:])
        return [
            self.layer(
                site,
                "TorchBatchNormalization",
                momentum=keras_momentum(layer.momentum),
                epsilon=layer.epsilon,
            )
        ]

    def _layernorm(self, site: Site) -> list[Statement]:
        epsilon = site.node.layer.epsilon
        site.holds("gamma", site.shapes[0][-1:])
        site.holds("beta", site.shapes[0][-1:])
        return [self.layer(site, "layers.LayerNormalization", epsilon=epsilon)]

    # --- sequences ----------------------------------------------------------------------

    def _embedding(self, site: Site) -> list[Statement]:
        layer = site.node.layer
        init = unless(layer.init, "uniform")
        site.holds("embeddings", (layer.vocab, layer.dim))
        embedding = self.layer(
            site,
            "layers.Embedding",
            layer.vocab,
            layer.dim,
            embeddings_initializer=init,
            mask_zero=unless(layer.mask_zero, False),
        )
        return [embedding]

    def _positional_embedding(self, site: Site) -> list[Statement]:
        self.helpers.add("PositionalEmbedding")
        layer = site.node.layer
        site.holds("embeddings", (layer.max_len, site.shapes[0][-1]))
        init = unless(layer.init, "uniform")
        return [self.layer(site, "PositionalEmbedding", layer.max_len, initializer=init)]

    def _recurrent(self, site: Site) -> list[Statement]:
        layer = site.node.layer
        function = RECURRENT[layer.kind]
        features, width = site.shapes[0][-1], layer.gates * layer.units
        # The reset_after GRU keeps its input and its recurrent bias, as one array.
        bias = (2, width) if layer.kind == "gru" else (width,)
        for _ in range(layer.directions):  # Bidirectional lists forward, then backward
            site.holds("kernel", (features, width))
            site.holds("recurrent_kernel", (layer.units, width))
            site.holds("bias", bias)
        args = arguments(
            layer.units,
            return_sequences=unless(layer.return_sequences, False),
            return_state=unless(layer.return_state, False),
            go_backwards=unless(layer.go_backwards, False),
            dropout=unless(layer.dropout, 0.0),
            recurrent_dropout=unless(layer.recurrent_dropout, 0.0),
            kernel_initializer=unless(layer.init, "glorot_uniform"),
            recurrent_initializer=unless(layer.recurrent_init, "orthogonal"),
            bias_initializer=unless(layer.bias_init, "zeros"),
            unit_forget_bias=False if layer.kind == "lstm" else None,
            reset_after=True if layer.kind == "gru" else None,
        )
        x, *initial = site.ins
        if initial:  # the states the layer starts from, in Keras's order (h, then c)
            inputs = (x, f"initial_state=[{', '.join(initial)}]")
            return [self.layer(site, function, *map(Code, args), inputs=inputs)]
        if not layer.bidirectional:
            return [self.layer(site, function, *map(Code, args))]
        # Keras concatenates the forward output, then the backward one (as PyTorch does),
        # and puts the backward sequence back in time order.
        return [self.layer(site, "layers.Bidirectional", Call(function, args))]

    def _attention(self, site: Site) -> list[Statement]:
        layer = site.node.layer
        causal = ("use_causal_mask=True",) if layer.causal else ()
        query, value, key = query_value_key(site.shapes)
        _holds_attention(site, query[-1], layer.heads, layer.head_width(query),
                         sources=(value[-1], key[-1]))
        # Self-attention: queries, keys and values are x; else (query, value[, key]).
        inputs = site.ins if len(site.ins) > 1 else site.ins * 2
        return [
            self.layer(
                site,
                "layers.MultiHeadAttention",
                num_heads=layer.heads,
                key_dim=layer.head_width(query),
                dropout=unless(layer.dropout, 0.0),
                **self.initializers(layer),
                inputs=(*inputs, *causal),
            )
        ]

    def _transformer(self, site: Site) -> list[Statement]:
        """transformer_encoder (one input) and transformer_decoder (the target, the
        memory): the helper functions of those names."""
        layer = site.node.layer
        helper = layer.kind
        self.helpers.add(helper)
        # The layers the helper (templates/model_helpers.j2) names after the node.
        features = site.shapes[0][-1]
        decoder = helper == "transformer_decoder"
        attentions = ("self_attention", "cross_attention") if decoder else ("attention",)
        for attention in attentions:
            _holds_attention(site, features, layer.heads, features // layer.heads,
                             suffix=f"{SEPARATOR}{attention}")
        site.holds_kernel_and_bias((features, layer.ff), layer.ff, f"{SEPARATOR}linear1")
        site.holds_kernel_and_bias((layer.ff, features), features, f"{SEPARATOR}linear2")
        for norm in ("norm1", "norm2", "norm3")[: len(attentions) + 1]:
            site.holds("gamma", (features,), f"{SEPARATOR}{norm}")
            site.holds("beta", (features,), f"{SEPARATOR}{norm}")
        args = arguments(
            *map(Code, site.ins),
            site.name(),
            heads=layer.heads,
            ff=layer.ff,
            dropout=unless(layer.dropout, 0.1),
            activation=self.activation(layer.activation) if layer.activation != "relu" else None,
            norm_first=unless(layer.norm_first, False),
            causal=unless(layer.causal, True) if decoder else None,
            epsilon=unless(layer.epsilon, 1e-5),
            init=unless(layer.init, "glorot_uniform"),
            bias_init=unless(layer.bias_init, "zeros"),
        )
        return [Statement(site.out, helper, args)]

    def _scores_attention(self, site: Site) -> list[Statement]:
        """keras.layers.Attention and AdditiveAttention, called on [query, value(, key)]."""
        layer = site.node.layer
        inputs = (f"[{', '.join(site.ins)}]",)
        dropout = unless(layer.dropout, 0.0)
        if layer.kind == "attention":
            if layer.use_scale:
                site.holds("scale", ())
            if layer.score_mode == "concat":
                site.holds("concat_score_weight", ())
            return [
                self.layer(
                    site,
                    "layers.Attention",
                    use_scale=unless(layer.use_scale, False),
                    score_mode=unless(layer.score_mode, "dot"),
                    dropout=dropout,
                    inputs=inputs,
                )
            ]
        if layer.use_scale:
            site.holds("scale", site.shapes[0][-1:])
        return [
            self.layer(
                site,
                "layers.AdditiveAttention",
                use_scale=unless(layer.use_scale, True),
                dropout=dropout,
                inputs=inputs,
            )
        ]

    def _prelu(self, site: Site) -> list[Statement]:
        """One alpha per channel (Keras shares it along every other axis), or one in all;
        Keras starts at zeros, the spec at `alpha`."""
        layer, rank = site.node.layer, len(site.shapes[0])
        shared = tuple(range(1, rank + 1 if layer.shared else rank))
        alpha_shape = (1,) * rank if layer.shared else (*(1,) * (rank - 1), site.shapes[0][-1])
        site.holds("alpha", alpha_shape)
        return [
            self.layer(
                site,
                "layers.PReLU",
                alpha_initializer=Call("keras.initializers.Constant", (lit(layer.alpha),)),
                shared_axes=list(shared) or None,
            )
        ]

    # --- merges -------------------------------------------------------------------------

    def _merge(self, site: Site) -> list[Statement]:
        layer = site.node.layer
        inputs = (f"[{', '.join(site.ins)}]",)
        if layer.kind == "concat":
            axis = unless(layer.axis, -1)
            return [self.layer(site, "layers.Concatenate", axis=axis, inputs=inputs)]
        if layer.kind == "dot":
            normalize = unless(layer.normalize, False)
            axes = layer.axes if isinstance(layer.axes, int) else tuple(layer.axes)
            return [self.layer(site, "layers.Dot", axes, normalize=normalize, inputs=inputs)]
        return [self.layer(site, MERGES[layer.kind], inputs=inputs)]


def _sides(amounts: tuple[tuple[int, int], ...]) -> object:
    """Keras's shortest spelling of (before, after) per axis: `1` for the same everywhere,
    `(1, 2)` per axis where each axis is symmetric, else the pairs (`(0, 1)` in 1-D)."""
    if all(before == after for before, after in amounts):
        return axes([before for before, _ in amounts])
    return amounts[0] if len(amounts) == 1 else amounts


def _holds_attention(
    site: Site, features: int, heads: int, key_dim: int, sources=(), suffix: str = ""
) -> None:
    """A MultiHeadAttention's weights: per projection (of the query's features, and of the
    value's and the key's `sources`, the query's unless given) a [in, heads, key_dim] kernel
    and a [heads, key_dim] bias, then the output's [heads, key_dim, features] kernel and
    bias. Keras builds them query, key, value."""
    value, key = sources or (features, features)
    for source in (features, key, value):
        site.holds("kernel", (source, heads, key_dim), suffix)
        site.holds("bias", (heads, key_dim), suffix)
    site.holds("kernel", (heads, key_dim, features), suffix)
    site.holds("bias", (features,), suffix)


# --- functions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Function:
    """One function of model.py: a block's, or the model builder."""

    name: str
    params: tuple[str, ...]
    doc: str
    body: tuple[str, ...]  # source lines, unindented


# The positional parameters of the calls a block's code makes, which name a block function's
# parameter where its uses pass different numbers (block_code.share).
POSITIONAL = {
    **{f"layers.Conv{n}D": ("filters", "kernel_size") for n in (1, 2, 3)},
    **{f"layers.SeparableConv{n}D": ("filters", "kernel_size") for n in (1, 2)},
    "layers.Conv2DTranspose": ("filters", "kernel_size"),
    "layers.DepthwiseConv2D": ("kernel_size",),
    "layers.Dense": ("units",),
    "layers.Dropout": ("rate",),
    "layers.Embedding": ("vocab", "dim"),
    "layers.Reshape": ("shape",),
    "layers.Permute": ("axes",),
    **{f"layers.{cls}": ("units",) for cls in ("SimpleRNN", "LSTM", "GRU")},
    **{f"layers.{op}{n}D": ("pool_size",) for op in POOLS.values() for n in (1, 2, 3)},
    **{f"layers.ZeroPadding{n}D": ("padding",) for n in (1, 2)},
    **{f"layers.Cropping{n}D": ("cropping",) for n in (1, 2)},
    **{f"layers.UpSampling{n}D": ("size",) for n in (1, 2, 3)},
    "PositionalEmbedding": ("max_len",),
    "layers.Dot": ("axes",),
}


def _loop(
    run: Sequence[ir.Node], steps: Sequence[Sequence[Statement]], names: dict[str, str]
) -> Statement | None:
    """The nodes of one repeated call as one statement in a loop over their numbers,
    `for i in range(1, 4): x = layers.Dense(8, name=f"dense_{i}")(x)`, when each is one
    statement that differs from the others only in its layer's name and writes the variable
    it reads; else None."""
    numbered = [re.fullmatch(r"(.*)_(\d+)", node.id) for node in run]
    if any(m is None or len(group) != 1 for m, group in zip(numbered, steps, strict=True)):
        return None
    base = numbered[0].group(1)  # type: ignore[union-attr]
    first = int(numbered[0].group(2))  # type: ignore[union-attr]
    if [m.group(1) for m in numbered] != [base] * len(run) or [  # type: ignore[union-attr]
        int(m.group(2)) for m in numbered  # type: ignore[union-attr]
    ] != list(range(first, first + len(run))):
        return None
    taken = set(names.values()) | MODULE_NAMES | {PREFIX}
    index = next(c for c in candidates("i", frozenset(taken)) if c not in taken)
    generic = [_numbered(group[0], node.id, f"{base}_{{{index}}}") for node, group in
               zip(run, steps, strict=True)]
    statement = generic[0]
    if any(g != statement for g in generic) or statement.inputs not in (None, (statement.target,)):
        return None
    if statement.inputs is None and statement.args[:1] != (statement.target,):
        return None
    return replace(statement, loop=f"for {index} in range({first}, {first + len(run)}):")


def _numbered(statement: Statement, node_id: str, spelled: str) -> Statement:
    """`statement` with its layer name (a string naming `node_id`) written as an f-string
    in which `spelled` stands for the node id."""
    def respell(arg: str) -> str:
        # The id after the quote that opens the name, or after the separator of a prefix.
        pattern = rf'(?:(?<=")|(?<={SEPARATOR})){re.escape(node_id)}(?=["_])'
        renamed = re.sub(pattern, spelled, arg)
        if renamed != arg and '="' in renamed and 'f"' not in renamed:
            renamed = renamed.replace('="', '=f"', 1)
        elif renamed != arg and renamed.startswith('"'):
            renamed = "f" + renamed
        return renamed

    return replace(statement, args=tuple(respell(a) for a in statement.args))


def _inside_out(
    uses: dict[str, list[tuple[str, str]]], blocks: dict[tuple[str, str], ir.BlockNode]
) -> list[tuple[str, list[tuple[str, str]]]]:
    """The uses of each block, every block after the blocks it holds."""
    ordered: list[tuple[str, list[tuple[str, str]]]] = []
    done: set[str] = set()

    def visit(block: str) -> None:
        if block in done:
            return
        done.add(block)
        for key in uses[block]:
            for inner in blocks[key].body.nodes:
                if isinstance(inner, ir.BlockNode):
                    visit(inner.block)
        ordered.append((block, uses[block]))

    for block in uses:
        visit(block)
    return ordered


def _block_key(node: ir.BlockNode) -> tuple[str, str]:
    """Instantiations with equal keys have equal code (shapes included), so share a function."""
    return node.block, node.body.model_dump_json(exclude={"span"})


class ModuleBuilder:
    """Builds every function of one model.py: one per spec block (block_code.share writes
    the code of its uses once), then the model's."""

    def __init__(self, model: ir.Model) -> None:
        self.model = model
        self.layers = LayerWriter()
        self.blocks: dict[tuple[str, str], ir.BlockNode] = {}  # in definition order
        self._collect(model.graph)
        # One function per block; a variant (block_code.share) takes the next free name.
        self.namer = Namer(MODULE_NAMES | {PREFIX})
        blocks = dict.fromkeys(node.block for node in self.blocks.values())
        self.function_names = {
            block: self.namer.name(snake_case(block).strip("_") or "block") for block in blocks
        }
        # Per distinct use of a block: its call's function and keyword arguments.
        self.calls: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {}
        # The manifest entries of each block function's layers, names relative to its prefix.
        self.block_entries: dict[tuple[str, str], list[Entry]] = {}
        self.entries: list[Entry] = []  # the model's, filled by the builder
        self.shared_layers: dict[str, str] = {}  # a shared layer's variable, by its first use
        # Variables and parameters never shadow a module-level name. (No dunder names:
        # `__import__` → `import_`, as the function names above.)
        self.reserved = MODULE_NAMES | frozenset(self.function_names.values())

    def _collect(self, graph: ir.Graph) -> None:
        """The distinct block instantiations, inner blocks before the blocks that use them."""
        for node in graph.nodes:
            if isinstance(node, ir.BlockNode):
                self._collect(node.body)
                self.blocks.setdefault(_block_key(node), node)

    def functions(self) -> list[Function]:
        uses: dict[str, list[tuple[str, str]]] = {}
        for key in self.blocks:  # inner blocks first: a block's calls are known when it is used
            uses.setdefault(key[0], []).append(key)
        first_use = {key: index for index, key in enumerate(self.blocks)}
        blocks: list[tuple[int, Function]] = []
        for block, keys in _inside_out(uses, self.blocks):
            for function in self._block_functions(block, keys):
                blocks.append((min(first_use[k] for k in function[1]), function[0]))
        return [f for _, f in sorted(blocks, key=lambda b: b[0])] + [self._builder()]

    def _variables(
        self, graph: ir.Graph, reserved: frozenset[str], keep_inputs: bool = False
    ) -> dict[str, str]:
        """Spec names for named values; `x` for the unnamed ones (sequence layers, the middle
        of a chain), which the checker labels with their node id. With `keep_inputs`, the
        inputs' variables live to the end (keras.Model takes them there)."""
        named = any(node.output.label != node.id for node in graph.nodes)
        inputs = [(v.id, "x" if v.id == "in" and not named else v.label) for v in graph.inputs]
        kept = [*graph.outputs, *(v.id for v in graph.inputs if keep_inputs)]
        return variable_names(inputs, graph_steps(graph.nodes), kept, reserved=reserved)

    def _statements(
        self,
        graph: ir.Graph,
        names: dict[str, str],
        name_of: Callable[[str], Code],
        entries: list[Entry],
    ) -> list[Statement]:
        """The graph's statements; the manifest entries of its layer nodes go to `entries`,
        with names relative to the graph's function."""
        statements: list[Statement] = []
        index = 0
        while index < len(graph.nodes):
            run = repeated_call(graph.nodes, index)
            index += len(run)
            found: list[Entry] = []
            steps = [self._node_statements(graph, node, names, name_of, found) for node in run]
            entries += found
            loop = _loop(run, steps, names) if len(run) > 1 else None
            statements += [loop] if loop else [step for group in steps for step in group]
        return statements

    def _node_statements(
        self,
        graph: ir.Graph,
        node: ir.Node,
        names: dict[str, str],
        name_of: Callable[[str], Code],
        entries: list[Entry],
    ) -> list[Statement]:
        """The statements of one node, its output's shape beside the last."""
        ins = tuple(names[v] for v in node.inputs)
        out = ", ".join(names[value.id] for value in node.results)  # states after the output
        if isinstance(node, ir.BlockNode):
            function, arguments = self.calls[_block_key(node)]
            name = f"{PREFIX}={name_of(identifier(node.id))}"
            steps = [Statement(out, function, (*ins, *arguments, name))]
            inner = self.block_entries[_block_key(node)]
            entries += [_inside(node.id, entry) for entry in inner]
        else:
            shapes = tuple(graph.value(v).shape for v in node.inputs)
            site = Site(node, ins, shapes, out, name_of)
            steps = self.layers.emit(site)
            entry = _entry(site)
            if node.sharing is not None and site.weights:
                steps = self._shared(site, steps)
                entry = _entry(site)
                if node.reuses and entry.name == identifier(node.id):
                    # Its output is the second call's of the first use's layer.
                    entry = replace(entry, name=identifier(node.sharing.first))
            entries.append(entry)
        comment = ", ".join(shape_comment(value.shape, "last") for value in node.results)
        return [*steps[:-1], replace(steps[-1], comment=comment)]

    def _shared(self, site: Site, steps: list[Statement]) -> list[Statement]:
        """The statements of a shared layer's use: the first use builds the layer into a
        variable of its own and calls it, a later use calls that variable (the weights are
        the first's, and so is its manifest entry's). Its weightless companions (a padding)
        stay each use's own."""
        node = site.node
        sharing = node.sharing
        assert sharing is not None
        name = f"name={site.name()}"
        main = next((i for i, step in enumerate(steps)
                     if name in step.args and step.inputs is not None), None)
        if main is None:
            raise unsupported(f"sharing the layer `{node.layer.kind}`", node)
        step = steps[main]
        variable = self.shared_layers[sharing.first]
        call = Statement(step.target, variable, step.inputs or ())
        if node.reuses:
            site.weights.clear()
            return [*steps[:main], call, *steps[main + 1:]]
        build = Statement(variable, step.function, step.args)
        return [*steps[:main], build, call, *steps[main + 1:]]

    def _shared_variables(self, graph: ir.Graph, names: dict[str, str]) -> dict[str, str]:
        """The variable holding each shared layer, by the id of its first use: the `let`
        name, where no value's variable or module-level name takes it."""
        taken = set(names.values()) | self.reserved
        found: dict[str, str] = {}
        for node in graph.nodes:
            if isinstance(node, ir.LayerNode) and node.sharing is not None and not node.reuses:
                wanted = snake_case(node.sharing.name).strip("_") or "shared"
                variable = next(c for c in candidates(wanted, self.reserved) if c not in taken)
                taken.add(variable)
                found[node.id] = variable
        return found

    def _block_functions(
        self, block: str, keys: list[tuple[str, str]]
    ) -> list[tuple[Function, list[tuple[str, str]]]]:
        """The function of `block` (one per variant, rarely more) and the uses it serves."""
        uses, statements, variables = [], [], set()
        for key in keys:
            node = self.blocks[key]
            graph = node.body
            names = self._variables(graph, self.reserved | {PREFIX})
            variables |= set(names.values())

            def name_of(name: str) -> Code:  # an identifier: safe inside the f-string
                return Code(f'f"{{{PREFIX}}}{SEPARATOR}{name}"')

            entries: list[Entry] = []
            with keeping_defaults():  # so that the uses line up (block_code.share)
                steps = self._statements(graph, names, name_of, entries)
            self.block_entries[key] = entries
            (value,) = graph.inputs
            doc = (
                f"The `{identifier(node.block)}` block: takes "
                f"{shape_comment(value.shape, 'last')} and returns "
                f"{shape_comment(node.output.shape, 'last')}; its layers' names start with "
                f"`{PREFIX}`."
            )
            returns = ", ".join(names[v] for v in graph.outputs)
            head = [f"{names[value.id]} {returns}"]  # the variables in and out
            sections = [head, *([s.target, s.function, str(s.inputs), *s.args] for s in steps)]
            uses.append(Use(sections, [doc, *(s.comment for s in steps)], node.args))
            statements.append((steps, names[value.id], returns))
        reserved = frozenset(self.reserved | variables | {PREFIX})
        definitions = share(uses, POSITIONAL, reserved)
        functions = []
        for index, definition in enumerate(definitions):
            name = self.function_names[block] if index == 0 else self.namer.name(
                self.function_names[block])
            steps, x, returns = statements[definition.members[0]]
            shared = [
                replace(step, args=tuple(a for a in definition.render(n + 1)[3:] if a),
                        comment=comment)
                for n, (step, comment) in enumerate(
                    zip(steps, definition.comments[1:], strict=True))
            ]
            body = [*layout(shared), f"return {returns}"]
            members = [keys[m] for m in definition.members]
            for key, arguments in zip(members, definition.arguments, strict=True):
                self.calls[key] = (name, tuple(f"{p}={v}" for p, v in arguments.items()))
            # (Uses whose docstrings differ in their words leave it empty.)
            doc = definition.comments[0] or f"The `{identifier(block)}` block."
            if len(definitions) > 1:
                doc += (
                    f" One of {len(definitions)} functions for this block (this is number "
                    f"{index + 1}): its uses differ in more than their numbers."
                )
            params = (x, *definition.params, PREFIX)
            functions.append((Function(name, params, doc, tuple(body)), members))
        return functions

    def _builder(self) -> Function:
        graph = self.model.graph
        names = self._variables(graph, self.reserved, keep_inputs=True)
        keras_names = input_names([v.id for v in graph.inputs])
        statements = [
            Statement(
                names[v.id],
                "keras.Input",
                arguments(
                    shape=tuple(v.shape),
                    dtype=None if v.dtype == "float32" else v.dtype,
                    name=keras_name,
                ),
                comment=shape_comment(v.shape, "last"),
            )
            for v, keras_name in zip(graph.inputs, keras_names, strict=True)
        ]
        self.shared_layers = self._shared_variables(graph, names)
        statements += self._statements(
            graph, names, lambda name: Code(lit(name)), self.entries
        )
        inputs = [names[v.id] for v in graph.inputs]
        outputs = [names[v] for v in graph.outputs]
        model = Statement(
            "return",
            "keras.Model",
            arguments(
                inputs=Code(inputs[0] if len(inputs) == 1 else f"[{', '.join(inputs)}]"),
                outputs=Code(outputs[0] if len(outputs) == 1 else f"[{', '.join(outputs)}]"),
                name=node_name(self.model.name, "model"),
            ),
        )
        body = [*layout(statements), *layout([model])]
        ins = ", ".join(f"{names[v.id]} {shape_comment(v.shape, 'last')}" for v in graph.inputs)
        outs = ", ".join(
            f"{names[v]} {shape_comment(graph.value(v).shape, 'last')}" for v in graph.outputs
        )
        doc = f"The `{identifier(self.model.name)}` model: takes {ins} and returns {outs}."
        return Function(BUILDER, (), doc, tuple(body))


# --- rendering ------------------------------------------------------------------------------


@cache
def _environment():
    return template_environment(TEMPLATES)


def _entry(site: Site) -> Entry:
    """The manifest entry of the layer node a site has just emitted."""
    node = site.node
    name = identifier(node.id)
    weights = tuple(Weight(name + suffix, variable, shape)
                    for suffix, variable, shape in site.weights)
    return Entry((node.id,), node.layer.kind, output_layer_name((node.id,), node), "last", None,
                 weights)


def _inside(block_id: str, entry: Entry) -> Entry:
    """A block function's manifest entry as its caller names it: after the block node's id."""
    prefix = identifier(block_id) + SEPARATOR
    weights = tuple(replace(w, holder=prefix + w.holder) for w in entry.weights)
    return replace(entry, node=(block_id, *entry.node), name=prefix + entry.name, weights=weights)


def render_model(model: ir.Model) -> str:
    """The source of a standalone model.py for `model` (see the module docstring)."""
    return write_model(model)[0]


def manifest(model: ir.Model) -> Manifest:
    """What model.py holds for each layer node of `model` (see specc.backends.common.manifest):
    Keras holds every value channels-last and applies `activation=` inside the layer."""
    return write_model(model)[1]


def write_model(model: ir.Model) -> tuple[str, Manifest]:
    """The source of model.py and its manifest, from one pass over the model."""
    module = ModuleBuilder(model)
    functions = module.functions()
    env = _environment()
    functions_source = env.get_template("model_functions.j2").render(
        functions=[_function_context(f) for f in functions]
    )
    helpers = [h for h in HELPERS if h in module.layers.helpers]
    helpers_source = env.get_template("model_helpers.j2").render(
        helpers=helpers,
        masked_positions="positional_embedding" in model.graph.reading_masks(),
    )
    used = names_used(helpers_source + functions_source)
    source = env.get_template("model.py.j2").render(
        model_name=identifier(model.name),
        builder=BUILDER,
        source=Path(model.file).name,
        from_keras=[name for name in IMPORTED[1:] if name in used],
        notes=_naming_notes(model, bool(module.blocks), "    for " in functions_source),
        helpers=helpers_source.strip(),
        functions=functions_source.strip(),
    )
    return source.rstrip() + "\n", Manifest("tensorflow", BUILDER, tuple(module.entries))


def _naming_notes(model: ir.Model, has_blocks: bool, has_loops: bool) -> str:
    """The module docstring's paragraph on layer names and on arguments that differ from
    the spec's on purpose: only what holds for this model's layers."""
    text = "Every layer is named after the spec's node (`conv2d_1`)"
    if has_blocks:
        text += ", a block's layers after the block's node too (`residual_1__conv2d_1`)"
    text += (
        ": with `.` for `__`, the name of the PyTorch program's submodule with the same "
        "weights"
    )
    if has_loops:
        text += (
            ", except where a loop builds the layers of a repeated call: PyTorch holds those "
            "in a list, in the same order"
        )
    text += "."
    unlike = _unlike_the_spec({node.layer.kind for _, node in model.graph.walk()})
    if unlike:
        text += f" Arguments that look unlike the spec's on purpose: {'; '.join(unlike)}."
    return textwrap.fill(text, width=LINE_LIMIT - 5, break_on_hyphens=False)


def _unlike_the_spec(kinds: set[str]) -> list[str]:
    """Arguments Keras spells unlike the spec, for the layer kinds the model has."""
    notes = []
    if "batchnorm" in kinds:
        notes.append(
            "Keras's BatchNormalization momentum is the weight of the running average (1 - "
            "the spec's)"
        )
    norms = [kind for kind in ("batchnorm", "layernorm") if kind in kinds]
    if norms:
        which = "both normalizations take" if len(norms) == 2 else f"{norms[0]} takes"
        notes.append(f"{which} the spec's epsilon (Keras's default is 1e-3)")
    if "lstm" in kinds:
        notes.append(
            "LSTMs start with zero forget-gate biases (unit_forget_bias=False), as the spec's "
            "initializers say"
        )
    return notes


def _function_context(function: Function) -> dict[str, object]:
    width = LINE_LIMIT - INDENT - 6  # the docstring's quotes, at both ends of one line
    return {
        "name": function.name,
        "params": ", ".join(function.params),
        "returns": " -> keras.Model" if function.name == BUILDER else "",
        "doc": textwrap.fill(function.doc, width=width, subsequent_indent=" " * INDENT),
        "body": function.body,
    }
