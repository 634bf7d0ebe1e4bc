"""Attention over [time, features]: multihead_attention (self-attention in a chain,
cross-attention when a graph chain starts with it: `multihead_attention(query, value)`),
transformer_encoder and transformer_decoder (one layer each: attention and feed-forward,
each with a residual and a layer norm), and the projection-free attention() (Luong) and
additive_attention() (Bahdanau) of a query over a value (and a key).
"""

from collections.abc import Sequence
from typing import ClassVar, Literal, TypeVar

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


def _attention_params(
    features: int, width: int, key: int | None = None, value: int | None = None
) -> int:
    """Query, key and value projections (of features, or of the key's and the value's own
    feature counts) → width, the output width → features, each with a bias (Keras
    MultiHeadAttention; PyTorch's in_proj/out_proj when all are equal)."""
    sources = (features, key or features, value or features)
    return sum(n * width + width for n in sources) + width * features + features


def _attention_flops(
    time: int, other: int, features: tuple[int, int, int], width: int
) -> int:
    """Projections of `time` queries and `other` keys and values (of `features`: the
    query's, the value's, the key's) to `width` and back, then the scores and the mix."""
    query, value, key = features
    projections = 2 * width * (2 * time * query + other * (key + value))
    scores_and_mix = 2 * 2 * time * other * width  # Q Kᵀ, then the weights times V
    return projections + scores_and_mix


T = TypeVar("T")
ROLES = ("query", "value", "key")


def _role_error(role: str, error: ShapeError) -> ShapeError:
    return ShapeError(f"the {role}: {error}")


def cross_inputs(kind: str, inputs: list[Shape], roles=ROLES) -> list[int]:
    """The feature counts of a query, a value and (when given) a key, each [time, features];
    the value and the key must have one length. Messages name the input at fault."""
    if not 1 <= len(inputs) <= len(roles):
        raise ShapeError(mismatch("takes a query, a value and a key", f"1 to {len(roles)} "
                                  "inputs", len(inputs)))
    features = []
    for role, shape in zip(roles, inputs, strict=False):
        try:
            features.append(sequence_features(kind, shape))
        except ShapeError as error:
            raise _role_error(role, error) from None
    if len(inputs) == 3 and not _same(inputs[1][0], inputs[2][0]):
        raise ShapeError(
            mismatch("needs a key as long as the value", f"{inputs[1][0]} steps",
                     f"{inputs[2][0]} steps: value {fmt_shape(inputs[1])}, key "
                     f"{fmt_shape(inputs[2])}")
        )
    return features


def query_value_key(inputs: Sequence[T]) -> tuple[T, T, T]:
    """The query, the value and the key among an attention's inputs (their shapes, feature
    counts, variables...), in Keras's order: the value is the query (self-attention) and the
    key the value, unless given."""
    query = inputs[0]
    value = inputs[1] if len(inputs) > 1 else query
    return query, value, inputs[2] if len(inputs) > 2 else value


def _same(a: int | None, b: int | None) -> bool:
    return a is None or b is None or a == b


class MultiHeadAttention(Layer):
    """Self-attention in a chain: queries, keys and values all come from the input
    [time, features], and the output has the input's shape. As the start of a graph chain,
    `multihead_attention(query, value)` or `(query, value, key)` is cross-attention as
    Keras's `MultiHeadAttention(query, value, key)`: query [Tq, f] attends over value
    [Tk, f2] (keys the value unless a key [Tk, f3] is given) → [Tq, f].

    Keras MultiHeadAttention's layout: each head projects its inputs' features → key_dim
    (values too), and the heads' concatenation heads * key_dim projects back to the query's
    features. `key_dim` defaults to features / heads, PyTorch's fixed choice; any other value
    must work too, so the PyTorch backend writes the layer out itself.

    `causal` masks each step from attending to later steps; `dropout` drops attention weights
    while training.
    """

    kind: Literal["multihead_attention"] = "multihead_attention"
    named_inputs = (2, 3)
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
        cross_inputs(self.kind, inputs)
        self.head_width(inputs[0])
        return inputs[0]

    def params(self, inputs: list[Shape], backend: Backend) -> ParamCount:
        query, value, key = query_value_key(cross_inputs(self.kind, inputs))
        width = self.heads * self.head_width(inputs[0])
        return ParamCount(_attention_params(query, width, key, value))

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        time, other = inputs[0][0], inputs[-1][0]
        if time is None or other is None:
            return None
        features = query_value_key(cross_inputs(self.kind, inputs))
        return _attention_flops(time, other, features, self.heads * self.head_width(inputs[0]))


class TransformerLayer(Layer):
    """What the encoder and the decoder layer share: their arguments, and their feed-forward
    part and layer norms."""

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

    def _parts(self, features: int, attentions: int) -> int:
        """The parameters of `attentions` attentions (width features), the feed-forward
        layers and a layer norm after each of them."""
        f = features
        feed_forward = (f * self.ff + self.ff) + (self.ff * f + f)
        return attentions * _attention_params(f, f) + feed_forward + (attentions + 1) * 2 * f


class TransformerEncoder(TransformerLayer):
    """One Transformer encoder layer, PyTorch's TransformerEncoderLayer layout:
    self-attention (heads of width features / heads), then linear features → ff,
    `activation`, linear ff → features; each sub-block wrapped in dropout, a residual and a
    layer norm — after the residual (`norm_first=false`, the original Transformer) or at the
    sub-block's input (`norm_first=true`, pre-norm). Stack with `transformer_encoder(...) * N`.

    Extensions: `epsilon` of both layer norms (PyTorch's 1e-5 default), `init`, `bias_init`.
    """

    kind: Literal["transformer_encoder"] = "transformer_encoder"

    def _features(self, shape: Shape) -> int:
        features = sequence_features(self.kind, shape)
        _split_heads(shape, features, self.heads)
        return features

    def output_shape(self, inputs: list[Shape]) -> Shape:
        self._features(inputs[0])
        return inputs[0]

    def params(self, inputs: list[Shape], backend: Backend) -> ParamCount:
        return ParamCount(self._parts(self._features(inputs[0]), 1))

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        time, features = inputs[0]
        if time is None or features is None:
            return None
        attention = _attention_flops(time, time, (features,) * 3, features)
        return attention + 2 * 2 * time * features * self.ff


class TransformerDecoder(TransformerLayer):
    """One Transformer decoder layer, PyTorch's TransformerDecoderLayer layout, as the start
    of a graph chain: `transformer_decoder(target, memory, heads, ff)`. The target
    [time, features] attends to itself (causally: step t sees steps ≤ t, unless
    `causal=false`), then to the encoder's memory [steps, features] (cross-attention), then
    passes linear features → ff, `activation`, linear ff → features; each of the three
    sub-blocks wrapped in dropout, a residual and a layer norm (after the residual, or at
    its input with `norm_first=true`). The memory has the target's features, as PyTorch's
    layer needs; the output has the target's shape.

    Extensions: `epsilon` of the three layer norms (PyTorch's 1e-5), `init`, `bias_init`,
    and `causal` after them.
    """

    kind: Literal["transformer_decoder"] = "transformer_decoder"
    causal: Flag = True

    arity = "many"
    named_inputs = (2, 2)
    hints: ClassVar[dict[str, str]] = {**TransformerLayer.hints, "tgt_is_causal": "causal"}

    def _features(self, inputs: list[Shape]) -> int:
        if len(inputs) != 2:
            raise ShapeError(mismatch("takes a target and a memory", "two inputs", len(inputs)))
        target, memory = cross_inputs(self.kind, inputs, ("target", "memory"))
        if memory != target:
            raise ShapeError(
                mismatch(
                    "needs a memory with the target's features",
                    f"[?, {target}]",
                    f"{fmt_shape(inputs[1])} beside the target {fmt_shape(inputs[0])}",
                )
            )
        _split_heads(inputs[0], target, self.heads)
        return target

    def output_shape(self, inputs: list[Shape]) -> Shape:
        self._features(inputs)
        return inputs[0]

    def params(self, inputs: list[Shape], backend: Backend) -> ParamCount:
        return ParamCount(self._parts(self._features(inputs), 2))

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        f = self._features(inputs)
        time, steps = inputs[0][0], inputs[1][0]
        if time is None or steps is None:
            return None
        attention = _attention_flops(time, time, (f,) * 3, f)
        attention += _attention_flops(time, steps, (f,) * 3, f)
        return attention + 2 * 2 * time * f * self.ff


def _scores_inputs(kind: str, inputs: list[Shape]) -> tuple[int, int]:
    """A query [Tq, d], a value [Tv, dv] and maybe a key [Tv, d] (the value otherwise):
    the query's and the key's features must agree. Returns (d, dv)."""
    if len(inputs) not in (2, 3):
        raise ShapeError(mismatch("takes a query, a value and maybe a key", "2 or 3 inputs",
                                  len(inputs)))
    query, value, key = query_value_key(cross_inputs(kind, inputs))
    if key != query:
        role = "key" if len(inputs) == 3 else "value"
        raise ShapeError(
            mismatch(
                f"needs a {role} with the query's features",
                f"[?, {query}]",
                f"{fmt_shape(inputs[-1])} beside the query {fmt_shape(inputs[0])}",
            )
        )
    return query, value


def _scores_flops(inputs: list[Shape], per_score: int) -> int | None:
    (tq, d), (tv, dv) = inputs[0], inputs[1]
    if tq is None or tv is None:
        return None
    return tq * tv * (per_score * d + 2 * dv)  # type: ignore[operator]


class Attention(Layer):
    """Dot-product (Luong) attention as keras.layers.Attention, the start of a graph chain:
    `attention(query, value)` or `(query, value, key)`. Scores are query · keyᵀ
    (`score_mode=dot`) or the sum over features of tanh(query + key) (`concat`), times a
    learned scalar starting at 1 with `use_scale=true` (and, with `concat`, a second one
    outside the sum); softmax over the value's steps; the weighted sum of the value:
    [Tq, d], [Tv, dv] (, [Tv, d]) → [Tq, dv]. No projections. `dropout` drops attention
    weights while training.
    """

    kind: Literal["attention"] = "attention"
    use_scale: Flag = False
    score_mode: Literal["dot", "concat"] = "dot"
    dropout: Rate = 0.0

    arity = "many"
    named_inputs = (2, 3)
    hints: ClassVar[dict[str, str]] = {"scale": "use_scale", "mode": "score_mode"}

    def output_shape(self, inputs: list[Shape]) -> Shape:
        _, value = _scores_inputs(self.kind, inputs)
        return (inputs[0][0], value)

    def params(self, inputs: list[Shape], backend: Backend) -> ParamCount:
        _scores_inputs(self.kind, inputs)
        return ParamCount(int(self.use_scale) + int(self.score_mode == "concat"))

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        return _scores_flops(inputs, 2 if self.score_mode == "dot" else 3)


class AdditiveAttention(Layer):
    """Additive (Bahdanau) attention as keras.layers.AdditiveAttention, the start of a
    graph chain: `additive_attention(query, value)` or `(query, value, key)`. Scores are
    the sum over features of scale * tanh(query + key), `scale` a learned vector of the
    query's features (glorot_uniform, as Keras draws it) with `use_scale=true`, else 1;
    softmax over the value's steps; the weighted sum of the value: [Tq, d], [Tv, dv]
    (, [Tv, d]) → [Tq, dv]. `dropout` drops attention weights while training.
    """

    kind: Literal["additive_attention"] = "additive_attention"
    use_scale: Flag = True
    dropout: Rate = 0.0

    arity = "many"
    named_inputs = (2, 3)
    hints: ClassVar[dict[str, str]] = {"scale": "use_scale"}

    def output_shape(self, inputs: list[Shape]) -> Shape:
        _, value = _scores_inputs(self.kind, inputs)
        return (inputs[0][0], value)

    def params(self, inputs: list[Shape], backend: Backend) -> ParamCount:
        query, _ = _scores_inputs(self.kind, inputs)
        return ParamCount(query if self.use_scale else 0)

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        return _scores_flops(inputs, 4)
