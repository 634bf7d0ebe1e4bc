"""Whole networks whose parameter counts are published, composed layer by layer by hand.

Arguments are given positionally where a spec would, so these tests also pin the field order
that positional spec arguments bind to.
"""

from __future__ import annotations

import pytest

from specc.backends.registry import BACKEND_NAMES
from specc.layers import LAYERS
from specc.layers.base import Layer, ParamCount, Shape


def bind(kind: str, *args: object, **kwargs: object) -> Layer:
    """Build a layer as a spec call would: positional arguments fill fields in order."""
    cls = LAYERS[kind]
    names = [name for name in cls.model_fields if name != "kind"][: len(args)]
    return cls(**dict(zip(names, args, strict=True)), **kwargs)


class Net:
    """Threads shapes through layers and sums their parameters on both backends."""

    def __init__(self) -> None:
        self.params = dict.fromkeys(BACKEND_NAMES, ParamCount())

    def __call__(self, x: Shape | list[Shape], kind: str, *args: object, **kwargs: object) -> Shape:
        layer = bind(kind, *args, **kwargs)
        inputs = x if isinstance(x, list) else [x]
        for backend in BACKEND_NAMES:
            self.params[backend] += layer.params(inputs, backend)
        return layer.output_shape(inputs)

    @property
    def torch(self) -> ParamCount:
        return self.params["torch"]

    @property
    def keras(self) -> ParamCount:
        return self.params["tensorflow"]


def test_keras_mnist_convnet():
    # keras.io/examples/vision/mnist_convnet
    net = Net()
    x = net((28, 28, 1), "conv2d", 32, 3, activation="relu")
    x = net(x, "maxpool2d", 2)
    x = net(x, "conv2d", 64, 3, activation="relu")
    x = net(x, "maxpool2d", 2)
    x = net(x, "flatten")
    x = net(x, "dropout", 0.5)
    x = net(x, "dense", 10, "softmax")
    assert x == (10,)
    assert net.keras == net.torch == ParamCount(34_826)


def test_lenet5():
    net = Net()
    x = net((32, 32, 1), "conv2d", 6, 5, activation="tanh")
    x = net(x, "avgpool2d", 2)
    x = net(x, "conv2d", 16, 5, activation="tanh")
    x = net(x, "avgpool2d", 2)
    assert x == (5, 5, 16)
    x = net(x, "flatten")
    x = net(x, "dense", 120, "tanh")
    x = net(x, "dense", 84, "tanh")
    x = net(x, "dense", 10)
    assert net.keras == net.torch == ParamCount(61_706)


def _resnet_layer(net, x, filters, kernel=3, stride=1, relu=True, batchnorm=True):
    # keras.io ResNet v1 `resnet_layer`: conv (with bias) → BN → relu
    x = net(x, "conv2d", filters, kernel, stride, "same", init="he_normal")
    if batchnorm:
        x = net(x, "batchnorm")
    return net(x, "relu") if relu else x


def test_resnet20_v1_cifar10():
    # keras.io ResNet v1, depth 20: three stages of three residual blocks; the first block of
    # stages 2 and 3 halves the size, its shortcut a strided 1x1 conv without batchnorm.
    net = Net()
    x = _resnet_layer(net, (32, 32, 3), 16)
    filters = 16
    for stage in range(3):
        for block in range(3):
            stride = 2 if stage > 0 and block == 0 else 1
            y = _resnet_layer(net, x, filters, stride=stride)
            y = _resnet_layer(net, y, filters, relu=False)
            if stride == 2:
                x = _resnet_layer(net, x, filters, 1, stride, relu=False, batchnorm=False)
            x = net([x, y], "add")
            x = net(x, "relu")
        filters *= 2
    assert x == (8, 8, 64)
    x = net(x, "avgpool2d", 8)
    x = net(x, "flatten")
    x = net(x, "dense", 10, "softmax")
    assert net.keras == net.torch
    assert net.keras.total == 274_442
    assert net.keras.trainable == 273_066


@pytest.mark.parametrize(("backend", "count"), [
    ("tensorflow", ParamCount(2_757_761)),
    ("torch", ParamCount(2_757_761, 1_024)),  # 2,758,785 in all
])
def test_bidirectional_lstm_imdb(backend, count):
    # keras.io/examples/nlp/bidirectional_lstm_imdb; PyTorch LSTMs carry a second bias (frozen
    # at zero by the torch program, where Keras has none)
    net = Net()
    x = net((None,), "embedding", 20_000, 128)
    x = net(x, "lstm", 64, return_sequences=True, bidirectional=True)
    assert x == (None, 128)
    x = net(x, "lstm", 64, bidirectional=True)
    x = net(x, "dense", 1, "sigmoid")
    assert x == (1,)
    assert net.params[backend] == count
    assert net.params[backend].total == {"tensorflow": 2_757_761, "torch": 2_758_785}[backend]


def test_transformer_text_classification():
    # keras.io/examples/nlp/text_classification_with_transformer
    net = Net()
    x = net((200,), "embedding", 20_000, 32)
    x = net(x, "positional_embedding", 200)
    attention = net(x, "multihead_attention", 2, key_dim=32)
    x = net(net([x, attention], "add"), "layernorm", 1e-6)
    ff = net(x, "dense", 32, "relu")
    ff = net(ff, "dense", 32)
    x = net(net([x, ff], "add"), "layernorm", 1e-6)
    x = net(x, "global_avgpool1d")
    x = net(x, "dropout", 0.1)
    x = net(x, "dense", 20, "relu")
    x = net(x, "dropout", 0.1)
    x = net(x, "dense", 2, "softmax")
    assert x == (2,)
    assert net.keras == net.torch == ParamCount(657_758)


def test_vgg16():
    net = Net()
    x: Shape = (224, 224, 3)
    for filters, convs in [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]:
        for _ in range(convs):
            x = net(x, "conv2d", filters, 3, padding="same", activation="relu")
        x = net(x, "maxpool2d", 2)
    assert x == (7, 7, 512)
    x = net(x, "flatten")
    x = net(x, "dense", 4096, "relu")
    x = net(x, "dense", 4096, "relu")
    x = net(x, "dense", 1000, "softmax")
    assert net.keras == net.torch == ParamCount(138_357_544)
