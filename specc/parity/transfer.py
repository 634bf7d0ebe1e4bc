"""PyTorch weights as Keras weights and back, for one spec model's two generated programs:
how `specc parity` and the tests copy a model from one framework to the other.

What each program holds comes from its generator's manifest (specc.backends.common.manifest):
a weighted node's state-dict tensors under its module path, in state-dict order, and the
Keras variables of the layers named after it, in `get_weights` order. This module knows only
how the tensors of a layer kind map onto each other, in those orders (CONVERSIONS); it
imports numpy only: callers bring arrays and take arrays.

    transfer = Transfer.of(model)
    state = {key: tensor.numpy() for key, tensor in torch_model.state_dict().items()}
    for name, weights in transfer.to_keras(state).items():
        keras_model.get_layer(name).set_weights(weights)

PyTorch → Keras, kind by kind:

- dense: weight [out, in], bias → kernel [in, out] (the transpose), bias.
- conv1d, conv2d, conv3d: weight [out, in/groups, *window] → kernel [*window, in/groups, out].
- conv2d_transpose: weight [in, out, kh, kw] → kernel [kh, kw, out, in]; no spatial flip, as
  both are the adjoint of the same correlation.
- depthwise_conv2d: weight [C*m, 1, kh, kw] → kernel [kh, kw, C, m]; PyTorch's output channel
  c*m + j is Keras's (channel c, multiplier j).
- separable_conv1d, separable_conv2d: the depthwise step's weight [C*m, 1, *window] as
  depthwise_conv2d's → depthwise_kernel [*window, C, m]; the pointwise step's [filters, C*m,
  1, ...] as a convolution's → pointwise_kernel [1, ..., C*m, filters]; its bias unchanged.
- batchnorm: weight, bias, running mean, running variance (and a count of batches, which
  Keras does not keep) → gamma, beta, moving_mean, moving_variance. layernorm: weight, bias
  → gamma, beta.
- embedding, positional_embedding: weight [rows, dim], unchanged.
- simple_rnn, lstm, gru: per direction (forward, then backward), input weight [g*u, f],
  recurrent weight [g*u, u], input bias, recurrent bias → kernel [f, g*u], recurrent_kernel
  [u, g*u] (the transposes), and for simple_rnn and lstm one bias = the sum of the two; gates
  in LSTM order i, f, g (Keras's c), o in both. GRU gates are r, z, n in PyTorch and z, r, h
  in Keras, so their blocks swap; Keras's reset_after GRU keeps both biases as one [2, 3u]
  array.
- multihead_attention: the query, key, value and output projections' weight [h*k, f] (the
  output's [f, h*k]) and bias → kernels [f, h, k] ([h, k, f]) and biases [h, k] ([f]).
  Cross-attention's key and value projections take the key's and the value's own features.
- transformer_encoder: its attention (as above), then two linear layers (as dense) and two
  layer norms, each a Keras layer of its own. transformer_decoder: its self-attention and
  its cross-attention, then the two linear layers and three layer norms.
- attention, additive_attention: the scalars scale and concat_score_weight, the vector
  scale, unchanged.
- prelu: the alphas, [C] (or [1]) in PyTorch, [1, ..., C] (or all ones) in Keras.

Going back, Keras's single recurrent bias becomes PyTorch's input bias (the recurrent one
zero), and each batchnorm gets a batch count of 0, so that `load_state_dict` finds every
entry it expects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from specc import ir
from specc.backends import manifest
from specc.backends.common.manifest import Entry, Manifest

Arrays = list[np.ndarray]


# --- conversions, kind by kind -------------------------------------------------------------
# Each kind has a pair of functions: to Keras, from the node's PyTorch tensors in state-dict
# order to its Keras variables in manifest order; and back.


def _kernel(weight: np.ndarray) -> np.ndarray:
    """[a, b, *window] → [*window, b, a]: a convolution's [out, in, ...] weight as Keras's
    [..., in, out] kernel, and a transposed one's [in, out, ...] as [..., out, in]."""
    rank = weight.ndim
    return weight.transpose(*range(2, rank), 1, 0)


def _weight(kernel: np.ndarray) -> np.ndarray:
    """The inverse of `_kernel`."""
    rank = kernel.ndim
    return kernel.transpose(rank - 1, rank - 2, *range(rank - 2))


def linear_to_keras(layer, tensors: Arrays) -> Arrays:
    weight, *bias = tensors
    return [weight.T, *bias]


def linear_to_torch(layer, variables: Arrays) -> Arrays:
    kernel, *bias = variables
    return [kernel.T, *bias]


def conv_to_keras(layer, tensors: Arrays) -> Arrays:
    weight, *bias = tensors
    return [_kernel(weight), *bias]


def conv_to_torch(layer, variables: Arrays) -> Arrays:
    kernel, *bias = variables
    return [_weight(kernel), *bias]


def _depthwise_kernel(weight: np.ndarray, multiplier: int) -> np.ndarray:
    """A grouped convolution's [C * m, 1, *window] weight as Keras's [*window, C, m] kernel."""
    kernel = _kernel(weight)  # [*window, 1, C * m]
    *window, _, outputs = kernel.shape
    return kernel.reshape(*window, outputs // multiplier, multiplier)


def _depthwise_weight(kernel: np.ndarray) -> np.ndarray:
    """The inverse of `_depthwise_kernel`."""
    *window, channels, multiplier = kernel.shape
    return _weight(kernel.reshape(*window, 1, channels * multiplier))


def depthwise_to_keras(layer, tensors: Arrays) -> Arrays:
    weight, *bias = tensors
    return [_depthwise_kernel(weight, layer.multiplier), *bias]


def depthwise_to_torch(layer, variables: Arrays) -> Arrays:
    kernel, *bias = variables
    return [_depthwise_weight(kernel), *bias]


def separable_to_keras(layer, tensors: Arrays) -> Arrays:
    depthwise, pointwise, *bias = tensors
    return [_depthwise_kernel(depthwise, layer.multiplier), _kernel(pointwise), *bias]


def separable_to_torch(layer, variables: Arrays) -> Arrays:
    depthwise, pointwise, *bias = variables
    return [_depthwise_weight(depthwise), _weight(pointwise), *bias]


def batchnorm_to_keras(layer, tensors: Arrays) -> Arrays:
    *statistics, _batches = tensors  # Keras keeps no count of batches
    return statistics


def batchnorm_to_torch(layer, variables: Arrays) -> Arrays:
    return [*variables, np.array(0)]


def same_to_keras(layer, tensors: Arrays) -> Arrays:
    return list(tensors)


def same_to_torch(layer, variables: Arrays) -> Arrays:
    return list(variables)


# Where each Keras gate block comes from in PyTorch's stacking (its own inverse).
GATE_ORDER = {"simple_rnn": (0,), "lstm": (0, 1, 2, 3), "gru": (1, 0, 2)}


def _gates(array: np.ndarray, kind: str) -> np.ndarray:
    """The gate blocks of a stacked weight or bias (axis 0) in the other framework's order."""
    order = GATE_ORDER[kind]
    blocks = np.split(array, len(order))
    return np.concatenate([blocks[i] for i in order])


def recurrent_to_keras(layer, tensors: Arrays) -> Arrays:
    variables = []
    for direction in range(layer.directions):  # four tensors each
        kernel, recurrent, bias_ih, bias_hh = (
            _gates(t, layer.kind) for t in tensors[4 * direction : 4 * direction + 4]
        )
        # Keras's GRU (reset_after) keeps both biases; its RNN and LSTM add them into one.
        bias = np.stack([bias_ih, bias_hh]) if layer.kind == "gru" else bias_ih + bias_hh
        variables += [kernel.T, recurrent.T, bias]
    return variables


def recurrent_to_torch(layer, variables: Arrays) -> Arrays:
    tensors = []
    for direction in range(layer.directions):  # three variables each
        kernel, recurrent, bias = variables[3 * direction : 3 * direction + 3]
        if layer.kind == "gru":
            bias_ih, bias_hh = bias
        else:
            bias_ih, bias_hh = bias, np.zeros_like(bias)
        tensors += [_gates(a, layer.kind) for a in (kernel.T, recurrent.T, bias_ih, bias_hh)]
    return tensors


PROJECTIONS = 4  # query, key, value, output: a weight and a bias each


def _attention_to_keras(heads: int, tensors: Arrays) -> Arrays:
    width, features = tensors[0].shape  # the query's [heads * key_dim, features]
    key_dim = width // heads
    variables = []
    for weight, bias in zip(tensors[0:6:2], tensors[1:6:2], strict=True):
        # [heads * key_dim, in]: the key's and the value's `in` may differ from the query's
        variables += [weight.T.reshape(-1, heads, key_dim), bias.reshape(heads, key_dim)]
    weight, bias = tensors[6:8]
    return [*variables, weight.T.reshape(heads, key_dim, features), bias]


def _attention_to_torch(variables: Arrays) -> Arrays:
    tensors = []
    for kernel, bias in zip(variables[0:6:2], variables[1:6:2], strict=True):
        tensors += [kernel.reshape(kernel.shape[0], -1).T, bias.reshape(-1)]
    kernel, bias = variables[6:8]
    return [*tensors, kernel.reshape(-1, kernel.shape[-1]).T, bias]


def attention_to_keras(layer, tensors: Arrays) -> Arrays:
    return _attention_to_keras(layer.heads, tensors)


def attention_to_torch(layer, variables: Arrays) -> Arrays:
    return _attention_to_torch(variables)


# The encoder layer's tensors after its attention's: two linear layers, then two norms.
ATTENTION = 2 * PROJECTIONS


def _attentions(layer) -> int:
    """The attention layers of a transformer layer: a decoder's two, an encoder's one."""
    return 2 if layer.kind == "transformer_decoder" else 1


def transformer_to_keras(layer, tensors: Arrays) -> Arrays:
    variables = []
    for index in range(_attentions(layer)):
        variables += _attention_to_keras(layer.heads, tensors[index * ATTENTION:][:ATTENTION])
    w1, b1, w2, b2, *norms = tensors[_attentions(layer) * ATTENTION :]
    return [*variables, w1.T, b1, w2.T, b2, *norms]


def transformer_to_torch(layer, variables: Arrays) -> Arrays:
    tensors = []
    for index in range(_attentions(layer)):
        tensors += _attention_to_torch(variables[index * ATTENTION:][:ATTENTION])
    k1, b1, k2, b2, *norms = variables[_attentions(layer) * ATTENTION :]
    return [*tensors, k1.T, b1, k2.T, b2, *norms]


@dataclass(frozen=True)
class Conversion:
    """One kind's pair of conversions (see above). With `reshape`, each array is then
    reshaped to the shape the other program's manifest records for it (prelu's alphas:
    [C] in PyTorch, [1, ..., C] in Keras)."""

    to_keras: Callable[[object, Arrays], Arrays]
    to_torch: Callable[[object, Arrays], Arrays]
    reshape: bool = False

    def convert(self, site_layer, arrays: Arrays, into: Entry, keras: bool) -> Arrays:
        converted = (self.to_keras if keras else self.to_torch)(site_layer, arrays)
        if self.reshape:
            converted = [np.reshape(a, w.shape) for a, w in zip(converted, into.weights,
                                                                 strict=True)]
        return converted


CONVERSIONS: dict[str, Conversion] = {
    "dense": Conversion(linear_to_keras, linear_to_torch),
    "conv1d": Conversion(conv_to_keras, conv_to_torch),
    "conv2d": Conversion(conv_to_keras, conv_to_torch),
    "conv3d": Conversion(conv_to_keras, conv_to_torch),
    "conv2d_transpose": Conversion(conv_to_keras, conv_to_torch),
    "depthwise_conv2d": Conversion(depthwise_to_keras, depthwise_to_torch),
    "separable_conv1d": Conversion(separable_to_keras, separable_to_torch),
    "separable_conv2d": Conversion(separable_to_keras, separable_to_torch),
    "batchnorm": Conversion(batchnorm_to_keras, batchnorm_to_torch),
    "layernorm": Conversion(same_to_keras, same_to_torch),
    "embedding": Conversion(same_to_keras, same_to_torch),
    "positional_embedding": Conversion(same_to_keras, same_to_torch),
    "simple_rnn": Conversion(recurrent_to_keras, recurrent_to_torch),
    "lstm": Conversion(recurrent_to_keras, recurrent_to_torch),
    "gru": Conversion(recurrent_to_keras, recurrent_to_torch),
    "multihead_attention": Conversion(attention_to_keras, attention_to_torch),
    "transformer_encoder": Conversion(transformer_to_keras, transformer_to_torch),
    "transformer_decoder": Conversion(transformer_to_keras, transformer_to_torch),
    "attention": Conversion(same_to_keras, same_to_torch),
    "additive_attention": Conversion(same_to_keras, same_to_torch),
    "prelu": Conversion(same_to_keras, same_to_torch, reshape=True),
}


# --- whole models ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """A weighted layer node, as each program holds it."""

    node: ir.LayerNode
    torch: Entry
    keras: Entry
    conversion: Conversion

    def keras_layers(self) -> list[str]:
        """The Keras layers holding the node's weights, in manifest order."""
        return list(dict.fromkeys(weight.holder for weight in self.keras.weights))


class Transfer:
    """Weights of one model, from either program into the other."""

    def __init__(self, model: ir.Model, torch: Manifest, keras: Manifest) -> None:
        self.sites: list[Site] = []
        for (_, node), torch_entry, keras_entry in zip(
            model.graph.walk(), torch.entries, keras.entries, strict=True
        ):
            if not torch_entry.weights:
                continue
            kind = node.layer.kind
            if kind not in CONVERSIONS:
                raise NotImplementedError(f"no weight conversion for the layer `{kind}` "
                                          f"({node.id})")
            self.sites.append(Site(node, torch_entry, keras_entry, CONVERSIONS[kind]))

    @classmethod
    def of(cls, model: ir.Model) -> Transfer:
        return cls(model, manifest(model, "torch"), manifest(model, "tensorflow"))

    def to_keras(self, state: Mapping[str, np.ndarray]) -> dict[str, Arrays]:
        """The PyTorch program's state dict (as numpy arrays) as Keras weights: layer name →
        the list for `layer.set_weights`. Every entry of `state` must be used: one that is
        not means the two programs disagree."""
        read: set[str] = set()
        weights: dict[str, Arrays] = {}
        for site in self.sites:
            tensors = []
            for weight in site.torch.weights:
                key = f"{weight.holder}.{weight.name}"
                if key not in state:
                    raise KeyError(f"the PyTorch state dict has no `{key}`")
                read.add(key)
                tensors.append(np.asarray(state[key]))
            variables = site.conversion.convert(site.node.layer, tensors, site.keras, keras=True)
            _check_shapes(site.keras, variables, "Keras")
            for weight, array in zip(site.keras.weights, variables, strict=True):
                weights.setdefault(weight.holder, []).append(_contiguous(array))
        unused = sorted(key for key in state if key not in read)
        if unused:
            raise ValueError(f"PyTorch weights without a Keras layer: {', '.join(unused)}")
        return weights

    def to_torch(self, weights: Mapping[str, Sequence[np.ndarray]]) -> dict[str, np.ndarray]:
        """The inverse of `to_keras`: Keras weights by layer name (`{layer.name:
        layer.get_weights() for layer in keras_model.layers}`) as the PyTorch program's state
        dict, for `load_state_dict` after `torch.from_numpy`."""
        read: set[str] = set()
        state: dict[str, np.ndarray] = {}
        for site in self.sites:
            variables = []
            for name in site.keras_layers():
                if name not in weights:
                    raise KeyError(f"no weights of the Keras layer `{name}`")
                read.add(name)
                variables += [np.asarray(w) for w in weights[name]]
            tensors = site.conversion.convert(site.node.layer, variables, site.torch, keras=False)
            _check_shapes(site.torch, tensors, "PyTorch")
            for weight, array in zip(site.torch.weights, tensors, strict=True):
                state[f"{weight.holder}.{weight.name}"] = _contiguous(array)
        unused = sorted(name for name, layer in weights.items() if len(layer) and name not in read)
        if unused:
            raise ValueError(f"Keras weights without a PyTorch module: {', '.join(unused)}")
        return state


def _contiguous(array: np.ndarray) -> np.ndarray:
    """`array` in C order, a scalar staying a scalar (np.ascontiguousarray makes it [1])."""
    return np.ascontiguousarray(array).reshape(np.shape(array))


def _check_shapes(entry: Entry, arrays: Arrays, framework: str) -> None:
    """That converted `arrays` are what the manifest says the program holds."""
    got = [tuple(np.shape(a)) for a in arrays]
    expected = [weight.shape for weight in entry.weights]
    if got != expected:
        raise ValueError(f"the {framework} weights of `{entry.path}` have the shapes {got} "
                         f"(expected {expected})")


def torch_to_keras(model: ir.Model, state: Mapping[str, np.ndarray]) -> dict[str, Arrays]:
    """`Transfer.to_keras` for `model`'s two programs."""
    return Transfer.of(model).to_keras(state)


def keras_to_torch(
    model: ir.Model, weights: Mapping[str, Sequence[np.ndarray]]
) -> dict[str, np.ndarray]:
    """`Transfer.to_torch` for `model`'s two programs."""
    return Transfer.of(model).to_torch(weights)
