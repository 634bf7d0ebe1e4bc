"""What the loader gives --predict: inputs read from an .npz file and prepared as in training
(as the source reads them, or already in the input's shape; images as files or arrays), and
the arrays written back (outputs, class ids, class names)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data_files import write_image_folder


def test_standardized_inputs_come_as_rows_or_in_the_inputs_shape(spec_model, loader):
    from sklearn.datasets import load_digits

    module = loader(spec_model("image: float[8, 8, 1]", "flatten()\ndense(10)",
                               "cross_entropy()", "digits()"))
    _, preprocessing = module["load_splits"](0)
    rows = load_digits().data[:5]
    from_rows = module["prepare_inputs"](rows, preprocessing)
    from_images = module["prepare_inputs"](rows.reshape(5, 8, 8, 1), preprocessing)
    assert from_rows.shape == (5, 8, 8, 1) and from_rows.dtype == np.float32
    np.testing.assert_array_equal(from_rows, from_images)
    with pytest.raises(module["DataError"], match=r"samples of shape \[60\] cannot be "
                       r"standardized \(expected 64 features per sample, as rows \[n, 64\] or "
                       r"shaped like the input, \[8, 8, 1\]\)"):
        module["prepare_inputs"](rows[:, :60], preprocessing)
    with pytest.raises(module["DataError"], match="the features must be numbers"):
        module["prepare_inputs"](rows.astype(str), preprocessing)


def test_read_predict_inputs_takes_x_or_the_inputs_name_and_names_the_file(
        tmp_path, spec_model, loader):
    module = loader(spec_model("image: float[8, 8, 1]", "flatten()\ndense(10)",
                               "cross_entropy()", "digits()"))
    _, preprocessing = module["load_splits"](0)
    read = module["read_predict_inputs"]
    np.savez(tmp_path / "x.npz", x=np.zeros((3, 64)))
    np.savez(tmp_path / "named.npz", image=np.zeros((3, 8, 8, 1)))
    np.testing.assert_array_equal(read(tmp_path / "x.npz", preprocessing),
                                  read(tmp_path / "named.npz", preprocessing))
    np.savez(tmp_path / "other.npz", pixels=np.zeros((3, 64)))
    with pytest.raises(module["DataError"], match=r"other.npz has no array 'image' \(it holds "
                       r"'pixels'\)"):
        read(tmp_path / "other.npz", preprocessing)
    np.savez(tmp_path / "wrong.npz", x=np.zeros((3, 63)))
    with pytest.raises(module["DataError"]) as error:
        read(tmp_path / "wrong.npz", preprocessing)
    assert str(error.value).startswith(f"{tmp_path / 'wrong.npz'}: samples of shape [63]")
    with pytest.raises(module["DataError"], match=r"is a directory \(expected an .npz file of "
                       r"inputs\)"):
        read(tmp_path, preprocessing)
    with pytest.raises(module["DataError"], match=r"none.npz not found \(--predict takes"):
        read(tmp_path / "none.npz", preprocessing)


def test_texts_to_predict_must_be_strings(tmp_path, spec_model, loader):
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "t.csv").write_text("text,label\ngood film,1\nbad plot,0\n")
    module = loader(spec_model("t: int[4]", "embedding(9, 2)\nflatten()\ndense(2)",
                               "cross_entropy()", 'text_csv("t.csv", "text", "label", 9, 4)'))
    _, preprocessing = module["load_splits"](0)
    assert module["prepare_inputs"](np.array(["good plot"]), preprocessing).shape == (1, 4)
    with pytest.raises(module["DataError"], match=r"texts must be strings \(got int64 values\)"):
        module["prepare_inputs"](np.array([3, 4]), preprocessing)


def test_inputs_to_predict_are_checked_as_training_data_is(tmp_path, spec_model, loader):
    module = loader(spec_model("t: int[3]", "embedding(10, 2)\nflatten()\ndense(2)",
                               "cross_entropy()", "synthetic(8)"))
    _, preprocessing = module["load_splits"](0)
    np.savez(tmp_path / "ids.npz", x=np.array([[0, 1, 10]]))
    with pytest.raises(module["DataError"]) as error:
        module["read_predict_inputs"](tmp_path / "ids.npz", preprocessing)
    assert str(error.value) == (f"{tmp_path / 'ids.npz'}: the data to predict has token ids "
                                "from 0 to 10 in input `t` (expected 0 to 9, the vocabulary "
                                "of the embedding that reads them)")
    module = loader(spec_model("x: float[3]", "dense(2)", "cross_entropy()", "synthetic(8)"),
                    tmp_path / "float_program")
    np.savez(tmp_path / "empty.npz", x=np.zeros((0, 3)))
    with pytest.raises(module["DataError"], match="empty.npz: the data holds no samples"):
        module["read_predict_inputs"](tmp_path / "empty.npz", {"class_names": []})
    np.savez(tmp_path / "nan.npz", x=np.array([[0.0, np.nan, 1.0]]))
    with pytest.raises(module["DataError"], match="the data to predict has NaN or infinite "
                       "values in input `x`"):
        module["read_predict_inputs"](tmp_path / "nan.npz", {"class_names": []})


def test_images_come_as_files_uint8_arrays_or_prepared_floats(tmp_path, spec_model, loader):
    from PIL import Image

    write_image_folder(tmp_path / "specs" / "pets", size=(12, 10))
    module = loader(spec_model("image: float[6, 4, 3]", "flatten()\ndense(2)",
                               "cross_entropy()", 'image_folder("pets", [6, 4])'))
    splits, preprocessing = module["load_splits"](0)
    prepare = module["prepare_inputs"]
    files = sorted(str(file) for file in (tmp_path / "specs" / "pets").glob("*/*.png"))
    pixels = np.stack([np.asarray(Image.open(file)) for file in files])  # [6, 10, 12, 3]
    from_files = prepare(files, preprocessing)
    assert from_files.shape == (6, 6, 4, 3) and from_files.dtype == np.float32
    np.testing.assert_array_equal(prepare(pixels, preprocessing), from_files)
    np.testing.assert_array_equal(prepare(from_files, preprocessing), from_files)
    np.testing.assert_array_equal(np.sort(from_files.ravel()),
                                  np.sort(splits["train"][0].ravel()))  # as training read them
    gray = pixels.mean(axis=-1).astype(np.uint8)
    assert prepare(gray, preprocessing).shape == (6, 6, 4, 3)  # [n, h, w]: grayscale
    assert prepare(gray[..., None], preprocessing).shape == (6, 6, 4, 3)
    with pytest.raises(module["DataError"], match=r"images other than uint8 pixels must be "
                       r"prepared ones, in \[0, 1\] \(got float64 values from 255 to 255\)"):
        prepare(np.full((2, 6, 4, 3), 255.0), preprocessing)
    with pytest.raises(module["DataError"], match=r"\(got int64 values from 0 to 200\)"):
        prepare(np.full((2, 6, 4, 3), 200) * np.arange(2)[:, None, None, None], preprocessing)
    with pytest.raises(module["DataError"], match=r"uint8 images of shape \[10, 12, 2\] cannot "
                       "be read"):
        prepare(pixels[..., :2], preprocessing)
    with pytest.raises(module["DataError"], match="cannot read image"):
        prepare([str(tmp_path / "specs" / "pets" / "cat" / "notes.txt")], preprocessing)


CLASSIFIER_GRAPH = """
    model m {{
        input x: float[4]
        graph {{
            h = x -> dense(8)
            kind = h -> dense(3)
            flag = h -> dense(1{activation})
            size = h -> dense(2)
        }}
        output kind, flag, size
        loss kind: cross_entropy(), flag: binary_cross_entropy(from_logits={logits}), size: mse()
        data synthetic(20)
    }}
"""


@pytest.mark.parametrize(("activation", "logits", "threshold"), [
    ("", "true", 0.0), (", activation=sigmoid", "false", 0.5)])
def test_predictions_add_class_ids_to_each_classifier_output(spec_text, loader, activation,
                                                             logits, threshold):
    result = spec_text(CLASSIFIER_GRAPH.format(activation=activation, logits=logits))
    module = loader(result.program.models[0])
    kind = np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0]], dtype=np.float32)
    flag = np.array([[threshold - 0.01], [threshold + 0.01]], dtype=np.float32)
    size = np.zeros((2, 2), dtype=np.float32)
    arrays = module["prediction_arrays"]({"kind": kind, "flag": flag, "size": size},
                                         {"class_names": []})
    assert list(arrays) == ["kind", "kind_class_id", "flag", "flag_class_id", "size"]
    assert arrays["kind_class_id"].tolist() == [1, 0]
    assert arrays["flag_class_id"].tolist() == [[0], [1]]
    assert arrays["flag_class_id"].dtype == np.int64


def test_class_names_are_written_where_the_data_names_every_class(spec_model, loader):
    module = loader(spec_model("x: float[4]", "dense(3)", "cross_entropy()", "iris()"))
    values = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 5.0]], dtype=np.float32)
    names = {"class_names": ["setosa", "versicolor", "virginica"]}
    arrays = module["prediction_arrays"]({"dense_1": values}, names)
    assert list(arrays) == ["y", "y_class_id", "y_class_name"]
    assert arrays["y_class_name"].tolist() == ["versicolor", "virginica"]
    wider = module["prediction_arrays"]({"dense_1": np.zeros((1, 4))}, names)
    assert list(wider) == ["y", "y_class_id"]  # a fourth unit has no name


def test_regression_predictions_are_the_outputs_alone(spec_model, loader, tmp_path: Path):
    module = loader(spec_model("x: float[10]", "dense(1)", "mse()", "diabetes()"))
    arrays = module["prediction_arrays"]({"dense_1": np.zeros((3, 1))}, {"class_names": []})
    assert list(arrays) == ["y"]
