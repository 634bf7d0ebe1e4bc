"""The PyTorch model.py generator: names, layouts, every layer kind, and numbers checked
against references (numpy, torch's own modules, TensorFlow for `same` padding).

Specs go through the real front end (`specc.load`). Tests that import torch or TensorFlow are
marked slow; the rest only render and inspect source.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import specc
from specc import ir
from specc.backends.common.plan import has_regularization
from specc.backends.naming import Step, candidates, pascal_case, snake_case, variable_names
from specc.backends.torch import model_gen
from specc.backends.torch.model_gen import model_class_name, render_model
from specc.errors import SpecError
from specc.layers import LAYERS

from ..several_inputs import SEVERAL_INPUTS

RUFF = Path(sys.executable).with_name("ruff")
_modules = itertools.count()


def load(tmp_path: Path, text: str) -> ir.Model:
    spec = tmp_path / f"spec{next(_modules)}.spec"
    spec.write_text(textwrap.dedent(text))
    return specc.load(spec).models[0]


def model_spec(inputs: str, body: str, outputs: str = "", blocks: str = "") -> str:
    """A spec with one model `net`: `inputs` lines, a `graph` body (or `layers` when
    `outputs` is empty) and the blocks it uses."""
    section = f"graph {{\n{body}\n}}\noutput {outputs}" if outputs else f"layers {{\n{body}\n}}"
    return f"{blocks}\nmodel net {{\n{inputs}\n{section}\n}}\n"


def instantiate(tmp_path: Path, model: ir.Model):
    """Render model.py into tmp_path, import it, and return (source, the model instance)."""
    import torch

    source = render_model(model)
    path = tmp_path / f"model_{next(_modules)}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    return source, getattr(module, model_class_name(model))()


def random_inputs(model: ir.Model, batch: int = 2, unknown: int = 9):
    import torch

    generator = torch.Generator().manual_seed(1)
    tensors = []
    for value in model.graph.inputs:
        shape = (batch, *(unknown if d is None else d for d in value.shape))
        if value.dtype == "int64":
            tensors.append(torch.randint(0, 10, shape, generator=generator))
        else:
            tensors.append(torch.randn(shape, generator=generator))
    return tensors


def check_against_ir(tmp_path: Path, model: ir.Model, unknown: int = 9):
    """Forward random canonical inputs; outputs and parameter counts must be the IR's."""
    net = instantiate(tmp_path, model)[1]
    outputs = net(*random_inputs(model, unknown=unknown))
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    assert len(outputs) == len(model.graph.outputs)
    for tensor, value_id in zip(outputs, model.graph.outputs, strict=True):
        expected = model.graph.value(value_id).shape
        assert tuple(tensor.shape) == (2, *(unknown if d is None else d for d in expected))
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in net.parameters() if not p.requires_grad)
    buffers = sum(
        b.numel() for name, b in net.named_buffers() if not name.endswith("num_batches_tracked")
    )
    assert (trainable, frozen + buffers) == tuple(model.graph.params["torch"])
    return net


# --- every layer kind, through forward passes ----------------------------------------------

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

VISION = model_spec(
    "input image: float[15, 17, 3]",
    """
    a = image -> zeropad2d([[1, 0], [2, 1]])
        -> conv2d(8, 3, stride=2, padding=same, activation=relu, l1=0.01)
    b = a -> depthwise_conv2d(3, stride=2, padding=same, multiplier=2)
        -> conv_bn(16) -> conv_bn(16, stride=2) -> residual(16)
    c = b -> conv2d_transpose(8, 3, stride=2, padding=same) -> maxpool2d(3, stride=2, padding=same)
    d = c -> avgpool2d(3, stride=2, padding=same) -> upsample2d(2)
        -> conv2d(8, [2, 3], padding=same, dilation=2, groups=2)
    e = d -> conv2d_transpose(4, 2, stride=3) -> conv2d_transpose(4, 4, stride=2, padding=1)
        -> gelu() -> softmax(axis=1)
    class = e -> global_maxpool2d() -> dense(10, activation=softmax)
    lambda = e -> global_avgpool2d() -> leaky_relu(0.2) -> dense(10)
    np = concat(class, lambda) -> dense(4)
    torch = d -> flatten() -> dropout(0.5) -> dense(4, activation=tanh)
    tf = average(np, torch) -> elu() -> silu() -> sigmoid() -> tanh() -> softplus() -> softsign()
        -> selu() -> mish() -> hard_sigmoid() -> hard_swish() -> exponential() -> identity()
    F = d -> permute([3, 1, 2]) -> reshape([-1, 4]) -> layernorm(epsilon=0.001) -> relu()
    self = multiply(F, F) -> maxpool1d(2) -> avgpool1d(3, stride=1, padding=same)
    """,
    "tf, self",
    BLOCKS,
)

SEQUENCES = model_spec(
    "input tokens: int[12]",
    """
    x = tokens -> embedding(50, 16, init=glorot_normal) -> positional_embedding(20, init=he_uniform)
    a = x -> lstm(8, return_sequences=true, bidirectional=true) -> gru(6, return_sequences=true)
    b = x -> simple_rnn(5, bidirectional=true)
    c = x -> gru(7, bidirectional=true, init=lecun_normal, recurrent_init=glorot_uniform,
                 bias_init=ones)
    d = x -> lstm(4)
    e = x -> multihead_attention(3, key_dim=5, dropout=0.1, causal=true)
        -> transformer_encoder(4, 32)
        -> transformer_encoder(2, 8, norm_first=true, activation=gelu, dropout=0.0)
    f = e -> conv1d(8, 3, padding=same, stride=2) -> maxpool1d(2) -> avgpool1d(2, padding=same)
        -> batchnorm() -> global_avgpool1d()
    g = e -> global_maxpool1d()
    h = a -> flatten()
    out = concat(b, c, d, f, g, h) -> batchnorm() -> dense(3)
    print = e -> permute([2, 1]) -> softmax(axis=1) -> conv1d(4, 2)
    tcn = e -> conv1d(4, 3, padding=causal, dilation=2) -> conv1d(4, 2, stride=2, padding=causal)
    high = maximum(tcn, tcn, tcn)
    low = minimum(tcn, high)
    low = subtract(high, low)
    """,
    "out, print, low",
)

VOLUMES = model_spec(
    "input volume: float[7, 8, 9, 2]\ninput series: float[5, 3]",
    """
    v = volume -> conv3d(4, 3, stride=2, padding=same, activation=relu, l2=0.01)
        -> conv3d(6, [3, 1, 2], padding=[1, 0, 1], groups=2) -> batchnorm()
    a = v -> maxpool3d(2, padding=same) -> upsample3d([1, 2, 2])
        -> avgpool3d(3, stride=2, padding=same) -> global_avgpool3d()
    b = v -> global_maxpool3d()
    c = series -> upsample1d(3) -> conv1d(2, 3) -> flatten()
    d = series -> separable_conv1d(4, 3, padding=same, multiplier=2, activation=relu)
        -> separable_conv1d(3, 2, stride=2, bias=false, init=he_normal) -> flatten()
    e = volume -> global_avgpool3d() -> reshape([1, 1, 2])
        -> separable_conv2d(4, 1, multiplier=3, bias_init=ones) -> flatten()
    f = series -> zeropad1d([1, 2]) -> cropping1d([0, 3]) -> conv1d(2, 2, padding=same)
        -> cropping1d(1) -> zeropad1d(2) -> flatten()
    g = volume -> conv3d(2, 1) -> reshape([7, 8, 18]) -> cropping2d([[1, 2], [0, 3]])
        -> conv2d(2, 1) -> cropping2d([1, 2]) -> flatten()
    h = series -> gaussian_noise(0.5) -> conv1d(3, 2) -> spatial_dropout1d(0.5) -> flatten()
        -> alpha_dropout(0.2) -> gaussian_dropout(0.3)
    i = volume -> reshape([7, 8, 18]) -> spatial_dropout2d(0.4) -> global_maxpool2d()
    out = concat(a, b, c, d, e, f, g, h, i) -> dense(2)
    """,
    "out",
)

# `?` sizes: `same` padding at stride 2 must be computed at run time.
UNKNOWN_SIZES = model_spec(
    "input image: float[?, ?, 3]\ninput series: float[?, 4]\ninput clip: float[?, 6, ?, 1]",
    """
    a = image -> conv2d(4, 3, stride=2, padding=same) -> maxpool2d(2, padding=same)
    a = a -> avgpool2d(3, stride=2, padding=same) -> depthwise_conv2d(2, stride=2, padding=same)
    a = a -> separable_conv2d(4, 3, stride=2, padding=same) -> global_avgpool2d()
    b = series -> conv1d(4, 5, stride=3, padding=same) -> lstm(3)
    c = clip -> conv3d(2, 3, stride=2, padding=same) -> maxpool3d(2, padding=same)
        -> global_maxpool3d()
    out = concat(a, b, c) -> dense(2)
    """,
    "out",
)

# The seed's convnet, as a plain sequence.
MNIST = model_spec(
    "input image: float[28, 28, 1]",
    """
    conv2d(32, 3, activation=relu)
    maxpool2d(2)
    conv2d(64, 3, activation=relu)
    maxpool2d(2)
    flatten()
    dense(64, activation=relu)
    dense(10)
    """,
)

# Repeated calls (ModuleLists), with penalties inside; a block whose `same` padding is even
# at one use and uneven at another (stride 2 on an odd size).
REPEATS = model_spec(
    "input image: float[9, 9, 4]",
    """
    conv_bn(4) * 2
    conv_bn(8, stride=2)
    residual(8) * 2
    dense(6) * 3
    flatten()
    """,
    blocks=BLOCKS,
)

# Shared layers: one module (one Keras layer object) at each use; a penalty, uneven padding,
# a transposed convolution's cropping and a recurrent layer among them.
SHARED = model_spec(
    "input left: float[9, 9, 2]\ninput right: float[9, 9, 2]\ninput p: int[6]\ninput q: int[6]",
    """
    let conv = conv2d(4, 3, stride=2, padding=same, l2=0.01)
    let up = conv2d_transpose(4, 3, stride=2, padding=1)
    let head = dense(3, activation=relu)
    let emb = embedding(20, 4)
    let rnn = lstm(5)
    a = left -> conv -> up -> global_avgpool2d() -> head
    b = right -> conv -> up -> global_maxpool2d() -> head
    s = p -> emb -> rnn
    t = q -> emb -> rnn
    y = add(a, b)
    z = concat(s, t)
    """,
    "y, z",
)

# Recurrent layers' final states (return_state), one of them a shared layer's, and
# decoders that start from them (initial_state).
STATES = model_spec(
    "input x: float[7, 3]\ninput w: float[7, 3]",
    """
    let enc = lstm(5, return_sequences=true, return_state=true)
    seq, h, c = x -> enc
    seq2, h2, c2 = w -> enc
    last, g = x -> gru(4, return_state=true)
    rs, r = x -> simple_rnn(3, return_state=true)
    d = w -> lstm(5, initial_state=[h2, c2])
    e = w -> gru(4, return_sequences=true, initial_state=g) -> flatten()
    y = concat(h, c, h2, c2, g, last, r, rs, d, e)
    z = add(seq, seq2)
    """,
    "y, z, c",
)

# Padding masks (embedding mask_zero) through layers that keep them, merges of two masks,
# and the recurrent options that need the step loop.
MASKS = model_spec(
    "input tokens: int[?]\ninput more: int[9]",
    """
    x = tokens -> embedding(30, 6, mask_zero=true) -> dense(5) -> dropout(0.1)
    m = more -> embedding(30, 5, mask_zero=true)
    a = x -> lstm(4, bidirectional=true)
    b = x -> gru(3, return_sequences=true, go_backwards=true) -> global_avgpool1d()
    c = x -> simple_rnn(3, dropout=0.2, recurrent_dropout=0.1)
    d = m -> lstm(4, return_sequences=true, recurrent_dropout=0.3) -> flatten()
    e = add(m, m) -> global_avgpool1d()
    out = concat(a, b, c, d, e) -> dense(2)
    """,
    "out",
)

ALL_SPECS = {
    "masks": MASKS,
    "several_inputs": SEVERAL_INPUTS,
    "repeats": REPEATS,
    "shared": SHARED,
    "states": STATES,
    "vision": VISION,
    "sequences": SEQUENCES,
    "volumes": VOLUMES,
    "unknown_sizes": UNKNOWN_SIZES,
    "mnist": MNIST,
}


def test_the_specs_cover_every_layer_kind(tmp_path: Path) -> None:
    kinds = set()
    for text in ALL_SPECS.values():
        kinds |= {node.layer.kind for _, node in load(tmp_path, text).graph.walk()}
    assert kinds == set(LAYERS)


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL_SPECS)
def test_forward_gives_the_ir_shapes_and_parameter_counts(tmp_path: Path, name: str) -> None:
    check_against_ir(tmp_path, load(tmp_path, ALL_SPECS[name]))


@pytest.mark.slow
def test_unknown_sizes_run_at_several_sizes(tmp_path: Path) -> None:
    model = load(tmp_path, UNKNOWN_SIZES)
    for size in (7, 8, 13):
        check_against_ir(tmp_path, model, unknown=size)


# --- generated source ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_SPECS)
def test_generated_source_passes_ruff(tmp_path: Path, name: str) -> None:
    path = tmp_path / "model.py"
    path.write_text(render_model(load(tmp_path, ALL_SPECS[name])))
    for rules in ([], ["--line-length", "100", "--extend-select", "E,W,I,B,UP"]):
        found = subprocess.run(
            [str(RUFF), "check", "--isolated", "--no-cache", *rules, str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert found.returncode == 0, found.stdout


def test_generation_is_deterministic_and_standalone(tmp_path: Path) -> None:
    model = load(tmp_path, VISION)
    source = render_model(model)
    assert render_model(model) == source
    assert "specc" not in source.split('"""', 2)[2]  # after the module docstring
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert imports == [
        "import math",
        "import torch",
        "import torch.nn.functional as F",
        "from torch import nn",
    ]


def test_only_used_imports_and_helpers_are_emitted(tmp_path: Path) -> None:
    source = render_model(load(tmp_path, model_spec("input x: float[4]", "dense(2)")))
    assert "import torch\n" not in source and "import math" not in source
    assert "functional" not in source
    assert "def same_padding" not in source and "class MultiheadAttention" not in source
    transformer = render_model(
        load(tmp_path, model_spec("input x: float[5, 8]", "transformer_encoder(2, 16)"))
    )
    # The encoder layer is built on the attention helper, which must come along.
    assert "class MultiheadAttention" in transformer and "class TransformerEncoder" in transformer


def test_spec_names_that_are_python_names_are_renamed(tmp_path: Path) -> None:
    source = render_model(load(tmp_path, VISION))
    for statement in ("class_ = ", "lambda_ = ", "np = ", "torch_ = ", "tf = ", "f = ", "self_ = "):
        assert f"        {statement}" in source, statement
    assert "return tf, self_" in source
    compile(source, "model.py", "exec")


def test_sequence_layers_use_x_and_the_input_name(tmp_path: Path) -> None:
    source = render_model(load(tmp_path, MNIST))
    forward = source[source.index("def forward(self, image):") :]
    assert "image = image.permute(0, 3, 1, 2)  " in forward
    assert "x = F.relu(self.conv2d_1(image))" in forward
    # Back to channels-last before flatten, so flatten gives the spec's order.
    assert forward.index("x = x.permute(0, 2, 3, 1)") < forward.index("x = x.flatten(1)")
    assert "x = self.dense_2(x)" in forward and "return x" in forward
    assert "# (B, 32, 26, 26)" in forward  # shape comments in the held (channels-first) layout


def test_each_block_is_one_class_whatever_its_uses(tmp_path: Path) -> None:
    def source(layers: str) -> str:
        text = model_spec("input image: float[8, 8, 16]", layers, "", BLOCKS)
        return render_model(load(tmp_path, text))

    # residual(16) twice and residual(32): one class, constructed with each use's argument.
    layers = "residual(16)\nresidual(16)\nconv2d(32, 1)\nresidual(32)"
    found = source(layers)
    assert re.findall(r"^class (\w+)", found, re.MULTILINE) == ["ConvBn", "Residual", "Net"]
    assert "class Residual(nn.Module):" in found and "def __init__(self, filters):" in found
    calls = re.findall(r"= Residual\((.*)\)", found)
    assert calls == ["filters=16", "filters=16", "filters=32"]
    # residual(32) on two shapes too: spatial sizes do not reach a class.
    layers += "\nmaxpool2d(2)\nresidual(32)"
    found = source(layers)
    assert re.findall(r"^class (\w+)", found, re.MULTILINE) == ["ConvBn", "Residual", "Net"]
    assert re.findall(r"= Residual\((.*)\)", found)[-1] == "filters=32"


def test_block_arguments_never_inject_code(tmp_path: Path) -> None:
    text = model_spec(
        "input x: float[4]",
        'b("a\\"\\"\\"\\nimport os", 3)',
        "",
        "block b(name, n) {\n dense(n)\n}",
    )
    source = render_model(load(tmp_path, text))
    compile(source, "model.py", "exec")
    assert "import os" not in source


def test_unsupported_layer_is_an_error_at_its_line(tmp_path: Path, monkeypatch) -> None:
    model = load(tmp_path, model_spec("input x: float[4]", "dense(3)\nrelu()"))
    monkeypatch.delitem(model_gen.LayerWriter.RULES, "relu")
    with pytest.raises(SpecError, match="does not support the layer `relu`") as error:
        render_model(model)
    assert error.value.diagnostics[0].span.line == model.graph.nodes[1].span.line


def test_regularization_is_declared_only_with_penalties(tmp_path: Path) -> None:
    plain = load(tmp_path, MNIST)
    assert not has_regularization(plain)
    assert "def regularization" not in render_model(plain)
    vision = load(tmp_path, VISION)
    assert has_regularization(vision)
    source = render_model(vision)
    method = source[source.index("def regularization") :]
    assert "0.01 * self.conv2d_1.weight.abs().sum()" in method
    # Penalties inside blocks are reached through the block's attribute.
    assert "0.001 * self.conv_bn_1.conv2d_1.weight.square().sum()" in method


# --- naming -------------------------------------------------------------------------------


def test_names() -> None:
    assert pascal_case("mnist_cnn") == "MnistCnn"
    assert pascal_case("3d_net") == "M3dNet"
    assert snake_case("myValue") == "my_value" and snake_case("X") == "x"
    reserved = frozenset({"class", "torch", "torch_"})
    assert list(itertools.islice(candidates("class", reserved), 3)) == [
        "class_",
        "class__2",
        "class__3",
    ]
    assert next(candidates("torch", reserved)) == "torch__2"
    assert list(itertools.islice(candidates("Residual", set(), "Block", ""), 2)) == [
        "Residual",
        "Residual2",
    ]


def test_variable_names_reuse_a_name_only_once_its_value_is_dead() -> None:
    steps = [
        Step("v1", "h", ("in",)),
        Step("v2", "h", ("v1",)),  # h = h -> ...: the old h is dead, reuse
        Step("v3", "y", ("v2",)),
        Step("v4", "h", ("v2",)),  # v2 is still read by v5: needs a new name
        Step("v5", "out", ("v2", "v4")),
    ]
    names = variable_names([("in", "in")], steps, ["v5"])
    assert names == {"in": "in_", "v1": "h", "v2": "h", "v3": "y", "v4": "h_2", "v5": "out"}


def test_model_class_names_avoid_the_module_names() -> None:
    def named(name: str) -> str:
        return model_class_name(ir.Model.model_construct(name=name))

    assert named("mnist_cnn") == "MnistCnn"
    assert named("transformer_encoder") == "TransformerEncoderModel"
    assert named("f") == "FModel"


def test_torch_initializers_are_used_only_where_its_fans_are_keras_s() -> None:
    def statement(initializer, torch_shape, keras_shape):
        return model_gen.init_statement(initializer, "w", torch_shape, keras_shape).code

    # Convolution kernels, transposed ones included: torch's fans equal Keras's.
    assert statement("glorot_uniform", (32, 3, 3, 3), (3, 3, 3, 32)) == "nn.init.xavier_uniform_(w)"
    assert statement("glorot_uniform", (16, 8, 3, 3), (3, 3, 8, 16)).startswith("nn.init.xavier")
    # A depthwise kernel [3, 3, 8, 4] is torch's [32, 1, 3, 3]: Keras's fans, written out.
    limit = math.sqrt(6 / (72 + 36))
    assert statement("glorot_uniform", (32, 1, 3, 3), (3, 3, 8, 4)) == (
        f"nn.init.uniform_(w, {-limit!r}, {limit!r})"
    )
    # An embedding table has the same shape in both, but torch reads its fans the other way.
    assert statement("he_uniform", (50, 16), (50, 16)) == (
        f"nn.init.uniform_(w, {-math.sqrt(6 / 50)!r}, {math.sqrt(6 / 50)!r})"
    )
    assert statement("he_uniform", (16, 50), (50, 16)).startswith("nn.init.kaiming_uniform_")


# --- numbers against references ------------------------------------------------------------


@pytest.mark.slow
def test_flatten_keeps_the_channels_last_order(tmp_path: Path) -> None:
    import torch

    model = load(
        tmp_path, model_spec("input x: float[4, 5, 3]", "conv2d(2, 1, bias=false)\nflatten()")
    )
    net = instantiate(tmp_path, model)[1]
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 3)).astype(np.float32)
    kernel = net.conv2d_1.weight.detach().numpy()[:, :, 0, 0]  # [out, in]
    expected = np.einsum("bhwc,oc->bhwo", x, kernel).reshape(2, -1)
    got = net(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_axis_arguments_are_canonical(tmp_path: Path) -> None:
    import torch

    model = load(
        tmp_path,
        model_spec(
            "input x: float[4, 5, 3]",
            "a = x -> conv2d(2, 1, bias=false)\ns = a -> softmax(axis=1)\nc = concat(a, a, axis=2)",
            "s, c",
        ),
    )
    net = instantiate(tmp_path, model)[1]
    x = torch.randn(2, 4, 5, 3)
    conv = torch.einsum("bhwc,oc->bhwo", x, net.conv2d_1.weight[:, :, 0, 0])
    softmax, concat = net(x)
    torch.testing.assert_close(softmax, torch.softmax(conv, dim=1))
    torch.testing.assert_close(concat, torch.cat([conv, conv], dim=2))


@pytest.mark.slow
def test_recurrent_final_state_is_keras_s(tmp_path: Path) -> None:
    import torch

    model = load(
        tmp_path,
        model_spec(
            "input x: float[6, 3]",
            "a = x -> lstm(4, bidirectional=true)\ns = x -> gru(5)",
            "a, s",
        ),
    )
    net = instantiate(tmp_path, model)[1]
    x = torch.randn(2, 6, 3)
    final, last = net(x)
    steps = net.lstm_1(x)[0]
    # Forward direction's state after the last step, backward's after the first.
    torch.testing.assert_close(final, torch.cat([steps[:, -1, :4], steps[:, 0, 4:]], dim=-1))
    torch.testing.assert_close(last, net.gru_1(x)[0][:, -1])


def test_recurrent_layers_without_masks_or_options_stay_torch_s_own(tmp_path: Path) -> None:
    plain = render_model(load(tmp_path, model_spec(
        "input x: float[6, 3]", "a = x -> lstm(4)\nb = x -> gru(3, bidirectional=true)", "a, b")))
    assert "nn.LSTM(3, 4, batch_first=True)" in plain and "nn.GRU(" in plain
    assert "recurrent_steps" not in plain and "Stepped" not in plain and "mask" not in plain
    stepped = render_model(load(tmp_path, MASKS))
    assert "self.lstm_1 = SteppedLSTM(5, 4, batch_first=True, bidirectional=True)" in stepped
    assert "mask = tokens != 0" in stepped and "mask_2 = more != 0" in stepped
    assert "a = self.lstm_1(x, mask)" in stepped
    assert "self.simple_rnn_1(x, mask, dropout=0.2, recurrent_dropout=0.1)" in stepped
    # add(m, m) shares m's mask; flatten drops d's, which nothing reads after it.
    assert "mask_3" not in stepped
    assert "b = masked_mean(x_2, mask)" in stepped and "e = masked_mean(x, mask_2)" in stepped
    # Two embeddings of one input read one mask.
    twice = render_model(load(tmp_path, model_spec("input tokens: int[7]", """
        a = tokens -> embedding(9, 4, mask_zero=true) -> lstm(3)
        b = tokens -> embedding(9, 5, mask_zero=true) -> gru(2)
        y = concat(a, b)""", "y")))
    assert twice.count("!= 0") == 1 and "mask_2" not in twice
    assert "self.lstm_1(x, mask)" in twice and "self.gru_1(x, mask)" in twice


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["simple_rnn", "lstm", "gru"])
def test_the_step_loop_computes_torch_s_own_recurrence(tmp_path: Path, kind: str) -> None:
    """Without padding or dropout, Keras's step loop over the module's weights is the fused
    torch layer's computation; reading backwards is that of the flipped sequence."""
    import torch
    from torch import nn

    model = load(tmp_path, model_spec(
        "input x: float[5, 3]",
        f"""
        a = x -> {kind}(4, return_sequences=true, bidirectional=true, dropout=0.5)
        b = x -> {kind}(4, return_sequences=true, go_backwards=true)
        """,
        "a, b",
    ))
    _, net = instantiate(tmp_path, model)
    net.eval()
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))  # the frozen biases too
        x = torch.randn(2, 5, 3)
        a, b = net(x)
        fused = {"simple_rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind].forward
        first, second = (getattr(net, f"{kind}_{n}") for n in (1, 2))
        torch.testing.assert_close(a, fused(first, x)[0])
        torch.testing.assert_close(b, fused(second, x.flip(1))[0])


@pytest.mark.slow
def test_recurrent_second_bias_trains_only_where_keras_has_one(tmp_path: Path) -> None:
    import torch

    model = load(
        tmp_path,
        model_spec(
            "input x: float[6, 3]",
            "a = x -> lstm(4, bidirectional=true)\nr = x -> simple_rnn(3)\ns = x -> gru(5)",
            "a, r, s",
        ),
    )
    net = instantiate(tmp_path, model)[1]
    optimizer = torch.optim.Adam(net.parameters(), lr=0.1)
    sum(output.square().sum() for output in net(torch.randn(2, 6, 3))).backward()
    optimizer.step()
    for name, weight in net.named_parameters():
        moved = bool(weight.abs().sum() > 0)  # every bias starts at zero
        if "bias_hh" in name and not name.startswith("gru"):
            assert not weight.requires_grad and not moved, name  # Keras has one bias there
        else:
            assert weight.requires_grad and moved, name


@pytest.mark.slow
@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_encoder_is_torch_s_encoder_layer(tmp_path: Path, norm_first: bool) -> None:
    import torch
    from torch import nn

    model = load(
        tmp_path,
        model_spec(
            "input x: float[7, 8]",
            f"transformer_encoder(2, 16, activation=gelu, norm_first={str(norm_first).lower()})",
        ),
    )
    ours = instantiate(tmp_path, model)[1].transformer_encoder_1.eval()
    theirs = nn.TransformerEncoderLayer(
        8, 2, 16, dropout=0.1, activation="gelu", batch_first=True, norm_first=norm_first
    ).eval()
    attention = ours.attention
    with torch.no_grad():
        for parameter in ours.parameters():  # our initializers leave the biases at zero
            parameter.add_(0.1 * torch.randn_like(parameter))
        projections = (attention.query, attention.key, attention.value)
        theirs.self_attn.in_proj_weight.copy_(torch.cat([p.weight for p in projections]))
        theirs.self_attn.in_proj_bias.copy_(torch.cat([p.bias for p in projections]))
        theirs.self_attn.out_proj.load_state_dict(attention.output.state_dict())
        for name in ("linear1", "linear2", "norm1", "norm2"):
            getattr(theirs, name).load_state_dict(getattr(ours, name).state_dict())
        x = torch.randn(3, 7, 8)
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_decoder_is_torch_s_decoder_layer(tmp_path: Path, norm_first: bool) -> None:
    import torch
    from torch import nn

    model = load(
        tmp_path,
        model_spec(
            "input x: float[7, 8]\ninput memory: float[9, 8]",
            "y = transformer_decoder(x, memory, 2, 16, activation=gelu, "
            f"norm_first={str(norm_first).lower()})",
            "y",
        ),
    )
    ours = instantiate(tmp_path, model)[1].transformer_decoder_1.eval()
    theirs = nn.TransformerDecoderLayer(
        8, 2, 16, dropout=0.1, activation="gelu", batch_first=True, norm_first=norm_first
    ).eval()
    assert sum(p.numel() for p in ours.parameters()) == sum(
        p.numel() for p in theirs.parameters()
    ) == model.graph.params["torch"].total
    with torch.no_grad():
        for parameter in ours.parameters():  # our initializers leave the biases at zero
            parameter.add_(0.1 * torch.randn_like(parameter))
        for mine, torchs in ((ours.self_attention, theirs.self_attn),
                             (ours.cross_attention, theirs.multihead_attn)):
            projections = (mine.query, mine.key, mine.value)
            torchs.in_proj_weight.copy_(torch.cat([p.weight for p in projections]))
            torchs.in_proj_bias.copy_(torch.cat([p.bias for p in projections]))
            torchs.out_proj.load_state_dict(mine.output.state_dict())
        for name in ("linear1", "linear2", "norm1", "norm2", "norm3"):
            getattr(theirs, name).load_state_dict(getattr(ours, name).state_dict())
        x, memory = torch.randn(3, 7, 8), torch.randn(3, 9, 8)
        mask = nn.Transformer.generate_square_subsequent_mask(7)
        expected = theirs(x, memory, tgt_mask=mask, tgt_is_causal=True)
        torch.testing.assert_close(ours(x, memory), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_cross_attention_is_torch_s_multihead_attention(tmp_path: Path) -> None:
    import torch
    from torch import nn

    model = load(
        tmp_path,
        model_spec("input q: float[4, 8]\ninput v: float[6, 5]\ninput k: float[6, 3]",
                   "y = multihead_attention(q, v, k, heads=2)", "y"),
    )
    net = instantiate(tmp_path, model)[1].eval()
    ours = net.multihead_attention_1
    theirs = nn.MultiheadAttention(8, 2, kdim=3, vdim=5, batch_first=True).eval()
    with torch.no_grad():
        for parameter in ours.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
        for mine, name in ((ours.query, "q"), (ours.key, "k"), (ours.value, "v")):
            getattr(theirs, f"{name}_proj_weight").copy_(mine.weight)
        theirs.in_proj_bias.copy_(torch.cat([ours.query.bias, ours.key.bias, ours.value.bias]))
        theirs.out_proj.load_state_dict(ours.output.state_dict())
        q, v, k = torch.randn(2, 4, 8), torch.randn(2, 6, 5), torch.randn(2, 6, 3)
        expected = theirs(q, k, v, need_weights=False)[0]
        torch.testing.assert_close(net(q, v, k), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_attention_with_any_key_dim(tmp_path: Path) -> None:
    import torch

    model = load(
        tmp_path,
        model_spec("input x: float[5, 6]", "multihead_attention(4, key_dim=3, causal=true)"),
    )
    net = instantiate(tmp_path, model)[1].eval()
    attention = net.multihead_attention_1
    x = torch.randn(2, 5, 6)

    def heads(projection):  # [B, T, 4 * 3] -> [B, 4, T, 3]
        return projection(x).view(2, 5, 4, 3).transpose(1, 2)

    q, k, v = heads(attention.query), heads(attention.key), heads(attention.value)
    scores = q @ k.transpose(-1, -2) / math.sqrt(3)
    scores = scores.masked_fill(torch.ones(5, 5).triu(1).bool(), float("-inf"))
    mixed = (scores.softmax(-1) @ v).transpose(1, 2).reshape(2, 5, 12)
    torch.testing.assert_close(net(x), attention.output(mixed), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_initializers_follow_keras(tmp_path: Path) -> None:
    import torch

    model = load(
        tmp_path,
        model_spec(
            "input x: float[16, 16, 8]",
            """
            a = x -> depthwise_conv2d(3, multiplier=4) -> flatten() -> dense(300)
            b = a -> dense(200, init=he_normal, bias_init=ones)
            c = x -> reshape([256, 8]) -> lstm(32)
            out = concat(b, c)
            """,
            "out",
        ),
    )
    net = instantiate(tmp_path, model)[1]
    # glorot_uniform: U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)), Keras's fans.
    dense = net.dense_1.weight.detach()
    limit = math.sqrt(6 / (14 * 14 * 32 + 300))
    assert dense.abs().max() <= limit and dense.abs().max() > 0.99 * limit
    assert dense.std().item() == pytest.approx(limit / math.sqrt(3), rel=0.02)
    assert not net.dense_1.bias.detach().any()
    # A depthwise kernel [3, 3, 8, 4]: Keras's fans 72 and 36, not torch's 9 and 288.
    depthwise = net.depthwise_conv2d_1.weight.detach()
    limit = math.sqrt(6 / (72 + 36))
    assert depthwise.abs().max() <= limit and depthwise.abs().max() > 0.95 * limit
    # he_normal: a normal cut at two standard deviations, std sqrt(2 / fan_in) after the cut.
    he = net.dense_2.weight.detach()
    assert he.abs().max() <= 2 * math.sqrt(2 / 300) / 0.87962566103423978
    assert he.std().item() == pytest.approx(math.sqrt(2 / 300), rel=0.03)
    assert torch.equal(net.dense_2.bias.detach(), torch.ones(200))
    # The recurrent kernel, all four gates together, is one orthogonal matrix.
    recurrent = net.lstm_1.weight_hh_l0.detach()  # [4 * 32, 32]
    torch.testing.assert_close(recurrent.T @ recurrent, torch.eye(32), atol=1e-5, rtol=0)
    assert not net.lstm_1.bias_hh_l0.detach().any()


@pytest.mark.slow
def test_regularization_is_keras_s_penalty(tmp_path: Path) -> None:
    model = load(
        tmp_path,
        model_spec("input x: float[6]", "dense(4, l1=0.01, l2=0.1)\ndense(2)\ndense(3, l2=0.5)"),
    )
    net = instantiate(tmp_path, model)[1]
    w1, w3 = net.dense_1.weight, net.dense_3.weight
    expected = 0.01 * w1.abs().sum() + 0.1 * (w1**2).sum() + 0.5 * (w3**2).sum()
    assert net.regularization().item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.slow
def test_same_padding_and_windows_match_tensorflow(tmp_path: Path) -> None:
    """`same` at stride 2 pads asymmetrically in TensorFlow; every windowed layer must agree,
    on even and odd sizes, with the weights copied across."""
    tf = pytest.importorskip("tensorflow")
    import torch

    model = load(
        tmp_path,
        model_spec(
            "input x: float[9, 10, 3]",
            """
            c = x -> conv2d(4, 3, stride=2, padding=same)
            k = x -> conv2d(4, [4, 2], stride=[2, 3], padding=same, bias=false)
            d = x -> depthwise_conv2d(4, stride=2, padding=same, multiplier=2, bias=false)
            t = x -> conv2d_transpose(2, 3, stride=2, padding=same, bias=false)
            m = x -> maxpool2d(3, stride=2, padding=same)
            a = x -> avgpool2d(3, stride=2, padding=same)
            """,
            "c, k, d, t, m, a",
        ),
    )
    net = instantiate(tmp_path, model)[1]
    x = np.random.default_rng(0).standard_normal((2, 9, 10, 3)).astype(np.float32)
    got = [t.detach().numpy() for t in net(torch.from_numpy(x))]

    def kernel(module, *axes):  # torch's weight in TensorFlow's layout
        return tf.constant(module.weight.detach().numpy().transpose(*axes))

    conv = (
        tf.nn.conv2d(x, kernel(net.conv2d_1, 2, 3, 1, 0), 2, "SAME")
        + net.conv2d_1.bias.detach().numpy()
    )
    rect = tf.nn.conv2d(x, kernel(net.conv2d_2, 2, 3, 1, 0), [1, 2, 3, 1], "SAME")
    depthwise = tf.reshape(kernel(net.depthwise_conv2d_1, 2, 3, 1, 0), (4, 4, 3, 2))
    depth = tf.nn.depthwise_conv2d(x, depthwise, [1, 2, 2, 1], "SAME")
    transposed = tf.nn.conv2d_transpose(
        x, kernel(net.conv2d_transpose_1, 2, 3, 1, 0), (2, 18, 20, 2), 2, "SAME"
    )
    pooled_max = tf.nn.max_pool2d(x, 3, 2, "SAME")
    pooled_avg = tf.nn.avg_pool2d(x, 3, 2, "SAME")
    expected = [conv, rect, depth, transposed, pooled_max, pooled_avg]
    for name, ours, theirs in zip("ckdtma", got, expected, strict=True):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL_SPECS)
def test_the_manifest_names_every_tensor_of_the_state_dict_in_order(
        tmp_path: Path, name: str) -> None:
    model = load(tmp_path, ALL_SPECS[name])
    _, net = instantiate(tmp_path, model)
    listed = [(f"{w.holder}.{w.name}", w.shape)
              for entry in model_gen.manifest(model).entries for w in entry.weights]
    assert listed == [(key, tuple(value.shape)) for key, value in net.state_dict().items()]
    entries = model_gen.manifest(model).entries
    assert [entry.node for entry in entries] == [(*path, node.id)
                                                 for path, node in model.graph.walk()]
    for entry in entries:
        if entry.weights:  # the hooks of `specc parity` go on this module
            assert entry.name in dict(net.named_modules())


def test_the_manifest_says_which_activations_forward_applies(tmp_path: Path) -> None:
    model = load(tmp_path, MNIST)
    by_kind = {entry.kind: entry for entry in model_gen.manifest(model).entries}
    assert by_kind["conv2d"].layout == "first"
    assert by_kind["conv2d"].activation_outside == "F.relu(x)"
    assert by_kind["dense"].layout == "last"
    assert by_kind["flatten"].activation_outside is None


def test_a_shared_layer_is_one_module_called_at_each_use(tmp_path: Path) -> None:
    model = load(tmp_path, SHARED)
    source = render_model(model)
    assert source.count("nn.Conv2d(") == 1 and source.count("self.conv2d_1(") == 2
    assert source.count("self.dense_1 = ") == 1 and source.count("self.dense_1(") == 2
    assert "self.conv2d_2" not in source and "self.dense_2" not in source
    # the penalty of the shared kernel counts once
    assert source.count("self.conv2d_1.weight.square().sum()") == 1
    # the later uses' manifest entries hold no weights: they are the first's
    entries = {entry.node[-1]: entry for entry in model_gen.manifest(model).entries}
    assert entries["conv2d_2"].name == "conv2d_1" and not entries["conv2d_2"].weights
    assert entries["conv2d_1"].weights
