"""The data of `linear_regression`: read, checked, split and prepared for the model.

train.py imports load_splits, and what --predict and the run directory use.
"""

import json
import math
import zipfile
import zlib
from pathlib import Path

import numpy as np
from sklearn.datasets import load_diabetes

# -----------------------------------------------------------------------------
# Data: diabetes(validation=0.1, test=0.2)
# load_splits(seed) returns the train/val/test splits as (x, y) pairs ready for the model,
# and the preprocessing fitted on the training split, which predict needs in order to
# prepare new inputs the same way (prepare_inputs).

VALIDATION = 0.1  # fraction of the training data held out for validation
TEST = 0.2  # fraction of the data held out for the final evaluation
# What the model takes and is trained on, per sample (batch dimension left out, channels-last,
# None for a `?`): input name -> (shape, dtype); output name -> (shape, loss).
MODEL_INPUTS = {"features": ((10,), "float32")}
MODEL_OUTPUTS = {"dense_1": ((1,), "mse")}


class DataError(Exception):
    """The data is missing or does not fit the model; the message says what to do."""


def require_file(path: Path, expected: str, missing: str) -> None:
    """Stop unless `path` is a file: a folder there is named as such, and `missing` is the
    message for nothing there at all."""
    if path.is_dir():
        raise DataError(f"{path} is a directory (expected {expected})")
    if not path.is_file():
        raise DataError(missing)


def open_npz(path: Path, allow_pickle: bool = False) -> np.lib.npyio.NpzFile:
    """An .npz archive, opened for reading its arrays by name. Object arrays (lists of
    varying length) are read only with allow_pickle, since unpickling can run code."""
    if not zipfile.is_zipfile(path):  # np.load would try unpickling anything else
        raise DataError(f"{path} is not an .npz file (expected a zip archive of .npy arrays, "
                        "as np.savez writes)")
    try:
        return np.load(path, allow_pickle=allow_pickle)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path} is not a readable .npz file ({error})") from None


def read_arrays(archive: np.lib.npyio.NpzFile, path: Path, names: list[str]) -> list[np.ndarray]:
    """The arrays `names` of an open .npz archive (read from `path`), each with one row per
    sample."""
    missing = [name for name in names if name not in archive.files]
    if missing:
        raise DataError(f"{path} has no array {missing[0]!r} (it holds "
                        f"{', '.join(map(repr, archive.files)) or 'no arrays'})")
    arrays = []
    for name in names:
        try:
            if not archive.allow_pickle and stored_dtype(archive, name).hasobject:
                raise DataError(f"{path}: array {name!r} holds Python objects (dtype object, "
                                "such as lists of varying length), which are read only by "
                                "unpickling; save it as an array of numbers")
            array = archive[name]
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
            raise DataError(f"{path}: array {name!r} cannot be read ({error})") from None
        if array.ndim == 0:
            raise DataError(f"{path}: array {name!r} is a single value (expected one row per "
                            "sample)")
        arrays.append(array)
    return arrays


def stored_dtype(archive: np.lib.npyio.NpzFile, name: str) -> np.dtype:
    """The dtype an array of an .npz archive was saved with, read from its header alone."""
    member = f"{name}.npy" if f"{name}.npy" in archive.zip.namelist() else name
    with archive.zip.open(member) as stream:
        version = np.lib.format.read_magic(stream)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        return read_header(stream)[2]


def read_dataset() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """442 patients, 10 measurements each, and their disease progression a year later,
    bundled with scikit-learn: features, labels and class names."""
    dataset = load_diabetes()
    names = []  # a continuous target has no classes
    return dataset.data.astype(np.float32), dataset.target, names


def fit_preprocessing(features: np.ndarray) -> dict:
    """Each feature's mean and standard deviation on the training split, to standardize with
    (constant features, whose deviation is 0, are only centered)."""
    deviation = features.std(axis=0)
    return {"mean": features.mean(axis=0).tolist(),
            "std": np.where(deviation > 0, deviation, 1.0).tolist()}


def prepare_inputs(features, preprocessing: dict) -> np.ndarray:
    """Feature rows [n, features], or samples in the shape of input `features` (as many
    values), -> standardized float32 samples for that input."""
    mean = np.asarray(preprocessing["mean"], dtype=np.float32)
    std = np.asarray(preprocessing["std"], dtype=np.float32)
    features = require_numbers(features, "the features").astype(np.float32, copy=False)
    if features.ndim < 2 or math.prod(features.shape[1:]) != mean.size:
        shape = MODEL_INPUTS["features"][0]
        raise DataError(f"samples of shape {list(features.shape[1:])} cannot be standardized "
                        f"(expected {mean.size} features per sample, as rows [n, {mean.size}] "
                        f"or shaped like the input, {list(shape)})")
    rows = features.reshape(len(features), mean.size)
    return to_model_shape((rows - mean) / std, "features")


def to_model_shape(samples: np.ndarray, input_name: str) -> np.ndarray:
    """Samples in the dtype and per-sample shape of a model input. Samples with as many values
    as the input are reshaped to it (64 values feed [8, 8, 1]); a `?` takes the data's size."""
    shape, dtype = MODEL_INPUTS[input_name]
    samples = require_numbers(samples, f"the samples of input `{input_name}`")
    if dtype == "int64" and samples.dtype.kind not in "iub":
        raise DataError(f"input `{input_name}` takes int token ids, but the data holds "
                        f"{samples.dtype} values")
    sample = samples.shape[1:]
    if None in shape:
        fits = len(sample) == len(shape) and all(
            want is None or want == got for want, got in zip(shape, sample, strict=True))
    else:
        fits = math.prod(sample) == math.prod(shape)
    if not fits:
        raise DataError(f"samples of shape {list(sample)} cannot feed input `{input_name}` of "
                        f"shape {list(shape)} (per sample; None is a `?`)")
    if None not in shape:
        samples = samples.reshape(len(samples), *shape)
    return samples.astype(dtype, copy=False)


def require_numbers(array, what: str) -> np.ndarray:
    """`array` as a NumPy array of bools, ints or floats. Strings are refused, numeric ones
    too: converting them would hide data saved with the wrong dtype."""
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise DataError(f"{what} must be numbers, but the data holds {array.dtype} values "
                        "(save them with a numeric dtype, such as float32 or int64)")
    return array


def prepare_labels(labels):
    """Labels as each output's loss takes them: int64 class ids for cross_entropy (one per
    sample, or per position when the output is a sequence), float32 shaped like the output
    for the other losses. One array per output; a tuple when there are several."""
    prepared = []
    for (name, (shape, loss)), part in zip(MODEL_OUTPUTS.items(), as_tuple(labels), strict=True):
        part = require_numbers(part, f"the labels of output `{name}`")
        if loss == "cross_entropy":
            if part.dtype.kind == "f" and not (np.isfinite(part).all()
                                               and np.array_equal(part, np.round(part))):
                raise DataError(f"labels of output `{name}` must be integer class ids for "
                                "cross_entropy (got fractional, NaN or infinite values)")
            label_shape, dtype = shape[:-1], np.int64  # the output's last axis is the classes
        else:
            label_shape, dtype = shape, np.float32
        if None not in label_shape:
            if math.prod(part.shape[1:]) != math.prod(label_shape):
                one_hot = loss == "cross_entropy" and part.shape[1:] == tuple(shape)
                hint = (" (it takes class ids, not one-hot rows: y.argmax(axis=-1))" if one_hot
                        else "")
                raise DataError(f"labels of shape {list(part.shape[1:])} per sample cannot "
                                f"train output `{name}` of shape {list(shape)} with {loss}{hint}")
            part = part.reshape(len(part), *label_shape)
        prepared.append(part.astype(dtype))
    return single_or_tuple(prepared)


def check_split(split: str, x, y) -> None:
    """Stop before training on data the model cannot use: NaN or infinite values,
    class ids outside an output's units."""
    check_inputs(f"the {split} split", x)
    for (name, (shape, loss)), part in zip(MODEL_OUTPUTS.items(), as_tuple(y), strict=True):
        if loss == "cross_entropy":
            units = shape[-1]
            if part.size and (part.min() < 0 or part.max() >= units):
                raise DataError(f"the {split} split has class ids from {part.min()} to "
                                f"{part.max()} for output `{name}` (expected 0 to "
                                f"{units - 1}: the output has {units} units)")
        elif not np.isfinite(part).all():
            raise DataError(f"the {split} split has NaN or infinite labels for output `{name}`")
        elif loss == "binary_cross_entropy" and ((part < 0) | (part > 1)).any():
            raise DataError(f"the {split} split has labels outside [0, 1] for output `{name}` "
                            "(binary_cross_entropy takes 0/1 labels or probabilities)")


def check_inputs(what: str, x) -> None:
    """Stop on inputs the model cannot use: NaN or infinite values."""
    for (name, (_, dtype)), part in zip(MODEL_INPUTS.items(), as_tuple(x), strict=True):
        if dtype == "float32" and not np.isfinite(part).all():
            raise DataError(f"{what} has NaN or infinite values in input `{name}`")


def split_indices(count: int, rng: np.random.Generator, validation: float,
                  test: float) -> dict[str, np.ndarray]:
    """Shuffled sample indices: the test part first, then the validation part, then the rest
    to train on. A fraction above 0 holds out at least one sample; empty parts are left out."""
    n_test, n_val = held_out(count, test), held_out(count, validation)
    if n_test + n_val >= count:
        raise DataError(f"{count} samples are too few to hold out {n_val} for validation and "
                        f"{n_test} for test and still train on some")
    order = rng.permutation(count)
    parts = {"train": order[n_test + n_val:]}
    if n_val:
        parts["val"] = order[n_test:n_test + n_val]
    if n_test:
        parts["test"] = order[:n_test]
    return parts


def split_parts(count: int, labels, seed: int) -> dict[str, np.ndarray]:
    """The indices of each part of the data (split_indices), for `seed`."""
    return split_indices(count, np.random.default_rng(seed), VALIDATION, TEST)


def sample_count(features, labels) -> int:
    """How many samples the data holds: every array of features and labels has one row each."""
    counts = [len(part) for part in (*as_tuple(features), *as_tuple(labels))]
    if len(set(counts)) > 1:
        raise DataError(f"every array of features and labels must have one row per sample "
                        f"(got {counts} rows)")
    if not counts[0]:
        raise DataError("the data holds no samples")
    return counts[0]


def held_out(count: int, fraction: float) -> int:
    return 0 if fraction == 0 else max(1, round(fraction * count))


def take(data, index: np.ndarray):
    """Rows `index` of an array, or of each array of a tuple (one per input or output)."""
    if isinstance(data, tuple):
        return tuple(part[index] for part in data)
    return data[index]


def as_tuple(data) -> tuple:
    return data if isinstance(data, tuple) else (data,)


def single_or_tuple(parts: list):
    """One array for a model with one input (or output), a tuple of arrays for several."""
    return parts[0] if len(parts) == 1 else tuple(parts)


def load_splits(seed: int, data_path: str | None = None) -> tuple[dict[str, tuple], dict]:
    """The data split into "train" (always), "val" and "test" (when they hold samples), each
    an (x, y) pair for the model, and the preprocessing fitted on the training split.

    Deterministic for a given `seed`. `data_path` (from --data) replaces DATA_PATH.
    Raises DataError when the data is missing or does not fit the model.
    """
    if data_path is not None:
        raise DataError("diabetes() reads no file, so --data does not apply")
    features, labels, class_names = read_dataset()
    # What goes wrong from here on is in the data itself: the message names its origin. NaN and
    # infinite values are reported by check_split, so NumPy's warnings on meeting them are not.
    try:
        with np.errstate(invalid="ignore", over="ignore"):
            count = sample_count(features, labels)
            parts = split_parts(count, labels, seed)
            preprocessing = fit_preprocessing(take(features, parts["train"]))
            preprocessing["class_names"] = class_names
            splits = {
                name: (prepare_inputs(take(features, index), preprocessing),
                       prepare_labels(take(labels, index)))
                for name, index in parts.items()
            }
            for name, (x, y) in splits.items():
                check_split(name, x, y)
    except DataError as error:
        raise DataError("diabetes(validation=0.1, test=0.2): " + str(error)) from None
    return splits, preprocessing


def read_predict_inputs(path: str | Path, preprocessing: dict):
    """The model inputs in the .npz file `path` (--predict), prepared as the training data
    was. Array `x`, or one named after the input: what the data source reads (see
    prepare_inputs), or samples in the input's own shape."""
    path = Path(path)
    require_file(path, "an .npz file of inputs", f"{path} not found (--predict takes an .npz "
                 "file of inputs)")
    with open_npz(path) as archive:
        names = ["x"] if "x" in archive.files else list(MODEL_INPUTS)
        raw = read_arrays(archive, path, names)
    try:
        sample_count(single_or_tuple(raw), ())
        with np.errstate(invalid="ignore", over="ignore"):  # check_inputs reports NaN and inf
            inputs = prepare_inputs(single_or_tuple(raw), preprocessing)
        check_inputs("the data to predict", inputs)
    except DataError as error:
        raise DataError(f"{path}: {error}") from None
    return inputs


def prediction_arrays(outputs: dict[str, np.ndarray], preprocessing: dict) -> dict:
    """What --predict writes, from the model's outputs (name -> values, in output order): the
    values, as `y` for a model with one output, else under each output's name.
    """
    arrays = {}
    for name, values in outputs.items():
        key = "y" if len(outputs) == 1 else name
        arrays[key] = values
    return arrays


def save_preprocessing(preprocessing: dict, path: str | Path) -> None:
    """Write the fitted preprocessing (JSON) next to the trained weights, for predict."""
    Path(path).write_text(json.dumps(preprocessing), encoding="utf-8")


def load_preprocessing(path: str | Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read {path}, which training writes ({error})") from None
