"""Our shape and parameter arithmetic against the real frameworks' layers.

Every case builds the layer kind from spec-like arguments, then the equivalent
`keras.layers` layer (channels-last, compared directly, `?` included) and `torch.nn`
module (channels-first: inputs and outputs are transposed; `?` and `same` at stride > 1,
which PyTorch cannot express, are compared against Keras only). A builder returning None
means "this framework has no direct equivalent for these arguments".
"""

from __future__ import annotations

import os
from math import prod
from types import ModuleType

import pytest
from pydantic import TypeAdapter

from specc.errors import ShapeError
from specc.layers import LAYERS, AnyLayer
from specc.layers.args import per_axis
from specc.layers.attention import query_value_key

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel"),
]

# The frameworks are imported by the fixture below, not at collection, so that a
# `-m "not slow"` run never pays for importing TensorFlow (~6 s).
keras: ModuleType
torch: ModuleType
nn: ModuleType
L: ModuleType


@pytest.fixture(scope="module", autouse=True)
def frameworks():
    global keras, torch, nn, L
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    keras = pytest.importorskip("keras")
    torch = pytest.importorskip("torch")
    nn, L = torch.nn, keras.layers


_ADAPTER = TypeAdapter(AnyLayer)


def layer_of(kind, **args):
    return _ADAPTER.validate_python({"kind": kind, **args})


# --- Keras equivalents ------------------------------------------------------------------------

_PLAIN_ACTIVATIONS = ("relu", "gelu", "sigmoid", "tanh", "silu", "elu", "softplus", "softsign",
                      "selu", "mish", "hard_sigmoid", "hard_swish", "exponential")
_KERAS_ACTIVATION = set(_PLAIN_ACTIVATIONS)
_KERAS_POOL = {
    "maxpool1d": "MaxPooling1D",
    "maxpool2d": "MaxPooling2D",
    "maxpool3d": "MaxPooling3D",
    "avgpool1d": "AveragePooling1D",
    "avgpool2d": "AveragePooling2D",
    "avgpool3d": "AveragePooling3D",
    "global_avgpool1d": "GlobalAveragePooling1D",
    "global_avgpool2d": "GlobalAveragePooling2D",
    "global_avgpool3d": "GlobalAveragePooling3D",
    "global_maxpool1d": "GlobalMaxPooling1D",
    "global_maxpool2d": "GlobalMaxPooling2D",
    "global_maxpool3d": "GlobalMaxPooling3D",
}
_KERAS_MERGE = {
    "add": "Add",
    "subtract": "Subtract",
    "multiply": "Multiply",
    "average": "Average",
    "maximum": "Maximum",
    "minimum": "Minimum",
}
_KERAS_RNN = {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}


def keras_layer(layer, shapes):
    k = layer.kind
    word = isinstance(getattr(layer, "padding", "valid"), str)
    if k == "dense":
        return L.Dense(layer.units, use_bias=layer.bias)
    if k == "dropout":
        return L.Dropout(layer.rate)
    if k == "spatial_dropout1d":
        return L.SpatialDropout1D(layer.rate)
    if k == "spatial_dropout2d":
        return L.SpatialDropout2D(layer.rate)
    if k == "gaussian_noise":
        return L.GaussianNoise(layer.stddev)
    if k == "gaussian_dropout":
        return L.GaussianDropout(layer.rate)
    if k == "alpha_dropout":
        return L.AlphaDropout(layer.rate)
    if k == "flatten":
        return L.Flatten()
    if k == "reshape":
        return L.Reshape(tuple(layer.shape))
    if k == "permute":
        return L.Permute(tuple(layer.axes))
    if k == "identity":
        return L.Identity()
    if k in _KERAS_ACTIVATION:
        return L.Activation(k)
    if k == "softmax":
        return L.Softmax(axis=layer.axis)
    if k == "leaky_relu":
        return L.LeakyReLU(negative_slope=layer.slope)
    if k in ("conv1d", "conv2d", "conv3d"):
        if not word:
            return None
        cls = {"conv1d": L.Conv1D, "conv2d": L.Conv2D, "conv3d": L.Conv3D}[k]
        return cls(
            layer.filters,
            layer.kernel,
            strides=layer.stride,
            padding=layer.padding,
            dilation_rate=layer.dilation,
            groups=layer.groups,
            use_bias=layer.bias,
        )
    if k == "conv2d_transpose":
        if not word:
            return None
        return L.Conv2DTranspose(
            layer.filters,
            layer.kernel,
            strides=layer.stride,
            padding=layer.padding,
            use_bias=layer.bias,
        )
    if k == "depthwise_conv2d":
        if not word:
            return None
        return L.DepthwiseConv2D(
            layer.kernel,
            strides=layer.stride,
            padding=layer.padding,
            depth_multiplier=layer.multiplier,
            dilation_rate=layer.dilation,
            use_bias=layer.bias,
        )
    if k in ("separable_conv1d", "separable_conv2d"):
        if not word:
            return None
        return getattr(L, f"SeparableConv{layer.rank}D")(
            layer.filters,
            layer.kernel,
            strides=layer.stride,
            padding=layer.padding,
            depth_multiplier=layer.multiplier,
            dilation_rate=layer.dilation,
            use_bias=layer.bias,
        )
    if k in _KERAS_POOL and k.startswith("global"):
        return getattr(L, _KERAS_POOL[k])()
    if k in _KERAS_POOL:
        return getattr(L, _KERAS_POOL[k])(layer.size, strides=layer.stride, padding=layer.padding)
    if k in ("upsample1d", "upsample2d", "upsample3d"):
        return getattr(L, f"UpSampling{layer.rank}D")(layer.scale)
    if k == "zeropad2d":
        return L.ZeroPadding2D(layer.pads)
    if k == "zeropad1d":
        return L.ZeroPadding1D(layer.pads[0])
    if k == "cropping1d":
        return L.Cropping1D(layer.crops[0])
    if k == "cropping2d":
        return L.Cropping2D(layer.crops)
    if k == "batchnorm":
        return L.BatchNormalization()
    if k == "layernorm":
        return L.LayerNormalization()
    if k == "embedding":
        return L.Embedding(layer.vocab, layer.dim, mask_zero=layer.mask_zero)
    if k in _KERAS_RNN:
        rnn = getattr(L, _KERAS_RNN[k])(
            layer.units,
            return_sequences=layer.return_sequences,
            go_backwards=layer.go_backwards,
            dropout=layer.dropout,
            recurrent_dropout=layer.recurrent_dropout,
        )
        return L.Bidirectional(rnn) if layer.bidirectional else rnn
    if k == "multihead_attention":
        key_dim = layer.key_dim or shapes[0][-1] // layer.heads
        return L.MultiHeadAttention(layer.heads, key_dim, dropout=layer.dropout)
    if k == "attention":
        return L.Attention(use_scale=layer.use_scale, score_mode=layer.score_mode)
    if k == "additive_attention":
        return L.AdditiveAttention(use_scale=layer.use_scale)
    if k == "dot":
        return L.Dot(layer.axes, normalize=layer.normalize)
    if k == "prelu":  # one alpha per channel, or one in all (docs/language.md)
        rank = len(shapes[0])
        return L.PReLU(shared_axes=list(range(1, rank + 1 if layer.shared else rank)) or None)
    if k in _KERAS_MERGE:
        return getattr(L, _KERAS_MERGE[k])()
    if k == "concat":
        return L.Concatenate(axis=layer.axis)
    return None  # positional_embedding, transformer_encoder, transformer_decoder: no Keras layer


def keras_result(layer, shapes):
    """(output shape without batch, (trainable, non-trainable)) of the Keras layer, or None."""
    built = keras_layer(layer, shapes)
    if built is None:
        return None
    dtype = "int32" if layer.accepts == "int" else "float32"
    inputs = [keras.Input(shape=s, dtype=dtype) for s in shapes]
    if layer.kind == "multihead_attention":  # (query, value, key): self-attention x, x
        query, value, *key = inputs if len(inputs) > 1 else inputs * 2
        out = built(query, value, *key, use_causal_mask=layer.causal)
    else:
        out = built(inputs if layer.arity == "many" else inputs[0])
    return tuple(out.shape[1:]), (
        _count(built.trainable_weights),
        _count(built.non_trainable_weights),
    )


def _count(weights):
    return sum(prod(w.shape) for w in weights)


# --- PyTorch equivalents ----------------------------------------------------------------------


def _torch_padding(layer):
    """PyTorch's `padding` for our word or ints; None where it has no equivalent."""
    if layer.padding == "valid":
        return 0
    if layer.padding == "same":
        return "same" if max(per_axis(layer.stride, layer.rank)) == 1 else None
    return tuple(per_axis(layer.padding, layer.rank))


def torch_module(layer, shapes):
    k, shape = layer.kind, shapes[0]
    channels = shape[-1]
    if k == "dense":
        return nn.Linear(channels, layer.units, bias=layer.bias)
    if k == "dropout":
        return nn.Dropout(layer.rate)
    if k == "spatial_dropout1d":
        return nn.Dropout1d(layer.rate)
    if k == "spatial_dropout2d":
        return nn.Dropout2d(layer.rate)
    if k == "alpha_dropout":
        return nn.AlphaDropout(layer.rate)
    if k == "flatten":
        return nn.Flatten()
    if k == "identity":
        return nn.Identity()
    if k in _PLAIN_ACTIVATIONS:
        if k == "exponential":
            return None  # torch.nn has no module for exp
        return {
            "relu": nn.ReLU,
            "gelu": nn.GELU,
            "sigmoid": nn.Sigmoid,
            "tanh": nn.Tanh,
            "silu": nn.SiLU,
            "elu": nn.ELU,
            "softplus": nn.Softplus,
            "softsign": nn.Softsign,
            "selu": nn.SELU,
            "mish": nn.Mish,
            "hard_sigmoid": nn.Hardsigmoid,
            "hard_swish": nn.Hardswish,
        }[k]()
    if k == "leaky_relu":
        return nn.LeakyReLU(layer.slope)
    if k == "conv1d" and layer.padding == "causal":  # zeros before the sequence, then valid
        conv = nn.Conv1d(channels, layer.filters, layer.kernel, layer.stride, 0, layer.dilation,
                         layer.groups, layer.bias)
        return nn.Sequential(nn.ConstantPad1d((layer.window.causal_padding(), 0), 0.0), conv)
    if k in ("conv1d", "conv2d", "conv3d"):
        padding = _torch_padding(layer)
        if padding is None:
            return None
        cls = {"conv1d": nn.Conv1d, "conv2d": nn.Conv2d, "conv3d": nn.Conv3d}[k]
        return cls(
            channels,
            layer.filters,
            layer.kernel,
            layer.stride,
            padding,
            layer.dilation,
            layer.groups,
            layer.bias,
        )
    if k == "conv2d_transpose":
        if layer.padding == "same":
            return None
        kernel, stride = per_axis(layer.kernel, 2), per_axis(layer.stride, 2)
        if layer.padding == "valid":  # as the window module documents
            padding, extra = 0, tuple(max(s - k, 0) for k, s in zip(kernel, stride, strict=True))
        else:
            padding, extra = tuple(per_axis(layer.padding, 2)), 0
        return nn.ConvTranspose2d(
            channels, layer.filters, kernel, stride, padding, extra, bias=layer.bias
        )
    if k == "depthwise_conv2d":
        padding = _torch_padding(layer)
        if padding is None:
            return None
        return nn.Conv2d(
            channels,
            channels * layer.multiplier,
            layer.kernel,
            layer.stride,
            padding,
            layer.dilation,
            groups=channels,
            bias=layer.bias,
        )
    if k in ("separable_conv1d", "separable_conv2d"):  # a grouped conv, then a 1x1 conv
        padding = _torch_padding(layer)
        if padding is None:
            return None
        conv = getattr(nn, f"Conv{layer.rank}d")
        middle = channels * layer.multiplier
        return nn.Sequential(
            conv(channels, middle, layer.kernel, layer.stride, padding, layer.dilation,
                 groups=channels, bias=False),
            conv(middle, layer.filters, 1, bias=layer.bias),
        )
    if k in ("maxpool1d", "maxpool2d", "maxpool3d", "avgpool1d", "avgpool2d", "avgpool3d"):
        if layer.padding == "same":
            return None
        op = "Max" if k.startswith("max") else "Avg"
        return getattr(nn, f"{op}Pool{layer.rank}d")(layer.size, layer.stride)
    if k.startswith("global_"):
        op = "Avg" if "avg" in k else "Max"
        return nn.Sequential(getattr(nn, f"Adaptive{op}Pool{layer.rank}d")(1), nn.Flatten())
    if k in ("upsample1d", "upsample2d", "upsample3d"):
        scale = tuple(float(s) for s in per_axis(layer.scale, layer.rank))
        return nn.Upsample(scale_factor=scale)
    if k == "zeropad2d":
        (top, bottom), (left, right) = layer.pads
        return nn.ZeroPad2d((left, right, top, bottom))
    if k == "zeropad1d":
        return nn.ZeroPad1d(layer.pads[0])
    if k in ("cropping1d", "cropping2d"):  # torch.nn crops with negative padding
        return getattr(nn, f"ZeroPad{layer.rank}d")(
            tuple(-p for before_after in reversed(layer.crops) for p in before_after)
        )
    if k == "batchnorm":
        return {4: nn.BatchNorm3d, 3: nn.BatchNorm2d}.get(len(shape), nn.BatchNorm1d)(channels)
    if k == "layernorm":
        return nn.LayerNorm(channels)
    if k == "embedding":
        return nn.Embedding(layer.vocab, layer.dim)
    if k in ("simple_rnn", "lstm", "gru"):
        cls = {"simple_rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[k]
        module = cls(channels, layer.units, batch_first=True, bidirectional=layer.bidirectional)
        if k != "gru":  # the torch backend freezes the second bias that Keras lacks
            for name, weight in module.named_parameters():
                weight.requires_grad_("bias_hh" not in name)
        return module
    if k == "multihead_attention":
        if layer.key_dim not in (None, channels // layer.heads):
            return None  # PyTorch's module cannot; the backend writes its own
        _, value, key = query_value_key([s[-1] for s in shapes])
        return nn.MultiheadAttention(channels, layer.heads, dropout=layer.dropout,
                                     batch_first=True, kdim=key, vdim=value)
    if k == "prelu":
        return nn.PReLU(1 if layer.shared else channels, init=layer.alpha)
    if k in ("transformer_encoder", "transformer_decoder"):
        decoder = k == "transformer_decoder"
        cls = nn.TransformerDecoderLayer if decoder else nn.TransformerEncoderLayer
        return cls(
            channels,
            layer.heads,
            layer.ff,
            layer.dropout,
            batch_first=True,
            norm_first=layer.norm_first,
        )
    if k == "positional_embedding":
        return nn.Embedding(layer.max_len, channels)  # the same table: compare counts only
    return None  # reshape, permute, softmax(axis), merges: layout-bound, compared with Keras


_CHANNELS_FIRST = {
    "conv1d",
    "conv2d",
    "conv3d",
    "conv2d_transpose",
    "depthwise_conv2d",
    "separable_conv1d",
    "separable_conv2d",
    "maxpool1d",
    "maxpool2d",
    "maxpool3d",
    "avgpool1d",
    "avgpool2d",
    "avgpool3d",
    "global_avgpool1d",
    "global_avgpool2d",
    "global_avgpool3d",
    "global_maxpool1d",
    "global_maxpool2d",
    "global_maxpool3d",
    "upsample1d",
    "upsample2d",
    "upsample3d",
    "spatial_dropout1d",
    "spatial_dropout2d",
    "zeropad2d",
    "zeropad1d",
    "cropping1d",
    "cropping2d",
    "batchnorm",
    "prelu",
}


def torch_result(layer, shapes):
    """(output shape without batch, params) of the PyTorch module on channels-first data."""
    if any(d is None for s in shapes for d in s):
        return None
    module = torch_module(layer, shapes)
    if module is None:
        return None
    module.eval()
    shape = shapes[0]
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
    buffers = sum(b.numel() for n, b in module.named_buffers() if "num_batches" not in n)
    buffers += frozen  # non-trainable: running statistics and frozen weights
    if layer.kind == "positional_embedding":
        return tuple(shape), (trainable, buffers)
    if layer.accepts == "int":
        x = torch.zeros((2, *shape), dtype=torch.long)
    else:
        x = torch.zeros((2, *shape))
    others = [torch.zeros((2, *s)) for s in shapes[1:]]
    channels_first = layer.kind in _CHANNELS_FIRST and len(shape) > 1
    if channels_first:
        x = x.movedim(-1, 1)
    with torch.no_grad():
        if layer.kind == "multihead_attention":  # torch's order: (query, key, value)
            query, value, key = query_value_key([x, *others])
            out = module(query, key, value, need_weights=False)[0]
        elif layer.kind == "transformer_decoder":
            out = module(x, *others, tgt_is_causal=layer.causal, tgt_mask=(
                nn.Transformer.generate_square_subsequent_mask(shape[0]) if layer.causal else None
            ))
        elif layer.kind in ("simple_rnn", "lstm", "gru"):
            out = module(x)[0]
            out = out if layer.return_sequences else out[:, -1]
        else:
            out = module(x)
    if channels_first and out.dim() > 2:
        out = out.movedim(1, -1)
    return tuple(out.shape[1:]), (trainable, buffers)


# --- the cases --------------------------------------------------------------------------------
# (kind, arguments, input shapes): a spread over every kind and the arguments that change
# shapes or counts.

IMG = [(9, 11, 4)]
IMG_ODD = [(10, 7, 6)]
SEQ = [(8, 6)]
VOL = [(5, 7, 6, 4)]

CASES = [
    ("dense", {"units": 5}, [(7,)]),
    ("dense", {"units": 5, "bias": False}, [(3, 7)]),
    ("dense", {"units": 3}, [(None, 4, 6)]),
    ("dropout", {"rate": 0.5}, IMG),
    ("spatial_dropout1d", {"rate": 0.5}, SEQ),
    ("spatial_dropout1d", {"rate": 0.1}, [(None, 3)]),
    ("spatial_dropout2d", {"rate": 0.3}, IMG),
    ("gaussian_noise", {"stddev": 0.1}, IMG),
    ("gaussian_dropout", {"rate": 0.4}, SEQ),
    ("alpha_dropout", {"rate": 0.2}, [(7,)]),
    ("flatten", {}, IMG),
    ("flatten", {}, [(None, 3)]),
    ("reshape", {"shape": [11, 36]}, IMG),
    ("reshape", {"shape": [-1, 4]}, IMG),
    ("reshape", {"shape": [-1, 2]}, [(None, 4)]),
    ("permute", {"axes": [2, 1]}, SEQ),
    ("permute", {"axes": [3, 1, 2]}, IMG),
    ("identity", {}, SEQ),
    *[(k, {}, IMG) for k in _PLAIN_ACTIVATIONS],
    ("softmax", {}, SEQ),
    ("softmax", {"axis": 1}, SEQ),
    ("softmax", {"axis": -2}, IMG),
    ("leaky_relu", {"slope": 0.2}, SEQ),
    # convolutions: kernels, strides 1-3 under each padding, dilation, groups, lists
    *[
        ("conv2d", {"filters": 8, "kernel": k, "stride": s, "padding": p}, shapes)
        for k in (1, 2, 3, [3, 2])
        for s in (1, 2, 3, [2, 1])
        for p in ("valid", "same", 1)
        for shapes in (IMG, IMG_ODD)
    ],
    ("conv2d", {"filters": 4, "kernel": 3, "dilation": 2}, IMG),
    ("conv2d", {"filters": 4, "kernel": 3, "dilation": [2, 1], "padding": "same"}, IMG),
    ("conv2d", {"filters": 4, "kernel": 3, "dilation": 2, "padding": [2, 1]}, IMG),
    ("conv2d", {"filters": 6, "kernel": 3, "groups": 2}, IMG),
    ("conv2d", {"filters": 8, "kernel": 3, "groups": 4, "bias": False}, IMG),
    ("conv2d", {"filters": 8, "kernel": 3, "stride": 2, "padding": "same"}, [(None, None, 3)]),
    ("conv2d", {"filters": 8, "kernel": 5}, [(None, 12, 3)]),
    *[
        ("conv1d", {"filters": 5, "kernel": k, "stride": s, "padding": p}, SEQ)
        for k in (1, 3, 4)
        for s in (1, 2, 3)
        for p in ("valid", "same", 2)
    ],
    ("conv1d", {"filters": 4, "kernel": 3, "dilation": 3}, [(13, 2)]),
    ("conv1d", {"filters": 4, "kernel": 3, "groups": 2, "padding": "same"}, SEQ),
    ("conv1d", {"filters": 4, "kernel": 3, "stride": 2}, [(None, 2)]),
    *[
        ("conv1d", {"filters": 3, "kernel": k, "stride": s, "padding": "causal", "dilation": d},
         [(n, 2)])
        for k in (1, 2, 3)
        for s, d in ((1, 1), (1, 2), (1, 4), (2, 1), (3, 1))
        for n in (7, 10)
    ],
    ("conv1d", {"filters": 4, "kernel": 3, "padding": "causal", "groups": 2}, SEQ),
    ("conv1d", {"filters": 4, "kernel": 2, "padding": "causal", "dilation": 2}, [(None, 3)]),
    *[
        ("conv2d_transpose", {"filters": 3, "kernel": k, "stride": s, "padding": p}, IMG_ODD)
        for k in (1, 2, 3, [3, 4])
        for s in (1, 2, 3, [2, 3])
        for p in ("valid", "same", 1)
        if not (p == 1 and k == 1)
    ],
    ("conv2d_transpose", {"filters": 3, "kernel": 3, "stride": 2, "bias": False}, [(None, 5, 2)]),
    *[
        ("depthwise_conv2d", {"kernel": k, "stride": s, "padding": p, "multiplier": m}, IMG)
        for k in (1, 3, [2, 3])
        for s in (1, 2, 3)
        for p in ("valid", "same", [1, 0])
        for m in (1, 2)
    ],
    ("depthwise_conv2d", {"kernel": 3, "dilation": 2, "bias": False}, IMG),
    *[
        ("separable_conv2d", {"filters": 5, "kernel": k, "stride": s, "padding": p,
                              "multiplier": m}, IMG_ODD)
        for k in (1, 3, [2, 3])
        for s in (1, 2)
        for p in ("valid", "same", [1, 0])
        for m in (1, 2)
    ],
    ("separable_conv2d", {"filters": 3, "kernel": 3, "dilation": 2, "bias": False}, IMG),
    ("separable_conv2d", {"filters": 3, "kernel": 3, "stride": 2, "padding": "same"},
     [(None, 7, 2)]),
    *[
        ("separable_conv1d", {"filters": 4, "kernel": k, "stride": s, "padding": p,
                              "multiplier": m}, SEQ)
        for k in (1, 3)
        for s in (1, 2)
        for p in ("valid", "same", 1)
        for m in (1, 3)
    ],
    ("separable_conv1d", {"filters": 4, "kernel": 2, "dilation": 3, "bias": False}, SEQ),
    *[
        ("conv3d", {"filters": 4, "kernel": k, "stride": s, "padding": p}, VOL)
        for k in (1, 2, 3, [3, 1, 2])
        for s in (1, 2, [1, 2, 3])
        for p in ("valid", "same", 1)
    ],
    ("conv3d", {"filters": 4, "kernel": 2, "dilation": [2, 1, 3]}, VOL),
    ("conv3d", {"filters": 4, "kernel": 3, "groups": 2, "bias": False}, VOL),
    ("conv3d", {"filters": 2, "kernel": 3, "stride": 2, "padding": "same"}, [(None, 6, 5, 2)]),
    # pooling
    *[
        (kind, {"size": size, "stride": stride, "padding": pad}, IMG_ODD)
        for kind in ("maxpool2d", "avgpool2d")
        for size in (2, 3, [3, 2])
        for stride in (None, 1, 2, 3)
        for pad in ("valid", "same")
    ],
    *[
        (kind, {"size": size, "stride": stride, "padding": pad}, [(11, 3)])
        for kind in ("maxpool1d", "avgpool1d")
        for size in (2, 3)
        for stride in (None, 1, 2)
        for pad in ("valid", "same")
    ],
    ("maxpool2d", {"size": 2}, [(None, 8, 3)]),
    *[
        (kind, {"size": size, "stride": stride, "padding": pad}, VOL)
        for kind in ("maxpool3d", "avgpool3d")
        for size in (2, [3, 1, 2])
        for stride in (None, 1, 2)
        for pad in ("valid", "same")
    ],
    ("global_avgpool3d", {}, VOL),
    ("global_maxpool3d", {}, VOL),
    ("global_maxpool3d", {}, [(None, 3, None, 2)]),
    ("upsample1d", {}, SEQ),
    ("upsample1d", {"scale": 3}, [(None, 2)]),
    ("upsample3d", {}, VOL),
    ("upsample3d", {"scale": [1, 2, 3]}, VOL),
    ("global_avgpool1d", {}, SEQ),
    ("global_maxpool1d", {}, [(None, 6)]),
    ("global_avgpool2d", {}, IMG),
    ("global_maxpool2d", {}, IMG),
    ("upsample2d", {}, IMG),
    ("upsample2d", {"scale": [3, 2]}, IMG),
    ("upsample2d", {"scale": 2}, [(None, 4, 3)]),
    ("zeropad2d", {"padding": 2}, IMG),
    ("zeropad2d", {"padding": [1, 3]}, IMG),
    ("zeropad2d", {"padding": [[0, 1], [2, 3]]}, IMG),
    ("zeropad1d", {"padding": 2}, SEQ),
    ("zeropad1d", {"padding": [0, 3]}, [(None, 2)]),
    ("cropping1d", {"cropping": 1}, SEQ),
    ("cropping1d", {"cropping": [3, 0]}, SEQ),
    ("cropping1d", {"cropping": [1, 2]}, [(None, 2)]),
    ("cropping2d", {"cropping": 2}, IMG),
    ("cropping2d", {"cropping": [1, 3]}, IMG_ODD),
    ("cropping2d", {"cropping": [[0, 1], [2, 3]]}, IMG),
    ("cropping2d", {"cropping": [[4, 4], [0, 0]]}, IMG),
    # normalization
    ("batchnorm", {}, IMG),
    ("batchnorm", {}, SEQ),
    ("batchnorm", {}, [(12,)]),
    ("batchnorm", {}, VOL),
    ("batchnorm", {"momentum": 0.01}, [(None, 5)]),
    ("layernorm", {}, SEQ),
    ("layernorm", {}, [(12,)]),
    # sequence
    ("embedding", {"vocab": 50, "dim": 8}, [(10,)]),
    ("embedding", {"vocab": 50, "dim": 8}, [(None,)]),
    ("positional_embedding", {"max_len": 20}, SEQ),
    *[
        (kind, {"units": 5, "return_sequences": rs, "bidirectional": bi}, SEQ)
        for kind in ("simple_rnn", "lstm", "gru")
        for rs in (False, True)
        for bi in (False, True)
    ],
    ("lstm", {"units": 4, "return_sequences": True}, [(None, 3)]),
    ("embedding", {"vocab": 50, "dim": 8, "mask_zero": True}, [(10,)]),
    *[
        (kind, {"units": 3, "return_sequences": True, "dropout": 0.2, "recurrent_dropout": 0.3,
                "go_backwards": True}, SEQ)
        for kind in ("simple_rnn", "lstm", "gru")
    ],
    ("gru", {"units": 3, "bidirectional": True, "recurrent_dropout": 0.1}, SEQ),
    ("multihead_attention", {"heads": 2}, SEQ),
    ("multihead_attention", {"heads": 3, "key_dim": 4}, SEQ),
    ("multihead_attention", {"heads": 2, "key_dim": 5, "causal": True}, [(None, 6)]),
    ("multihead_attention", {"heads": 6, "dropout": 0.1}, SEQ),
    ("transformer_encoder", {"heads": 2, "ff": 16}, SEQ),
    ("transformer_encoder", {"heads": 3, "ff": 10, "norm_first": True}, SEQ),
    ("multihead_attention", {"heads": 2}, [(5, 8), (7, 6)]),
    ("multihead_attention", {"heads": 4}, [(5, 8), (7, 6), (7, 3)]),
    ("multihead_attention", {"heads": 2, "key_dim": 3}, [(None, 8), (None, 6)]),
    ("transformer_decoder", {"heads": 2, "ff": 16}, [(5, 8), (7, 8)]),
    ("transformer_decoder", {"heads": 4, "ff": 6, "norm_first": True}, [(3, 8), (9, 8)]),
    ("transformer_decoder", {"heads": 1, "ff": 6, "causal": False}, [(3, 4), (3, 4)]),
    ("attention", {}, [(4, 6), (9, 6)]),
    ("attention", {"use_scale": True}, [(None, 6), (9, 5), (9, 6)]),
    ("attention", {"use_scale": True, "score_mode": "concat"}, [(4, 6), (9, 5), (9, 6)]),
    ("attention", {"score_mode": "concat"}, [(4, 6), (9, 6)]),
    ("additive_attention", {}, [(4, 6), (9, 5), (9, 6)]),
    ("additive_attention", {"use_scale": False}, [(4, 6), (9, 6)]),
    ("prelu", {}, IMG),
    ("prelu", {"shared": True}, IMG),
    ("prelu", {}, [(7,)]),
    ("prelu", {"alpha": 0.1}, SEQ),
    ("prelu", {"shared": True}, [(None, 5)]),
    # merges
    ("add", {}, [(4, 5), (4, 5)]),
    ("add", {}, [(None, 5), (3, 5)]),
    ("multiply", {}, [(3, 2, 4)] * 3),
    ("average", {}, [(6,), (6,)]),
    ("subtract", {}, [(4, 5), (4, 5)]),
    ("subtract", {}, [(None, 3), (2, 3)]),
    ("maximum", {}, [(3, 2, 4)] * 3),
    ("minimum", {}, [(6,), (6,)]),
    ("concat", {}, [(4, 5), (4, 3)]),
    ("concat", {"axis": 1}, [(4, 5), (2, 5), (1, 5)]),
    ("concat", {"axis": -2}, [(None, 5), (2, 5)]),
    ("concat", {"axis": 2}, [(3, 4, 2), (3, 1, 2)]),
    ("dot", {"axes": 1}, [(6,), (6,)]),
    ("dot", {"axes": -1, "normalize": True}, [(3, 5), (7, 5)]),
    ("dot", {"axes": [1, 1]}, [(3, 5), (3, 6)]),
    ("dot", {"axes": [1, 2]}, [(3, 5), (6, 3)]),
    ("dot", {"axes": [2, 1]}, [(None, 5), (5, 4)]),
]


def _case_id(case):
    kind, args, shapes = case
    text = ",".join(f"{k}={v}" for k, v in args.items())
    return f"{kind}({text})@{'+'.join(str(list(s)) for s in shapes)}".replace(" ", "")


def _ours(layer, shapes, backend):
    shape = layer.output_shape(shapes)
    params = layer.params(shapes, backend)
    return shape, (params.trainable, params.non_trainable)


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_matches_frameworks(case):
    kind, args, shapes = case
    layer = layer_of(kind, **args)
    compared = 0
    keras_out = keras_result(layer, shapes)
    if keras_out is not None:
        shape, params = _ours(layer, shapes, "tensorflow")
        assert params == keras_out[1]
        if layer.arity == "many":
            # A merge of [?, 5] and [3, 5] is [3, 5] to us; Keras keeps the `?`.
            assert len(shape) == len(keras_out[0])
            assert all(k is None or d == k for d, k in zip(shape, keras_out[0], strict=True))
        else:
            assert shape == keras_out[0]
        compared += 1
    torch_out = torch_result(layer, shapes)
    if torch_out is not None:
        assert _ours(layer, shapes, "torch") == torch_out
        compared += 1
    assert compared, f"{kind} was compared with neither framework"


def test_every_kind_is_covered():
    assert {kind for kind, _, _ in CASES} == set(LAYERS)


# Inputs that both frameworks refuse must be refused by our shape check too.
REJECTED = [
    ("conv2d", {"filters": 2, "kernel": 5}, [(4, 9, 1)]),
    ("conv2d", {"filters": 2, "kernel": 3, "dilation": 3}, [(6, 9, 1)]),
    ("conv1d", {"filters": 2, "kernel": 4, "stride": 2}, [(3, 1)]),
    ("maxpool2d", {"size": 3}, [(2, 8, 1)]),
    ("cropping1d", {"cropping": [2, 2]}, [(4, 2)]),
    ("conv3d", {"filters": 2, "kernel": 3}, [(2, 9, 9, 1)]),
    ("maxpool3d", {"size": 2}, [(4, 4, 1, 2)]),
    ("depthwise_conv2d", {"kernel": [1, 4]}, [(5, 3, 2)]),
    ("separable_conv2d", {"filters": 2, "kernel": 4}, [(5, 3, 2)]),
    ("separable_conv1d", {"filters": 2, "kernel": 3, "dilation": 2}, [(4, 2)]),
    ("conv2d", {"filters": 4, "kernel": 1, "groups": 2}, [(5, 5, 3)]),
    ("add", {}, [(4, 5), (4, 6)]),
    ("subtract", {}, [(4, 5)] * 3),
    ("maximum", {}, [(4, 5), (5, 5)]),
    ("concat", {"axis": 1}, [(4, 5), (4, 6)]),
    ("dot", {"axes": -1}, [(3, 5), (7, 6)]),
    ("multihead_attention", {"heads": 2}, [(5, 8), (7, 6), (6, 6)]),
]


@pytest.mark.parametrize("case", REJECTED, ids=[_case_id(c) for c in REJECTED])
def test_rejects_what_frameworks_reject(case):
    kind, args, shapes = case
    layer = layer_of(kind, **args)
    with pytest.raises(ShapeError):
        layer.output_shape(shapes)
    with pytest.raises(Exception):  # noqa: B017 - each framework raises its own type
        keras_result(layer, shapes)
    # Merges have no torch.nn module to refuse them; torch.nn crops to an empty tensor.
    if kind not in ("add", "subtract", "maximum", "concat", "cropping1d", "dot"):
        with pytest.raises(Exception):  # noqa: B017
            torch_result(layer, shapes)


@pytest.mark.parametrize("kind", ["attention", "additive_attention"])
def test_attention_refuses_a_key_of_other_features_as_keras_does_when_run(kind):
    layer = layer_of(kind)
    shapes = [(4, 6), (9, 5)]
    with pytest.raises(ShapeError):
        layer.output_shape(shapes)
    with pytest.raises(Exception):  # noqa: B017 - Keras checks only once it computes
        keras_layer(layer, shapes)([torch.zeros(2, *s).numpy() for s in shapes])


def test_decoder_refuses_a_memory_of_other_features_as_torch_does():
    layer = layer_of("transformer_decoder", heads=2, ff=4)
    with pytest.raises(ShapeError):
        layer.output_shape([(5, 8), (7, 6)])
    module = torch_module(layer, [(5, 8), (7, 8)])
    with pytest.raises(Exception):  # noqa: B017
        module(torch.zeros(2, 5, 8), torch.zeros(2, 7, 6))


# `same` at stride > 1: PyTorch reproduces TensorFlow by padding with Window.same_padding.
SAME = [  # (input h, w), kernel, stride, dilation
    ((7, 8), 3, 2, 1),
    ((6, 6), 3, 2, 1),
    ((9, 5), [4, 2], [3, 2], 1),
    ((5, 7), 5, 3, 1),
    ((8, 8), 3, 1, 2),
    ((6, 9), 2, [1, 3], 1),
]


def _numbers(*shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(("size", "kernel", "stride", "dilation"), SAME)
def test_same_padding_reproduces_tensorflow_conv(size, kernel, stride, dilation):
    layer = layer_of(
        "conv2d",
        filters=3,
        kernel=kernel,
        stride=stride,
        padding="same",
        dilation=dilation,
        bias=False,
    )
    x = _numbers(1, *size, 2)
    keras_conv = keras_layer(layer, [(*size, 2)])
    keras_conv.build((1, *size, 2))
    weights = _numbers(*keras_conv.kernel.shape)
    keras_conv.kernel.assign(weights.numpy())
    expected = keras.ops.convert_to_numpy(keras_conv(x.numpy()))

    (top, bottom), (left, right) = layer.window.same_padding(size)
    padded = torch.nn.functional.pad(x.movedim(-1, 1), (left, right, top, bottom))
    got = torch.nn.functional.conv2d(
        padded, weights.permute(3, 2, 0, 1), stride=stride, dilation=dilation
    ).movedim(1, -1)
    assert got.shape[1:] == layer.output_shape([(*size, 2)])
    assert torch.allclose(got, torch.from_numpy(expected), atol=1e-5)


@pytest.mark.parametrize(
    ("size", "kernel", "stride"),
    [
        ((4, 5), 3, 2),
        ((3, 3), 4, 2),
        ((4, 3), 2, 3),
        ((3, 4), [5, 3], [2, 3]),
        ((2, 3), 3, 1),
    ],
)
def test_same_padding_crops_tensorflow_conv_transpose(size, kernel, stride):
    layer = layer_of(
        "conv2d_transpose", filters=3, kernel=kernel, stride=stride, padding="same", bias=False
    )
    x = _numbers(1, *size, 2)
    keras_conv = keras_layer(layer, [(*size, 2)])
    keras_conv.build((1, *size, 2))
    weights = _numbers(*keras_conv.kernel.shape)  # [kh, kw, out, in]
    keras_conv.kernel.assign(weights.numpy())
    expected = torch.from_numpy(keras.ops.convert_to_numpy(keras_conv(x.numpy())))

    out = layer.output_shape([(*size, 2)])[:2]
    full = torch.nn.functional.conv_transpose2d(
        x.movedim(-1, 1), weights.permute(3, 2, 0, 1), stride=stride
    )
    (top, _), (left, _) = layer.window.same_padding(out)
    short = [max(0, o + b - f) for o, b, f in zip(out, (top, left), full.shape[2:], strict=True)]
    full = torch.nn.functional.pad(full, (0, short[1], 0, short[0]))
    got = full[:, :, top : top + out[0], left : left + out[1]].movedim(1, -1)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-5)
