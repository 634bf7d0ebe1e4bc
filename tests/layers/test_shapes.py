"""Layer kinds on their own: argument validation, output shapes, parameters, FLOPs, errors.

The frameworks' own answers are checked in test_differential.py; these tests pin what the
frameworks cannot tell us: the contract's argument order and defaults, the messages users
see, `?` propagation, and the catalog's metadata.
"""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from specc.errors import ShapeError
from specc.layers import ACTIVATIONS, INITIALIZERS, LAYERS, AnyLayer
from specc.layers.base import ParamCount, require_rank, resolve_axis
from specc.layers.window import Window, transposed_length, window_length

ADAPTER = TypeAdapter(AnyLayer)


def make(kind, **args):
    return ADAPTER.validate_python({"kind": kind, **args})


def shape_of(kind, shapes, **args):
    return make(kind, **args).output_shape(shapes)


def params_of(kind, shapes, backend="tensorflow", **args):
    return make(kind, **args).params(shapes, backend)


def error_of(kind, **args) -> str:
    with pytest.raises(ValidationError) as info:
        make(kind, **args)
    return " | ".join(e["msg"] for e in info.value.errors())


def shape_error(kind, shapes, **args) -> str:
    with pytest.raises(ShapeError) as info:
        shape_of(kind, shapes, **args)
    return str(info.value)


# --- the catalog ------------------------------------------------------------------------------

# LANGUAGE.md's argument order and defaults (... = required). Extensions may only follow.
CONTRACT = {
    "dense": {"units": ..., "activation": None, "bias": True, "l1": 0, "l2": 0},
    "dropout": {"rate": ...},
    "flatten": {},
    "reshape": {"shape": ...},
    "permute": {"axes": ...},
    "identity": {},
    **{name: {} for name in ("relu", "gelu", "sigmoid", "tanh", "silu", "elu")},
    "leaky_relu": {"slope": 0.01},
    "softmax": {"axis": -1},
    **{
        name: {
            "filters": ...,
            "kernel": ...,
            "stride": 1,
            "padding": "valid",
            "dilation": 1,
            "groups": 1,
            "activation": None,
            "bias": True,
            "l1": 0,
            "l2": 0,
        }
        for name in ("conv1d", "conv2d")
    },
    "conv2d_transpose": {"filters": ..., "kernel": ..., "stride": 1, "padding": "valid"},
    "depthwise_conv2d": {"kernel": ..., "stride": 1, "padding": "valid", "multiplier": 1},
    **{
        f"{op}pool{d}d": {"size": ..., "stride": None, "padding": "valid"}
        for op in ("max", "avg")
        for d in (1, 2)
    },
    **{f"global_{op}pool{d}d": {} for op in ("max", "avg") for d in (1, 2)},
    "upsample2d": {"scale": 2},
    "zeropad2d": {"padding": ...},
    "batchnorm": {"momentum": 0.1, "epsilon": 1e-5},
    "layernorm": {"epsilon": 1e-5},
    "embedding": {"vocab": ..., "dim": ...},
    "positional_embedding": {"max_len": ...},
    **{
        name: {"units": ..., "return_sequences": False, "bidirectional": False}
        for name in ("simple_rnn", "lstm", "gru")
    },
    "multihead_attention": {"heads": ..., "key_dim": None, "dropout": 0, "causal": False},
    "transformer_encoder": {
        "heads": ...,
        "ff": ...,
        "dropout": 0.1,
        "activation": "relu",
        "norm_first": False,
    },
    "add": {},
    "multiply": {},
    "average": {},
    "concat": {"axis": -1},
}


# Kinds beyond LANGUAGE.md's, documented in docs/language.md, with their arguments' defaults.
EXTENSIONS = {
    **{name: {} for name in ("softplus", "softsign", "selu", "mish", "hard_sigmoid",
                             "hard_swish", "exponential")},
    **{name: {} for name in ("subtract", "maximum", "minimum")},
    "conv3d": {
        "filters": ...,
        "kernel": ...,
        "stride": 1,
        "padding": "valid",
        "dilation": 1,
        "groups": 1,
        "activation": None,
        "bias": True,
        "l1": 0,
        "l2": 0,
    },
    **{f"{op}pool3d": {"size": ..., "stride": None, "padding": "valid"} for op in ("max", "avg")},
    **{f"global_{op}pool3d": {} for op in ("max", "avg")},
    **{f"upsample{d}d": {"scale": 2} for d in (1, 3)},
    **{
        f"separable_conv{d}d": {
            "filters": ...,
            "kernel": ...,
            "stride": 1,
            "padding": "valid",
            "multiplier": 1,
            "activation": None,
            "bias": True,
            "dilation": 1,
        }
        for d in (1, 2)
    },
    "zeropad1d": {"padding": ...},
    **{f"cropping{d}d": {"cropping": ...} for d in (1, 2)},
    **{name: {"rate": ...} for name in ("spatial_dropout1d", "spatial_dropout2d",
                                        "gaussian_dropout", "alpha_dropout")},
    "gaussian_noise": {"stddev": ...},
    "transformer_decoder": {
        "heads": ...,
        "ff": ...,
        "dropout": 0.1,
        "activation": "relu",
        "norm_first": False,
        "epsilon": 1e-5,
        "init": "glorot_uniform",
        "bias_init": "zeros",
        "causal": True,
    },
    "attention": {"use_scale": False, "score_mode": "dot", "dropout": 0},
    "additive_attention": {"use_scale": True, "dropout": 0},
    "dot": {"axes": ..., "normalize": False},
    "prelu": {"alpha": 0.25, "shared": False},
}


def test_catalog_has_exactly_the_contract_kinds_and_the_extensions():
    assert set(LAYERS) == set(CONTRACT) | set(EXTENSIONS)


@pytest.mark.parametrize("kind", sorted({**CONTRACT, **EXTENSIONS}))
def test_arguments_in_contract_order_with_normative_defaults(kind):
    contract = {**CONTRACT, **EXTENSIONS}[kind]
    fields = LAYERS[kind].model_fields
    names = list(fields)
    assert names[0] == "kind"
    assert fields["kind"].default == kind
    assert names[1 : 1 + len(contract)] == list(contract)
    for name, default in contract.items():
        if default is ...:
            assert fields[name].is_required(), name
        else:
            assert fields[name].default == default, name


@pytest.mark.parametrize("kind", sorted(CONTRACT))
def test_hints_point_at_real_arguments(kind):
    cls = LAYERS[kind]
    for wrong, right in cls.hints.items():
        assert right in cls.model_fields, (wrong, right)
        assert wrong not in cls.model_fields, wrong


def test_initializer_defaults():
    for kind, cls in LAYERS.items():
        fields = cls.model_fields
        if "init" in fields:
            expected = "uniform" if "embedding" in kind else "glorot_uniform"
            assert fields["init"].default == expected, kind
        if "bias_init" in fields:
            assert fields["bias_init"].default == "zeros", kind
        if "recurrent_init" in fields:
            assert fields["recurrent_init"].default == "orthogonal", kind
    weighted = {k for k, c in LAYERS.items() if "init" in c.model_fields}
    assert weighted == {
        "dense",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv2d_transpose",
        "depthwise_conv2d",
        "separable_conv1d",
        "separable_conv2d",
        "embedding",
        "positional_embedding",
        "simple_rnn",
        "lstm",
        "gru",
        "multihead_attention",
        "transformer_encoder",
        "transformer_decoder",
    }
    assert set(INITIALIZERS) >= {"glorot_uniform", "he_normal", "orthogonal", "uniform", "zeros"}


def test_activations_are_layers_and_argument_values():
    assert ACTIVATIONS == (
        "relu",
        "gelu",
        "sigmoid",
        "tanh",
        "softmax",
        "silu",
        "elu",
        "leaky_relu",
        "softplus",
        "softsign",
        "selu",
        "mish",
        "hard_sigmoid",
        "hard_swish",
        "exponential",
    )
    for name in ACTIVATIONS:
        assert name in LAYERS
        assert make("dense", units=2, activation=name).activation == name
    assert "'hard_swish' or 'exponential'" in error_of("dense", units=2, activation="swishy")


def test_activation_aliases_mean_their_function():
    assert make("dense", units=2, activation="swish").activation == "silu"
    assert make("dense", units=2, activation="linear").activation is None
    assert make("conv1d", filters=2, kernel=3, activation="swish").activation == "silu"


def test_metadata():
    assert LAYERS["embedding"].accepts == "int"
    for kind in ("reshape", "flatten", "permute", "identity", "dropout", "concat"):
        assert (LAYERS[kind].accepts, LAYERS[kind].produces) == ("any", "same"), kind
    for kind in ("dense", "conv2d", "lstm", "relu", "add", "batchnorm"):
        assert (LAYERS[kind].accepts, LAYERS[kind].produces) == ("float", "float"), kind
    assert {k for k, c in LAYERS.items() if c.arity == "many"} == {
        "add",
        "subtract",
        "multiply",
        "average",
        "maximum",
        "minimum",
        "concat",
        "dot",
        "transformer_decoder",
        "attention",
        "additive_attention",
    }
    # Layers of several inputs take names first; multihead_attention does in a chain too.
    assert LAYERS["multihead_attention"].arity == 1
    assert LAYERS["multihead_attention"].named_inputs == (2, 3)
    assert LAYERS["transformer_decoder"].named_inputs == (2, 2)
    assert LAYERS["dot"].named_inputs == LAYERS["add"].named_inputs == (2, None)
    assert LAYERS["conv2d"].hints["strides"] == "stride"
    assert LAYERS["lstm"].hints["hidden_size"] == "units"
    assert LAYERS["multihead_attention"].hints["num_heads"] == "heads"


def test_layers_are_frozen_and_closed():
    layer = make("dense", units=3)
    with pytest.raises(ValidationError):
        layer.units = 4  # type: ignore[misc]
    assert "Extra inputs" in error_of("dense", units=3, use_bias=False)


# --- argument validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "args"),
    [
        ("dense", {"units": 0}),
        ("dense", {"units": True}),  # a boolean is not a count
        ("dense", {"units": "3"}),
        ("dense", {"units": 32.0}),  # `64 / 2`: use `//`
        ("dense", {"units": 3, "bias": 1}),
        ("dense", {"units": 3, "l2": -0.1}),
        ("dropout", {"rate": 1.0}),
        ("dropout", {"rate": -0.1}),
        ("conv2d", {"filters": 4, "kernel": 0}),
        ("conv2d", {"filters": 4, "kernel": 3, "padding": "full"}),
        ("conv2d", {"filters": 4, "kernel": 3, "padding": -1}),
        ("conv2d", {"filters": 4, "kernel": 3, "stride": [0, 1]}),
        ("maxpool2d", {"size": 2, "padding": 1}),
        ("batchnorm", {"momentum": 1.5}),
        ("batchnorm", {"epsilon": 0}),
        ("layernorm", {"epsilon": -1e-5}),
        ("leaky_relu", {"slope": -0.1}),
        ("multihead_attention", {"heads": 2, "dropout": 1}),
        ("transformer_encoder", {"heads": 2, "ff": 8, "activation": "softplusplus"}),
        ("embedding", {"vocab": 10, "dim": 4, "init": "kaiming"}),
        ("dense", {"units": 3, "bias_init": "orthogonal"}),
    ],
)
def test_rejects_bad_values(kind, args):
    with pytest.raises(ValidationError):
        make(kind, **args)


def test_accepts_integral_values_in_float_arguments():
    assert make("dropout", rate=0).rate == 0.0
    assert make("batchnorm", momentum=1).momentum == 1.0


def test_per_axis_lists_must_match_rank():
    message = error_of("conv2d", filters=4, kernel=[3, 3, 3])
    assert message == (
        "kernel must give one value per axis [height, width] "
        "(expected an int or a list of 2, got 3 values [3, 3, 3])"
    )
    assert "[time]" in error_of("conv1d", filters=4, kernel=3, stride=[1, 2])
    assert "padding" in error_of("conv2d", filters=4, kernel=3, padding=[1])
    assert "size" in error_of("maxpool2d", size=[2])
    assert "scale" in error_of("upsample2d", scale=[2, 2, 2])
    assert make("conv2d", filters=4, kernel=(3, 5)).kernel == [3, 5]  # tuples from the parser


def test_unions_report_one_error():
    assert error_of("conv2d", filters=4, kernel=0) == (
        "Input should be a positive integer or a list of positive integers"
    )
    assert error_of("conv2d", filters=4, kernel=3, padding="full") == (
        "Input should be valid, same, a non-negative integer or a list of them"
    )
    assert "or none (meaning size)" in error_of("maxpool2d", size=2, stride=[2, True])
    assert error_of("zeropad2d", padding=[[1, 2], [3, -1]]).startswith("Input should be an int")


def test_custom_errors_are_value_errors():
    # The binder shows "value_error" messages whole, after the layer and argument names.
    with pytest.raises(ValidationError) as info:
        LAYERS["conv2d"](filters=6, kernel=3, groups=4)
    (error,) = info.value.errors()
    assert (error["type"], error["loc"]) == ("value_error", ("groups",))


def test_groups_must_divide_filters():
    assert error_of("conv2d", filters=6, kernel=3, groups=4) == (
        "groups=4 must divide filters=6 (expected filters a multiple of 4, got 6)"
    )


def test_dilation_and_stride_exclude_each_other():
    message = error_of("conv2d", filters=4, kernel=3, stride=[2, 1], dilation=[1, 2])
    assert message.startswith("dilation > 1 cannot be combined with stride > 1")
    assert "depthwise" not in message
    with pytest.raises(ValidationError):
        make("depthwise_conv2d", kernel=3, stride=2, dilation=2)
    make("conv2d", filters=4, kernel=3, stride=1, dilation=2)


def test_reshape_and_permute_arguments():
    assert "at most one -1" in error_of("reshape", shape=[-1, -1])
    assert "sizes > 0" in error_of("reshape", shape=[0, 4])
    assert "at least one dimension" in error_of("reshape", shape=[])
    assert error_of("permute", axes=[1, 3]) == (
        "permute axes must list every non-batch axis once, numbered from 1 "
        "(expected each of 1..2 once, got [1, 3])"
    )
    assert "each of 1..2 once" in error_of("permute", axes=[2, 2])


def test_axis_zero_is_the_batch():
    assert "axis 0" in error_of("softmax", axis=0)
    assert "axis 0" in error_of("concat", axis=0)


def test_zeropad_forms():
    assert make("zeropad2d", padding=1).pads == ((1, 1), (1, 1))
    assert make("zeropad2d", padding=[1, 2]).pads == ((1, 1), (2, 2))
    assert make("zeropad2d", padding=[[0, 1], [2, 3]]).pads == ((0, 1), (2, 3))
    for bad in ([1, 2, 3], [[1, 2], [3]], [[1, 2, 3], [1, 2]], -1):
        with pytest.raises(ValidationError):
            make("zeropad2d", padding=bad)
        with pytest.raises(ValidationError):
            make("cropping2d", cropping=bad)
    assert make("cropping2d", cropping=[[0, 1], [2, 3]]).crops == ((0, 1), (2, 3))
    assert make("cropping2d", cropping=[1, 2]).crops == ((1, 1), (2, 2))
    assert make("zeropad1d", padding=2).pads == ((2, 2),)
    assert make("zeropad1d", padding=[0, 3]).pads == ((0, 3),)
    assert make("cropping1d", cropping=[1, 0]).crops == ((1, 0),)
    for bad in ([1, 2, 3], [1], [[1, 2]], -1):
        with pytest.raises(ValidationError):
            make("zeropad1d", padding=bad)
        with pytest.raises(ValidationError):
            make("cropping1d", cropping=bad)
    assert error_of("cropping1d", cropping=[1, 2, 3]) == (
        "cropping1d cropping must be an int or [before, after] (expected one of those forms, "
        "got [1, 2, 3])"
    )


# --- window arithmetic ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "dilation", "expected"),
    [
        (28, 3, 1, "valid", 1, 26),
        (28, 3, 2, "valid", 1, 13),
        (7, 3, 3, "valid", 1, 2),
        (7, 3, 2, "same", 1, 4),
        (7, 5, 3, "same", 2, 3),
        (8, 3, 1, "valid", 2, 4),
        (8, 3, 2, 1, 1, 4),
        (5, 4, 1, 2, 1, 6),
        (None, 3, 2, "same", 1, None),
        (16, 3, 1, "causal", 4, 16),
        (15, 4, 2, "causal", 1, 8),
        (None, 3, 1, "causal", 2, None),
    ],
)
def test_window_length(size, kernel, stride, padding, dilation, expected):
    assert window_length(size, kernel, stride, padding, dilation) == expected


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "expected"),
    [
        (5, 3, 2, "valid", 11),
        (5, 2, 3, "valid", 15),  # k < stride: Keras fills to n * stride
        (5, 3, 2, "same", 10),
        (5, 3, 2, 1, 9),
        (None, 3, 2, "valid", None),
    ],
)
def test_transposed_length(size, kernel, stride, padding, expected):
    assert transposed_length(size, kernel, stride, padding) == expected


def test_same_padding_splits_like_tensorflow():
    # The odd pixel goes after, so PyTorch at stride 2 must pad asymmetrically.
    window = Window.of(2, 3, 2, "same")
    assert window.same_padding((5, 6)) == ((1, 1), (0, 1))
    assert Window.of(1, 1, 2, "same").same_padding((7,)) == ((0, 0),)
    assert Window.of(1, 3, 1, "same", 2).same_padding((9,)) == ((2, 2),)


# --- shapes -----------------------------------------------------------------------------------


def test_dense_applies_to_the_last_axis():
    assert shape_of("dense", [(10, 7)], units=4) == (10, 4)
    assert shape_of("dense", [(None, 3, 7)], units=4) == (None, 3, 4)
    assert params_of("dense", [(10, 7)], units=4) == ParamCount(32)
    assert params_of("dense", [(7,)], units=4, bias=False) == ParamCount(28)


def test_dense_needs_known_features():
    assert shape_error("dense", [(4, None)], units=3) == (
        "needs a known number of input features (last axis) to create its weights "
        "(expected a number, got ? in [4, ?])"
    )


def test_conv_shapes():
    assert shape_of("conv2d", [(28, 28, 1)], filters=32, kernel=3) == (26, 26, 32)
    assert shape_of("conv2d", [(28, 28, 1)], filters=8, kernel=3, padding="same") == (28, 28, 8)
    assert shape_of("conv2d", [(7, 8, 3)], filters=8, kernel=3, stride=2, padding="same") == (
        4,
        4,
        8,
    )
    assert shape_of("conv2d", [(7, 8, 3)], filters=8, kernel=[3, 1], padding=[1, 0]) == (7, 8, 8)
    assert shape_of("conv2d", [(None, 8, 3)], filters=2, kernel=3) == (None, 6, 2)
    assert shape_of("conv1d", [(None, 3)], filters=5, kernel=3, stride=2) == (None, 5)
    assert shape_of("conv1d", [(16, 3)], filters=5, kernel=3, dilation=4) == (8, 5)
    assert shape_of("depthwise_conv2d", [(8, 8, 3)], kernel=3, multiplier=2) == (6, 6, 6)
    assert shape_of("conv2d_transpose", [(7, 7, 4)], filters=2, kernel=3, stride=2) == (15, 15, 2)
    assert shape_of("conv3d", [(7, 8, 9, 2)], filters=4, kernel=3) == (5, 6, 7, 4)
    assert shape_of("conv3d", [(7, 8, 9, 2)], filters=4, kernel=[3, 2, 1], stride=2,
                    padding="same") == (4, 4, 5, 4)
    assert shape_of("conv3d", [(None, 8, 9, 2)], filters=4, kernel=3, padding=[0, 1, 2]) == (
        None, 8, 11, 4,
    )
    assert params_of("conv3d", [(5, 5, 5, 4)], filters=6, kernel=3, groups=2) == ParamCount(
        6 * (27 * 2 + 1)
    )
    assert "[depth, height, width]" in error_of("conv3d", filters=4, kernel=[3, 3])
    assert shape_error("conv3d", [(8, 8, 3)], filters=4, kernel=3) == (
        "input must be [depth, height, width, channels] (expected 4 dimensions, got 3: [8, 8, 3])"
    )
    assert "along depth" in shape_error("conv3d", [(2, 8, 8, 1)], filters=4, kernel=3)


def test_causal_conv1d():
    # dilation * (kernel - 1) zeros before the sequence: as long as its input at stride 1.
    assert shape_of("conv1d", [(16, 3)], filters=5, kernel=3, padding="causal", dilation=4) == (
        16,
        5,
    )
    assert shape_of("conv1d", [(9, 3)], filters=5, kernel=4, stride=2, padding="causal") == (5, 5)
    assert shape_of("conv1d", [(None, 3)], filters=2, kernel=2, padding="causal") == (None, 2)
    assert params_of("conv1d", [(9, 3)], filters=4, kernel=5, padding="causal") == ParamCount(64)
    assert Window.of(1, 3, 1, "causal", 4).causal_padding() == 8
    assert error_of("conv2d", filters=4, kernel=3, padding="causal") == (
        "Input should be valid, same, a non-negative integer or a list of them"
    )
    assert error_of("conv1d", filters=4, kernel=3, padding="full") == (
        "Input should be valid, same, causal, a non-negative integer or a list of them"
    )


def test_separable_conv():
    # Keras's counts: depthwise C*m*taps, pointwise C*m*filters, one bias of filters.
    assert shape_of("separable_conv2d", [(9, 8, 4)], filters=6, kernel=3) == (7, 6, 6)
    assert params_of("separable_conv2d", [(9, 8, 4)], filters=6, kernel=3,
                     multiplier=2) == ParamCount(72 + 48 + 6)
    assert params_of("separable_conv2d", [(9, 8, 4)], filters=6, kernel=[3, 1],
                     bias=False) == ParamCount(12 + 24)
    assert params_of("separable_conv1d", [(9, 4)], filters=6, kernel=3,
                     multiplier=2) == ParamCount(24 + 48 + 6)
    assert shape_of("separable_conv1d", [(None, 4)], filters=2, kernel=3, stride=2,
                    padding="same") == (None, 2)
    assert shape_of("separable_conv2d", [(7, 8, 3)], filters=2, kernel=3, stride=2,
                    padding=1) == (4, 4, 2)
    assert flops_of("separable_conv1d", [(9, 4)], filters=6, kernel=3, multiplier=2) == (
        2 * 7 * 8 * (3 + 6)
    )
    assert "along width" in shape_error("separable_conv2d", [(9, 2, 4)], filters=2, kernel=3)
    assert "[time]" in error_of("separable_conv1d", filters=2, kernel=[3, 3])


def test_conv_params():
    assert params_of("conv2d", [(28, 28, 1)], filters=32, kernel=3) == ParamCount(320)
    assert params_of("conv2d", [(9, 9, 8)], filters=4, kernel=3, groups=4) == ParamCount(76)
    assert params_of("conv1d", [(9, 3)], filters=4, kernel=5, bias=False) == ParamCount(60)
    assert params_of("conv2d_transpose", [(4, 4, 3)], filters=2, kernel=[2, 3]) == ParamCount(38)
    assert params_of("depthwise_conv2d", [(8, 8, 3)], kernel=3, multiplier=2) == ParamCount(60)
    assert params_of("depthwise_conv2d", [(8, 8, 3)], kernel=3, bias=False) == ParamCount(27)


def test_conv_errors():
    assert shape_error("conv2d", [(28, 28)], filters=4, kernel=3) == (
        "input must be [height, width, channels] (expected 3 dimensions, got 2: [28, 28])"
    )
    assert shape_error("conv2d", [(4, 9, 1)], filters=2, kernel=5) == (
        "window is larger than the input along height "
        "(expected height of at least 5 (kernel 5), got 4 in input [4, 9, 1])"
    )
    message = shape_error("conv1d", [(6, 1)], filters=2, kernel=3, dilation=3)
    assert "kernel 3 dilated by 3 spans 7" in message
    message = shape_error("conv2d", [(2, 9, 1)], filters=2, kernel=5, padding=1)
    assert "at least 3 (kernel 5, less padding 1 on each side)" in message
    assert "channels a multiple of 2" in shape_error(
        "conv2d", [(5, 5, 3)], filters=4, kernel=1, groups=2
    )
    assert "input channels" in shape_error("conv2d", [(5, 5, None)], filters=4, kernel=1)
    assert "crops away" in shape_error(
        "conv2d_transpose", [(1, 4, 2)], filters=2, kernel=2, padding=1
    )


def test_pooling():
    assert shape_of("maxpool2d", [(26, 26, 32)], size=2) == (13, 13, 32)
    assert shape_of("maxpool2d", [(7, 7, 3)], size=3, stride=2) == (3, 3, 3)
    assert shape_of("avgpool2d", [(7, 7, 3)], size=2, padding="same") == (4, 4, 3)
    assert shape_of("maxpool1d", [(None, 3)], size=2) == (None, 3)
    assert shape_of("avgpool1d", [(9, None)], size=[3]) == (3, None)
    assert make("maxpool2d", size=3).window.stride == (3, 3)
    assert "larger than the input along width" in shape_error("maxpool2d", [(4, 1, 3)], size=2)
    assert shape_of("global_avgpool2d", [(7, 7, 64)]) == (64,)
    assert shape_of("global_maxpool1d", [(None, 8)]) == (8,)
    assert "[time, channels]" in shape_error("global_avgpool1d", [(7, 7, 64)])
    assert params_of("maxpool2d", [(4, 4, 3)], size=2) == ParamCount()
    assert shape_of("maxpool3d", [(7, 8, 9, 2)], size=2) == (3, 4, 4, 2)
    assert shape_of("avgpool3d", [(7, 8, 9, 2)], size=[3, 2, 2], stride=2, padding="same") == (
        4, 4, 5, 2,
    )
    assert "along depth" in shape_error("maxpool3d", [(1, 8, 8, 3)], size=2)
    assert shape_of("global_avgpool3d", [(3, 4, 5, 6)]) == (6,)
    assert shape_of("global_maxpool3d", [(None, None, 5, 6)]) == (6,)
    assert "[depth, height, width, channels]" in shape_error("global_maxpool3d", [(4, 5, 6)])


def test_resampling():
    assert shape_of("upsample2d", [(4, 5, 3)]) == (8, 10, 3)
    assert shape_of("upsample2d", [(None, 5, 3)], scale=[3, 1]) == (None, 5, 3)
    assert shape_of("upsample1d", [(5, 3)]) == (10, 3)
    assert shape_of("upsample1d", [(None, 3)], scale=3) == (None, 3)
    assert shape_of("upsample3d", [(2, 3, 4, 5)], scale=[1, 2, 3]) == (2, 6, 12, 5)
    assert "[time]" in error_of("upsample1d", scale=[2, 2])
    assert "[time, channels]" in shape_error("upsample1d", [(4, 5, 3)])
    assert shape_of("zeropad2d", [(4, 5, 3)], padding=[[0, 1], [2, 3]]) == (5, 10, 3)
    assert shape_of("zeropad2d", [(None, 5, 3)], padding=1) == (None, 7, 3)
    assert shape_of("zeropad1d", [(5, 3)], padding=[1, 2]) == (8, 3)
    assert shape_of("zeropad1d", [(None, 3)], padding=1) == (None, 3)
    assert shape_of("cropping1d", [(9, 3)], cropping=[1, 2]) == (6, 3)
    assert shape_of("cropping2d", [(8, 9, 3)], cropping=[[1, 0], [2, 3]]) == (7, 4, 3)
    assert shape_of("cropping2d", [(None, 9, 3)], cropping=2) == (None, 5, 3)
    assert shape_error("cropping1d", [(6, 3)], cropping=3) == (
        "crops away the whole input along time (expected a size larger than 3 + 3, got 6 in "
        "input [6, 3])"
    )
    assert "along width" in shape_error("cropping2d", [(8, 4, 3)], cropping=[1, 2])
    assert "[time, channels]" in shape_error("zeropad1d", [(8, 4, 3)], padding=1)
    assert "[height, width, channels]" in shape_error("cropping2d", [(8, 3)], cropping=1)


def test_core_shapes():
    assert shape_of("flatten", [(5, 5, 16)]) == (400,)
    assert shape_of("flatten", [(None, 16)]) == (None,)
    assert shape_of("reshape", [(784,)], shape=[28, 28, 1]) == (28, 28, 1)
    assert shape_of("reshape", [(6, 4)], shape=[-1, 8]) == (3, 8)
    assert shape_of("reshape", [(None, 4)], shape=[-1, 2]) == (None, 2)
    assert shape_of("permute", [(3, 4, 5)], axes=[3, 1, 2]) == (5, 3, 4)
    assert shape_of("identity", [(None, 2)]) == (None, 2)
    assert shape_of("dropout", [(3,)], rate=0.2) == (3,)
    assert shape_of("softmax", [(4, 5)], axis=1) == (4, 5)


def test_training_noise_layers():
    assert shape_of("spatial_dropout1d", [(None, 4)], rate=0.5) == (None, 4)
    assert shape_of("spatial_dropout2d", [(3, 4, 5)], rate=0.1) == (3, 4, 5)
    assert "[time, channels]" in shape_error("spatial_dropout1d", [(3, 4, 5)], rate=0.1)
    assert "[height, width, channels]" in shape_error("spatial_dropout2d", [(3, 4)], rate=0.1)
    for kind in ("gaussian_dropout", "alpha_dropout"):
        assert shape_of(kind, [(2, None, 3)], rate=0.3) == (2, None, 3)
        assert "less than 1" in error_of(kind, rate=1.0)
    assert shape_of("gaussian_noise", [(7,)], stddev=0.5) == (7,)
    assert shape_of("gaussian_noise", [(7,)], stddev=0) == (7,)
    assert "greater than or equal to 0" in error_of("gaussian_noise", stddev=-0.1)
    for kind, args in (("spatial_dropout2d", {"rate": 0.5}), ("gaussian_noise", {"stddev": 1}),
                       ("alpha_dropout", {"rate": 0.5})):
        assert params_of(kind, [(3, 4, 5)], **args) == ParamCount()
        assert flops_of(kind, [(3, 4, 5)], **args) == 0


def test_core_errors():
    assert shape_error("reshape", [(5, 5)], shape=[4, 6]) == (
        "target [4, 6] does not fit the input [5, 5] (expected 24 elements, got 25 elements)"
    )
    assert "a multiple of 3" in shape_error("reshape", [(10,)], shape=[-1, 3])
    assert "3 axes" in shape_error("permute", [(3, 4, 5)], axes=[2, 1])
    assert shape_error("softmax", [(4, 5)], axis=3) == (
        "axis 3 does not exist in the input [4, 5] "
        "(expected 1..2 or -2..-1 (axis 0 is the batch), got 3)"
    )


def test_normalization():
    assert params_of("batchnorm", [(8, 8, 16)]) == ParamCount(32, 32)
    assert params_of("batchnorm", [(16,)], "torch") == ParamCount(32, 32)
    assert params_of("layernorm", [(None, 16)]) == ParamCount(32)
    assert shape_of("batchnorm", [(None, 3)]) == (None, 3)
    assert "known number of features (last axis)" in shape_error("layernorm", [(4, None)])


def test_embeddings():
    assert shape_of("embedding", [(None,)], vocab=100, dim=8) == (None, 8)
    assert shape_of("embedding", [(3, 4)], vocab=100, dim=8) == (3, 4, 8)
    assert params_of("embedding", [(None,)], vocab=100, dim=8) == ParamCount(800)
    assert shape_of("positional_embedding", [(None, 8)], max_len=50) == (None, 8)
    assert params_of("positional_embedding", [(20, 8)], max_len=50) == ParamCount(400)
    assert shape_error("positional_embedding", [(60, 8)], max_len=50) == (
        "max_len=50 has no position for every step of the input [60, 8] "
        "(expected at most 50 time steps, got 60)"
    )


@pytest.mark.parametrize(
    ("kind", "keras", "torch"),
    [
        # u = 5, f = 3: gates * (u * (f + u) + biases * u); torch's second bias, where Keras
        # has none, is frozen at zero: non-trainable
        ("simple_rnn", 45, ParamCount(45, 5)),
        ("lstm", 180, ParamCount(180, 20)),
        ("gru", 150, ParamCount(150)),  # Keras's reset_after=True has two biases too
    ],
)
def test_recurrent(kind, keras, torch):
    assert params_of(kind, [(7, 3)], "tensorflow", units=5) == ParamCount(keras)
    assert params_of(kind, [(7, 3)], "torch", units=5) == torch
    doubled = params_of(kind, [(7, 3)], "torch", units=5, bidirectional=True)
    assert doubled == torch + torch
    assert shape_of(kind, [(None, 3)], units=5) == (5,)
    assert shape_of(kind, [(None, 3)], units=5, return_sequences=True) == (None, 5)
    assert shape_of(kind, [(7, 3)], units=5, return_sequences=True, bidirectional=True) == (7, 10)
    assert "[time, features]" in shape_error(kind, [(7,)], units=5)


@pytest.mark.parametrize(("kind", "names"), [("simple_rnn", ("h",)), ("lstm", ("h", "c")),
                                             ("gru", ("h",))])
def test_recurrent_final_states(kind, names):
    layer = make(kind, units=5, return_state=True)
    assert make(kind, units=5).return_state is False
    assert layer.state_names == names
    # Keras's [output, h(, c)]: the output as without return_state, each state [units].
    assert layer.state_shapes([(7, 3)]) == [(5,)] * len(names)
    assert layer.output_shape([(7, 3)]) == (5,)
    assert make(kind, units=5).state_shapes([(7, 3)]) == []
    # states change nothing of the weights
    assert layer.params([(7, 3)], "torch") == params_of(kind, [(7, 3)], "torch", units=5)
    with pytest.raises(ShapeError, match="one direction"):
        make(kind, units=5, return_state=True, bidirectional=True).state_shapes([(7, 3)])
    assert make("dense", units=2).state_shapes([(4,)]) == []
    # initial_state: the input, then one [units] per state
    assert make(kind, units=5).output_shape([(7, 3), *[(5,)] * len(names)]) == (5,)
    assert "expected [5], got [4]" in shape_error(kind, [(7, 3), *[(4,)] * len(names)], units=5)
    assert f"gives 3 states (expected {len(names)}" in shape_error(
        kind, [(7, 3), (5,), (5,), (5,)], units=5)
    assert "one direction" in shape_error(kind, [(7, 3), *[(5,)] * len(names)], units=5,
                                          bidirectional=True)


# Arguments beyond LANGUAGE.md's, after the contract's (docs/language.md), with defaults.
ADDED_ARGUMENTS = {
    "embedding": {"mask_zero": False},
    **{
        name: {"dropout": 0.0, "recurrent_dropout": 0.0, "go_backwards": False}
        for name in ("simple_rnn", "lstm", "gru")
    },
}


@pytest.mark.parametrize("kind", sorted(ADDED_ARGUMENTS))
def test_added_arguments_follow_the_contract_s_with_keras_defaults(kind):
    fields = list(LAYERS[kind].model_fields)
    start = 1 + len(CONTRACT[kind])
    added = ADDED_ARGUMENTS[kind]
    assert fields[start : start + len(added)] == list(added)
    for name, default in added.items():
        assert LAYERS[kind].model_fields[name].default == default


@pytest.mark.parametrize("kind", ["simple_rnn", "lstm", "gru"])
def test_recurrent_options_change_neither_shapes_nor_parameters(kind):
    options = {"dropout": 0.2, "recurrent_dropout": 0.5, "go_backwards": True}
    for backend in ("tensorflow", "torch"):
        assert params_of(kind, [(7, 3)], backend, units=5, **options) == params_of(
            kind, [(7, 3)], backend, units=5)
    assert shape_of(kind, [(None, 3)], units=5, return_sequences=True, **options) == (None, 5)
    assert "expected one of go_backwards and bidirectional, got both" in shape_error(
        kind, [(7, 3)], units=5, go_backwards=True, bidirectional=True)
    assert "less than 1" in error_of(kind, units=5, recurrent_dropout=1.0)
    assert "greater than or equal to 0" in error_of(kind, units=5, dropout=-0.1)


def test_masking_embedding_has_the_same_shape_and_parameters():
    assert shape_of("embedding", [(None,)], vocab=100, dim=8, mask_zero=True) == (None, 8)
    assert params_of("embedding", [(9,)], vocab=100, dim=8, mask_zero=True) == ParamCount(800)


def test_multihead_attention():
    # Keras layout: q, k, v: f → h*k with bias; output h*k → f with bias
    assert params_of("multihead_attention", [(200, 32)], heads=2, key_dim=32) == ParamCount(8416)
    assert params_of("multihead_attention", [(10, 8)], heads=2) == ParamCount(4 * (8 * 8 + 8))
    assert shape_of("multihead_attention", [(None, 6)], heads=4, key_dim=3) == (None, 6)
    assert shape_error("multihead_attention", [(10, 6)], heads=4) == (
        "cannot split the input [10, 6] into 4 heads evenly; give key_dim to choose their width "
        "(expected features a multiple of 4, got 6)"
    )


def test_cross_attention():
    # Keras: the query's projection from its features, the key's and value's from theirs
    query, value = (5, 8), (7, 6)
    expected = (8 * 6 + 6) + 2 * (6 * 6 + 6) + (6 * 8 + 8)
    assert params_of("multihead_attention", [query, value], heads=2, key_dim=3) == ParamCount(
        expected
    )
    key = (7, 4)
    expected = (8 * 4 + 4) + (4 * 4 + 4) + (6 * 4 + 4) + (4 * 8 + 8)
    assert params_of("multihead_attention", [query, value, key], heads=1) == ParamCount(
        8 * 8 + 8 + 4 * 8 + 8 + 6 * 8 + 8 + 8 * 8 + 8
    )
    assert params_of("multihead_attention", [query, value, key], heads=2, key_dim=2) == (
        ParamCount(expected)
    )
    assert shape_of("multihead_attention", [query, value], heads=2) == (5, 8)
    assert shape_of("multihead_attention", [(None, 8), (None, 6)], heads=4) == (None, 8)
    assert shape_error("multihead_attention", [query, (7, 6), (8, 6)], heads=2) == (
        "needs a key as long as the value (expected 7 steps, got 8 steps: value [7, 6], "
        "key [8, 6])"
    )
    assert shape_error("multihead_attention", [query, (7,)], heads=2).startswith(
        "the value: input must be [time, features]"
    )
    assert "the key: needs a known number of features" in shape_error(
        "multihead_attention", [query, value, (7, None)], heads=2
    )


def test_transformer_decoder():
    # PyTorch: two attentions (in_proj 3f² + 3f, out_proj f² + f each), two linear, 3 LN
    f, ff = 8, 32
    expected = 2 * (4 * f * f + 4 * f) + 2 * f * ff + ff + f + 6 * f
    assert params_of("transformer_decoder", [(None, f), (7, f)], heads=2, ff=ff) == (
        ParamCount(expected)
    )
    assert shape_of("transformer_decoder", [(5, 8), (None, 8)], heads=4, ff=16) == (5, 8)
    assert shape_error("transformer_decoder", [(5, 8), (7, 6)], heads=2, ff=16) == (
        "needs a memory with the target's features (expected [?, 8], got [7, 6] beside the "
        "target [5, 8])"
    )
    assert shape_error("transformer_decoder", [(5, 8), (7, 8), (7, 8)], heads=2, ff=16) == (
        "takes a target and a memory (expected two inputs, got 3)"
    )
    assert "the memory: input must be" in shape_error(
        "transformer_decoder", [(5, 8), (8,)], heads=2, ff=16
    )
    assert "multiple of 3" in shape_error("transformer_decoder", [(5, 8), (5, 8)], heads=3, ff=4)
    assert not make("transformer_decoder", heads=2, ff=4, causal=False).causal


def test_luong_and_additive_attention():
    query, value, key = (4, 6), (9, 5), (9, 6)
    assert shape_of("attention", [query, key]) == (4, 6)
    assert shape_of("attention", [query, value, key]) == (4, 5)
    assert shape_of("additive_attention", [(None, 6), value, (None, 6)]) == (None, 5)
    assert params_of("attention", [query, key]) == ParamCount(0)
    assert params_of("attention", [query, key], use_scale=True) == ParamCount(1)
    assert params_of("attention", [query, key], use_scale=True, score_mode="concat") == (
        ParamCount(2)
    )
    assert params_of("additive_attention", [query, key]) == ParamCount(6)
    assert params_of("additive_attention", [query, key], use_scale=False) == ParamCount(0)
    assert shape_error("attention", [query, value]) == (
        "needs a value with the query's features (expected [?, 6], got [9, 5] beside the "
        "query [4, 6])"
    )
    assert shape_error("additive_attention", [query, value, value]).startswith(
        "needs a key with the query's features"
    )
    assert shape_error("attention", [query, value, (8, 6)]).startswith(
        "needs a key as long as the value"
    )
    assert "'dot' or 'concat'" in error_of("attention", score_mode="general")


def test_dot():
    assert shape_of("dot", [(4,), (4,)], axes=1) == (1,)
    assert shape_of("dot", [(4,), (4,)], axes=-1) == (1,)
    assert shape_of("dot", [(3, 5), (7, 5)], axes=-1) == (3, 7)
    assert shape_of("dot", [(3, 5), (3, 6)], axes=[1, 1]) == (5, 6)
    assert shape_of("dot", [(3, 5), (6, 3)], axes=[1, 2]) == (5, 6)
    assert shape_of("dot", [(None, 5), (None, 5)], axes=2, normalize=True) == (None, None)
    assert shape_error("dot", [(3, 5), (7, 6)], axes=-1) == (
        "needs equal sizes along the axes [-1, -1] (expected 5 in both, got [3, 5], [7, 6])"
    )
    assert "of one rank" in shape_error("dot", [(3, 5), (5,)], axes=-1)
    assert "needs exactly two inputs" in shape_error("dot", [(5,), (5,), (5,)], axes=1)
    assert "axis 3 does not exist" in shape_error("dot", [(3, 5), (3, 5)], axes=3)
    assert "cannot multiply along the batch" in error_of("dot", axes=[0, 1])
    assert "one axis of each input" in error_of("dot", axes=[1, 1, 1])
    assert flops_of("dot", [(3, 5), (7, 5)], axes=-1) == 2 * 3 * 7 * 5


def test_prelu():
    assert shape_of("prelu", [(6, 6, 3)]) == (6, 6, 3)
    assert params_of("prelu", [(6, 6, 3)]) == ParamCount(3)
    assert params_of("prelu", [(6, 6, 3)], shared=True) == ParamCount(1)
    assert params_of("prelu", [(None, 7)], "torch") == ParamCount(7)
    assert "needs a known number of channels" in shape_error("prelu", [(4, None)])
    assert make("prelu", alpha=-0.5).alpha == -0.5


def test_transformer_encoder():
    # PyTorch: in_proj 3f² + 3f, out_proj f² + f, linear1 f*ff + ff, linear2 ff*f + f, 2 LN 4f
    f, ff = 8, 32
    expected = 4 * f * f + 4 * f + 2 * f * ff + ff + f + 4 * f
    assert params_of("transformer_encoder", [(None, f)], heads=2, ff=ff) == ParamCount(expected)
    assert shape_of("transformer_encoder", [(None, 8)], heads=4, ff=16) == (None, 8)
    assert "multiple of 3" in shape_error("transformer_encoder", [(5, 8)], heads=3, ff=16)


def test_merges():
    assert shape_of("add", [(4, 5), (4, 5)]) == (4, 5)
    assert shape_of("add", [(None, 5), (3, 5), (None, 5)]) == (3, 5)
    assert shape_of("average", [(2,)] * 4) == (2,)
    assert shape_error("add", [(4, 5), (4, 6)]) == (
        "needs inputs of one shape (expected equal shapes, got [4, 5], [4, 6])"
    )
    assert "[4, 5], [4, 5, 1]" in shape_error("multiply", [(4, 5), (4, 5, 1)])
    assert shape_error("add", [(4, 5)]) == (
        "needs two or more inputs to merge (expected two or more, got 1)"
    )
    assert shape_of("subtract", [(4, 5), (None, 5)]) == (4, 5)
    assert shape_of("maximum", [(3,)] * 3) == (3,)
    assert shape_of("minimum", [(2, 3), (2, 3)]) == (2, 3)
    assert shape_error("subtract", [(4, 5)] * 3) == (
        "needs exactly two inputs (expected two, got 3)"
    )
    assert "[4, 5], [4, 6]" in shape_error("maximum", [(4, 5), (4, 6)])
    assert shape_of("concat", [(4, 5), (4, 3)]) == (4, 8)
    assert shape_of("concat", [(4, 5), (2, 5)], axis=1) == (6, 5)
    assert shape_of("concat", [(None, 5), (2, 5)], axis=1) == (None, 5)
    assert shape_of("concat", [(None, 5), (2, 3)]) == (2, 8)
    assert "[4, 5], [3, 6]" in shape_error("concat", [(4, 5), (3, 6)])
    assert "axis 3 does not exist" in shape_error("concat", [(4, 5), (4, 5)], axis=3)


def test_rank_and_axis_helpers():
    with pytest.raises(ShapeError, match=r"expected 2 or 3 dimensions, got 1: \[\?\]"):
        require_rank("x", (None,), (2, 3), "[a, b]")
    assert resolve_axis(-1, (2, 3, 4)) == 2
    assert resolve_axis(1, (2, 3, 4)) == 0


# --- FLOPs ------------------------------------------------------------------------------------


def flops_of(kind, shapes, **args):
    layer = make(kind, **args)
    return layer.flops(shapes, layer.output_shape(shapes))


def test_flops():
    assert flops_of("dense", [(7,)], units=4) == 2 * 7 * 4
    assert flops_of("dense", [(3, 7)], units=4) == 3 * 2 * 7 * 4
    assert flops_of("dense", [(None, 7)], units=4) is None
    # conv: 2 * output positions * filters * (taps * in-channels / groups)
    assert flops_of("conv2d", [(28, 28, 1)], filters=32, kernel=3) == 2 * 26 * 26 * 32 * 9
    assert flops_of("conv2d", [(6, 6, 4)], filters=4, kernel=1, groups=2) == 2 * 36 * 4 * 2
    assert flops_of("conv1d", [(None, 3)], filters=4, kernel=3) is None
    assert flops_of("depthwise_conv2d", [(5, 5, 2)], kernel=3) == 2 * 9 * 2 * 9
    assert flops_of("conv2d_transpose", [(2, 2, 3)], filters=4, kernel=3) == 2 * 12 * 9 * 4
    assert flops_of("maxpool2d", [(4, 4, 3)], size=2) == 12 * 4
    # lstm: 2 * T * gates * u * (f + u)
    assert flops_of("lstm", [(10, 3)], units=5) == 2 * 10 * 4 * 5 * 8
    assert flops_of("gru", [(10, 3)], units=5, bidirectional=True) == 2 * 2 * 10 * 3 * 5 * 8
    assert flops_of("lstm", [(None, 3)], units=5) is None
    # attention: 4 projections + Q Kᵀ and weights × V, both T × T × h*k
    t, f, width = 10, 8, 12
    expected = 2 * 4 * t * f * width + 2 * 2 * t * t * width
    assert flops_of("multihead_attention", [(t, f)], heads=3, key_dim=4) == expected
    assert flops_of("transformer_encoder", [(None, 8)], heads=2, ff=16) is None
    assert flops_of("add", [(4, 5), (4, 5), (4, 5)]) == 40
    assert flops_of("flatten", [(4, 5)]) == 0
    assert flops_of("embedding", [(4,)], vocab=10, dim=3) == 0
    assert flops_of("relu", [(4, 5)]) == 20


def test_every_framework_layer_name_points_at_a_kind():
    from specc.layers import FRAMEWORK_LAYER_NAMES

    assert set(FRAMEWORK_LAYER_NAMES.values()) <= set(LAYERS)
    assert not {name.lower() for name in FRAMEWORK_LAYER_NAMES} & set(LAYERS)
