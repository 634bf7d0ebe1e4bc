"""The data loader inside generated programs, shared by the PyTorch and TensorFlow backends.

`render_data_code(model, program_dir)` returns a `DataCode`: the import lines the code
needs, and top-level Python (NumPy only, plus scikit-learn for its bundled datasets and
Pillow for image_folder) that a backend template pastes into the generated program after
its imports. Only the code the model's source needs is emitted. What it defines:

    load_splits(seed, data_path=None) -> (splits, preprocessing)
        splits: {"train": (x, y), "val": (x, y), "test": (x, y)}; "val" and "test" only when
        they hold samples (mnist, fashion_mnist, cifar10 and imdb always have "test": their
        own test split). x: the model input's samples, float32 (or int64 token ids) numpy,
        batch first, channels-last, already in the input's shape; a tuple of arrays in
        input order for a model with several inputs. y: int64 class ids [n] for
        cross_entropy (one per position [n, T] for a sequence output); float32 shaped like
        the output [n, units] for binary_cross_entropy, mse, mae and huber; a tuple in
        output order for several outputs with a loss. Deterministic for a given seed.
        When the training loss is weighted (`train { class_weight }`, the data's `weight`),
        "train" is (x, y, weights): float32 [n], each sample's weight in the loss.
        preprocessing: a JSON-serializable dict fitted on the training split, always with
        "class_names" (a list, empty when the classes have no names); bundled tabular sets
        and csv add "mean" and "std" (features are standardized with them), text_csv adds
        "vocabulary" (word i has token id i + 2), class_weight adds "class_weight" (each
        class's weight, as fitted on the training split for `balanced`).
    prepare_inputs(raw, preprocessing) -> x
        What predict calls on new raw inputs so that they are prepared exactly as in
        training. raw is what the source reads: feature rows [n, d] (bundled sets, csv),
        uint8 images [n, 28, 28] / [n, 32, 32, 3] (mnist, fashion_mnist / cifar10), lists
        of word ranks (imdb), strings (text_csv), image file paths or image arrays
        (image_folder), arrays as stored (npz, synthetic); samples already in the input's
        shape are taken as well.
    read_predict_inputs(path, preprocessing) -> x
        --predict's inputs: the arrays of an .npz file (`x`, or one per input name) through
        prepare_inputs; a DataError names the file.
    prediction_arrays(outputs, preprocessing) -> {name: array}
        What --predict writes to predictions.npz: the outputs (name -> values) as `y` (one
        output) or by name, plus `<name>_class_id` and `<name>_class_name` for classifiers.
    save_preprocessing(preprocessing, path) / load_preprocessing(path)
        JSON; train.py saves it into the run folder, predict loads it from there.
    DataError
        Raised for missing files (the message names the resolved path and where to get the
        file), a folder where a file belongs (or the reverse), damaged files, arrays that are
        not numbers (strings are refused, not converted), and data that does not fit the
        model (wrong shapes, no samples, labels outside the output's units or [0, 1], token
        ids outside the embedding's vocabulary, NaN or infinite values). One line that names
        the file: train.py catches it, prints it and exits with status 1.
    DATA_PATH (only when `DataCode.reads_file`)
        The spec's path, written relative to `program_dir` (absolute paths stay absolute)
        and resolved at run time against the program's own folder. The runner's `--data
        PATH` (relative to the working directory) is passed as `load_splits(seed,
        data_path=args.data)`; do not assign DATA_PATH. Sources that read no file raise
        DataError when given a data_path.

    HELD_OUT_FILES, program_relative, read_held_out (only with `val_path` or `test_path`)
        The splits read from files of their own (split name -> path relative to
        `program_dir`, as DATA_PATH is), each read as the data file is, prepared with the
        training split's preprocessing; `--data` does not replace them. For csv
        classification, as_training_classes numbers their class names as the data file does.

Also defined, for the runner to read: VALIDATION, TEST, MODEL_INPUTS and MODEL_OUTPUTS
(name -> per-sample shape and dtype / loss), CLASS_NAMES for the standard sets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from specc import ir
from specc.backends.common import template_environment
from specc.backends.common.code import doc_text, lit
from specc.data_sources import COLOR_MODES, ImageFolder, Source, Synthetic, resolve_path
from specc.passes.data_check import labelled_outputs, token_vocab
from specc.passes.training_check import weighs_samples, weighted_classes

_ENVIRONMENT = template_environment(Path(__file__).parent / "templates")

# scikit-learn's bundled sets: loader function, what it holds, whether classes have names.
_BUNDLED: dict[str, tuple[str, str, bool]] = {
    "digits": ("load_digits", "1,797 8x8 images of handwritten digits as 64 pixel values", True),
    "iris": ("load_iris", "150 iris flowers, 4 measurements each, of 3 species", True),
    "breast_cancer": ("load_breast_cancer", "569 breast tumours, 30 measurements each, "
                      "malignant or benign", True),
    "diabetes": ("load_diabetes", "442 patients, 10 measurements each, and their disease "
                 "progression a year later", False),
}

# The template of each source (in templates/data/sources/) and the imports it adds.
_SOURCES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    # kind: (template, standard-library imports, third-party imports)
    **{kind: ("bundled", (), (f"from sklearn.datasets import {loader}",))
       for kind, (loader, _, _) in _BUNDLED.items()},
    "mnist": ("mnist", ("import gzip", "import struct"), ()),
    "fashion_mnist": ("mnist", ("import gzip", "import struct"), ()),
    "cifar10": ("cifar10", ("import pickle",), ()),
    "imdb": ("imdb", (), ()),
    "npz": ("npz", (), ()),
    "csv": ("csv", ("import csv",), ()),
    "text_csv": ("text_csv", ("import csv", "import re", "from collections import Counter"), ()),
    "image_folder": ("image_folder", (), ("from PIL import Image",)),
    "synthetic": ("synthetic", (), ()),
}
_COMMON_STDLIB = ("import json", "import math", "import zipfile", "import zlib",
                  "from pathlib import Path")
_COMMON_THIRD_PARTY = ("import numpy as np",)
# Sources whose preprocessing is fitted on the training split (see `fit_preprocessing`).
_FITTED = frozenset({*_BUNDLED, "csv", "text_csv"})

# The length a `?` dimension gets in synthetic data.
SYNTHETIC_SEQUENCE_LENGTH = Synthetic.sequence_length
# Token ids synthetic data draws for an int input that no embedding reads.
SYNTHETIC_TOKEN_LIMIT = 2


@dataclass(frozen=True)
class DataCode:
    """The loader code of one model, and what the program around it must provide."""

    stdlib_imports: tuple[str, ...]  # sorted as isort sorts them: `import x`, then `from`
    third_party_imports: tuple[str, ...]
    code: str  # top-level definitions; starts with a comment line, ends with a newline
    reads_file: bool  # whether DATA_PATH exists and `--data PATH` applies


def render_data_module(model: ir.Model, program_dir: str | Path) -> str:
    """The source of data.py, the program's data loader, for a program written to
    `program_dir`: a docstring, the imports the loader needs, then the loader."""
    data = render_data_code(model, program_dir)
    lines = [
        f'"""The data of `{doc_text(model.name, 60)}`: read, checked, split and prepared for '
        "the model.",
        "",
        "train.py imports load_splits, and what --predict and the run directory use.",
        '"""',
        "",
        *data.stdlib_imports,
        "",
        *data.third_party_imports,
        "",
        "",
    ]
    return "\n".join(lines) + data.code


def render_data_code(model: ir.Model, program_dir: str | Path) -> DataCode:
    """The loader of `model`'s data section for a program written to `program_dir`.
    The model must have passed the data check (`specc.passes.data_check`)."""
    if model.data is None:
        raise ValueError(f"model `{model.name}` has no data section to generate a loader for")
    source = model.data.source
    assert isinstance(source, Source)
    template, stdlib, third_party = _SOURCES[source.kind]
    context = _context(model, source, Path(program_dir))
    source_code = _ENVIRONMENT.get_template(f"data/sources/{template}.py.j2").make_module(context)
    code = _ENVIRONMENT.get_template("data/loader.py.j2").render(
        **context, source_code=source_code)
    return DataCode(stdlib_imports=_isort((*_COMMON_STDLIB, *stdlib)),
                    third_party_imports=_isort((*_COMMON_THIRD_PARTY, *third_party)),
                    code=code, reads_file=source.reads_file)


def _context(model: ir.Model, source: Source, program_dir: Path) -> dict[str, object]:
    inputs = model.graph.inputs
    outputs = labelled_outputs(model)
    token_limits = {}
    for value in inputs:
        if value.dtype == "int64":
            limit = token_vocab(model.graph, value.id)
            if limit is None and source.kind == "synthetic":
                limit = SYNTHETIC_TOKEN_LIMIT
            if limit is not None:
                token_limits[value.label] = limit
    context: dict[str, object] = {
        "source": source,
        "call": _call(source),
        "reads_file": source.reads_file,
        "fixed_test_split": source.fixed_test_split,
        "fits_preprocessing": source.kind in _FITTED,
        "model_inputs": {v.label: (v.shape, v.dtype) for v in inputs},
        "model_outputs": {v.label: (v.shape, loss.kind) for v, loss in outputs},
        "token_limits": token_limits,
        "input_name": inputs[0].label,
        "classification": any(loss.task != "values" for _, loss in outputs),
        # Where a binary classifier's output values turn into class 1: logits (and hinge
        # scores) above 0, probabilities above 0.5.
        "binary_thresholds": {value.label: 0.0 if loss.from_logits else 0.5  # type: ignore[attr-defined]
                              for value, loss in outputs if loss.task == "binary"},
        # the loss kinds whose labels are rows over the output's last axis, and which forms
        # of labels the loader checks
        "distribution_losses": tuple(sorted({loss.kind for _, loss in outputs
                                             if loss.labels == "distributions"})),
        "label_forms": sorted({loss.labels for _, loss in outputs}),
        "loss_kinds": sorted({loss.kind for _, loss in outputs}),
        "pickled_inputs": source.kind == "imdb",
        "reads_npz": source.kind in ("mnist", "fashion_mnist", "imdb", "npz"),
        "sequence_length": SYNTHETIC_SEQUENCE_LENGTH,
        "stratify_on": stratify_on(model),
        "weighs_samples": weighs_samples(model),
        "class_weight": model.train.class_weight,
        "weighted_classes": weighted_classes(model),
        # how a class weight finds its class: by class id (cross_entropy), or by the rounded
        # 0/1 label (binary_cross_entropy), as Keras's class_weight does
        "class_axis": "ids" if outputs and outputs[0][1].kind == "cross_entropy" else "rounded",
        "data_weight": getattr(source, "weight", None),
        "held_out_files": {},
    }
    # held-out csv files may name their classes: numbered as the data file numbers them
    context["relabels"] = source.kind == "csv" and context["classification"]
    if source.reads_file:
        spec_dir = model.data.spec_dir  # type: ignore[union-attr]
        context["data_path"] = _program_relative(source.path, spec_dir, program_dir)  # type: ignore[attr-defined]
        context["held_out_files"] = {split: _program_relative(path, spec_dir, program_dir)
                                     for split, path in source.held_out_files().items()}
    if source.kind in _BUNDLED:
        loader, description, named = _BUNDLED[source.kind]
        context["bundled"] = {"loader": loader, "description": description, "named": named}
    if isinstance(source, ImageFolder):
        height, width, channels = source.sample_shape
        context.update(image_size=(height, width), pil_mode=COLOR_MODES[source.color_mode][0],
                       channels=channels)
    return context


def stratify_on(model: ir.Model) -> tuple[int, str] | None:
    """The output whose classes the held-out splits are stratified by: the first with one
    class label per sample (cross_entropy over [classes], binary_cross_entropy over one
    unit), as (its position among the labelled outputs, its name); None when `train {
    stratify = false }` or no output is a classifier (regression splits stay random)."""
    if not model.train.stratify:
        return None
    for position, (value, loss) in enumerate(labelled_outputs(model)):
        if (loss.kind == "cross_entropy" and len(value.shape) == 1) or (
                loss.kind == "binary_cross_entropy" and value.shape == (1,)):
            return position, value.label
    return None


def _call(source: Source) -> str:
    """The data section as the comment atop the loader shows it; values are repr()-quoted,
    so nothing in them can end the comment line."""
    arguments = source.model_dump(exclude_defaults=True, exclude={"kind"})
    shown = ", ".join(f"{name}={lit(value)}" for name, value in arguments.items())
    return f"{source.kind}({shown})"


def _program_relative(path: str, spec_dir: str, program_dir: Path) -> str:
    """The spec's data path as the generated program names it: absolute paths as written
    (`~` is expanded at run time), relative ones re-rooted from the spec's folder to the
    program's, so that the program finds the data from wherever it is run."""
    if Path(path).expanduser().is_absolute():
        return path
    target = resolve_path(path, spec_dir).resolve()
    return Path(os.path.relpath(target, program_dir.resolve())).as_posix()


def _isort(lines: tuple[str, ...]) -> tuple[str, ...]:
    """Import lines in isort's order: `import x` lines, then `from x import y`, each sorted."""
    unique = sorted(set(lines), key=lambda line: line.split()[1].lower())
    return (*[line for line in unique if line.startswith("import ")],
            *[line for line in unique if line.startswith("from ")])
