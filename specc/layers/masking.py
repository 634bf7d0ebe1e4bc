"""Which values carry a padding mask, decided once here for both backends.

`embedding(..., mask_zero=true)` marks token id 0 as padding. As in Keras, the mask travels
with the value through the layers that keep the time axis and pass it on, is honoured by the
layers that read it (a recurrent layer keeps its state over padded steps; global average
pooling leaves them out), and stops at every other layer, which computes on the padded steps
as on any other (Keras drops it there too: flatten, convolutions, pooling, reshapes...).
Layers whose Keras form would compute something else under a mask, that this compiler does
not reproduce, are refused.
"""

from specc.errors import ShapeError
from specc.layers.activation import ACTIVATIONS
from specc.layers.base import Layer, Shape

# Kinds whose Keras layer returns its input tensor itself at inference (and its mask with it).
ALIASES = frozenset(
    {"dropout", "spatial_dropout1d", "gaussian_noise", "gaussian_dropout", "alpha_dropout",
     "identity"}
)
# Kinds that keep the time axis and pass the mask on unchanged (Keras's supports_masking):
# the aliases, the activation layers (softmax takes a mask along its own axis: REFUSED), ...
KEEPS = ALIASES | {kind for kind in ACTIVATIONS if kind != "softmax"} | {
    "dense",
    "layernorm",
    "positional_embedding",
}
# Merges: the mask of the output is where every masked input is unpadded (Keras ANDs them).
MERGES = frozenset({"add", "subtract", "multiply", "average", "maximum", "minimum", "concat"})
# Kinds that read the mask: the recurrent layers pass it on with return_sequences, the
# self-attention layers (padded keys ignored; Keras's MultiHeadAttention) always.
READS = frozenset(
    {"simple_rnn", "lstm", "gru", "global_avgpool1d", "multihead_attention",
     "transformer_encoder"}
)
ATTENTION = frozenset({"multihead_attention", "transformer_encoder"})
# Kinds whose Keras form computes otherwise under a mask: why each is refused.
REFUSED = {
    "batchnorm": "Keras leaves padded steps out of its batch statistics",
    "softmax": "Keras applies the [batch, time] mask along the softmax's axis",
    **dict.fromkeys(
        ("transformer_decoder", "attention", "additive_attention", "dot"),
        "Keras reads the masks of its several inputs, which is not supported yet",
    ),
}


def output_masked(layer: Layer, inputs: list[Shape], masked: list[bool]) -> bool:
    """Whether `layer`'s output carries the mask, given which of its inputs do; ShapeError
    for a layer that cannot take a masked input."""
    if layer.kind == "embedding" and layer.mask_zero:  # type: ignore[attr-defined]
        if len(inputs[0]) != 1:
            raise ShapeError(
                f"mask_zero needs a [time] sequence of token ids (expected rank 1, got "
                f"rank {len(inputs[0])})"
            )
        return True
    if not any(masked):
        return False
    if layer.kind in REFUSED:
        raise ShapeError(
            f"cannot take a masked sequence: {REFUSED[layer.kind]} (expected an input "
            f"without mask_zero padding, got one)"
        )
    if layer.kind in KEEPS:
        return True
    if layer.kind in MERGES:
        if layer.kind == "concat" and layer.axis not in (-1, len(inputs[0])):  # type: ignore[attr-defined]
            raise ShapeError(
                "cannot join masked sequences along their time axis (expected axis=-1, got "
                f"axis={layer.axis})"  # type: ignore[attr-defined]
            )
        return True
    if layer.kind in ATTENTION:
        if len(inputs) > 1:  # cross-attention: Keras masks the query and the value apart
            raise ShapeError(
                "cannot take a masked sequence in cross-attention yet: Keras reads the masks "
                "of the query and of the value apart (expected inputs without mask_zero "
                "padding, got one)"
            )
        return True
    if layer.kind in READS and (getattr(layer, "return_state", False) or len(inputs) > 1):
        raise ShapeError(
            "cannot take a masked sequence with return_state or initial_state yet (expected "
            "an input without mask_zero padding, got one)"
        )
    if layer.kind in READS:
        return bool(getattr(layer, "return_sequences", False))
    return False
