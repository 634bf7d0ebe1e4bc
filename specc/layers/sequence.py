"""Sequence layers: token and positional embeddings, and recurrent layers over [time, features]."""

from typing import ClassVar, Literal

from specc.backends.registry import BACKENDS
from specc.errors import ShapeError, mismatch
from specc.layers.args import Flag, PositiveInt, Rate
from specc.layers.base import (
    Backend,
    Layer,
    ParamCount,
    Shape,
    fmt_shape,
    require_known,
    require_rank,
)
from specc.layers.initializers import BIAS_INIT_HINTS, INIT_HINTS, BiasInitializer, Initializer

SEQUENCE = "[time, features]"


def sequence_features(layer: str, shape: Shape) -> int:
    """Check that `shape` is [time, features] and return the (known) feature count."""
    require_rank(layer, shape, 2, SEQUENCE)
    return require_known(shape, -1, "features (last axis)")


class Embedding(Layer):
    """Looks up a learned `dim`-vector for each int token id in [0, vocab): [...] → [..., dim].

    Initialized U(-0.05, 0.05) (`uniform`, Keras's default) unless `init` says otherwise.
    With `mask_zero`, id 0 is padding: the output carries a mask (`specc/layers/masking.py`)
    that the recurrent layers, global average pooling and self-attention after it honour.
    """

    kind: Literal["embedding"] = "embedding"
    vocab: PositiveInt
    dim: PositiveInt
    mask_zero: Flag = False
    init: Initializer = "uniform"

    hints: ClassVar[dict[str, str]] = {
        "num_embeddings": "vocab",
        "input_dim": "vocab",
        "vocab_size": "vocab",
        "embedding_dim": "dim",
        "output_dim": "dim",
        **INIT_HINTS,
    }
    accepts = "int"

    def output_shape(self, inputs: list[Shape]) -> Shape:
        return (*inputs[0], self.dim)

    def params(self, inputs: list[Shape], backend: Backend) -> ParamCount:
        return ParamCount(self.vocab * self.dim)

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        return 0  # a table lookup


class PositionalEmbedding(Layer):
    """Adds a learned vector per position to a [time, features] input (as in keras.io's
    TokenAndPositionEmbedding); sequences may be shorter than `max_len`, never longer.
    Initialized U(-0.05, 0.05) (`uniform`) unless `init` says otherwise."""

    kind: Literal["positional_embedding"] = "positional_embedding"
    max_len: PositiveInt
    init: Initializer = "uniform"

    hints: ClassVar[dict[str, str]] = {
        "maxlen": "max_len",
        "sequence_length": "max_len",
        **INIT_HINTS,
    }

    def output_shape(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        sequence_features(self.kind, shape)
        time = shape[0]
        if time is not None and time > self.max_len:
            raise ShapeError(
                mismatch(
                    f"max_len={self.max_len} has no position for every step of the input "
                    f"{fmt_shape(shape)}",
                    f"at most {self.max_len} time steps",
                    time,
                )
            )
        return shape

    def params(self, inputs: list[Shape], backend: Backend) -> ParamCount:
        return ParamCount(self.max_len * sequence_features(self.kind, inputs[0]))


class Recurrent(Layer):
    """A recurrent layer over [time, features] (shared by simple_rnn, lstm and gru).

    Output: the last step's state [units], or every step's [time, units] with
    `return_sequences`; `bidirectional` runs a second layer backwards in time and
    concatenates, doubling units and parameters. Kernels start `glorot_uniform`, recurrent
    kernels `orthogonal` and biases zeros, as Keras does (Keras's LSTM adds 1 to the forget
    gate bias by default; the contract's zeros win, so its backend passes
    unit_forget_bias=False).

    Options, all Keras's: `dropout` drops inputs and `recurrent_dropout` the previous state,
    while training, with one mask per sequence for all steps; `go_backwards` reads the
    sequence last step first (and returns the sequence of outputs in that reversed order).

    Parameters per direction, g gates, f features, u units: g * (u * (f + u) + b * u), where
    b counts bias vectors: PyTorch always has two (input and recurrent); Keras has one,
    except GRU whose default reset_after=True has two as well. Where Keras has one, the
    PyTorch program keeps the second at zero and does not train it, so that both train
    alike: it counts as non-trainable.
    """

    units: PositiveInt
    return_sequences: Flag = False
    bidirectional: Flag = False
    dropout: Rate = 0.0
    recurrent_dropout: Rate = 0.0
    go_backwards: Flag = False
    init: Initializer = "glorot_uniform"
    recurrent_init: Initializer = "orthogonal"
    bias_init: BiasInitializer = "zeros"
    # Graph form only: the final states too, `seq, h, c = x -> lstm(8, return_state=true)`.
    return_state: Flag = False

    gates: ClassVar[int]
    keras_biases: ClassVar[int] = 1
    # The final states `return_state` gives after the output, in Keras's order: h (and c).
    state_names = ("h",)
    hints: ClassVar[dict[str, str]] = {
        "hidden_size": "units",
        "num_units": "units",
        "recurrent_initializer": "recurrent_init",
        "reverse": "go_backwards",
        **INIT_HINTS,
        **BIAS_INIT_HINTS,
    }

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def has_options(self) -> bool:
        """Whether a recurrent dropout or `go_backwards` asks for more than a framework's
        fused layer (nn.LSTM) does; a padding mask on the input does too."""
        return bool(self.dropout or self.recurrent_dropout or self.go_backwards)

    def output_shape(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        sequence_features(self.kind, shape)
        if self.go_backwards and self.bidirectional:
            raise ShapeError(
                mismatch(
                    "go_backwards=true cannot be bidirectional: its backward direction would "
                    "read forwards (Keras's Bidirectional refuses it)",
                    "one of go_backwards and bidirectional",
                    "both",
                )
            )
        if (self.return_state or len(inputs) > 1) and self.has_options:
            raise ShapeError(
                mismatch(
                    "return_state and initial_state are not supported together with dropout, "
                    "recurrent_dropout or go_backwards yet",
                    "the states of a layer without those options",
                    "both",
                )
            )
        if len(inputs) > 1:  # `initial_state=[h, c]`: the states it starts from
            self._check_initial_states(inputs[1:])
        width = self.units * self.directions
        return (shape[0], width) if self.return_sequences else (width,)

    def _check_initial_states(self, states: list[Shape]) -> None:
        names = ", ".join(self.state_names)
        if self.bidirectional:
            raise ShapeError(
                "initial_state takes a layer of one direction (expected bidirectional=false, "
                "got bidirectional=true)"
            )
        if len(states) != len(self.state_names):
            raise ShapeError(
                f"initial_state gives {len(states)} state{'s' * (len(states) != 1)} (expected "
                f"{len(self.state_names)}: {names}, each [{self.units}])"
            )
        for name, shape in zip(self.state_names, states, strict=True):
            if tuple(shape) != (self.units,):
                raise ShapeError(
                    f"the initial state {name} must be [{self.units}], one value per unit "
                    f"(expected [{self.units}], got {fmt_shape(shape)})"
                )

    def state_shapes(self, inputs: list[Shape]) -> list[Shape]:
        """With `return_state`: the final state(s) after the output, [units] each."""
        if not self.return_state:
            return []
        if self.bidirectional:
            raise ShapeError(
                "return_state=true takes a layer of one direction (expected "
                "bidirectional=false, got bidirectional=true)"
            )
        return [(self.units,)] * len(self.state_names)

    def params(self, inputs: list[Shape], backend: Backend) -> ParamCount:
        features = sequence_features(self.kind, inputs[0])
        u = self.units
        per_bias = self.directions * self.gates * u  # the gates stacked, in each direction
        trainable = per_bias * (features + u + self.keras_biases)
        # Biases a framework carries beyond the layer's own are kept at zero, not trained.
        carried = BACKENDS[backend].params.recurrent_bias_vectors(self.keras_biases)
        frozen = per_bias * (carried - self.keras_biases)
        return ParamCount(trainable, frozen)

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        time, features = inputs[0]
        if time is None or features is None:
            return None
        u = self.units
        return 2 * time * self.directions * self.gates * u * (features + u)


class SimpleRNN(Recurrent):
    """h_t = tanh(W x_t + U h_{t-1} + b)."""

    kind: Literal["simple_rnn"] = "simple_rnn"
    gates = 1


class LSTM(Recurrent):
    """Long short-term memory; both frameworks stack the gates as input, forget, cell, output
    (PyTorch calls the cell candidate g), so copied weights need no reordering."""

    kind: Literal["lstm"] = "lstm"
    gates = 4
    state_names = ("h", "c")  # the hidden state, then the cell state


class GRU(Recurrent):
    """Gated recurrent unit with the reset gate applied after the recurrent matmul (Keras's
    reset_after=True, PyTorch's only form); gate order Keras z, r, h vs PyTorch r, z, n."""

    kind: Literal["gru"] = "gru"
    gates = 3
    keras_biases = 2
