"""Self-attention over [time, features]: multihead_attention, and transformer_encoder (one
encoder layer: attention and feed-forward, each with a residual and a layer norm).
"""

from typing import ClassVar, Literal

from specc.errors import ShapeError, mismatch
from specc.layers.activation import Activation
from specc.layers.args import Flag, PositiveFloat, PositiveInt, Rate
from specc.layers.base import Backend, Layer, ParamCount, Shape, fmt_shape
from specc.layers.initializers import BIAS_INIT_HINTS, INIT_HINTS, BiasInitializer, Initializer
from specc.layers.sequence import sequence_features


def _split_heads(shape: Shape, features: int, heads: int, remedy: str = "") -> int:
    """features / heads, the per-head width; fail when it is not whole."""
    if features % heads:
        raise ShapeError(
            mismatch(
                f"cannot split the input {fmt_shape(shape)} into {heads} heads evenly{remedy}",
                f"features a multiple of {heads}",
                features,
            )
        )
    return features // heads


def _attention_params(features: int, width: int) -> int:
    """Query, key and value projections features → width, the output width → features,
    each with a bias (Keras MultiHeadAttention; PyTorch's in_proj/out_proj when equal)."""
    return 3 * (features * width + width) + width * features + features


def _attention_flops(time: int, features: int, width: int) -> int:
    projections = 2 * time * features * width * 4
    scores_and_mix = 2 * 2 * time * time * width  # Q Kᵀ, then the weights times V
    return projections + scores_and_mix


class MultiHeadAttention(Layer):
    """Self-attention: queries, keys and values all come from the input [time, features], and
    the output has the input's shape. Keras MultiHeadAttention's layout: each head projects
    features → key_dim (values too), and the heads' concatenation heads * key_dim projects
    back to features. `key_dim` defaults to features / heads, PyTorch's fixed choice; any
    other value must work too, so the PyTorch backend writes the layer out itself.

    `causal` masks each step from attending to later steps; `dropout` drops attention weights
    while training.
    """

    kind: Literal["multihead_attention"] = "multihead_attention"
    heads: PositiveInt
    key_dim: PositiveInt | None = None
    dropout: Rate = 0.0
    causal: Flag = False
    init: Initializer = "glorot_uniform"
    bias_init: BiasInitializer = "zeros"

    hints: ClassVar[dict[str, str]] = {
        "num_heads": "heads",
        "nhead": "heads",
        "head_dim": "key_dim",
        "use_causal_mask": "causal",
        "is_causal": "causal",
        **INIT_HINTS,
        **BIAS_INIT_HINTS,
    }

    def head_width(self, shape: Shape) -> int:
        """key_dim, or features / heads when none is given."""
        features = sequence_features(self.kind, shape)
        if self.key_dim is not None:
            return self.key_dim
        return _split_heads(shape, features, self.heads, "; give key_dim to choose their width")

    def output_shape(self, inputs: list[Shape]) -> Shape:
        self.head_width(inputs[0])
        return inputs[0]

    def params(self, inputs: list[Shape], backend: Backend) -> ParamCount:
        features = sequence_features(self.kind, inputs[0])
        return ParamCount(_attention_params(features, self.heads * self.head_width(inputs[0])))

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        time, features = inputs[0]
        if time is None or features is None:
            return None
        return _attention_flops(time, features, self.heads * self.head_width(inputs[0]))


class TransformerEncoder(Layer):
    """One Transformer encoder layer, PyTorch's TransformerEncoderLayer layout:
    self-attention (heads of width features / heads), then linear features → ff,
    `activation`, linear ff → features; each sub-block wrapped in dropout, a residual and a
    layer norm — after the residual (`norm_first=false`, the original Transformer) or at the
    sub-block's input (`norm_first=true`, pre-norm). Stack with `transformer_encoder(...) * N`.

    Extensions: `epsilon` of both layer norms (PyTorch's 1e-5 default), `init`, `bias_init`.
    """

    kind: Literal["transformer_encoder"] = "transformer_encoder"
    heads: PositiveInt
    ff: PositiveInt
    dropout: Rate = 0.1
    activation: Activation = "relu"
    norm_first: Flag = False
    epsilon: PositiveFloat = 1e-5
    init: Initializer = "glorot_uniform"
    bias_init: BiasInitializer = "zeros"

    hints: ClassVar[dict[str, str]] = {
        "nhead": "heads",
        "num_heads": "heads",
        "dim_feedforward": "ff",
        "intermediate_dim": "ff",
        "layer_norm_eps": "epsilon",
        "layer_norm_epsilon": "epsilon",
        "normalize_first": "norm_first",
        **INIT_HINTS,
        **BIAS_INIT_HINTS,
    }

    def _features(self, shape: Shape) -> int:
        features = sequence_features(self.kind, shape)
        _split_heads(shape, features, self.heads)
        return features

    def output_shape(self, inputs: list[Shape]) -> Shape:
        self._features(inputs[0])
        return inputs[0]

    def params(self, inputs: list[Shape], backend: Backend) -> ParamCount:
        f = self._features(inputs[0])
        feed_forward = (f * self.ff + self.ff) + (self.ff * f + f)
        return ParamCount(_attention_params(f, f) + feed_forward + 2 * 2 * f)

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        time, features = inputs[0]
        if time is None or features is None:
            return None
        return _attention_flops(time, features, features) + 2 * 2 * time * features * self.ff
