"""Well-known architectures written as specs: specc counts the parameters their authors
published, through the whole front end (`specc.load`) and in `specc check`'s table.

The specs in this folder double as examples of the language (blocks, `* N`, `let`)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import specc
from specc import ir
from specc.cli import main
from specc.layers.base import ParamCount

HERE = Path(__file__).resolve().parent

# Published totals as (trainable, non-trainable); one count where the backends agree.
PUBLISHED: dict[str, ParamCount | dict[str, ParamCount]] = {
    "keras_mnist_convnet": ParamCount(34_826),  # keras.io/examples/vision/mnist_convnet
    "lenet5": ParamCount(61_706),
    # keras.io ResNet v1, depth 20: 274,442 in all; batchnorm's moving statistics are not
    # trained (2 * 688 channels)
    "resnet20": ParamCount(273_066, 1_376),
    # keras.io/examples/nlp/bidirectional_lstm_imdb; torch's LSTMs have a second bias, which
    # the torch program keeps at zero, frozen: 4 LSTMs (2 layers x 2 directions) x 4 gates x 64
    "bidirectional_lstm_imdb": {
        "tensorflow": ParamCount(2_757_761),
        "torch": ParamCount(2_757_761, 1_024),
    },
    # keras.io/examples/nlp/text_classification_with_transformer
    "transformer_classifier": ParamCount(657_758),
    "vgg16": ParamCount(138_357_544),  # keras.applications.VGG16(include_top=True)
}


def per_backend(published: ParamCount | dict[str, ParamCount]) -> dict[str, ParamCount]:
    if isinstance(published, ParamCount):
        return {"torch": published, "tensorflow": published}
    return published


def spec_path(name: str) -> Path:
    return HERE / f"{name}.spec"


def load_model(name: str) -> ir.Model:
    (model,) = specc.load(spec_path(name)).models
    return model


def layer_kinds(model: ir.Model) -> Counter[str]:
    return Counter(node.layer.kind for _, node in model.graph.walk())


def test_every_spec_here_has_a_published_count():
    assert sorted(path.stem for path in HERE.glob("*.spec")) == sorted(PUBLISHED)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_is_the_published_one(name: str):
    model = load_model(name)
    assert model.graph.params == per_backend(PUBLISHED[name])


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_check_table_prints_the_published_totals(name: str, capsys):
    assert main(["check", str(spec_path(name))]) == 0
    printed = capsys.readouterr()
    assert printed.err == ""  # no warnings either
    counts = per_backend(PUBLISHED[name])
    if counts["torch"] == counts["tensorflow"]:
        expected = {"": counts["torch"]}
    else:
        expected = {"keras ": counts["tensorflow"], "torch ": counts["torch"]}
    for prefix, count in expected.items():
        line = (
            f"{prefix}total params: {count.total:,} (trainable {count.trainable:,}, "
            f"non-trainable {count.non_trainable:,})"
        )
        assert line in printed.out.splitlines()


def test_resnet20_has_twenty_weighted_layers_on_its_main_path():
    model = load_model("resnet20")
    kinds = layer_kinds(model)
    # 1 stem convolution + 3 stages * 3 blocks * 2 convolutions + the classifier = 20; the
    # two 1x1 projection shortcuts are not counted in the depth.
    assert kinds["conv2d"] == 1 + 3 * 3 * 2 + 2
    assert kinds["batchnorm"] == 1 + 3 * 3 * 2
    assert kinds["dense"] == 1
    assert kinds["add"] == 9
    assert model.graph.value(model.graph.outputs[0]).shape == (10,)


def test_vgg16_has_thirteen_convolutions_and_three_dense_layers():
    kinds = layer_kinds(load_model("vgg16"))
    assert (kinds["conv2d"], kinds["dense"], kinds["maxpool2d"]) == (13, 3, 5)


def test_bidirectional_lstm_reads_reviews_of_any_length():
    model = load_model("bidirectional_lstm_imdb")
    (tokens,) = model.graph.inputs
    assert (tokens.shape, tokens.dtype) == ((None,), "int64")
    lstms = [node for _, node in model.graph.walk() if node.layer.kind == "lstm"]
    assert [node.output.shape for node in lstms] == [(None, 128), (128,)]
