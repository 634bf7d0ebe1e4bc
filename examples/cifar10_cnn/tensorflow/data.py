"""The data of `cifar10_cnn`: read, checked, split and prepared for the model.

train.py imports load_splits, and what --predict and the run directory use.
"""

import json
import math
import pickle
import zipfile
import zlib
from pathlib import Path

import numpy as np

# -----------------------------------------------------------------------------
# Data: cifar10(path="data/cifar-10-batches-py", validation=0.1)
# load_splits(seed) returns the train/val/test splits as (x, y) pairs ready for the model,
# and the preprocessing fitted on the training split, which predict needs in order to
# prepare new inputs the same way (prepare_inputs).

# Relative to this program's folder, so that it runs from anywhere; `--data PATH` replaces it.
DATA_PATH = "../../../specs/data/cifar-10-batches-py"
VALIDATION = 0.1  # fraction of the training data held out for validation
# What the model takes and is trained on, per sample (batch dimension left out, channels-last,
# None for a `?`): input name -> (shape, dtype); output name -> (shape, loss).
MODEL_INPUTS = {"image": ((32, 32, 3), "float32")}
MODEL_OUTPUTS = {"dense_2": ((10,), "cross_entropy")}
CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck"]
BATCHES = [f"data_batch_{number}" for number in range(1, 6)]


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


def data_location(data_path: str | None) -> Path:
    """Where the data is: `data_path` (the --data option) relative to the working directory,
    or else DATA_PATH relative to this program's folder."""
    if data_path is not None:
        return Path(data_path).expanduser().resolve()
    path = Path(DATA_PATH).expanduser()
    return path if path.is_absolute() else (Path(__file__).resolve().parent / path).resolve()


def read_dataset(path: Path) -> tuple[tuple, tuple]:
    """The (train, test) pairs of uint8 images [n, 32, 32, 3] and labels [n], from the
    batch files of CIFAR-10's python version (the cifar-10-batches-py folder)."""
    if path.is_file():
        raise DataError(f"{path} is a file (expected CIFAR-10's cifar-10-batches-py folder)")
    if (path / "cifar-10-batches-py").is_dir():  # the folder that holds the extracted one
        path = path / "cifar-10-batches-py"
    missing = [name for name in [*BATCHES, "test_batch"] if not (path / name).is_file()]
    if missing:
        raise DataError(f"CIFAR-10 not found at {path} (no {missing[0]}); download "
                        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz, extract it "
                        "and put its cifar-10-batches-py folder there, or pass --data PATH")
    batches = [read_batch(path / name) for name in BATCHES]
    train = (np.concatenate([images for images, _ in batches]),
             np.concatenate([labels for _, labels in batches]))
    return train, read_batch(path / "test_batch")


def read_batch(file: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file: a Python pickle (which can run code when loaded, so read only files
    from the official archive) holding 3072-byte image rows and their labels."""
    try:
        with file.open("rb") as stream:
            batch = pickle.load(stream, encoding="bytes")
        # A row holds the 1024 red values, then the green, then the blue: make it channels-last.
        images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError,
            ValueError) as error:
        raise DataError(f"{file} is not a CIFAR-10 batch file ({type(error).__name__}: "
                        f"{error})") from None
    return images.transpose(0, 2, 3, 1), labels


def prepare_inputs(images: np.ndarray, preprocessing: dict) -> np.ndarray:
    """uint8 images [n, 32, 32, 3] -> float32 in [0, 1], shaped for input `image`."""
    pixels = require_numbers(images, "the images").astype(np.float32)
    return to_model_shape(pixels / 255.0, "image")


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


def split_indices(count: int, rng: np.random.Generator, validation: float, test: float,
                  classes: np.ndarray) -> dict[str, np.ndarray]:
    """Sample indices, stratified by `classes` (one label per sample): the test part first,
    then the validation part, then the rest to train on, each part holding every class in
    the proportion the whole data does (within one sample). A fraction above 0 holds out at
    least one sample; empty parts are left out."""
    n_test, n_val = held_out(count, test), held_out(count, validation)
    if n_test + n_val >= count:
        raise DataError(f"{count} samples are too few to hold out {n_val} for validation and "
                        f"{n_test} for test and still train on some")
    order = stratified_order(classes, rng)
    parts = {"train": order[n_test + n_val:]}
    if n_val:
        parts["val"] = order[n_test:n_test + n_val]
    if n_test:
        parts["test"] = order[:n_test]
    return parts


def stratified_order(classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The samples in an order whose every prefix holds each class in proportion: each class
    is shuffled, its i-th sample of n placed at (i + u) / n (u uniform in [0, 1), which
    interleaves the classes at random), and the samples sorted by place."""
    _, strata = np.unique(classes.reshape(len(classes), -1), axis=0, return_inverse=True)
    strata = strata.reshape(-1)
    place = np.empty(len(classes))
    for stratum in range(strata.max() + 1):
        members = rng.permutation(np.flatnonzero(strata == stratum))
        place[members] = (np.arange(len(members)) + rng.random(len(members))) / len(members)
    return np.argsort(place, kind="stable")


def split_parts(count: int, labels, seed: int) -> dict[str, np.ndarray]:
    """The indices of each part of the training file (split_indices), for `seed`,
    stratified by the classes of output `dense_2`."""
    classes = require_numbers(labels, "the labels of output `dense_2`")
    return split_indices(count, np.random.default_rng(seed), VALIDATION, 0.0, classes)


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
    path = data_location(data_path)
    (features, labels), (test_features, test_labels) = read_dataset(path)
    class_names = CLASS_NAMES
    # What goes wrong from here on is in the data itself: the message names its origin. NaN and
    # infinite values are reported by check_split, so NumPy's warnings on meeting them are not.
    try:
        with np.errstate(invalid="ignore", over="ignore"):
            count = sample_count(features, labels)
            sample_count(test_features, test_labels)
            parts = split_parts(count, labels, seed)
            preprocessing = {"class_names": class_names}
            splits = {
                name: (prepare_inputs(take(features, index), preprocessing),
                       prepare_labels(take(labels, index)))
                for name, index in parts.items()
            }
            splits["test"] = (prepare_inputs(test_features, preprocessing),
                              prepare_labels(test_labels))
            for name, (x, y) in splits.items():
                check_split(name, x, y)
    except DataError as error:
        raise DataError(f"{path}: {error}") from None
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
    A classifier's output also gives its class ids, `<y or name>_class_id` (int64), and,
    where the data names every class, their names, `<y or name>_class_name`.
    """
    arrays = {}
    for name, values in outputs.items():
        key = "y" if len(outputs) == 1 else name
        arrays[key] = values
        loss = MODEL_OUTPUTS[name][1] if name in MODEL_OUTPUTS else None
        if loss == "cross_entropy":
            ids, classes = values.argmax(axis=-1), values.shape[-1]
        else:
            continue
        arrays[f"{key}_class_id"] = ids
        class_names = preprocessing["class_names"]
        if len(class_names) >= classes:
            arrays[f"{key}_class_name"] = np.array(class_names)[ids]
    return arrays


def save_preprocessing(preprocessing: dict, path: str | Path) -> None:
    """Write the fitted preprocessing (JSON) next to the trained weights, for predict."""
    Path(path).write_text(json.dumps(preprocessing), encoding="utf-8")


def load_preprocessing(path: str | Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read {path}, which training writes ({error})") from None
