"""Data sources: argument validation and what `describe` says each yields."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data_files import write_image_folder, write_mnist_npz
from pydantic import ValidationError

from specc.data_sources import (
    DATA_SOURCES,
    Csv,
    DataSourceError,
    Features,
    ImageFolder,
    Labels,
    Npz,
    TextCsv,
    fits,
)


def describe(kind: str, spec_dir: Path | str = ".", **arguments):
    return DATA_SOURCES[kind](**arguments).describe(spec_dir)


@pytest.mark.parametrize(("kind", "arguments", "shape", "dtype", "label"), [
    ("digits", {}, (64,), "float32", Labels("digits()", "classes", classes=10)),
    ("iris", {}, (4,), "float32", Labels("iris()", "classes", classes=3)),
    ("breast_cancer", {}, (30,), "float32", Labels("breast_cancer()", "classes", classes=2)),
    ("diabetes", {}, (10,), "float32", Labels("diabetes()", "values")),
    ("mnist", {"path": "mnist.npz"}, (28, 28), "float32", Labels("mnist()", "classes",
                                                                  classes=10)),
    ("fashion_mnist", {"path": "fashion"}, (28, 28), "float32",
     Labels("fashion_mnist()", "classes", classes=10)),
    ("cifar10", {"path": "cifar"}, (32, 32, 3), "float32", Labels("cifar10()", "classes",
                                                                    classes=10)),
    ("imdb", {"path": "imdb.npz", "vocab": 500, "max_len": 80}, (80,), "int64",
     Labels("imdb(vocab=500, max_len=80)", "classes", classes=2)),
])
def test_fixed_sources_describe_their_samples_without_files(kind, arguments, shape, dtype,
                                                              label):
    description = describe(kind, **arguments)
    (features,) = description.features
    assert (features.shape, features.dtype) == (shape, dtype)
    assert description.labels == (label,)


def test_imdb_tokens_carry_their_vocabulary():
    (features,) = describe("imdb", path="x.npz", vocab=500, max_len=80).features
    assert features.vocab == 500


def test_arguments_bind_in_language_order_with_the_split_fractions_last():
    assert list(DATA_SOURCES["imdb"].model_fields) == [
        "kind", "path", "vocab", "max_len", "validation", "test"]
    assert list(DATA_SOURCES["npz"].model_fields) == ["kind", "path", "x", "y", "validation",
                                                      "test", "weight", "val_path", "test_path"]
    extensions = ["weight", "val_path", "test_path"]  # keyword arguments in practice
    for cls in DATA_SOURCES.values():
        fields = [name for name in cls.model_fields if name not in extensions]
        assert fields[-2:] == ["validation", "test"]
        assert cls.model_fields["validation"].default == 0
        assert cls.model_fields["test"].default == 0


@pytest.mark.parametrize("fractions", [{"validation": 1.0}, {"test": -0.1},
                                       {"validation": 0.6, "test": 0.4}])
def test_split_fractions_must_leave_data_to_train_on(fractions):
    with pytest.raises(ValidationError):
        DATA_SOURCES["digits"](**fractions)


def test_sources_with_their_own_test_split_refuse_a_test_fraction():
    with pytest.raises(ValidationError, match="files come with a test split"):
        DATA_SOURCES["mnist"](path="m.npz", test=0.2)
    assert DATA_SOURCES["mnist"](path="m.npz", validation=0.2).validation == 0.2


def test_arguments_are_strict():
    with pytest.raises(ValidationError):
        DATA_SOURCES["synthetic"](n="100")
    with pytest.raises(ValidationError):
        DATA_SOURCES["imdb"](path="x", vocab=2, max_len=10)  # no room for a word
    with pytest.raises(ValidationError):
        ImageFolder(path="x", size=[1, 2, 3])


def test_image_folder_shape_follows_size_and_color_mode(tmp_path):
    assert ImageFolder(path="x", size=32).sample_shape == (32, 32, 3)
    assert ImageFolder(path="x", size=[24, 16], color_mode="grayscale").sample_shape == (24, 16, 1)
    write_image_folder(tmp_path / "pets", classes=("cat", "dog", "fish"))
    description = describe("image_folder", tmp_path, path="pets", size=8)
    assert description.labels[0].classes == 3
    assert describe("image_folder", tmp_path, path="absent", size=8).labels[0].classes is None


def test_npz_reads_shapes_from_the_array_headers_only(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((7, 8, 8), np.float32), tokens=np.zeros((7, 5), int),
             y=np.zeros(7, np.int64), target=np.zeros((7, 3)))
    description = describe("npz", tmp_path, path="d.npz", x=["x", "tokens"], y=["y", "target"])
    assert description.features == (Features("npz array 'x'", (8, 8), "float32"),
                                     Features("npz array 'tokens'", (5,), None))
    assert description.labels == (Labels("npz array 'y'", "any"),
                                  Labels("npz array 'target'", "values", (3,)))


def test_npz_compressed_and_missing(tmp_path):
    np.savez_compressed(tmp_path / "c.npz", x=np.zeros((3, 4)), y=np.zeros(3))
    assert describe("npz", tmp_path, path="c.npz").features[0].shape == (4,)
    absent = describe("npz", tmp_path, path="absent.npz")
    assert absent.features[0].shape is None and absent.labels[0].kind == "any"


def test_npz_problems_are_reported(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 4)), y=np.zeros(5))
    with pytest.raises(DataSourceError, match="no array 'labels'"):
        Npz(path="d.npz", y="labels").describe(tmp_path)
    with pytest.raises(DataSourceError, match="one row per sample"):
        Npz(path="d.npz").describe(tmp_path)
    (tmp_path / "bad.npz").write_text("not a zip")
    with pytest.raises(DataSourceError, match="not a readable .npz"):
        Npz(path="bad.npz").describe(tmp_path)
    with pytest.raises(ValidationError):
        Npz(path="d.npz", x=["a", "a"])


def test_csv_features_come_from_the_header(tmp_path):
    (tmp_path / "t.csv").write_text("a,b,price,c\n1,2,3,4\n")
    assert Csv(path="t.csv", target="price").describe(tmp_path).features[0].shape == (3,)
    with pytest.raises(DataSourceError, match=r"no column 'cost'.*'a', 'b', 'price', 'c'"):
        Csv(path="t.csv", target="cost").describe(tmp_path)
    with pytest.raises(DataSourceError, match="column 'body'"):
        TextCsv(path="t.csv", text="body", label="a", vocab=10, max_len=4).describe(tmp_path)


def test_relative_paths_start_at_the_spec_folder(tmp_path):
    write_mnist_npz(tmp_path / "data" / "mnist.npz")
    np.savez(tmp_path / "data" / "d.npz", x=np.zeros((2, 6)), y=np.zeros(2))
    assert describe("npz", tmp_path, path="data/d.npz").features[0].shape == (6,)
    assert describe("npz", tmp_path / "data", path="d.npz").features[0].shape == (6,)
    assert describe("npz", "/", path=str(tmp_path / "data" / "d.npz")).features[0].shape == (6,)


def test_synthetic_is_shaped_like_the_model():
    description = describe("synthetic", n=10)
    assert description.features is None and description.labels is None


@pytest.mark.parametrize(("sample", "input_shape", "expected"), [
    ((64,), (8, 8, 1), True), ((64,), (64,), True), ((64,), (8, 8), True),
    ((28, 28), (28, 28, 1), True), ((28, 28), (784,), True), ((64,), (28, 28, 1), False),
    ((200,), (None,), True), ((200,), (None, 1), False), ((10, 4), (None, 4), True),
    ((10, 4), (None, 3), False),
])
def test_the_reshape_rule(sample, input_shape, expected):
    assert fits(sample, input_shape) is expected
