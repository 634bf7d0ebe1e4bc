"""The loader code emitted into generated programs: rendered for each source, run on tiny
files in the standard formats, checked for shapes, dtypes, splits, determinism,
preprocessing, clear errors, and lint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from data_files import (
    write_cifar10,
    write_image_folder,
    write_imdb,
    write_mnist_idx,
    write_mnist_npz,
    write_program,
)

from specc.backends.common.code import lit
from specc.backends.common.data import render_data_code

ROOT = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).with_name("ruff")
CNN = "flatten()\ndense(10)"
TOKENS = "embedding(VOCAB, 8)\nglobal_avgpool1d()\ndense(2)"


def splits_of(module: dict, seed: int = 0, **options):
    return module["load_splits"](seed, **options)


def shapes(splits: dict) -> dict:
    return {name: (x.shape, x.dtype.name, y.shape, y.dtype.name)
            for name, (x, y) in splits.items()}


# --- scikit-learn's bundled sets ----------------------------------------------------------


def test_digits_splits_are_standardized_shaped_and_deterministic(spec_model, loader):
    model = spec_model("image: float[8, 8, 1]", CNN, "cross_entropy()",
                       "digits(validation=0.1, test=0.2)")
    module = loader(model)
    splits, preprocessing = splits_of(module, seed=3)
    assert shapes(splits) == {
        "train": ((1258, 8, 8, 1), "float32", (1258,), "int64"),
        "val": ((180, 8, 8, 1), "float32", (180,), "int64"),
        "test": ((359, 8, 8, 1), "float32", (359,), "int64"),
    }
    train = splits["train"][0].reshape(1258, 64)
    varying = train.std(axis=0) > 0
    np.testing.assert_allclose(train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(train.std(axis=0)[varying], 1, atol=1e-4)
    assert preprocessing["class_names"] == [str(d) for d in range(10)]
    assert len(preprocessing["mean"]) == len(preprocessing["std"]) == 64

    again, _ = splits_of(module, seed=3)
    other, _ = splits_of(module, seed=4)
    for name in splits:
        np.testing.assert_array_equal(splits[name][0], again[name][0])
        np.testing.assert_array_equal(splits[name][1], again[name][1])
    assert not np.array_equal(splits["test"][1], other["test"][1])


def test_predict_prepares_raw_inputs_as_training_did(spec_model, loader, tmp_path):
    from sklearn.datasets import load_iris

    module = loader(spec_model("x: float[4]", "dense(3)", "cross_entropy()", "iris()"))
    splits, preprocessing = splits_of(module)
    module["save_preprocessing"](preprocessing, tmp_path / "preprocessing.json")
    loaded = module["load_preprocessing"](tmp_path / "preprocessing.json")
    assert loaded["class_names"] == ["setosa", "versicolor", "virginica"]
    raw = load_iris().data
    prepared = module["prepare_inputs"](raw, loaded)
    assert prepared.dtype == np.float32 and prepared.shape == (150, 4)
    np.testing.assert_allclose(np.sort(prepared, axis=0), np.sort(splits["train"][0], axis=0),
                               atol=1e-6)  # no val/test: train is every sample, shuffled


def test_binary_and_regression_labels_are_float_and_shaped_like_the_output(spec_model,
                                                                            loader):
    splits, _ = splits_of(loader(spec_model("x: float[30]", "dense(1)",
                                            "binary_cross_entropy()", "breast_cancer()")))
    x, y = splits["train"]
    assert y.shape == (569, 1) and y.dtype == np.float32 and set(np.unique(y)) == {0.0, 1.0}
    splits, preprocessing = splits_of(loader(spec_model("x: float[10]", "dense(1)", "mse()",
                                                        "diabetes(test=0.1)")))
    assert shapes(splits)["test"] == ((44, 10), "float32", (44, 1), "float32")
    assert preprocessing["class_names"] == []
    assert splits["train"][1].max() > 100  # targets are not rescaled


def test_data_path_is_refused_by_sources_that_read_no_file(spec_model, loader):
    module = loader(spec_model("x: float[4]", "dense(3)", "cross_entropy()", "iris()"))
    assert "DATA_PATH" not in module
    with pytest.raises(module["DataError"], match=r"iris\(\) reads no file"):
        splits_of(module, data_path="x.npz")


# --- the standard files -------------------------------------------------------------------


def test_mnist_npz_keeps_its_test_split_and_carves_validation_from_train(
        tmp_path, spec_model, loader):
    arrays = write_mnist_npz(tmp_path / "specs" / "data" / "mnist.npz")
    module = loader(spec_model("image: float[28, 28, 1]", CNN, "cross_entropy()",
                               'mnist("data/mnist.npz", validation=0.25)'))
    splits, preprocessing = splits_of(module)
    assert shapes(splits) == {
        "train": ((15, 28, 28, 1), "float32", (15,), "int64"),
        "val": ((5, 28, 28, 1), "float32", (5,), "int64"),
        "test": ((10, 28, 28, 1), "float32", (10,), "int64"),
    }
    np.testing.assert_allclose(splits["test"][0][..., 0], arrays["x_test"] / 255.0, atol=1e-7)
    np.testing.assert_array_equal(splits["test"][1], arrays["y_test"])
    assert 0 <= splits["train"][0].min() and splits["train"][0].max() <= 1
    assert module["DATA_PATH"] == "../specs/data/mnist.npz"
    assert preprocessing == {"class_names": [str(d) for d in range(10)]}


@pytest.mark.parametrize("gzipped", [True, False])
def test_mnist_reads_the_idx_files_of_a_folder(tmp_path, spec_model, loader, gzipped):
    arrays = write_mnist_idx(tmp_path / "specs" / "fashion", gzipped=gzipped)
    module = loader(spec_model("image: float[784]", "dense(10)", "cross_entropy()",
                               'fashion_mnist("fashion")'))
    splits, preprocessing = splits_of(module)
    assert shapes(splits)["test"] == ((10, 784), "float32", (10,), "int64")
    np.testing.assert_allclose(splits["test"][0], arrays["x_test"].reshape(10, 784) / 255.0,
                               atol=1e-7)
    assert preprocessing["class_names"][9] == "Ankle boot"


@pytest.mark.parametrize("where", ["cifar-10-batches-py", "."])
def test_cifar10_batches_become_channels_last_images(tmp_path, spec_model, loader, where):
    test_images = write_cifar10(tmp_path / "specs" / "cifar" / "cifar-10-batches-py")
    module = loader(spec_model("image: float[32, 32, 3]", CNN, "cross_entropy()",
                               f'cifar10("{Path("cifar") / where}", validation=0.1)'))
    splits, preprocessing = splits_of(module)
    assert shapes(splits) == {
        "train": ((18, 32, 32, 3), "float32", (18,), "int64"),
        "val": ((2, 32, 32, 3), "float32", (2,), "int64"),
        "test": ((4, 32, 32, 3), "float32", (4,), "int64"),
    }
    np.testing.assert_allclose(splits["test"][0], test_images / 255.0, atol=1e-7)
    assert preprocessing["class_names"][0] == "airplane"


def test_imdb_tokens_follow_the_keras_conventions(tmp_path, spec_model, loader):
    x_test = write_imdb(tmp_path / "specs" / "imdb.npz")
    module = loader(spec_model("tokens: int[?]", TOKENS.replace("VOCAB", "30"),
                               "cross_entropy()", 'imdb("imdb.npz", vocab=30, max_len=8)'))
    splits, _ = splits_of(module)
    assert shapes(splits) == {"train": ((12, 8), "int64", (12,), "int64"),
                              "test": ((6, 8), "int64", (6,), "int64")}
    for review, row in zip(x_test, splits["test"][0], strict=True):
        ids = [1] + [rank + 3 if rank + 3 < 30 else 2 for rank in review]
        expected = ([0] * 8 + ids)[-8:]  # pre-padded, pre-truncated
        assert row.tolist() == expected
    assert splits["train"][0].max() < 30


# --- files of the user's own --------------------------------------------------------------


def test_npz_feeds_several_inputs_and_outputs(tmp_path, spec_text, loader):
    rng = np.random.default_rng(0)
    (tmp_path / "specs").mkdir()
    np.savez(tmp_path / "specs" / "d.npz", pixels=rng.random((10, 64)),
             ids=rng.integers(0, 9, (10, 5)), label=rng.integers(0, 3, 10),
             value=rng.random((10, 2)))
    result = spec_text("""
        model m {
            input image: float[8, 8, 1]
            input ids: int[5]
            graph {
                a = image -> flatten()
                b = ids -> embedding(9, 2) -> flatten()
                h = concat(a, b) -> dense(3)
                v = h -> dense(2)
            }
            output h, v
            loss h: cross_entropy(), v: mse()
            data npz("d.npz", x=["pixels", "ids"], y=["label", "value"], test=0.2)
        }
    """)
    splits, _ = splits_of(loader(result.program.models[0]))
    (image, ids), (label, value) = splits["test"]
    assert (image.shape, image.dtype, ids.shape, ids.dtype) == ((2, 8, 8, 1), np.float32, (2, 5),
                                                                 np.int64)
    assert (label.shape, label.dtype, value.shape, value.dtype) == ((2,), np.int64, (2, 2),
                                                                     np.float32)
    assert len(splits["train"][0][0]) == 8


def test_csv_regression_and_named_classes(tmp_path, spec_model, loader):
    (tmp_path / "specs").mkdir()
    kinds = ["flat", "villa"]
    lines = [f"{i % 5},{10 * i},{i * 1.5},{kinds[i % 2]}\n" for i in range(20)]
    (tmp_path / "specs" / "houses.csv").write_text("rooms,area,price,kind\n" + "".join(lines))
    module = loader(spec_model("x: float[3]", "dense(2)", "cross_entropy()",
                               'csv("houses.csv", target="kind", validation=0.2)'))
    splits, preprocessing = splits_of(module)
    assert shapes(splits)["val"] == ((4, 3), "float32", (4,), "int64")
    assert preprocessing["class_names"] == ["flat", "villa"]
    np.testing.assert_allclose(splits["train"][0].mean(axis=0), 0, atol=1e-5)
    module = loader(spec_model("x: float[3]", "dense(1)", "mse()", 'csv("houses.csv", "price")'))
    with pytest.raises(module["DataError"], match=r"row 2: feature values must be numbers"):
        splits_of(module)


def test_csv_regression_targets(tmp_path, spec_model, loader):
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "t.csv").write_text("a,b,y\n1,2,0.5\n3,4,1.5\n5,6,2.5\n")
    splits, _ = splits_of(loader(spec_model("x: float[2]", "dense(1)", "mse()",
                                            'csv("t.csv", "y")')))
    np.testing.assert_allclose(np.sort(splits["train"][1][:, 0]), [0.5, 1.5, 2.5])


def test_text_csv_tokenizes_with_a_vocabulary_fitted_on_train(tmp_path, spec_model, loader):
    (tmp_path / "specs").mkdir()
    rows = ["text,label\n", '"Great film, GREAT cast!",pos\n', "dull plot,neg\n",
            "great fun,pos\n", "dull dull dull,neg\n", "a unique_word,pos\n"]
    (tmp_path / "specs" / "reviews.csv").write_text("".join(rows))
    module = loader(spec_model("tokens: int[6]", TOKENS.replace("VOCAB", "5"),
                               "cross_entropy()",
                               'text_csv("reviews.csv", "text", "label", 5, 6)'))
    splits, preprocessing = splits_of(module)
    assert preprocessing["class_names"] == ["neg", "pos"]
    # vocab 5: pad, OOV and the three most frequent words (ties alphabetical)
    assert preprocessing["vocabulary"] == ["dull", "great", "a"]
    tokens = module["prepare_inputs"](["great Great dull zebra a", "dull"], preprocessing)
    assert tokens.tolist() == [[0, 3, 3, 2, 1, 4], [0, 0, 0, 0, 0, 2]]
    assert module["words"]("It's a_b C3PO!") == ["it", "s", "a", "b", "c3po"]

    module = loader(spec_model("tokens: int[6]", TOKENS.replace("VOCAB", "50"),
                               "cross_entropy()",
                               'text_csv("reviews.csv", "text", "label", 50, 6, test=0.2)'))
    splits, preprocessing = splits_of(module)
    assert shapes(splits)["test"] == ((1, 6), "int64", (1,), "int64")
    labels = np.array([1, 0, 1, 0, 1])  # the rows' labels: neg is 0, pos is 1
    (held_out,) = module["split_parts"](5, labels, 0)["test"]
    train_words = {w for i, row in enumerate(rows[1:]) if i != held_out
                   for w in module["words"](row)}
    assert set(preprocessing["vocabulary"]) == train_words - {"pos", "neg"}


def test_image_folder_resizes_and_names_classes(tmp_path, spec_model, loader):
    write_image_folder(tmp_path / "specs" / "pets", classes=("dog", "cat"))
    module = loader(spec_model("image: float[8, 6, 1]", CNN.replace("10", "2"),
                               "cross_entropy()",
                               'image_folder("pets", [8, 6], color_mode=grayscale)'))
    splits, preprocessing = splits_of(module)
    x, y = splits["train"]
    assert (x.shape, x.dtype.name, sorted(y.tolist())) == ((6, 8, 6, 1), "float32",
                                                           [0, 0, 0, 1, 1, 1])
    assert 0 <= x.min() and x.max() <= 1
    assert preprocessing["class_names"] == ["cat", "dog"]
    files = sorted(str(f) for f in (tmp_path / "specs" / "pets" / "cat").glob("*.png"))
    assert module["prepare_inputs"](files, preprocessing).shape == (3, 8, 6, 1)


def test_synthetic_data_is_shaped_like_the_model_and_learnable(spec_text, loader):
    result = spec_text("""
        model m {
            input x: float[6]
            input t: int[?]
            graph {
                a = t -> embedding(11, 4) -> global_avgpool1d()
                h = concat(x, a) -> dense(4)
                v = h -> dense(2)
            }
            output h, v
            loss h: cross_entropy(), v: huber()
            data synthetic(200, validation=0.1)
        }
    """)
    module = loader(result.program.models[0])
    splits, _ = splits_of(module)
    (x, t), (label, value) = splits["train"]
    assert (x.shape, t.shape, t.dtype.name) == ((180, 6), (180, 16), "int64")
    assert 0 <= t.min() and t.max() < 11
    assert label.shape == (180,) and len(np.unique(label)) > 1
    assert value.shape == (180, 2) and value.dtype == np.float32
    # The samples are the same for every seed (like a file on disk); only the split varies.
    again, _ = splits_of(module, seed=1)
    assert not np.array_equal(again["train"][0][0], x)
    for split in (splits, again):
        every_x = np.concatenate([split["train"][0][0], split["val"][0][0]])
        np.testing.assert_array_equal(np.sort(every_x.ravel()),
                                      np.sort(np.concatenate([x, splits["val"][0][0]]).ravel()))


def test_synthetic_labels_take_the_form_each_loss_takes(spec_text, loader):
    result = spec_text("""
        model m {
            input x: float[6]
            graph {
                h = x -> dense(4)
                rate = h -> dense(2, activation=softplus)
                score = h -> dense(1)
            }
            output h, rate, score
            loss h: categorical_cross_entropy(), rate: poisson(), score: hinge()
            data synthetic(100)
        }
    """)
    module = loader(result.program.models[0])
    splits, _ = splits_of(module)
    one_hot, counts, signs = splits["train"][1]
    assert one_hot.shape == (100, 4) and one_hot.dtype == np.float32
    np.testing.assert_array_equal(one_hot.sum(-1), 1.0)
    assert set(np.unique(one_hot)) == {0.0, 1.0} and len(np.unique(one_hot.argmax(-1))) > 1
    assert counts.shape == (100, 2) and counts.min() >= 0
    np.testing.assert_array_equal(counts, np.round(counts))
    assert set(np.unique(signs)) == {0.0, 1.0}


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(("input", "layers", "data", "message"), [
    ("image: float[28, 28, 1]", CNN, 'mnist("data/mnist.npz")',
     "MNIST not found at {spec}/data/mnist.npz; download "
     "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz and put it there"),
    ("image: float[28, 28, 1]", CNN, 'fashion_mnist("fashion")',
     "Fashion-MNIST not found at {spec}/fashion; download train-images-idx3-ubyte.gz"),
    ("image: float[32, 32, 3]", CNN, 'cifar10("cifar")',
     "CIFAR-10 not found at {spec}/cifar (no data_batch_1); download "
     "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
    ("t: int[?]", TOKENS.replace("VOCAB", "100"), 'imdb("imdb.npz", 100, 10)',
     "imdb.npz not found at {spec}/imdb.npz; download "
     "https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz"),
    ("x: float[2]", "dense(2)", 'npz("d.npz")', "data file not found at {spec}/d.npz"),
    ("x: float[2]", "dense(2)", 'csv("d.csv", "y")', "CSV file not found at {spec}/d.csv"),
    ("t: int[4]", TOKENS.replace("VOCAB", "100"), 'text_csv("d.csv", "t", "l", 100, 4)',
     "CSV file not found at {spec}/d.csv"),
    ("x: float[4, 4, 3]", CNN, 'image_folder("pics", 4)', "image folder not found at "
     "{spec}/pics"),
])
def test_a_missing_file_names_its_path_and_where_to_get_it(tmp_path, spec_model, loader,
                                                           input, layers, data, message):
    module = loader(spec_model(input, layers, "cross_entropy()", data))
    with pytest.raises(module["DataError"]) as error:
        splits_of(module)
    text = str(error.value)
    assert message.format(spec=tmp_path.resolve() / "specs") in text
    assert text.endswith("pass --data PATH") and "\n" not in text


def test_data_path_option_is_relative_to_the_working_directory(tmp_path, spec_model, loader,
                                                              monkeypatch):
    write_mnist_npz(tmp_path / "elsewhere" / "digits.npz", train=6, test=3)
    write_mnist_npz(tmp_path / "specs" / "mnist.npz", train=8, test=4)
    module = loader(spec_model("image: float[28, 28, 1]", CNN, "cross_entropy()",
                               'mnist("mnist.npz")'))
    monkeypatch.chdir(tmp_path / "elsewhere")  # DATA_PATH still resolves from the program
    assert len(splits_of(module)[0]["test"][1]) == 4
    assert len(splits_of(module, data_path="digits.npz")[0]["test"][1]) == 3


def write_npz(tmp_path: Path, **arrays) -> None:
    (tmp_path / "specs").mkdir(exist_ok=True)
    np.savez(tmp_path / "specs" / "d.npz", **arrays)


@pytest.mark.parametrize(("input", "layers", "loss", "arrays", "message"), [
    ("x: float[3]", "dense(4)", "cross_entropy()",
     {"x": np.zeros((5, 3)), "y": np.array([0, 1, 2, 3, 4])},
     "the train split has class ids from 0 to 4 for output `dense_1` (expected 0 to 3: the "
     "output has 4 units)"),
    ("x: float[3]", "dense(4)", "cross_entropy()",
     {"x": np.zeros((5, 3)), "y": np.array([0, 1, 2, 3, 0.5])},
     "labels of output `dense_1` must be integer class ids"),
    ("x: float[3]", "dense(1)", "mse()",
     {"x": np.array([[0, 1, np.nan]] * 5), "y": np.zeros(5)},
     "the train split has NaN or infinite values in input `x`"),
    ("x: float[3]", "dense(1)", "binary_cross_entropy()",
     {"x": np.zeros((5, 3)), "y": np.array([0, 1, 2, 0, 1])},
     "labels outside [0, 1] for output `dense_1`"),
    ("x: float[3]", "dense(1)", "mse()", {"x": np.zeros((5, 4)), "y": np.zeros(5)},
     "samples of shape [4] cannot feed input `x` of shape [3]"),
    ("t: int[3]", "embedding(10, 2)\nflatten()\ndense(1)", "mse()",
     {"x": np.zeros((5, 3)), "y": np.zeros(5)},
     "input `t` takes int token ids, but the data holds float64 values"),
    ("t: int[3]", "embedding(10, 2)\nflatten()\ndense(1)", "mse()",
     {"x": np.full((5, 3), 10), "y": np.zeros(5)},
     "token ids from 10 to 10 in input `t` (expected 0 to 9"),
    ("x: float[3]", "dense(2)", "mse()", {"x": np.zeros((5, 3)), "y": np.zeros((5, 3))},
     "labels of shape [3] per sample cannot train output `dense_1` of shape [2] with mse"),
    ("x: float[3]", "dense(2)", "mse()", {"x": np.zeros((5, 3)), "y": np.zeros(4)},
     "must have one row per sample (got 'x': 5, 'y': 4)"),
    ("x: float[3]", "dense(2)", "mse()", {"x": np.zeros((5, 3)), "target": np.zeros(5)},
     "has no array 'y' (it holds 'x', 'target')"),
    ("x: float[3]", "dense(3)", "categorical_cross_entropy()",
     {"x": np.zeros((5, 3)), "y": np.array([[0, 1, 2]] * 5)},
     "the train split has labels outside [0, 1] for output `dense_1` "
     "(categorical_cross_entropy takes one-hot rows or probabilities over the classes)"),
    ("x: float[3]", "dense(3)", "kl_divergence()",
     {"x": np.zeros((5, 3)), "y": np.array([0, 1, 2, 0, 1])},
     "labels of shape [] per sample cannot train output `dense_1` of shape [3] with "
     "kl_divergence"),
    ("x: float[3]", "dense(1)", "hinge()",
     {"x": np.zeros((5, 3)), "y": np.array([0, 1, -1, 1, 0])},
     "the train split has labels other than 0/1 or -1/1 for output `dense_1` (hinge takes "
     "one or the other)"),
    ("x: float[3]", "dense(1)", "binary_focal()",
     {"x": np.zeros((5, 3)), "y": np.array([0, 1, 2, 0, 1])},
     "labels outside [0, 1] for output `dense_1` (binary_focal takes 0/1 labels"),
    ("x: float[3]", "dense(2)", "poisson()",
     {"x": np.zeros((5, 3)), "y": np.array([[0, 1]] * 4 + [[-1, 3]])},
     "the train split has negative labels for output `dense_1` (poisson takes counts, 0 or "
     "more)"),
])
def test_bad_data_stops_before_training(tmp_path, spec_model, loader, input, layers, loss,
                                        arrays, message):
    # The file is written after the check, as a file that changes between compile and run.
    module = loader(spec_model(input, layers, loss, 'npz("d.npz")'))
    write_npz(tmp_path, **arrays)
    with pytest.raises(module["DataError"]) as error:
        splits_of(module)
    assert message in str(error.value)


def test_too_few_samples_for_the_held_out_parts(tmp_path, spec_model, loader):
    module = loader(spec_model("x: float[3]", "dense(1)", "mse()",
                               'npz("d.npz", validation=0.5, test=0.4)'))
    write_npz(tmp_path, x=np.zeros((2, 3)), y=np.zeros(2))
    with pytest.raises(module["DataError"], match="2 samples are too few"):
        splits_of(module)


# --- the code itself ----------------------------------------------------------------------

RENDERED = [
    ("image: float[8, 8, 1]", CNN, "cross_entropy()", "digits(validation=0.1, test=0.1)"),
    ("x: float[10]", "dense(1)", "mse()", "diabetes()"),
    ("image: float[28, 28, 1]", CNN, "cross_entropy()", 'mnist("m.npz", validation=0.1)'),
    ("image: float[28, 28, 1]", CNN, "cross_entropy()", 'fashion_mnist("f")'),
    ("image: float[32, 32, 3]", CNN, "cross_entropy()", 'cifar10("c")'),
    ("t: int[?]", TOKENS.replace("VOCAB", "100"), "cross_entropy()", 'imdb("i.npz", 100, 10)'),
    ("x: float[3]", "dense(2)", "mse()", 'npz("d.npz", x="a", y=["b"])'),
    ("x: float[3]", "dense(2)", "cross_entropy()", 'csv("d.csv", "y")'),
    ("x: float[3]", "dense(1)", "huber()", 'csv("d.csv", "y")'),
    ("t: int[4]", TOKENS.replace("VOCAB", "100"), "cross_entropy()",
     'text_csv("d.csv", "t", "l", 100, 4)'),
    ("x: float[4, 4, 3]", CNN, "cross_entropy()", 'image_folder("pics", 4)'),
    ("t: int[?]", TOKENS.replace("VOCAB", "100"), "cross_entropy()", "synthetic(64)"),
    ("x: float[5]", "dense(1)", "binary_cross_entropy()", "synthetic(64, test=0.5)"),
    ("x: float[5]", "dense(3)", "categorical_focal()", "synthetic(64)"),
    ("x: float[5]", "dense(1)", "squared_hinge()", 'npz("d.npz")'),
    ("x: float[5]", "dense(2)", "poisson()", "synthetic(64)"),
    ("x: float[5]", "dense(1)", "binary_focal(alpha=0.5)", "synthetic(64)"),
]


def test_the_rendered_code_passes_ruff_with_the_project_rules(tmp_path, spec_model):
    files = []
    for number, (input, layers, loss, data) in enumerate(RENDERED):
        code = render_data_code(spec_model(input, layers, loss, data), tmp_path / "program")
        files.append(write_program(code, tmp_path / f"program_{number}"))
    result = subprocess.run([str(RUFF), "check", "--config", str(ROOT / "pyproject.toml"),
                             "--no-cache", *map(str, files)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_only_the_code_a_source_needs_is_emitted(spec_model, tmp_path):
    code = render_data_code(spec_model("x: float[4]", "dense(3)", "cross_entropy()", "iris()"),
                            tmp_path)
    assert code.third_party_imports == ("import numpy as np",
                                        "from sklearn.datasets import load_iris")
    assert "pickle.load" not in code.code and "read_npz" not in code.code
    assert "read_csv" not in code.code and not code.reads_file
    assert code.code.startswith("# ---") and code.code.endswith("\n")


def test_spec_strings_reach_the_code_only_as_literals(tmp_path, spec_model, loader):
    data = r'npz("evil\"\n)\nimport os  # x.npz", y="y\"z")'
    model = spec_model("x: float[3]", "dense(2)", "mse()", data)
    code = render_data_code(model, tmp_path / "program")
    assert "\nimport os" not in code.code
    module = loader(model)
    assert module["DATA_PATH"] == '../specs/evil"\n)\nimport os  # x.npz'
    assert module["Y_ARRAYS"] == ['y"z']


def test_lit_writes_only_plain_data():
    assert lit({"a": ((28, None, 1), "float32")}) == '{"a": ((28, None, 1), "float32")}'
    assert lit((3,)) == "(3,)" and lit([1.5, True]) == "[1.5, True]"
    assert lit('say "hi"') == "'say \"hi\"'"
    with pytest.raises(ValueError):
        lit(float("nan"))
    with pytest.raises(TypeError):
        lit(object())
