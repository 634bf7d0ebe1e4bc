"""The data check: errors where the data does not fit the model, silence where it does."""

from __future__ import annotations

import numpy as np
import pytest

from specc import ir
from specc.data_sources import Digits, Imdb
from specc.errors import Span
from specc.passes.data_check import check_data, token_vocab
from specc.training import Adam, CrossEntropy, Mse, TrainConfig

DENSE10 = "flatten()\ndense(10)"


def only_error(messages: list[str]) -> str:
    assert len(messages) == 1, messages
    return messages[0]


def test_digits_cannot_feed_a_28x28_image(spec_diagnostics):
    message = only_error(spec_diagnostics("image: float[28, 28, 1]", DENSE10,
                                          "cross_entropy()", "digits()"))
    assert message == ("digits() yields samples of shape [64] (64 values), which cannot feed "
                       "input `image: float[28, 28, 1]` (784 values)")


def test_the_error_points_at_the_data_section(spec_text):
    result = spec_text("""
        model m {
            input image: float[28, 28, 1]
            layers {
                flatten()
                dense(10)
            }
            loss cross_entropy()
            data digits(validation=0.1)
        }
    """)
    (error,) = result.diagnostics.errors
    assert (error.span.line, error.span.column) == (9, 10)


@pytest.mark.parametrize(("input", "layers", "loss", "data", "expected"), [
    ("x: float[200]", "dense(2)", "cross_entropy()", 'imdb("i.npz", 1000, 200)',
     "yields int token ids, which cannot feed input `x: float[200]` (expected an `int` input"),
    ("x: int[64]", "embedding(20, 4)\nflatten()\ndense(10)", "cross_entropy()", "digits()",
     "digits() yields float features, which cannot feed input `x: int[64]`"),
    ("x: float[10]", "dense(1)", "cross_entropy()", "diabetes()",
     "loss cross_entropy() on output `dense_1` does not fit the labels of diabetes() "
     "(expected integer class labels, got continuous targets)"),
    ("x: float[64]", "dense(1)", "mse()", "digits()",
     "loss mse() on output `dense_1` does not fit the labels of digits() (expected continuous "
     "targets, got class labels (10 classes))"),
    ("x: float[64]", "dense(5)", "cross_entropy()", "digits()",
     "output `dense_1` [5] has fewer units than digits() has classes (expected at least 10 "
     "units, got 5)"),
    ("x: float[30]", "dense(1)", "cross_entropy()", "breast_cancer()",
     "has fewer units than breast_cancer() has classes (expected at least 2 units, got 1)"),
    ("x: float[30]", "dense(2)", "binary_cross_entropy()", "breast_cancer()",
     "needs one unit per 0/1 label of breast_cancer() (expected 1 unit, got 2 (use "
     "cross_entropy() for one unit per class))"),
    ("x: float[64]", "dense(1)", "binary_cross_entropy()", "digits()",
     "needs 0/1 labels, but digits() has 10 classes"),
    ("x: float[10]", "dense(3)", "huber()", "diabetes()",
     "diabetes() yields targets of shape [] (1 value), which cannot train output `dense_1` [3]"),
    ("t: int[?]", "embedding(1000, 8)\nglobal_avgpool1d()\ndense(2)", "cross_entropy()",
     'imdb("i.npz", vocab=5000, max_len=100)',
     "yields token ids up to 4999, beyond the vocabulary of the embedding that reads input `t` "
     "(expected vocab <= 1000"),
    ("t: int[50]", "embedding(1000, 8)\nglobal_avgpool1d()\ndense(2)", "cross_entropy()",
     'imdb("i.npz", vocab=1000, max_len=100)',
     "imdb(vocab=1000, max_len=100) yields samples of shape [100] (100 values), which cannot "
     "feed input `t: int[50]` (50 values)"),
    ("t: int[?, 4]", "embedding(1000, 8)\nglobal_avgpool2d()\ndense(2)", "cross_entropy()",
     'imdb("i.npz", vocab=1000, max_len=100)',
     "cannot feed input `t: int[?, 4]` (expected shape [?, 4], where `?` takes any size, "
     "got [100])"),
])
def test_mismatches_are_errors(spec_diagnostics, input, layers, loss, data, expected):
    assert expected in only_error(spec_diagnostics(input, layers, loss, data))


@pytest.mark.parametrize(("input", "layers", "loss", "data"), [
    ("image: float[8, 8, 1]", DENSE10, "cross_entropy()", "digits()"),
    ("image: float[8, 8]", DENSE10, "cross_entropy()", "digits(validation=0.2, test=0.2)"),
    ("x: float[64]", "dense(12)", "cross_entropy(label_smoothing=0.1)", "digits()"),
    ("x: float[4]", "dense(3)", "cross_entropy()", "iris()"),
    ("x: float[30]", "dense(1)", "binary_cross_entropy()", "breast_cancer()"),
    ("x: float[30]", "dense(2)", "cross_entropy()", "breast_cancer()"),
    ("x: float[10]", "dense(1)", "mse()", "diabetes()"),
    ("x: float[10]", "dense(1)", "mae()", "diabetes()"),
    ("image: float[28, 28, 1]", DENSE10, "cross_entropy()", 'mnist("absent/mnist.npz")'),
    ("image: float[784]", "dense(10)", "cross_entropy()", 'fashion_mnist("absent")'),
    ("image: float[32, 32, 3]", DENSE10, "cross_entropy()", 'cifar10("absent")'),
    ("t: int[?]", "embedding(1000, 8)\nglobal_avgpool1d()\ndense(1)", "binary_cross_entropy()",
     'imdb("absent.npz", vocab=1000, max_len=64)'),
    ("t: int[64]", "embedding(1000, 8)\nglobal_avgpool1d()\ndense(2)", "cross_entropy()",
     'text_csv("absent.csv", "text", "label", 500, 64)'),
    ("image: float[16, 16, 1]", DENSE10, "cross_entropy()",
     'image_folder("absent", 16, color_mode=grayscale)'),
    ("x: float[3]", "dense(4)", "mse()", 'npz("absent.npz")'),
    ("x: float[3]", "dense(4)", "cross_entropy()", 'csv("absent.csv", "y")'),
    ("t: int[?]", "embedding(50, 4)\nlstm(8)\ndense(3)", "cross_entropy()", "synthetic(64)"),
])
def test_fitting_data_passes(spec_model, input, layers, loss, data):
    assert spec_model(input, layers, loss, data).data is not None


def test_several_inputs_need_a_source_that_feeds_several(spec_text):
    result = spec_text("""
        model m {
            input a: float[4]
            input b: float[4]
            graph {
                h = concat(a, b) -> dense(3)
            }
            output h
            loss cross_entropy()
            data iris()
        }
    """)
    (error,) = result.diagnostics.errors
    assert error.message == ("the data gives one array of samples per model input (expected 2 "
                             "for `a`, `b`, got 1: iris())")


def test_npz_arrays_are_checked_per_input_and_output(tmp_path, spec_text):
    (tmp_path / "specs").mkdir()
    np.savez(tmp_path / "specs" / "d.npz", a=np.zeros((5, 4), np.float32),
             b=np.zeros((5, 6), np.float32), y=np.zeros(5, np.int64), v=np.zeros((5, 2)))
    text = """
        model m {
            input a: float[4]
            input b: float[SIZE]
            graph {
                h = concat(a, b) -> dense(3)
                v = h -> dense(2)
            }
            output h, v
            loss h: cross_entropy(), v: mse()
            data npz("d.npz", x=["a", "b"], y=["y", "v"])
        }
    """
    assert spec_text(text.replace("SIZE", "6")).program is not None
    errors = spec_text(text.replace("SIZE", "5")).diagnostics.errors
    assert [e.message for e in errors] == [
        "npz array 'b' yields samples of shape [6] (6 values), which cannot feed input "
        "`b: float[5]` (5 values)"]
    errors = spec_text(text.replace("SIZE", "6").replace('"y", "v"', '"y"')).diagnostics.errors
    assert "one array of labels per output with a loss (expected 2" in errors[0].message


def test_problems_found_in_files_are_errors(tmp_path, spec_diagnostics):
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "t.csv").write_text("a,b,price\n1,2,3\n")
    message = only_error(spec_diagnostics("x: float[2]", "dense(1)", "mse()",
                                          'csv("t.csv", target="cost")'))
    assert "has no column 'cost' (named by `target`)" in message
    assert spec_diagnostics("x: float[2]", "dense(1)", "mse()", 'csv("t.csv", "price")') == []
    message = only_error(spec_diagnostics("x: float[3]", "dense(1)", "mse()",
                                          'csv("t.csv", "price")'))
    assert "csv(target='price') yields samples of shape [2]" in message


# --- check_data and token_vocab on hand-built IR ------------------------------------------

SPAN = Span(file="m.spec", line=3, column=5, end_line=3, end_column=12)


def hand_built(source, input_shape, dtype="float32", loss=None) -> ir.Model:
    """A model whose only output is its input (no layers): enough for the data check."""
    value = ir.Value(id="x", label="x", shape=input_shape, dtype=dtype)
    graph = ir.Graph(inputs=(value,), nodes=(), outputs=("x",))
    return ir.Model(name="m", graph=graph,
                    losses=(ir.LossTerm(output="x", loss=loss or CrossEntropy(), span=SPAN),),
                    optimizer=Adam(), metrics=(), augment=(), train=TrainConfig(),
                    data=ir.DataSource(source=source, spec_dir=".", span=SPAN),
                    file="m.spec", span=SPAN)


def test_check_data_on_hand_built_ir():
    assert check_data(hand_built(Digits(), (64,))) == []  # 64 output units >= 10 classes
    feed, units = check_data(hand_built(Digits(), (7,)))
    assert feed.span == SPAN and "cannot feed input `x: float[7]`" in feed.message
    assert "(expected at least 10 units, got 7)" in units.message
    (error,) = check_data(hand_built(Digits(), (64,), loss=Mse()))
    assert "expected continuous targets" in error.message
    (error,) = check_data(hand_built(Imdb(path="i", vocab=10, max_len=64), (64,), "float32"))
    assert "yields int token ids, which cannot feed input `x: float[64]`" in error.message


def test_token_vocab_follows_ids_into_blocks_and_through_int_layers(spec_model):
    model = spec_model("t: int[12]", "reshape([3, 4])\nembedding(77, 4)\nflatten()\ndense(2)",
                       "cross_entropy()", "synthetic(8)")
    assert token_vocab(model.graph, model.graph.inputs[0].id) == 77


def test_token_vocab_is_found_inside_blocks(spec_text):
    result = spec_text("""
        block encode(vocab) {
            embedding(vocab, 4)
            global_avgpool1d()
        }
        model m {
            input t: int[12]
            layers {
                encode(33)
                dense(2)
            }
            loss cross_entropy()
            data imdb("i.npz", vocab=50, max_len=12)
        }
    """)
    (error,) = result.diagnostics.errors
    assert "(expected vocab <= 33, got vocab=50)" in error.message


@pytest.mark.parametrize(("layers", "loss", "data", "expected"), [
    ("dense(3)", "categorical_cross_entropy()", "iris()",
     "loss categorical_cross_entropy() on output `dense_1` needs a float row per sample over "
     "the classes of output `dense_1` [3] (one-hot or probabilities), but iris() gives class "
     "ids (expected float labels of shape [3], got class ids (use cross_entropy()))"),
    ("dense(3)", "kl_divergence()", "iris()", "but iris() gives class ids"),
    ("dense(3)", "categorical_focal()", "iris()", "but iris() gives class ids"),
    ("dense(1)", "hinge()", "iris()",
     "loss hinge() on output `dense_1` needs 0/1 labels, but iris() has 3 classes"),
    ("dense(1)", "binary_focal()", "iris()", "needs 0/1 labels, but iris() has 3 classes"),
    ("dense(1)", "poisson()", "iris()",
     "loss poisson() on output `dense_1` does not fit the labels of iris() (expected "
     "continuous targets, got class labels (3 classes))"),
    ("dense(2)", "log_cosh()", "diabetes()", "cannot train output `dense_1` [2] (2 values)"),
])
def test_each_loss_says_which_labels_it_takes(spec_diagnostics, layers, loss, data, expected):
    assert expected in only_error(spec_diagnostics("x: float[4]" if data == "iris()"
                                                   else "x: float[10]", layers, loss, data))


def test_rows_of_labels_must_be_shaped_like_the_output(tmp_path, spec_text):
    (tmp_path / "specs").mkdir()
    np.savez(tmp_path / "specs" / "d.npz", x=np.zeros((5, 4), np.float32),
             y=np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1]])
    text = """
        model m {
            input x: float[4]
            layers { dense(UNITS) }
            loss categorical_cross_entropy()
            data npz("d.npz")
        }
    """
    assert spec_text(text.replace("UNITS", "3")).program is not None
    (error,) = spec_text(text.replace("UNITS", "4")).diagnostics.errors
    assert error.message == (
        "loss categorical_cross_entropy() on output `dense_1` needs labels shaped like output "
        "`dense_1` [4] (expected float labels of shape [4], got [3] from npz array 'y')")
