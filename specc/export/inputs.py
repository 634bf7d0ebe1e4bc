"""What an exported model takes: raw samples of the run's test split, and the arithmetic that
turns them into the model's inputs (NumPy only; run inside the export's child process).

The generated data.py is the reference for preprocessing: its `prepare_inputs` is what
training and `--predict` apply. An exported graph takes raw samples, as the data source
yields them, when that preparation is arithmetic a graph can hold: standardization with the
fitted mean and standard deviation, scaling of uint8 pixels to [0, 1], the cast and the
reshape from the raw sample to the input's shape. Which of these a program applies is not
guessed: each candidate is computed here with NumPy and kept only when it equals
`prepare_inputs` exactly on the whole test split. Where none does (text, which is tokenized;
image files, which are decoded and resized), the graph takes the prepared inputs and the
metadata says how to make them (`tokenizer`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType

import numpy as np

PIXEL_SCALE = 255.0  # data.py's `pixels / 255.0`


class ExportDataError(Exception):
    """The run's data cannot be read again, or holds no held-out split to verify on."""


@dataclass(frozen=True)
class InputPlan:
    """How one graph input becomes the model's input: cast to `model_dtype`, then standardized
    over the sample's flattened values (`mean`, `std`) or divided by `divide_by`, then
    reshaped to `model_shape`. `raw_shape` and `raw_dtype` are what the graph takes per sample
    (None for an axis of any length)."""

    name: str
    raw_shape: tuple[int | None, ...]
    raw_dtype: str
    model_shape: tuple[int | None, ...]
    model_dtype: str
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    divide_by: float | None = None
    takes_raw: bool = True  # False: the graph takes inputs prepared outside it (text, files)

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """This plan in NumPy, as data.py computes it (the graph does the same in its
        framework)."""
        x = np.asarray(raw).astype(self.model_dtype, copy=False)
        if self.mean is not None:
            x = (x.reshape(len(x), self.mean.size) - self.mean) / self.std
        elif self.divide_by is not None:
            x = x / self.divide_by
        if None not in self.model_shape:
            x = x.reshape(len(x), *self.model_shape)
        return x


@dataclass(frozen=True)
class HeldOut:
    """A held-out split: raw samples (one array per input, or None where they are not numbers),
    the model's inputs prepared from them by data.py, and the labels, one array per output
    with a loss."""

    split: str
    raw: list[np.ndarray | None]
    prepared: list[np.ndarray]
    labels: list[np.ndarray]


def held_out_split(data: ModuleType, seed: int, data_path: str | None) -> HeldOut:
    """The test split of the run (its validation split when it has none, else its training
    split), read again as data.py's `load_splits(seed)` reads it (from its own file, when the
    data section names one)."""
    args = (data.data_location(data_path),) if hasattr(data, "data_location") else ()
    if not args and data_path is not None:
        raise ExportDataError("the run's data source reads no file, so --data does not apply")
    dataset = data.read_dataset(*args)
    files = getattr(data, "HELD_OUT_FILES", {})  # splits read from files of their own
    split = "test" if "test" in files else "val" if "val" in files and not data.TEST else None
    if split is not None:
        raw_x, raw_y, names = data.read_dataset(data.program_relative(files[split]))
        if hasattr(data, "as_training_classes"):  # csv class names, numbered as the data's
            raw_y = data.as_training_classes(raw_y, names, dataset[2])
    elif hasattr(data, "TEST"):  # the program splits the data itself, as load_splits does
        features, labels, _ = dataset
        count = data.sample_count(features, labels)
        parts = data.split_parts(count, labels, seed)
        split = next(name for name in ("test", "val", "train") if name in parts)
        raw_x, raw_y = data.take(features, parts[split]), data.take(labels, parts[split])
    else:  # the source's own test split (mnist, cifar10, imdb)
        split = "test"
        raw_x, raw_y = dataset[1]
    return HeldOut(split, list(data.as_tuple(raw_x)), [], list(data.as_tuple(raw_y)))


def with_prepared(data: ModuleType, held: HeldOut, preprocessing: dict) -> HeldOut:
    """`held` with its prepared inputs and labels, as training prepared them."""
    raw = data.single_or_tuple(held.raw)
    prepared = data.as_tuple(data.prepare_inputs(raw, preprocessing))
    labels = data.as_tuple(data.prepare_labels(data.single_or_tuple(held.labels)))
    numeric = [part if np.asarray(part).dtype.kind in "biuf" else None for part in held.raw]
    return HeldOut(held.split, numeric, list(prepared), list(labels))


def input_plans(data: ModuleType, held: HeldOut, preprocessing: dict) -> list[InputPlan]:
    """The graph's inputs: raw samples through the first candidate preparation that equals
    data.py's on every held-out sample; else the prepared inputs themselves."""
    for plans in candidates(data, held, preprocessing):
        if all(raw is not None and np.array_equal(plan.apply(raw), prepared)
               for plan, raw, prepared in zip(plans, held.raw, held.prepared, strict=True)):
            return plans
    return [InputPlan(name, shape, dtype, shape, dtype, takes_raw=False)
            for name, (shape, dtype) in model_inputs(data).items()]


def model_inputs(data: ModuleType) -> dict[str, tuple[tuple[int | None, ...], str]]:
    """data.py's MODEL_INPUTS: input name -> (per-sample shape, dtype), in input order."""
    return {name: (tuple(shape), dtype) for name, (shape, dtype) in data.MODEL_INPUTS.items()}


def candidates(data: ModuleType, held: HeldOut, preprocessing: dict):
    """Whole-model preparations to try, most specific first."""
    inputs = model_inputs(data)
    if any(raw is None for raw in held.raw):
        return
    raw_shapes = [sample_shape(raw, shape) for raw, (shape, _) in zip(held.raw, inputs.values(),
                                                                       strict=True)]
    plain = [InputPlan(name, raw_shape, graph_dtype(raw), shape, dtype)
             for (name, (shape, dtype)), raw, raw_shape
             in zip(inputs.items(), held.raw, raw_shapes, strict=True)]
    if len(plain) == 1 and "mean" in preprocessing and "std" in preprocessing:
        only = plain[0]
        yield [InputPlan(only.name, only.raw_shape, only.raw_dtype, only.model_shape,
                         only.model_dtype,
                         mean=np.asarray(preprocessing["mean"], dtype=np.float32),
                         std=np.asarray(preprocessing["std"], dtype=np.float32))]
    if any(plan.raw_dtype == "uint8" and plan.model_dtype == "float32" for plan in plain):
        yield [InputPlan(plan.name, plan.raw_shape, plan.raw_dtype, plan.model_shape,
                         plan.model_dtype, divide_by=PIXEL_SCALE) for plan in plain]
    yield plain


def graph_dtype(raw: np.ndarray) -> str:
    """The dtype a graph input takes raw samples in: theirs, except that float64 values come
    in as float32, to which data.py casts them before any arithmetic."""
    return "float32" if raw.dtype == np.float64 else str(raw.dtype)


def sample_shape(raw: np.ndarray, model_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
    """The per-sample shape a graph input takes: the raw samples', with the model's `?` axes
    left free (a raw sample of another rank is reshaped, so it has no `?`)."""
    shape = tuple(raw.shape[1:])
    if len(shape) == len(model_shape):
        return tuple(None if want is None else got
                     for want, got in zip(model_shape, shape, strict=True))
    if None in model_shape or math.prod(shape) != math.prod(model_shape):
        return tuple(model_shape)
    return shape
