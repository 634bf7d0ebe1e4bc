"""PyTorch weights as Keras weights and back, for one spec model's two generated programs:
how `specc parity` and the tests copy a model from one framework to the other.

Both model.py files name a node's weights after its IR node id (see the two generators): the
PyTorch state-dict entries under `residual_1.conv2d_1.` are the weights of the Keras layer
`residual_1__conv2d_1`, each in its framework's layout. This module knows the layouts, kind by
kind (LAYOUTS), and imports numpy only: callers bring arrays and take arrays.

    state = {key: tensor.numpy() for key, tensor in torch_model.state_dict().items()}
    for name, weights in torch_to_keras(model, state).items():
        keras_model.get_layer(name).set_weights(weights)

PyTorch → Keras, kind by kind:

- dense: weight [out, in], bias → kernel [in, out] (the transpose), bias.
- conv1d, conv2d: weight [out, in/groups, *window] → kernel [*window, in/groups, out].
- conv2d_transpose: weight [in, out, kh, kw] → kernel [kh, kw, out, in]; no spatial flip, as
  both are the adjoint of the same correlation.
- depthwise_conv2d: weight [C*m, 1, kh, kw] → kernel [kh, kw, C, m]; PyTorch's output channel
  c*m + j is Keras's (channel c, multiplier j).
- batchnorm: weight, bias, running_mean, running_var → gamma, beta, moving_mean,
  moving_variance. layernorm: weight, bias → gamma, beta.
- embedding, positional_embedding: weight [rows, dim], unchanged.
- simple_rnn, lstm, gru: weight_ih_l0 [g*u, f], weight_hh_l0 [g*u, u], bias_ih_l0, bias_hh_l0
  → kernel [f, g*u], recurrent_kernel [u, g*u] (the transposes), and for simple_rnn and lstm
  one bias = bias_ih + bias_hh; gates in LSTM order i, f, g (Keras's c), o in both. GRU gates
  are r, z, n in PyTorch and z, r, h in Keras, so their blocks swap; Keras's reset_after GRU
  keeps both biases as one [2, 3u] array. Bidirectional: the `_l0` weights, then the
  `_l0_reverse` ones, as Keras lists forward then backward.
- multihead_attention: query/key/value.weight [h*k, f] and .bias [h*k], output.weight
  [f, h*k] and .bias → query/key/value kernels [f, h, k] and biases [h, k], the output
  kernel [h, k, f] and bias [f].
- transformer_encoder: attention.*, linear1, linear2, norm1, norm2 → the Keras layers
  `<name>__attention`, `__linear1`, `__linear2`, `__norm1`, `__norm2`, as above.

Going back, Keras's single recurrent bias becomes PyTorch's bias_ih (bias_hh zero), and each
batchnorm gets a num_batches_tracked of 0 (Keras keeps no such count), so that
`load_state_dict` finds every entry it expects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from specc import ir
from specc.backends.naming import identifier
from specc.backends.tensorflow.model_gen import SEPARATOR, layer_name

Weights = list[np.ndarray]  # one Keras layer's, in `get_weights` order
# Entries a PyTorch state dict may hold that have no Keras counterpart.
UNPORTED = ("num_batches_tracked",)


class Torch:
    """The state-dict entries under one module path; remembers which ones were read."""

    def __init__(self, state: Mapping[str, np.ndarray], path: str, read: set[str]) -> None:
        self.state, self.path, self.read = state, path, read

    def __call__(self, key: str) -> np.ndarray:
        full = f"{self.path}.{key}"
        if full not in self.state:
            raise KeyError(f"the PyTorch state dict has no `{full}`")
        self.read.add(full)
        return np.asarray(self.state[full])

    def at(self, submodule: str) -> Torch:
        return Torch(self.state, f"{self.path}.{submodule}", self.read)


class Keras:
    """The weights of one Keras layer (and of the layers its name prefixes); remembers
    which layers were read."""

    def __init__(self, weights: Mapping[str, Sequence[np.ndarray]], name: str, read: set[str]):
        self.weights, self.name, self.read = weights, name, read

    def __call__(self) -> Weights:
        if self.name not in self.weights:
            raise KeyError(f"no weights for the Keras layer `{self.name}`")
        self.read.add(self.name)
        return [np.asarray(w) for w in self.weights[self.name]]

    def at(self, sublayer: str) -> Keras:
        return Keras(self.weights, f"{self.name}{SEPARATOR}{sublayer}", self.read)


# --- layouts, kind by kind ------------------------------------------------------------------
# Each kind has a pair of functions: to Keras, from the layer's Torch view, giving weights by
# Keras layer-name suffix ("" for the layer itself); and back, from its Keras view, giving
# arrays by state-dict key relative to the module.


def _kernel(weight: np.ndarray) -> np.ndarray:
    """[a, b, *window] → [*window, b, a]: a convolution's [out, in, ...] weight as Keras's
    [..., in, out] kernel, and a transposed one's [in, out, ...] as [..., out, in]."""
    rank = weight.ndim
    return weight.transpose(*range(2, rank), 1, 0)


def _weight(kernel: np.ndarray) -> np.ndarray:
    """The inverse of `_kernel`."""
    rank = kernel.ndim
    return kernel.transpose(rank - 1, rank - 2, *range(rank - 2))


def _with_bias(layer) -> bool:
    return getattr(layer, "bias", True)


def _linear_to_keras(torch: Torch, bias: bool = True) -> Weights:
    return [torch("weight").T, torch("bias")] if bias else [torch("weight").T]


def _linear_to_torch(weights: Weights) -> dict[str, np.ndarray]:
    kernel, *bias = weights
    return {"weight": kernel.T, **({"bias": bias[0]} if bias else {})}


def linear_to_keras(layer, torch: Torch) -> dict[str, Weights]:
    return {"": _linear_to_keras(torch, _with_bias(layer))}


def linear_to_torch(layer, keras: Keras) -> dict[str, np.ndarray]:
    return _linear_to_torch(keras())


def conv_to_keras(layer, torch: Torch) -> dict[str, Weights]:
    weights = [_kernel(torch("weight"))]
    return {"": weights + [torch("bias")] if _with_bias(layer) else weights}


def conv_to_torch(layer, keras: Keras) -> dict[str, np.ndarray]:
    kernel, *bias = keras()
    return {"weight": _weight(kernel), **({"bias": bias[0]} if bias else {})}


def depthwise_to_keras(layer, torch: Torch) -> dict[str, Weights]:
    kernel = _kernel(torch("weight"))  # [kh, kw, 1, C * m]
    kh, kw, _, outputs = kernel.shape
    weights = [kernel.reshape(kh, kw, outputs // layer.multiplier, layer.multiplier)]
    return {"": weights + [torch("bias")] if _with_bias(layer) else weights}


def depthwise_to_torch(layer, keras: Keras) -> dict[str, np.ndarray]:
    kernel, *bias = keras()
    kh, kw, channels, multiplier = kernel.shape
    weight = _weight(kernel.reshape(kh, kw, 1, channels * multiplier))
    return {"weight": weight, **({"bias": bias[0]} if bias else {})}


BATCHNORM = ("weight", "bias", "running_mean", "running_var")


def batchnorm_to_keras(layer, torch: Torch) -> dict[str, Weights]:
    return {"": [torch(key) for key in BATCHNORM]}


def batchnorm_to_torch(layer, keras: Keras) -> dict[str, np.ndarray]:
    return {**dict(zip(BATCHNORM, keras(), strict=True)), "num_batches_tracked": np.array(0)}


def _norm_to_keras(torch: Torch) -> Weights:
    return [torch("weight"), torch("bias")]


def _norm_to_torch(weights: Weights) -> dict[str, np.ndarray]:
    return dict(zip(("weight", "bias"), weights, strict=True))


def layernorm_to_keras(layer, torch: Torch) -> dict[str, Weights]:
    return {"": _norm_to_keras(torch)}


def layernorm_to_torch(layer, keras: Keras) -> dict[str, np.ndarray]:
    return _norm_to_torch(keras())


def table_to_keras(layer, torch: Torch) -> dict[str, Weights]:
    return {"": [torch("weight")]}


def table_to_torch(layer, keras: Keras) -> dict[str, np.ndarray]:
    (weight,) = keras()
    return {"weight": weight}


# Where each Keras gate block comes from in PyTorch's stacking (its own inverse).
GATE_ORDER = {"simple_rnn": (0,), "lstm": (0, 1, 2, 3), "gru": (1, 0, 2)}


def _gates(array: np.ndarray, kind: str) -> np.ndarray:
    """The gate blocks of a stacked weight or bias (axis 0) in the other framework's order."""
    order = GATE_ORDER[kind]
    blocks = np.split(array, len(order))
    return np.concatenate([blocks[i] for i in order])


DIRECTIONS = ("_l0", "_l0_reverse")  # PyTorch's suffixes: forward, then backward


def recurrent_to_keras(layer, torch: Torch) -> dict[str, Weights]:
    weights = []
    for suffix in DIRECTIONS[: layer.directions]:
        kernel, recurrent, bias_ih, bias_hh = (
            _gates(torch(f"{name}{suffix}"), layer.kind)
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        )
        # Keras's GRU (reset_after) keeps both biases; its RNN and LSTM add them into one.
        bias = np.stack([bias_ih, bias_hh]) if layer.kind == "gru" else bias_ih + bias_hh
        weights += [kernel.T, recurrent.T, bias]
    return {"": weights}


def recurrent_to_torch(layer, keras: Keras) -> dict[str, np.ndarray]:
    weights = keras()
    state = {}
    for direction, suffix in enumerate(DIRECTIONS[: layer.directions]):
        kernel, recurrent, bias = weights[3 * direction : 3 * direction + 3]
        if layer.kind == "gru":
            bias_ih, bias_hh = bias
        else:
            bias_ih, bias_hh = bias, np.zeros_like(bias)
        for name, array in zip(
            ("weight_ih", "weight_hh", "bias_ih", "bias_hh"),
            (kernel.T, recurrent.T, bias_ih, bias_hh),
            strict=True,
        ):
            state[f"{name}{suffix}"] = _gates(array, layer.kind)
    return state


PROJECTIONS = ("query", "key", "value")


def _attention_to_keras(heads: int, torch: Torch) -> Weights:
    """Keras's MultiHeadAttention: per projection a [features, heads, key_dim] kernel and a
    [heads, key_dim] bias, then the output's [heads, key_dim, features] kernel and bias."""
    width, features = torch("query.weight").shape  # [heads * key_dim, features]
    key_dim = width // heads
    weights = []
    for projection in PROJECTIONS:
        weights.append(torch(f"{projection}.weight").T.reshape(features, heads, key_dim))
        weights.append(torch(f"{projection}.bias").reshape(heads, key_dim))
    weights.append(torch("output.weight").T.reshape(heads, key_dim, features))
    weights.append(torch("output.bias"))
    return weights


def _attention_to_torch(weights: Weights) -> dict[str, np.ndarray]:
    state = {}
    for index, projection in enumerate(PROJECTIONS):
        kernel, bias = weights[2 * index : 2 * index + 2]
        state[f"{projection}.weight"] = kernel.reshape(kernel.shape[0], -1).T
        state[f"{projection}.bias"] = bias.reshape(-1)
    kernel, bias = weights[6:]
    state["output.weight"] = kernel.reshape(-1, kernel.shape[-1]).T
    state["output.bias"] = bias
    return state


def attention_to_keras(layer, torch: Torch) -> dict[str, Weights]:
    return {"": _attention_to_keras(layer.heads, torch)}


def attention_to_torch(layer, keras: Keras) -> dict[str, np.ndarray]:
    return _attention_to_torch(keras())


# The encoder layer's parts besides its attention: PyTorch submodule names, which are also
# the Keras layers' suffixes.
ENCODER_LINEAR = ("linear1", "linear2")
ENCODER_NORMS = ("norm1", "norm2")


def transformer_to_keras(layer, torch: Torch) -> dict[str, Weights]:
    weights = {f"{SEPARATOR}attention": _attention_to_keras(layer.heads, torch.at("attention"))}
    for name in ENCODER_LINEAR:
        weights[f"{SEPARATOR}{name}"] = _linear_to_keras(torch.at(name))
    for name in ENCODER_NORMS:
        weights[f"{SEPARATOR}{name}"] = _norm_to_keras(torch.at(name))
    return weights


def transformer_to_torch(layer, keras: Keras) -> dict[str, np.ndarray]:
    parts = {"attention": _attention_to_torch(keras.at("attention")())}
    for name in ENCODER_LINEAR:
        parts[name] = _linear_to_torch(keras.at(name)())
    for name in ENCODER_NORMS:
        parts[name] = _norm_to_torch(keras.at(name)())
    return {f"{part}.{key}": array for part, state in parts.items() for key, array in state.items()}


@dataclass(frozen=True)
class Layout:
    """One kind's pair of conversions (see above)."""

    to_keras: Callable[[object, Torch], dict[str, Weights]]
    to_torch: Callable[[object, Keras], dict[str, np.ndarray]]


LAYOUTS: dict[str, Layout] = {
    "dense": Layout(linear_to_keras, linear_to_torch),
    "conv1d": Layout(conv_to_keras, conv_to_torch),
    "conv2d": Layout(conv_to_keras, conv_to_torch),
    "conv2d_transpose": Layout(conv_to_keras, conv_to_torch),
    "depthwise_conv2d": Layout(depthwise_to_keras, depthwise_to_torch),
    "batchnorm": Layout(batchnorm_to_keras, batchnorm_to_torch),
    "layernorm": Layout(layernorm_to_keras, layernorm_to_torch),
    "embedding": Layout(table_to_keras, table_to_torch),
    "positional_embedding": Layout(table_to_keras, table_to_torch),
    "simple_rnn": Layout(recurrent_to_keras, recurrent_to_torch),
    "lstm": Layout(recurrent_to_keras, recurrent_to_torch),
    "gru": Layout(recurrent_to_keras, recurrent_to_torch),
    "multihead_attention": Layout(attention_to_keras, attention_to_torch),
    "transformer_encoder": Layout(transformer_to_keras, transformer_to_torch),
}


# --- whole models ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """A weighted layer node, and where each framework keeps its weights."""

    node: ir.LayerNode
    torch: str  # the module's path in the state dict: `residual_1.conv2d_1`
    keras: str  # the layer's name: `residual_1__conv2d_1`
    layout: Layout


def weighted_layers(model: ir.Model) -> list[Site]:
    """Every layer node of `model` that has weights, depth first."""
    sites = []
    for path, node in model.graph.walk():
        if not any(count.total for count in node.params.values()):
            continue
        kind = node.layer.kind
        if kind not in LAYOUTS:
            raise NotImplementedError(f"no weight layout for the layer `{kind}` ({node.id})")
        full = (*path, node.id)
        torch_path = ".".join(identifier(part) for part in full)
        sites.append(Site(node, torch_path, layer_name(full), LAYOUTS[kind]))
    return sites


def torch_to_keras(model: ir.Model, state: Mapping[str, np.ndarray]) -> dict[str, Weights]:
    """The PyTorch program's state dict (as numpy arrays) as Keras weights: layer name → the
    list for `layer.set_weights`. Every entry of `state` must be used (num_batches_tracked
    aside): one that is not means the two programs disagree."""
    read: set[str] = set()
    weights: dict[str, Weights] = {}
    for site in weighted_layers(model):
        converted = site.layout.to_keras(site.node.layer, Torch(state, site.torch, read))
        for suffix, layer_weights in converted.items():
            weights[site.keras + suffix] = [np.ascontiguousarray(w) for w in layer_weights]
    unused = sorted(k for k in state if k not in read and k.rsplit(".", 1)[-1] not in UNPORTED)
    if unused:
        raise ValueError(f"PyTorch weights without a Keras layer: {', '.join(unused)}")
    return weights


def keras_to_torch(
    model: ir.Model, weights: Mapping[str, Sequence[np.ndarray]]
) -> dict[str, np.ndarray]:
    """The inverse of `torch_to_keras`: Keras weights by layer name (`{layer.name:
    layer.get_weights() for layer in keras_model.layers}`) as the PyTorch program's state
    dict, for `load_state_dict` after `torch.from_numpy`."""
    read: set[str] = set()
    state: dict[str, np.ndarray] = {}
    for site in weighted_layers(model):
        converted = site.layout.to_torch(site.node.layer, Keras(weights, site.keras, read))
        for key, array in converted.items():
            state[f"{site.torch}.{key}"] = np.ascontiguousarray(array)
    unused = sorted(name for name, layer in weights.items() if len(layer) and name not in read)
    if unused:
        raise ValueError(f"Keras weights without a PyTorch module: {', '.join(unused)}")
    return state
