"""The layer catalog: every layer kind of the language, by name.

`LAYERS` maps a kind (the name written in a spec) to its class; `AnyLayer` validates any of
them from a dict with a "kind" key; `ACTIVATIONS` lists the activation names, which work
both as layers and as `activation=` values.
"""

from typing import Annotated, Union

from pydantic import Field

from specc.layers.activation import ACTIVATION_LAYERS, ACTIVATIONS, Activation, PReLU
from specc.layers.attention import (
    AdditiveAttention,
    Attention,
    MultiHeadAttention,
    TransformerDecoder,
    TransformerEncoder,
)
from specc.layers.base import Layer
from specc.layers.conv import (
    Conv1D,
    Conv2D,
    Conv2DTranspose,
    Conv3D,
    DepthwiseConv2D,
    SeparableConv1D,
    SeparableConv2D,
)
from specc.layers.core import (
    AlphaDropout,
    Dense,
    Dropout,
    Flatten,
    GaussianDropout,
    GaussianNoise,
    Identity,
    Permute,
    Reshape,
    SpatialDropout1D,
    SpatialDropout2D,
)
from specc.layers.initializers import INITIALIZERS, Initializer
from specc.layers.merge import Add, Average, Concat, Dot, Maximum, Minimum, Multiply, Subtract
from specc.layers.normalization import BatchNorm, LayerNorm
from specc.layers.pooling import (
    AvgPool1D,
    AvgPool2D,
    AvgPool3D,
    Cropping1D,
    Cropping2D,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalAvgPool3D,
    GlobalMaxPool1D,
    GlobalMaxPool2D,
    GlobalMaxPool3D,
    MaxPool1D,
    MaxPool2D,
    MaxPool3D,
    UpSample1D,
    UpSample2D,
    UpSample3D,
    ZeroPad1D,
    ZeroPad2D,
)
from specc.layers.sequence import GRU, LSTM, Embedding, PositionalEmbedding, SimpleRNN

_CLASSES: tuple[type[Layer], ...] = (
    Dense,
    Dropout,
    SpatialDropout1D,
    SpatialDropout2D,
    GaussianNoise,
    GaussianDropout,
    AlphaDropout,
    Flatten,
    Reshape,
    Permute,
    Identity,
    *ACTIVATION_LAYERS,
    PReLU,
    Conv1D,
    Conv2D,
    Conv3D,
    Conv2DTranspose,
    DepthwiseConv2D,
    SeparableConv1D,
    SeparableConv2D,
    MaxPool1D,
    MaxPool2D,
    MaxPool3D,
    AvgPool1D,
    AvgPool2D,
    AvgPool3D,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalAvgPool3D,
    GlobalMaxPool1D,
    GlobalMaxPool2D,
    GlobalMaxPool3D,
    UpSample1D,
    UpSample2D,
    UpSample3D,
    ZeroPad1D,
    ZeroPad2D,
    Cropping1D,
    Cropping2D,
    BatchNorm,
    LayerNorm,
    Embedding,
    PositionalEmbedding,
    SimpleRNN,
    LSTM,
    GRU,
    MultiHeadAttention,
    TransformerEncoder,
    TransformerDecoder,
    Attention,
    AdditiveAttention,
    Add,
    Subtract,
    Multiply,
    Average,
    Maximum,
    Minimum,
    Concat,
    Dot,
)

LAYERS: dict[str, type[Layer]] = {cls.model_fields["kind"].default: cls for cls in _CLASSES}

AnyLayer = Annotated[Union[_CLASSES], Field(discriminator="kind")]

# What Keras and PyTorch call these layers, where the spelling alone would point elsewhere or
# nowhere (`swish` is nearest to `mish`). Case is ignored: `Dense` and `LSTM` need no entry.
FRAMEWORK_LAYER_NAMES: dict[str, str] = {
    "swish": "silu",
    "linear": "dense",  # torch.nn.Linear
    "BatchNormalization": "batchnorm",
    "LayerNormalization": "layernorm",
    "MaxPooling1D": "maxpool1d",
    "MaxPooling2D": "maxpool2d",
    "MaxPooling3D": "maxpool3d",
    "AveragePooling1D": "avgpool1d",
    "AveragePooling2D": "avgpool2d",
    "AveragePooling3D": "avgpool3d",
    "GlobalAveragePooling1D": "global_avgpool1d",
    "GlobalAveragePooling2D": "global_avgpool2d",
    "GlobalAveragePooling3D": "global_avgpool3d",
    "GlobalMaxPooling1D": "global_maxpool1d",
    "GlobalMaxPooling2D": "global_maxpool2d",
    "GlobalMaxPooling3D": "global_maxpool3d",
    "UpSampling1D": "upsample1d",
    "UpSampling2D": "upsample2d",
    "UpSampling3D": "upsample3d",
    "ZeroPadding1D": "zeropad1d",
    "ZeroPadding2D": "zeropad2d",
    "Concatenate": "concat",
    "Conv2DTranspose": "conv2d_transpose",
    "ConvTranspose2d": "conv2d_transpose",
    "SeparableConv1D": "separable_conv1d",
    "SeparableConv2D": "separable_conv2d",
    "TransformerEncoderLayer": "transformer_encoder",
    "TransformerDecoderLayer": "transformer_decoder",
}

__all__ = [
    "ACTIVATIONS",
    "FRAMEWORK_LAYER_NAMES",
    "INITIALIZERS",
    "LAYERS",
    "Activation",
    "AnyLayer",
    "Initializer",
    "Layer",
]
