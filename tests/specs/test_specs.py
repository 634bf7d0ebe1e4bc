"""The seed specs in specs/: each checks cleanly, and its parameter count is the one worked
out by hand below (so a change to a spec or to the layer catalog's arithmetic shows here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import specc
from specc import ir
from specc.cli import main
from specc.layers.base import ParamCount

SPECS_DIR = Path(__file__).resolve().parents[2] / "specs"
SPECS = sorted(SPECS_DIR.glob("*.spec"))

# Parameters per spec, (trainable, non-trainable), the same on both backends unless given
# per backend. dense(n) on f features: f*n + n; conv2d(n, k) on c channels: k*k*c*n + n (no
# bias: k*k*c*n); batchnorm on c channels: 2c trainable (scale, shift) + 2c non-trainable
# (running mean, variance); an LSTM of u units on f features: 4u(f + u + 1) in Keras and
# 4u(f + u + 2) in PyTorch (a second bias).
EXPECTED: dict[str, ParamCount | dict[str, ParamCount]] = {
    # conv 3*3*1*32+32 = 320; conv 3*3*32*64+64 = 18,496; conv 3*3*64*64+64 = 36,928;
    # flatten [3, 3, 64] = 576; dense 576*64+64 = 36,928; dense 64*10+10 = 650
    "mnist_cnn": ParamCount(93_322),
    # conv 3*3*3*32+32 = 896; conv 3*3*32*64+64 = 18,496; flatten [6, 6, 64] = 2,304;
    # dense 2304*128+128 = 295,040; dense 128*10+10 = 1,290
    "cifar10_cnn": ParamCount(315_722),
    # conv 320; conv 18,496; pool to [4, 4, 64] = 1,024; dense 1024*128+128 = 131,200;
    # dense 1,290
    "digits_cnn": ParamCount(151_306),
    # embedding 20000*128 = 2,560,000; lstm 4*128*(128+128+1) = 131,584 (torch +512);
    # dense 128*2+2 = 258
    "lstm_text": {"tensorflow": ParamCount(2_691_842), "torch": ParamCount(2_691_842, 512)},
    # embedding 20000*64 = 1,280,000; positional 200*64 = 12,800; each encoder: attention
    # 4*(64*64+64) = 16,640, feed-forward 64*256+256 + 256*64+64 = 33,088, two layernorms
    # 2*128 = 256: 49,984, twice; dense 64*2+2 = 130
    "transformer_text": ParamCount(1_392_898),
    "linear_regression": ParamCount(11),  # 10*1+1
    "logistic_regression": ParamCount(31),  # 30*1+1
    # stem conv 3*3*1*16 = 144 + bn 64; residual(16): 2 * (3*3*16*16 + bn 64) = 4,736, twice;
    # downsample(32): 3*3*16*32 + 3*3*32*32 + 1*1*16*32 + 3 bn of 128 = 14,720;
    # residual(32): 2 * (3*3*32*32 + 128) = 18,688; dense 32*10+10 = 330.
    # batchnorm channels: 16 + 4*16 + 3*32 + 2*32 = 240, so 480 non-trainable
    "resnet": ParamCount(42_938, 480),
    # two branches of 4*16+16 = 80; concat 32 -> 32*16+16 = 528; 16*3+3 = 51
    "iris_graph": ParamCount(739),
}


def per_backend(expected: ParamCount | dict[str, ParamCount]) -> dict[str, ParamCount]:
    if isinstance(expected, ParamCount):
        return {"torch": expected, "tensorflow": expected}
    return expected


def only_model(spec: Path) -> ir.Model:
    program = specc.load(spec)
    assert len(program.models) == 1
    return program.models[0]


def test_every_spec_has_an_expected_count():
    assert sorted(spec.stem for spec in SPECS) == sorted(EXPECTED)


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.stem)
def test_spec_checks_without_errors_or_warnings(spec: Path, capsys):
    assert main(["check", str(spec)]) == 0
    printed = capsys.readouterr()
    assert printed.err == ""
    assert f"model {spec.stem} (" in printed.out
    assert specc.check(spec).diagnostics.items == []


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.stem)
def test_spec_parameter_count(spec: Path):
    model = only_model(spec)
    assert model.name == spec.stem
    assert model.graph.params == per_backend(EXPECTED[spec.stem])


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.stem)
def test_spec_is_a_complete_example(spec: Path):
    # Each seed reads as an example: it says what it is, and has every section that
    # `specc train` uses.
    assert spec.read_text(encoding="utf-8").startswith("# ")
    model = only_model(spec)
    assert model.data is not None
    assert model.metrics
    assert model.train.epochs >= 1


def test_data_files_are_relative_and_documented():
    readme = (SPECS_DIR / "data" / "README.md").read_text(encoding="utf-8")
    reading_files = 0
    for spec in SPECS:
        source = only_model(spec).data.source
        if not type(source).reads_file:
            continue
        reading_files += 1
        path = str(source.path)
        assert re.fullmatch(r"data/[\w./-]+", path), f"{spec.name}: {path}"
        assert re.search(rf"`{re.escape(path)}/?`", readme), f"{spec.name}: {path} is undocumented"
        assert f"`{spec.name}`" in readme
    assert reading_files == 4  # mnist, cifar10, and the two imdb specs


def test_iris_graph_names_tensors_after_python_and_its_libraries():
    graph = only_model(SPECS_DIR / "iris_graph.spec").graph
    labels = {value.label for value in graph.inputs} | {node.output.label for node in graph.nodes}
    assert {"torch", "tf", "np", "lambda", "class"} <= labels
    assert graph.value(graph.outputs[0]).label == "class"


def test_resnet_projects_the_shortcut_where_the_shape_changes():
    graph = only_model(SPECS_DIR / "resnet.spec").graph
    blocks = {node.block: node for node in graph.nodes if isinstance(node, ir.BlockNode)}
    assert {"residual", "downsample"} <= set(blocks)
    # A residual block adds its input unchanged; the downsampling one adds a strided 1x1
    # convolution of it.
    residual = blocks["residual"].body
    add = next(n for n in residual.nodes if n.id.startswith("add"))
    assert residual.inputs[0].id in add.inputs
    downsample = blocks["downsample"].body
    projections = [
        n
        for _, n in downsample.walk()
        if n.layer.kind == "conv2d" and n.layer.kernel in (1, (1, 1), [1, 1])
    ]
    assert len(projections) == 1
    assert projections[0].inputs == (downsample.inputs[0].id,)
    assert blocks["downsample"].output.shape == (4, 4, 32)


def test_digits_cnn_holds_out_validation_and_test_data():
    source = only_model(SPECS_DIR / "digits_cnn.spec").data.source
    assert (source.kind, source.validation, source.test) == ("digits", 0.1, 0.2)
