"""Bad data stops before training with one line that names the file: the generated loader
on broken or mistyped files, and `specc check` where the file is there to look at."""

from __future__ import annotations

import io
import pickle
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from data_files import write_cifar10, write_image_folder, write_mnist_idx, write_mnist_npz

CNN = "flatten()\ndense(10)"


def stops_naming(module: dict, named: Path, seed: int = 0) -> str:
    """The loader's DataError for this data: one line that names `named`."""
    with pytest.raises(module["DataError"]) as error:
        module["load_splits"](seed)
    message = str(error.value)
    assert str(named) in message and "\n" not in message, message
    return message


def specs(tmp_path: Path) -> Path:
    folder = tmp_path / "specs"
    folder.mkdir(exist_ok=True)
    return folder


def ragged() -> np.ndarray:
    rows = np.empty(3, dtype=object)
    rows[:] = [[1.0, 2.0], [3.0], [4.0, 5.0, 6.0]]
    return rows


# --- npz files whose arrays are not numbers, or not arrays of samples ----------------------


@pytest.mark.parametrize(("arrays", "message"), [
    ({"x": ragged(), "y": np.zeros(3)},
     ": array 'x' holds Python objects (dtype object, such as lists of varying length)"),
    ({"x": np.array([["1", "2", "3"]] * 4), "y": np.zeros(4)},
     ": the samples of input `x` must be numbers, but the data holds <U1 values"),
    ({"x": np.zeros((4, 3)), "y": np.array(["0", "1", "0", "1"])},
     ": the labels of output `dense_1` must be numbers, but the data holds <U1 values"),
    ({"x": np.zeros((4, 3), dtype=complex), "y": np.zeros(4)},
     "must be numbers, but the data holds complex128 values"),
    ({"x": np.float32(1.0), "y": np.zeros(4)},
     ": array 'x' is a single value (expected one row per sample)"),
    ({"x": np.zeros((0, 3)), "y": np.zeros(0)}, ": the data holds no samples"),
])
def test_npz_arrays_that_are_not_numeric_samples_are_refused(tmp_path, spec_model, loader,
                                                             arrays, message):
    module = loader(spec_model("x: float[3]", "dense(2)", "cross_entropy()", 'npz("d.npz")'))
    file = specs(tmp_path) / "d.npz"
    np.savez(file, **arrays)  # written after the check, as data that changes before the run
    assert message in stops_naming(module, file)


def test_numeric_strings_are_refused_rather_than_converted(tmp_path, spec_model, loader):
    """Numeric strings (a CSV read with dtype=str) would convert without a complaint; they
    are refused so that the wrong dtype is fixed where the file was written."""
    module = loader(spec_model("x: float[3]", "dense(1)", "mse()", 'npz("d.npz")'))
    file = specs(tmp_path) / "d.npz"
    np.savez(file, x=np.array([["0.5", "1", "2"]] * 4), y=np.zeros(4, dtype=np.float32))
    message = stops_naming(module, file)
    assert message.endswith("(save them with a numeric dtype, such as float32 or int64)")


def test_damaged_npz_files_are_named(tmp_path, spec_model, loader):
    module = loader(spec_model("x: float[3]", "dense(2)", "cross_entropy()", 'npz("d.npz")'))
    file = specs(tmp_path) / "d.npz"
    np.savez(file, x=np.zeros((50, 3)), y=np.zeros(50))
    whole = file.read_bytes()
    not_npz = "is not an .npz file (expected a zip archive of .npy arrays, as np.savez writes)"
    file.write_bytes(whole[:len(whole) // 2])  # truncated: the zip directory is gone
    assert stops_naming(module, file).endswith(not_npz)
    file.write_bytes(pickle.dumps({"x": np.zeros((4, 3))}))  # never unpickled
    assert stops_naming(module, file).endswith(not_npz)
    damaged = bytearray(whole)
    damaged[200:210] = b"\xff" * 10  # inside x's data: the zip's CRC no longer matches
    file.write_bytes(bytes(damaged))
    assert ": array 'x' cannot be read (Bad CRC-32" in stops_naming(module, file)
    np.savez_compressed(file, x=np.random.default_rng(0).random((100, 3)), y=np.zeros(100))
    damaged = bytearray(file.read_bytes())
    damaged[100:120] = bytes(20)  # inside the deflated stream
    file.write_bytes(bytes(damaged))
    assert ": array 'x' cannot be read" in stops_naming(module, file)
    np.save(file.with_suffix(".npy"), np.zeros(3))
    file.with_suffix(".npy").rename(file)
    assert stops_naming(module, file).endswith(not_npz)


def test_npz_members_without_the_npy_suffix_are_read(tmp_path, spec_model, loader):
    """Archives zipped by other tools than np.savez may name their members `x`, not `x.npy`."""
    module = loader(spec_model("x: float[3]", "dense(2)", "cross_entropy()", 'npz("d.npz")'))
    members = {"x": np.zeros((4, 3)), "y": np.array([0, 1, 0, 1])}
    with zipfile.ZipFile(specs(tmp_path) / "d.npz", "w") as archive:
        for name, array in members.items():
            stream = io.BytesIO()
            np.save(stream, array)
            archive.writestr(name, stream.getvalue())
    splits, _ = module["load_splits"](0)
    assert splits["train"][0].shape == (4, 3)


# --- a folder where a file belongs, and the reverse ----------------------------------------


@pytest.mark.parametrize(("input", "layers", "data", "path", "message"), [
    ("x: float[3]", "dense(2)", 'npz("d.npz")', "d.npz", "is a directory (expected an .npz file)"),
    ("x: float[3]", "dense(2)", 'csv("d.csv", "y")', "d.csv", "is a directory (expected a CSV "
     "file)"),
    ("t: int[4]", "embedding(9, 2)\nflatten()\ndense(2)", 'text_csv("d.csv", "t", "l", 9, 4)',
     "d.csv", "is a directory (expected a CSV file)"),
    ("t: int[4]", "embedding(9, 2)\nflatten()\ndense(2)", 'imdb("i.npz", 9, 4)', "i.npz",
     "is a directory (expected Keras' imdb.npz file)"),
])
def test_a_directory_where_a_file_belongs_is_named_as_such(tmp_path, spec_model, loader, input,
                                                           layers, data, path, message):
    module = loader(spec_model(input, layers, "cross_entropy()", data))
    (specs(tmp_path) / path).mkdir()
    assert stops_naming(module, tmp_path.resolve() / "specs" / path).endswith(message)


@pytest.mark.parametrize(("input", "data", "message"), [
    ("x: float[4, 4, 3]", 'image_folder("pics", 4)',
     "is a file (expected a folder with one subfolder of images per class)"),
    ("x: float[32, 32, 3]", 'cifar10("pics")',
     "is a file (expected CIFAR-10's cifar-10-batches-py folder)"),
])
def test_a_file_where_a_folder_belongs_is_named_as_such(tmp_path, spec_model, loader, input,
                                                        data, message):
    module = loader(spec_model(input, CNN, "cross_entropy()", data))
    (specs(tmp_path) / "pics").write_text("not a folder")
    assert stops_naming(module, tmp_path.resolve() / "specs" / "pics").endswith(message)


def test_the_data_option_pointing_at_a_directory_is_named(tmp_path, spec_model, loader):
    module = loader(spec_model("x: float[3]", "dense(2)", "cross_entropy()", 'npz("d.npz")'))
    with pytest.raises(module["DataError"], match="is a directory"):
        module["load_splits"](0, data_path=str(tmp_path))


# --- data that does not fit the model: the message names the file --------------------------


@pytest.mark.parametrize(("loss", "arrays", "message"), [
    ("cross_entropy()", {"x": np.zeros((5, 3)), "y": np.array([0, 1, 2, 3, 4])},
     ": the train split has class ids from 0 to 4 for output `dense_1`"),
    ("cross_entropy()", {"x": np.zeros((5, 3)), "y": np.array([0, 1, -1, 1, 0])},
     ": the train split has class ids from -1 to 1"),
    ("cross_entropy()", {"x": np.zeros((5, 3)), "y": np.array([0, 1, np.nan, 1, 0])},
     ": labels of output `dense_1` must be integer class ids for cross_entropy"),
    ("mse()", {"x": np.array([[0, 1, np.inf]] * 5), "y": np.zeros((5, 4))},
     ": the train split has NaN or infinite values in input `x`"),
    ("mse()", {"x": np.zeros((5, 3)), "y": np.full((5, 4), np.nan)},
     ": the train split has NaN or infinite labels for output `dense_1`"),
    ("mse()", {"x": np.zeros((5, 2)), "y": np.zeros((5, 4))},
     ": samples of shape [2] cannot feed input `x` of shape [3]"),
    ("mse()", {"x": np.zeros((5, 3)), "y": np.zeros((5, 3))},
     ": labels of shape [3] per sample cannot train output `dense_1` of shape [4] with mse"),
    ("cross_entropy()", {"x": np.zeros((5, 3)), "y": np.eye(4)[[0, 1, 2, 3, 0]]},
     ": labels of shape [4] per sample cannot train output `dense_1` of shape [4] with "
     "cross_entropy (it takes class ids, not one-hot rows: y.argmax(axis=-1))"),
])
def test_data_that_does_not_fit_names_the_file(tmp_path, spec_model, loader, loss, arrays,
                                               message):
    module = loader(spec_model("x: float[3]", "dense(4)", loss, 'npz("d.npz")'))
    file = specs(tmp_path) / "d.npz"
    np.savez(file, **arrays)
    assert stops_naming(module, file).startswith(f"{file.resolve()}{message}")


@pytest.mark.parametrize(("loss", "arrays", "message"), [
    ("mse()", {"x": np.full((5, 3), 1e300), "y": np.zeros((5, 4))},  # inf once float32
     ": the train split has NaN or infinite values in input `x`"),
    ("cross_entropy()", {"x": np.zeros((5, 3)), "y": np.full(5, np.inf)},
     ": labels of output `dense_1` must be integer class ids for cross_entropy (got "
     "fractional, NaN or infinite values)"),
])
def test_infinite_values_are_reported_without_numpy_warnings(tmp_path, spec_model, loader,
                                                             loss, arrays, message):
    module = loader(spec_model("x: float[3]", "dense(4)", loss, 'npz("d.npz")'))
    file = specs(tmp_path) / "d.npz"
    np.savez(file, **arrays)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would print a line before the error's
        assert message in stops_naming(module, file)


def test_a_held_out_split_with_bad_labels_is_named(tmp_path, spec_model, loader):
    module = loader(spec_model("x: float[3]", "dense(4)", "cross_entropy()",
                               'npz("d.npz", test=0.5)'))
    file = specs(tmp_path) / "d.npz"
    np.savez(file, x=np.zeros((4, 3)), y=np.array([9, 9, 9, 9]))
    assert "split has class ids from 9 to 9" in stops_naming(module, file)


# --- CSV files ----------------------------------------------------------------------------


@pytest.mark.parametrize(("content", "message"), [
    (b"a,b,y\n", "has a header line but no rows (expected one row per sample after it)"),
    (b"a,b,y\n\n\n", "has a header line but no rows"),
    (b"", "is empty (expected a header line, then one row per sample)"),
    (b"a,b,y\n1,2,0\n3,4\n", ", row 3: 2 values for 3 columns"),
    (b"a,b,y\n1,x,0\n", ", row 2: feature values must be numbers"),
    (b"a,b,y\n1,2,0\n\xff\xfe,4,1\n", "is not UTF-8 text"),
    (b"a,b,y\n1,2,0\n3,4,7\n", ": the train split has class ids from 0 to 7"),
    (b"a,b,y\n1,nan,0\n3,4,1\n", ": the train split has NaN or infinite values in input `x`"),
])
def test_bad_csv_files_are_named(tmp_path, spec_model, loader, content, message):
    module = loader(spec_model("x: float[2]", "dense(2)", "cross_entropy()", 'csv("d.csv", "y")'))
    file = specs(tmp_path) / "d.csv"
    file.write_bytes(content)
    assert message in stops_naming(module, file)


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path, spec_model, loader):
    file = specs(tmp_path) / "d.csv"
    file.write_bytes("\ufeffy,a,b\n0,1,2\n1,3,4\n".encode())  # as spreadsheets save UTF-8
    module = loader(spec_model("x: float[2]", "dense(2)", "cross_entropy()", 'csv("d.csv", "y")'))
    splits, _ = module["load_splits"](0)
    assert sorted(splits["train"][1].tolist()) == [0, 1]


def test_a_header_only_text_csv_is_named(tmp_path, spec_model, loader):
    module = loader(spec_model("t: int[4]", "embedding(9, 2)\nflatten()\ndense(2)",
                               "cross_entropy()", 'text_csv("d.csv", "t", "l", 9, 4)'))
    file = specs(tmp_path) / "d.csv"
    file.write_text("t,l\n")
    assert "has a header line but no rows" in stops_naming(module, file)


# --- the standard files, damaged ------------------------------------------------------------


def test_mnist_files_that_disagree_or_are_damaged_are_named(tmp_path, spec_model, loader):
    module = loader(spec_model("image: float[28, 28, 1]", CNN, "cross_entropy()",
                               'mnist("m.npz")'))
    arrays = write_mnist_npz(specs(tmp_path) / "m.npz")
    np.savez(specs(tmp_path) / "m.npz", **{**arrays, "y_train": arrays["y_train"][:5]})
    message = stops_naming(module, tmp_path / "specs" / "m.npz")
    assert message.endswith(": every array of features and labels must have one row per sample "
                            "(got [20, 5] rows)")
    np.savez(specs(tmp_path) / "m.npz", **{**arrays, "x_test": np.zeros((10, 32, 32))})
    assert ": samples of shape [32, 32] cannot feed input `image`" in (
        stops_naming(module, tmp_path / "specs" / "m.npz"))

    module = loader(spec_model("image: float[28, 28, 1]", CNN, "cross_entropy()",
                               'mnist("idx")'))
    write_mnist_idx(specs(tmp_path) / "idx", gzipped=False)
    labels = tmp_path / "specs" / "idx" / "train-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-3])  # fewer labels than the header says
    assert stops_naming(module, labels).endswith("is not an IDX file of unsigned bytes")
    labels.write_bytes(b"\0\0")
    assert stops_naming(module, labels).endswith("is not an IDX file of unsigned bytes")
    labels.unlink()
    gzipped = labels.with_name(labels.name + ".gz")
    gzipped.write_bytes(b"\x1f\x8b\x08\x00garbage")
    assert "cannot be read" in stops_naming(module, gzipped)


def test_standard_image_files_holding_strings_are_refused(tmp_path, spec_model, loader):
    module = loader(spec_model("image: float[28, 28, 1]", CNN, "cross_entropy()",
                               'mnist("m.npz")'))
    arrays = write_mnist_npz(specs(tmp_path) / "m.npz")
    np.savez(specs(tmp_path) / "m.npz", **{**arrays, "x_train": arrays["x_train"].astype(str)})
    assert ": the images must be numbers, but the data holds <U3 values" in (
        stops_naming(module, tmp_path / "specs" / "m.npz"))


def test_imdb_reviews_that_are_not_lists_of_ranks_are_named(tmp_path, spec_model, loader):
    module = loader(spec_model("t: int[?]", "embedding(30, 2)\nglobal_avgpool1d()\ndense(2)",
                               "cross_entropy()", 'imdb("i.npz", 30, 8)'))
    file = specs(tmp_path) / "i.npz"
    np.savez(file, x_train=np.arange(3), y_train=np.zeros(3, int), x_test=np.arange(3),
             y_test=np.zeros(3, int))
    assert ": reviews must be lists of word ranks (got " in stops_naming(module, file)


def test_a_damaged_cifar10_batch_is_named(tmp_path, spec_model, loader):
    module = loader(spec_model("x: float[32, 32, 3]", CNN, "cross_entropy()", 'cifar10("c")'))
    write_cifar10(specs(tmp_path) / "c")
    batch = tmp_path / "specs" / "c" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:100])
    assert "is not a CIFAR-10 batch file" in stops_naming(module, batch)
    batch.write_bytes(pickle.dumps({b"labels": [1, 2]}))
    assert "is not a CIFAR-10 batch file (KeyError" in stops_naming(module, batch)


def test_a_damaged_image_is_named(tmp_path, spec_model, loader):
    module = loader(spec_model("x: float[4, 4, 3]", CNN.replace("10", "2"), "cross_entropy()",
                               'image_folder("pets", 4)'))
    write_image_folder(specs(tmp_path) / "pets")
    broken = tmp_path / "specs" / "pets" / "dog" / "1.png"
    broken.write_bytes(b"\x89PNG not really")
    assert f"cannot read image {broken.resolve()}" in stops_naming(module, broken.resolve())


# --- specc check, where the file is already there ------------------------------------------


@pytest.mark.parametrize(("arrays", "message"), [
    ({"x": ragged(), "y": np.zeros(3)},
     "npz array 'x' in {file} must hold numbers: object arrays are read only by unpickling, "
     "which can run code (expected bool, int or float values, got Python objects (dtype "
     "object))"),
    ({"x": np.array([["1", "2", "3"]] * 4), "y": np.zeros(4)},
     "npz array 'x' in {file} must hold numbers: strings are not converted, numeric ones "
     "included (expected bool, int or float values, got strings)"),
    ({"x": np.zeros((4, 3)), "y": np.array([b"a", b"b", b"a", b"b"])},
     "npz array 'y' in {file} must hold numbers: strings are not converted, numeric ones "
     "included (expected bool, int or float values, got byte strings)"),
])
def test_check_refuses_npz_arrays_that_are_not_numbers(tmp_path, spec_diagnostics, arrays,
                                                       message):
    file = specs(tmp_path) / "d.npz"
    np.savez(file, **arrays)
    errors = spec_diagnostics("x: float[3]", "dense(2)", "cross_entropy()", 'npz("d.npz")')
    assert errors == [message.format(file=file)]


@pytest.mark.parametrize(("input", "layers", "data", "make", "message"), [
    ("x: float[3]", "dense(2)", 'npz("d")', "folder",
     "{path} is a directory (expected an .npz file, got a directory)"),
    ("x: float[3]", "dense(2)", 'csv("d", "y")', "folder",
     "{path} is a directory (expected a CSV file, got a directory)"),
    ("t: int[4]", "embedding(9, 2)\nflatten()\ndense(2)", 'text_csv("d", "t", "l", 9, 4)',
     "folder", "{path} is a directory (expected a CSV file, got a directory)"),
    ("t: int[4]", "embedding(9, 2)\nflatten()\ndense(2)", 'imdb("d", 9, 4)', "folder",
     "{path} is a directory (expected Keras' imdb.npz file, got a directory)"),
    ("x: float[4, 4, 3]", CNN, 'image_folder("d", 4)', "file",
     "{path} is a file (expected a folder with one subfolder of images per class, got a file)"),
    ("x: float[32, 32, 3]", CNN, 'cifar10("d")', "file",
     "{path} is a file (expected the cifar-10-batches-py folder, got a file)"),
])
def test_check_names_a_folder_where_a_file_belongs(tmp_path, spec_diagnostics, input, layers,
                                                   data, make, message):
    path = specs(tmp_path) / "d"
    if make == "folder":
        path.mkdir()
    else:
        path.write_text("x")
    errors = spec_diagnostics(input, layers, "cross_entropy()", data)
    assert errors == [message.format(path=path)]
