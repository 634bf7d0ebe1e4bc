"""The Keras model.py generator and the PyTorch → Keras weight port, checked against the
PyTorch program: for small specs covering every layer kind, both programs are generated and
built, the PyTorch weights (perturbed, so that zero biases and fresh batchnorm statistics
cannot hide a mistake) are copied into Keras with `torch_to_keras`, and the same canonical
input must give the same outputs. Copying them back with `keras_to_torch` must too.

Tests that import a framework are marked slow; the rest only render and inspect source.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import specc
from specc import ir
from specc.backends.tensorflow import model_gen
from specc.backends.tensorflow.model_gen import BUILDER, keras_momentum, render_model
from specc.backends.torch import model_gen as torch_gen
from specc.errors import SpecError
from specc.layers import LAYERS
from specc.parity.transfer import keras_to_torch, torch_to_keras

from ..several_inputs import SEVERAL_INPUTS
from ..torch.test_model_gen import SHARED, STATES
from .conftest import import_source, load, model_spec

RUFF = Path(sys.executable).with_name("ruff")
RTOL, ATOL = 1e-4, 1e-5  # float32, after a few layers

BLOCKS = """
block conv_bn(filters, stride=1) {
    conv2d(filters, 3, stride=stride, padding=same, bias=false, l2=0.001)
    batchnorm(momentum=0.01, epsilon=0.001)
    relu()
}
block residual(filters) {
    h = in -> conv_bn(filters) -> conv2d(filters, 3, padding=same, bias=false)
    out = add(in, h) -> relu()
}
"""

# Small models that together use every layer kind, each kind in its tricky variants: `same`
# at stride 2 on odd and even sizes, strides larger than kernels, explicit padding, groups,
# dilation, every recurrent layout, attention with key_dim * heads != features.
CASES: dict[str, str] = {
    "dense": model_spec(
        "input x: float[6]",
        """
        dense(8, activation=relu, l1=0.01)
        dense(8, bias=false, l2=0.1)
        dense(8, activation=leaky_relu)
        dense(5, activation=gelu, init=he_normal, bias_init=uniform)
        """,
    ),
    "activations": model_spec(
        "input x: float[5, 4]",
        """
        a = x -> relu() -> gelu() -> sigmoid() -> tanh() -> softmax(axis=1)
        b = x -> silu() -> elu() -> leaky_relu(0.2) -> softplus() -> softsign() -> selu() -> mish()
            -> hard_sigmoid() -> hard_swish() -> exponential() -> softmax()
        c = x -> dense(3, activation=silu) -> dense(3, activation=elu)
            -> dense(3, activation=sigmoid) -> dense(3, activation=tanh)
            -> dense(3, activation=softmax)
        """,
        "a, b, c",
    ),
    "rearrange": model_spec(
        "input x: float[4, 6, 2]",
        """
        spatial_dropout2d(0.5)
        permute([3, 1, 2])
        reshape([-1, 6])
        spatial_dropout1d(0.5)
        identity()
        dropout(0.5)
        gaussian_noise(0.2)
        flatten()
        gaussian_dropout(0.3)
        alpha_dropout(0.1)
        dense(3)
        """,
    ),
    "conv2d": model_spec(
        "input image: float[9, 10, 4]",
        """
        a = image -> conv2d(4, 3, stride=2, padding=same, activation=relu)
        b = image -> conv2d(4, [4, 2], stride=[2, 3], padding=same, bias=false)
        c = image -> conv2d(6, 3, padding=same, dilation=2, groups=2)
        d = image -> conv2d(4, [3, 2], padding=[1, 2], stride=2, l2=0.01)
        e = image -> conv2d(2, 5, padding=2, activation=tanh) -> conv2d(3, 2)
        """,
        "a, b, c, d, e",
    ),
    "conv1d": model_spec(
        "input series: float[11, 3]",
        """
        a = series -> conv1d(4, 3, stride=2, padding=same)
        b = series -> conv1d(4, 4, padding=same, dilation=2, groups=1, activation=gelu)
        c = series -> conv1d(6, 3, padding=1, stride=3, groups=3)
        d = series -> conv1d(4, 3, padding=causal, dilation=2, activation=relu)
            -> conv1d(4, 4, stride=2, padding=causal)
        """,
        "a, b, c, d",
    ),
    "conv3d": model_spec(
        "input volume: float[7, 8, 9, 2]",
        """
        a = volume -> conv3d(4, 3, stride=2, padding=same, activation=relu)
        b = volume -> conv3d(4, [3, 2, 1], padding=[1, 0, 1], groups=2, bias=false, l2=0.01)
        c = volume -> conv3d(2, 2, padding=same, dilation=[2, 1, 2]) -> batchnorm()
        """,
        "a, b, c",
    ),
    "separable_conv": model_spec(
        "input image: float[9, 8, 3]\ninput series: float[10, 4]",
        """
        a = image -> separable_conv2d(6, 3, stride=2, padding=same, multiplier=2)
        b = image -> separable_conv2d(4, [2, 3], padding=[1, 0], bias=false, activation=relu)
        c = image -> separable_conv2d(2, 3, padding=same, dilation=2, init=he_uniform,
                                      bias_init=uniform)
        d = series -> separable_conv1d(5, 3, stride=2, padding=same, multiplier=3)
        e = series -> separable_conv1d(3, 2, padding=1, activation=tanh, init=lecun_normal)
        """,
        "a, b, c, d, e",
    ),
    "conv2d_transpose": model_spec(
        "input image: float[5, 6, 3]",
        """
        a = image -> conv2d_transpose(4, 3, stride=2)
        b = image -> conv2d_transpose(4, 3, stride=2, padding=same, activation=relu)
        c = image -> conv2d_transpose(2, 2, stride=3, padding=same)
        d = image -> conv2d_transpose(2, 2, stride=3, bias=false)
        e = image -> conv2d_transpose(2, 4, stride=2, padding=1)
        f = image -> conv2d_transpose(2, [2, 3], stride=[3, 1], padding=[1, 0])
        """,
        "a, b, c, d, e, f",
    ),
    "depthwise_conv2d": model_spec(
        "input image: float[9, 8, 3]",
        """
        a = image -> depthwise_conv2d(3, stride=2, padding=same, multiplier=2)
        b = image -> depthwise_conv2d([2, 3], padding=1, bias=false)
        c = image -> depthwise_conv2d(3, padding=same, dilation=2, multiplier=3,
                                      activation=relu)
        """,
        "a, b, c",
    ),
    "pooling": model_spec(
        "input image: float[9, 10, 3]\ninput series: float[7, 2]\ninput volume: float[5, 6, 7, 2]",
        """
        a = image -> maxpool2d(3, stride=2, padding=same) -> avgpool2d(2)
        b = image -> avgpool2d(3, stride=2, padding=same) -> maxpool2d([2, 3], stride=1)
        c = image -> global_maxpool2d()
        d = image -> global_avgpool2d()
        e = series -> maxpool1d(2, padding=same) -> avgpool1d(3, stride=1, padding=same)
        f = series -> avgpool1d(2) -> maxpool1d(2, stride=1)
        g = series -> global_avgpool1d()
        h = series -> global_maxpool1d()
        i = volume -> maxpool3d(2, padding=same) -> avgpool3d([3, 1, 2], stride=2, padding=same)
        j = volume -> avgpool3d(2) -> maxpool3d([2, 1, 2], stride=1)
        k = volume -> global_avgpool3d()
        m = volume -> global_maxpool3d()
        """,
        "a, b, c, d, e, f, g, h, i, j, k, m",
    ),
    "resampling": model_spec(
        "input image: float[3, 4, 2]\ninput series: float[4, 3]\ninput volume: float[2, 3, 2, 2]",
        """
        a = image -> upsample2d() -> zeropad2d(1)
        b = image -> upsample2d([2, 3]) -> zeropad2d([1, 2])
        c = image -> zeropad2d([[1, 0], [2, 3]])
        d = series -> upsample1d(3)
        e = volume -> upsample3d() -> upsample3d([1, 2, 3])
        f = series -> zeropad1d([1, 2]) -> cropping1d([0, 3]) -> zeropad1d(1) -> cropping1d(1)
        g = image -> cropping2d([[1, 0], [0, 2]]) -> upsample2d(3) -> cropping2d([1, 2])
            -> cropping2d([[1, 0], [0, 1]])
        """,
        "a, b, c, d, e, f, g",
    ),
    "normalization": model_spec(
        "input image: float[4, 5, 3]\ninput series: float[6, 4]\ninput x: float[5]",
        """
        a = image -> batchnorm(momentum=0.01, epsilon=0.001)
        b = series -> batchnorm() -> layernorm()
        c = x -> batchnorm() -> layernorm(epsilon=0.01)
        """,
        "a, b, c",
    ),
    "embeddings": model_spec(
        "input tokens: int[7]\ninput more: int[?]",
        """
        a = tokens -> embedding(12, 6) -> positional_embedding(10)
        b = more -> embedding(15, 4, init=glorot_uniform) -> positional_embedding(12)
        """,
        "a, b",
    ),
    "recurrent": model_spec(
        "input series: float[6, 3]",
        """
        a = series -> simple_rnn(4)
        b = series -> simple_rnn(3, return_sequences=true, bidirectional=true)
        c = series -> lstm(4, bias_init=ones)
        d = series -> lstm(3, return_sequences=true, bidirectional=true)
        e = series -> gru(4)
        f = series -> gru(3, return_sequences=true, bidirectional=true, bias_init=uniform)
        g = series -> lstm(4, bidirectional=true) -> dense(2)
        h = series -> gru(2, bidirectional=true)
        """,
        "a, b, c, d, e, f, g, h",
    ),
    # Token id 0 is padding anywhere in random_inputs' ids: masks through every recurrent
    # layout, merges and pooling; the options that need PyTorch's step loop, with and without.
    "masked": model_spec(
        "input tokens: int[7]\ninput more: int[?]",
        """
        t = tokens -> embedding(10, 5, mask_zero=true) -> dropout(0.2) -> dense(4)
        m = more -> embedding(10, 4, mask_zero=true)
        a = t -> lstm(3, bidirectional=true)
        b = t -> gru(3, return_sequences=true, bidirectional=true, dropout=0.5)
            -> global_avgpool1d()
        c = t -> simple_rnn(3, return_sequences=true, dropout=0.3, recurrent_dropout=0.2)
            -> layernorm() -> lstm(2, go_backwards=true)
        d = t -> lstm(3, return_sequences=true, recurrent_dropout=0.5) -> relu()
        e = t -> gru(2, go_backwards=true, return_sequences=true)
        f = add(t, t) -> global_avgpool1d()
        g = m -> gru(3, dropout=0.1, bidirectional=true)
        h = m -> lstm(3, return_sequences=true) -> global_maxpool1d()
        """,
        "a, b, c, d, e, f, g, h",
    ),
    # Self-attention under a mask: padded keys ignored, padded queries as Keras computes
    # them (uniform weights, or zero ones where the layer has dropout), causal or not.
    "masked_attention": model_spec(
        "input tokens: int[8]",
        """
        x = tokens -> embedding(10, 8, mask_zero=true)
        a = x -> positional_embedding(8) -> multihead_attention(2, key_dim=3)
        b = x -> dense(8) -> multihead_attention(2, dropout=0.1, causal=true)
        c = x -> relu() -> transformer_encoder(4, 8, norm_first=true) -> global_avgpool1d()
        f = x -> dense(8) -> dropout(0.1) -> transformer_encoder(2, 16) -> dense(4)
            -> global_avgpool1d()
        d = x -> layernorm() -> transformer_encoder(2, 12, dropout=0.0) -> lstm(3)
        """,
        "a, b, c, d, f",
    ),
    "attention": model_spec(
        "input series: float[5, 6]",
        """
        a = series -> multihead_attention(2)
        b = series -> multihead_attention(4, key_dim=3, causal=true)
        c = series -> multihead_attention(3, key_dim=5, dropout=0.2)
        """,
        "a, b, c",
    ),
    "transformer": model_spec(
        "input series: float[5, 8]",
        """
        a = series -> transformer_encoder(2, 16) -> transformer_encoder(4, 12, dropout=0.0)
        b = series -> transformer_encoder(2, 16, norm_first=true, activation=gelu)
        c = series -> transformer_encoder(1, 4, activation=leaky_relu, epsilon=0.001)
        """,
        "a, b, c",
    ),
    "several_inputs": SEVERAL_INPUTS,
    "merges": model_spec(
        "input x: float[4, 3]\ninput y: float[4, 3]",
        """
        a = add(x, y, x)
        m = multiply(x, y)
        v = average(x, y)
        s = subtract(x, y)
        u = maximum(x, y, v)
        w = minimum(u, x)
        c = concat(a, m, v, s, u, w)
        t = concat(x, y, axis=1) -> flatten() -> dense(2)
        """,
        "c, t",
    ),
    "blocks": model_spec(
        "input image: float[8, 8, 4]",
        """
        residual(4) * 2
        conv_bn(8, stride=2)
        residual(8)
        maxpool2d(2)
        residual(8)
        global_avgpool2d()
        dense(3)
        """,
        blocks=BLOCKS,
    ),
    "repeats": model_spec(
        "input image: float[9, 9, 4]",
        """
        conv_bn(4) * 2
        conv_bn(8, stride=2)
        plain(8) * 2
        dense(6) * 3
        flatten()
        """,
        blocks=BLOCKS + "block plain(filters) {\n conv2d(filters, 3, padding=same)\n relu()\n}",
    ),
    # Shared layers, and recurrent layers' states (the PyTorch tests' specs).
    "shared": SHARED,
    "states": STATES,
    "python_names": model_spec(
        "input class: float[4]\ninput keras: float[4]",
        """
        lambda = class -> dense(3)
        ops = keras -> dense(3)
        build_model = add(lambda, ops) -> relu()
        prefix = concat(build_model, lambda) -> conv_bn_block(2)
        """,
        "prefix, build_model",
        "block conv_bn_block(n) {\n ops = in -> dense(n)\n out = ops -> tanh()\n}",
    ),
}


# --- generated source ---------------------------------------------------------------------


def test_the_cases_cover_every_layer_kind(tmp_path: Path) -> None:
    kinds = set()
    for text in CASES.values():
        kinds |= {node.layer.kind for _, node in load(tmp_path, text).graph.walk()}
    assert kinds == set(LAYERS)


def test_generated_source_passes_ruff(tmp_path: Path) -> None:
    for name, text in CASES.items():
        path = tmp_path / f"{name}.py"
        path.write_text(render_model(load(tmp_path, text)))
    rules = ["--line-length", "100", "--extend-select", "E,W,I,B,UP,N"]
    found = subprocess.run(
        [str(RUFF), "check", "--isolated", "--no-cache", *rules, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode == 0, found.stdout


def test_generation_is_deterministic_and_standalone(tmp_path: Path) -> None:
    model = load(tmp_path, CASES["embeddings"])
    source = render_model(model)
    assert render_model(model) == source
    assert "specc" not in source.split('"""', 2)[2].replace('package="specc"', "")
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert imports == ["import keras", "from keras import layers, ops"]
    assert "def transformer_encoder" not in source and "def leaky_relu" not in source
    assert f"def {BUILDER}() -> keras.Model:" in source


def test_statements_name_layers_by_node_id(tmp_path: Path) -> None:
    source = render_model(load(tmp_path, CASES["blocks"]))
    assert 'x = residual(image, filters=4, name="residual_1")' in source
    assert 'x = layers.Dense(3, name="dense_1")(x)' in source
    # Block functions name their layers after the block node that calls them.
    assert 'name=f"{name}__conv2d_1"' in source
    assert 'x = conv_bn(in_, filters=filters, stride=1, name=f"{name}__conv_bn_1")' in source
    assert 'return keras.Model(inputs=image, outputs=x, name="net")' in source


def test_each_block_is_one_function_whatever_its_uses(tmp_path: Path) -> None:
    def source(layers: str) -> str:
        text = model_spec("input image: float[8, 8, 16]", layers, "", BLOCKS)
        return render_model(load(tmp_path, text))

    layers = "residual(16)\nresidual(16)\nconv2d(32, 1)\nresidual(32)"
    found = source(layers)
    assert re.findall(r"^def (\w+)\(", found, re.MULTILINE) == ["conv_bn", "residual", BUILDER]
    assert "def residual(in_, filters, name):" in found
    calls = re.findall(r"= residual\(x, (.*?)\)", found)
    assert calls == [f'filters={n}, name="residual_{i}"' for i, n in ((2, 16), (3, 32))]
    # residual(32) on two shapes too: the function never sees spatial sizes.
    layers += "\nmaxpool2d(2)\nresidual(32)"
    assert re.findall(r"^def (\w+)\(", source(layers), re.MULTILINE) == [
        "conv_bn", "residual", BUILDER
    ]


def test_spec_names_that_are_python_or_module_names_are_renamed(tmp_path: Path) -> None:
    source = render_model(load(tmp_path, CASES["python_names"]))
    for statement in ("lambda_ = ", "ops_ = ", "build_model_ = ", "prefix = "):
        assert f"    {statement}" in source, statement
    # Keras input names are the spec's own: they are strings, not variables.
    assert 'class_ = keras.Input(shape=(4,), name="class_")' in source
    assert "def conv_bn_block(in_, name):" in source and "ops_ = layers.Dense" in source
    compile(source, "model.py", "exec")


def test_block_arguments_never_inject_code(tmp_path: Path) -> None:
    block = "block b(name, n) {\n dense(n)\n}"
    text = model_spec("input x: float[4]", 'b("a\\"\\"\\"\\nimport os", 3)', "", block)
    source = render_model(load(tmp_path, text))
    compile(source, "model.py", "exec")
    assert "import os" not in source


def test_normative_numbers_are_spelled_for_keras(tmp_path: Path) -> None:
    source = render_model(load(tmp_path, CASES["normalization"]))
    calls = re.sub(r"\(\s+", "(", source)  # calls broken over lines, joined again
    assert "BatchNormalization(momentum=0.99, epsilon=0.001, " in calls
    assert "BatchNormalization(momentum=0.9, epsilon=1e-05, " in calls
    assert "LayerNormalization(epsilon=1e-05, " in calls
    assert keras_momentum(0.07) == 0.93 and keras_momentum(0.0) == 1.0
    recurrent = render_model(load(tmp_path, CASES["recurrent"])).split('"""', 2)[2]
    assert recurrent.count("unit_forget_bias=False") == recurrent.count("layers.LSTM(")
    assert recurrent.count("reset_after=True") == recurrent.count("layers.GRU(")


def test_unsupported_layer_is_an_error_at_its_line(tmp_path: Path, monkeypatch) -> None:
    model = load(tmp_path, model_spec("input x: float[4]", "dense(3)\nrelu()"))
    monkeypatch.delitem(model_gen.LayerWriter.RULES, "relu")
    with pytest.raises(SpecError, match="does not support the layer `relu`") as error:
        render_model(model)
    assert error.value.diagnostics[0].span.line == model.graph.nodes[1].span.line


def test_weights_left_over_are_an_error(tmp_path: Path) -> None:
    model = load(tmp_path, model_spec("input x: float[4]", "dense(3)"))
    state = {"dense_1.weight": np.ones((3, 4)), "dense_1.bias": np.zeros(3)}
    (kernel, bias) = torch_to_keras(model, state)["dense_1"]
    assert kernel.shape == (4, 3) and bias.shape == (3,)
    with pytest.raises(ValueError, match="without a Keras layer: dense_2.weight"):
        torch_to_keras(model, {**state, "dense_2.weight": np.ones(1)})
    with pytest.raises(KeyError, match="dense_1.bias"):
        torch_to_keras(model, {"dense_1.weight": np.ones((3, 4))})
    # The manifests say what each program holds: a tensor of another shape is refused.
    with pytest.raises(ValueError, match=r"`dense_1` have the shapes \[\(3, 4\), \(2,\)\]"):
        torch_to_keras(model, {"dense_1.weight": np.ones((4, 3)), "dense_1.bias": np.zeros(2)})


# --- the same function in both frameworks -------------------------------------------------


def random_inputs(model: ir.Model, unknown: int = 9) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    arrays = []
    for value in model.graph.inputs:
        shape = (3, *(unknown if d is None else d for d in value.shape))
        if value.dtype == "int64":
            arrays.append(rng.integers(0, 10, shape))
        else:
            arrays.append(rng.standard_normal(shape).astype(np.float32))
    return arrays


def torch_network(frameworks, tmp_path: Path, model: ir.Model):
    """The PyTorch program's model, with every parameter and batchnorm statistic perturbed."""
    torch = frameworks[0]
    module = import_source(tmp_path, torch_gen.render_model(model))
    torch.manual_seed(0)
    net = getattr(module, torch_gen.model_class_name(model))()
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
        for name, buffer in net.named_buffers():
            if name.endswith("running_mean"):
                buffer.copy_(0.2 * torch.randn_like(buffer))
            elif name.endswith("running_var"):
                buffer.copy_(torch.rand_like(buffer) + 0.5)
    return net.eval()


def torch_outputs(frameworks, net, inputs: list[np.ndarray]) -> list[np.ndarray]:
    torch = frameworks[0]
    with torch.no_grad():
        outputs = net(*(torch.from_numpy(x) for x in inputs))
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    return [y.numpy() for y in outputs]


def keras_outputs(keras_model, inputs: list[np.ndarray]) -> list[np.ndarray]:
    outputs = keras_model(inputs if len(inputs) > 1 else inputs[0], training=False)
    return [np.asarray(y) for y in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]


def assert_same_outputs(ours: list[np.ndarray], theirs: list[np.ndarray], what: str) -> None:
    assert len(ours) == len(theirs)
    for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a.shape == b.shape, f"{what}, output {index}: shapes {a.shape} vs {b.shape}"
        worst = float(np.max(np.abs(a - b))) if a.size else 0.0
        np.testing.assert_allclose(
            a, b, rtol=RTOL, atol=ATOL, err_msg=f"{what}, output {index}: max |diff| {worst:.3g}"
        )


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_keras_model_computes_the_torch_model_s_function(frameworks, tmp_path, case) -> None:
    model = load(tmp_path, CASES[case])
    net = torch_network(frameworks, tmp_path, model)
    keras_model = getattr(import_source(tmp_path, render_model(model)), BUILDER)()

    # Layer names: unique, and each weighted one holds the weights of the PyTorch submodule
    # that both manifests name for its node.
    names = [layer.name for layer in keras_model.layers]
    assert len(names) == len(set(names))
    weighted = {layer.name for layer in keras_model.layers if layer.weights}
    modules = dict(net.named_modules())
    torch_names = {e.path: e.name for e in torch_gen.manifest(model).entries if e.weights}
    keras_names = {e.path: {w.holder for w in e.weights}
                   for e in model_gen.manifest(model).entries if e.weights}
    assert set(torch_names) == set(keras_names)
    assert set().union(*keras_names.values()) == weighted
    assert set(torch_names.values()) <= set(modules)

    # Shapes, as Keras infers them: the IR's (`same`, `valid` and transposed sizes included).
    shapes = [tuple(y.shape[1:]) for y in keras_model.outputs]
    assert shapes == [model.graph.value(v).shape for v in model.graph.outputs]

    # Parameter counts: the IR's for TensorFlow.
    trainable = sum(int(np.prod(w.shape)) for w in keras_model.trainable_weights)
    frozen = sum(int(np.prod(w.shape)) for w in keras_model.non_trainable_weights)
    assert (trainable, frozen) == tuple(model.graph.params["tensorflow"])

    # PyTorch → Keras: every weighted layer receives weights, and computes the same outputs.
    state = {key: value.numpy() for key, value in net.state_dict().items()}
    ported = torch_to_keras(model, state)
    assert set(ported) == weighted
    for name, weights in ported.items():
        keras_model.get_layer(name).set_weights(weights)
    inputs = random_inputs(model)
    expected = torch_outputs(frameworks, net, inputs)
    assert_same_outputs(keras_outputs(keras_model, inputs), expected, f"{case}: keras")

    # Keras → PyTorch: a fresh PyTorch model loads every entry and computes them again.
    torch = frameworks[0]
    back = keras_to_torch(model, {layer.name: layer.get_weights() for layer in keras_model.layers})
    fresh = torch_network(frameworks, tmp_path, model)
    fresh.load_state_dict({key: torch.from_numpy(np.asarray(v)) for key, v in back.items()})
    assert_same_outputs(torch_outputs(frameworks, fresh, inputs), expected, f"{case}: back")


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_the_manifest_names_every_keras_weight(frameworks, tmp_path, case) -> None:
    model = load(tmp_path, CASES[case])
    keras_model = getattr(import_source(tmp_path, render_model(model)), BUILDER)()
    entries = model_gen.manifest(model).entries
    assert [entry.node for entry in entries] == [(*path, node.id)
                                                 for path, node in model.graph.walk()]
    listed: dict[str, list] = {}
    for entry in entries:
        keras_model.get_layer(entry.name)  # the node's output is this layer's
        for weight in entry.weights:
            listed.setdefault(weight.holder, []).append((weight.name, weight.shape))
    held = {layer.name: [(w.name, tuple(w.shape)) for w in layer.weights]
            for layer in keras_model.layers if layer.weights}
    assert listed == held


SEED_SPECS = sorted((Path(__file__).resolve().parents[3] / "specs").glob("*.spec"))


@pytest.mark.slow
@pytest.mark.parametrize("spec", SEED_SPECS, ids=lambda path: path.stem)
def test_seed_specs_compute_the_same_function(frameworks, tmp_path, spec) -> None:
    for model in specc.load(spec).models:
        net = torch_network(frameworks, tmp_path, model)
        keras_model = getattr(import_source(tmp_path, render_model(model)), BUILDER)()
        state = {key: value.numpy() for key, value in net.state_dict().items()}
        for name, weights in torch_to_keras(model, state).items():
            keras_model.get_layer(name).set_weights(weights)
        inputs = random_inputs(model)
        expected = torch_outputs(frameworks, net, inputs)
        assert_same_outputs(keras_outputs(keras_model, inputs), expected, model.name)


@pytest.mark.slow
def test_unknown_sizes_work_at_several_sizes(frameworks, tmp_path) -> None:
    model = load(
        tmp_path,
        model_spec(
            "input image: float[?, ?, 3]\ninput series: float[?, 4]",
            """
            a = image -> conv2d(4, 3, stride=2, padding=same) -> maxpool2d(2, padding=same)
            a = a -> avgpool2d(3, stride=2, padding=same)
                -> depthwise_conv2d(2, stride=2, padding=same) -> global_avgpool2d()
            b = series -> conv1d(4, 5, stride=3, padding=same) -> lstm(3)
            out = concat(a, b) -> dense(2)
            """,
            "out",
        ),
    )
    net = torch_network(frameworks, tmp_path, model)
    keras_model = getattr(import_source(tmp_path, render_model(model)), BUILDER)()
    state = {key: value.numpy() for key, value in net.state_dict().items()}
    for name, weights in torch_to_keras(model, state).items():
        keras_model.get_layer(name).set_weights(weights)
    for size in (7, 8, 13):
        inputs = random_inputs(model, unknown=size)
        expected = torch_outputs(frameworks, net, inputs)
        assert_same_outputs(keras_outputs(keras_model, inputs), expected, f"size {size}")


@pytest.mark.slow
def test_keras_layers_start_as_the_spec_says(frameworks, tmp_path) -> None:
    """Initial weights and the settings inference does not show: zero biases (LSTM forget
    gates included), the spec's batchnorm momentum, embeddings in U(-0.05, 0.05)."""
    model = load(
        tmp_path,
        model_spec(
            "input tokens: int[6]",
            """
            embedding(40, 8)
            lstm(5, return_sequences=true)
            gru(4, return_sequences=true)
            batchnorm(momentum=0.01)
            multihead_attention(2, key_dim=3)
            flatten()
            dense(3, l1=0.5)
            """,
        ),
    )
    keras_model = getattr(import_source(tmp_path, render_model(model)), BUILDER)()
    layer = keras_model.get_layer
    assert np.abs(layer("embedding_1").get_weights()[0]).max() <= 0.05
    _, _, lstm_bias = layer("lstm_1").get_weights()
    assert not lstm_bias.any()
    assert layer("gru_1").get_weights()[2].shape == (2, 12)  # reset_after: two biases
    assert layer("batchnorm_1").momentum == pytest.approx(0.99)
    assert layer("batchnorm_1").epsilon == pytest.approx(1e-5)
    assert not layer("multihead_attention_1").get_weights()[1].any()
    kernel = layer("dense_1").get_weights()[0]
    assert float(layer("dense_1").kernel_regularizer(kernel)) == pytest.approx(
        0.5 * np.abs(kernel).sum(), rel=1e-5
    )


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # Keras's own
def test_the_model_saves_and_loads_with_its_helpers(frameworks, tmp_path) -> None:
    keras = frameworks[1]
    model = load(
        tmp_path,
        model_spec(
            "input tokens: int[7]",
            """
            embedding(12, 8)
            positional_embedding(10, init=he_uniform)
            transformer_encoder(2, 16, activation=leaky_relu)
            dense(4, activation=leaky_relu)
            """,
        ),
    )
    keras_model = getattr(import_source(tmp_path, render_model(model)), BUILDER)()
    keras_model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    tokens = random_inputs(model)
    assert_same_outputs(keras_outputs(loaded, tokens), keras_outputs(keras_model, tokens), "load")


def test_a_shared_layer_is_built_once_into_a_variable_named_after_its_let(tmp_path) -> None:
    source = render_model(load(tmp_path, CASES["shared"]))
    assert source.count("layers.Conv2D(") == 1 and "    x = conv(left)" in source
    assert "    x = conv(right)" in source and "    b = head(x)" in source
    # weightless companions stay each use's own: the cropping after each transposed conv
    assert 'name="conv2d_transpose_1_crop"' in source
    assert 'name="conv2d_transpose_2_crop"' in source
    hostile = model_spec("input x: float[4]\ninput keras: float[4]", """
        let layers = dense(3)
        a = x -> layers
        b = keras -> layers
        y = add(a, b)
        """, "y")
    source = render_model(load(tmp_path, hostile))
    assert 'layers_ = layers.Dense(3, name="dense_1")' in source
    assert "a = layers_(x)" in source and "b = layers_(keras_)" in source
