"""The `data` section's sources: their arguments, and what each yields, without loading it.

Each source kind is a frozen Pydantic model, like a layer: fields are its arguments in the
order LANGUAGE.md lists them (so positional arguments bind in that order), then the two
split fractions every source takes, then the extensions (npz and csv: `weight`, `val_path`,
`test_path`):

    validation=0   fraction of the training data held out to validate on after each epoch
    test=0         fraction held out to evaluate on once, after training

Both default to 0 (no held-out data, as with Keras' `validation_split`), must lie in [0, 1)
and must leave something to train on (their sum is below 1). mnist, fashion_mnist, cifar10
and imdb come with a fixed test split, which is always used: `validation` is carved from
their training part and `test=` is an error. The generated loader stratifies the held-out
parts of a classifier's data by class (`train { stratify }`), else splits at random.

`describe(spec_dir)` says what a source yields per sample, reading at most file headers:
digits (64,) float, 10 classes; iris (4,) 3 classes; breast_cancer (30,) 2 classes;
diabetes (10,) one continuous target; mnist and fashion_mnist (28, 28) 10 classes; cifar10
(32, 32, 3) 10 classes; imdb (max_len,) int token ids, 2 classes; npz the arrays' own
shapes (from the .npy headers); csv one feature per column but `target`; text_csv (max_len,)
int token ids; image_folder (height, width, channels) with one class per subfolder;
synthetic whatever the model's inputs and outputs are. A file that does not exist yet is
not an error here (it is when the program runs): what it would have said is left unknown.
A folder where a file belongs (or the reverse) is an error, and so is an npz array that
does not hold numbers (strings, numeric ones too, and object arrays are refused).

The reshape rule, applied by the data check and again by the generated loader: a sample
feeds an input when both have the same number of values, and is reshaped to the input's
shape (channels-last). So a digits sample (64,) fits `[64]`, `[8, 8]` or `[8, 8, 1]`, and
an MNIST image (28, 28) fits `[28, 28, 1]` or `[784]`. An input with a `?` dimension takes
samples of the same rank whose other dimensions match; the `?` takes the data's size.
"""

import csv
import zipfile
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from specc.errors import mismatch
from specc.layers.base import Shape

SplitFraction = Annotated[float, Field(strict=True, ge=0, lt=1)]
PositiveInt = Annotated[int, Field(strict=True, gt=0)]
# At least one token id besides 0 (padding) and 1 (out of vocabulary).
VocabSize = Annotated[int, Field(strict=True, ge=3)]
FilePath = Annotated[str, Field(strict=True, min_length=1)]
ArrayName = Annotated[str, Field(strict=True, min_length=1)]

DType = Literal["float32", "int64"]


class DataSourceError(ValueError):
    """A file the source names exists but cannot be what the spec says (no such column…)."""


# --- what a source yields -----------------------------------------------------------------


@dataclass(frozen=True)
class Features:
    """One array of samples that feeds one model input."""

    what: str  # how messages name it: "digits()", "npz array 'x'"
    shape: Shape | None  # per sample; None while unknown (the file is not there yet)
    dtype: DType | None  # None: integers that may feed a float input as well as an int one
    vocab: int | None = None  # token ids lie in [0, vocab)


@dataclass(frozen=True)
class Labels:
    """The labels of one model output."""

    what: str
    kind: Literal["classes", "values", "any"]  # class ids, continuous targets, or unknown
    shape: Shape | None = ()  # per sample: () is one label per sample; None while unknown
    classes: int | None = None  # how many classes, when known


@dataclass(frozen=True)
class Description:
    """What a source yields; `None` for features or labels means "shaped like the model"."""

    features: tuple[Features, ...] | None
    labels: tuple[Labels, ...] | None


def fits(sample: Shape, input_shape: Shape) -> bool:
    """Whether samples of shape `sample` can feed an input of shape `input_shape`."""
    if None in input_shape:
        return len(sample) == len(input_shape) and all(
            want is None or want == got for want, got in zip(input_shape, sample, strict=True)
        )
    return None not in sample and prod(sample) == prod(input_shape)  # type: ignore[arg-type]


def _is_file(path: Path, expected: str) -> bool:
    """Whether a file is there to read; a folder where a file belongs is an error."""
    if path.is_dir():
        raise DataSourceError(mismatch(f"{path} is a directory", expected, "a directory"))
    return path.is_file()


def resolve_path(path: str, spec_dir: str | Path) -> Path:
    """A spec's path: relative ones start at the folder of the spec file that names them."""
    given = Path(path).expanduser()
    return given if given.is_absolute() else Path(spec_dir) / given


# --- the sources --------------------------------------------------------------------------


class Source(BaseModel):
    """Base of every data source. Subclasses declare `kind` first, their own arguments,
    then `validation` and `test` (declared in each class so that they come after them), then
    any extension of the language's arguments."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    kind: str
    hints: ClassVar[dict[str, str]] = {"validation_split": "validation", "test_split": "test"}
    # Sources whose files come with their own test split.
    fixed_test_split: ClassVar[bool] = False
    # Whether the source reads a file or folder named by a `path` argument.
    reads_file: ClassVar[bool] = False
    if TYPE_CHECKING:  # declared by each subclass, after its own arguments
        validation: float
        test: float

    @model_validator(mode="after")
    def _check_fractions(self) -> "Source":
        validation, test = self.validation, self.test
        for argument, fraction in (("val_path", "validation"), ("test_path", "test")):
            if getattr(self, argument, None) is not None and getattr(self, fraction):
                raise ValueError(mismatch(
                    f"`{argument}` gives the {fraction} samples, so none are cut from the data",
                    f"{fraction}=0 (or no {argument})",
                    f"{fraction}={getattr(self, fraction)}"))
        if self.fixed_test_split and test:
            raise ValueError(mismatch(
                "its files come with a test split, so `test` does not apply",
                "test=0", f"test={test}"))
        if validation + test >= 1:
            raise ValueError(mismatch(
                "validation + test must leave data to train on", "a sum below 1",
                f"{validation:g} + {test:g} = {validation + test:g}"))
        return self

    def short_call(self) -> str:
        """How messages name the source: its kind and the arguments that shape its data."""
        return f"{self.kind}()"

    def held_out_files(self) -> dict[str, str]:
        """The splits read from files of their own (`val_path`, `test_path`): split name ->
        the spec's path; none is cut from the data for them."""
        paths = {"val": getattr(self, "val_path", None), "test": getattr(self, "test_path", None)}
        return {split: path for split, path in paths.items() if path is not None}

    def read_alike(self, path: str) -> "Source":
        """The source of a held-out file: read as this one, from `path`, with no files of its
        own."""
        return self.model_copy(update={"path": path, "val_path": None, "test_path": None})

    def describe(self, spec_dir: str | Path) -> Description:
        raise NotImplementedError


class BundledSource(Source):
    """A dataset that ships with scikit-learn: always available, read at run time only."""

    sample_shape: ClassVar[Shape]
    classes: ClassVar[int | None]  # None: one continuous target (regression)

    def describe(self, spec_dir: str | Path) -> Description:
        what = self.short_call()
        labels = (Labels(what, "values") if self.classes is None
                  else Labels(what, "classes", classes=self.classes))
        return Description((Features(what, self.sample_shape, "float32"),), (labels,))


class Digits(BundledSource):
    """8x8 images of handwritten digits, flattened to 64 features."""

    kind: Literal["digits"] = "digits"
    validation: SplitFraction = 0.0
    test: SplitFraction = 0.0
    sample_shape: ClassVar[Shape] = (64,)
    classes: ClassVar[int | None] = 10


class Iris(BundledSource):
    kind: Literal["iris"] = "iris"
    validation: SplitFraction = 0.0
    test: SplitFraction = 0.0
    sample_shape: ClassVar[Shape] = (4,)
    classes: ClassVar[int | None] = 3


class BreastCancer(BundledSource):
    kind: Literal["breast_cancer"] = "breast_cancer"
    validation: SplitFraction = 0.0
    test: SplitFraction = 0.0
    sample_shape: ClassVar[Shape] = (30,)
    classes: ClassVar[int | None] = 2


class Diabetes(BundledSource):
    """Ten patient measurements and one continuous target: disease progression after a year."""

    kind: Literal["diabetes"] = "diabetes"
    validation: SplitFraction = 0.0
    test: SplitFraction = 0.0
    sample_shape: ClassVar[Shape] = (10,)
    classes: ClassVar[int | None] = None


class ImageSet(Source):
    """A standard image classification set read from its usual files."""

    fixed_test_split: ClassVar[bool] = True
    reads_file: ClassVar[bool] = True
    sample_shape: ClassVar[Shape]

    def describe(self, spec_dir: str | Path) -> Description:
        what = self.short_call()
        return Description((Features(what, self.sample_shape, "float32"),),
                           (Labels(what, "classes", classes=10),))


class Mnist(ImageSet):
    """Keras' mnist.npz, or the four IDX files (optionally gzipped) in a folder."""

    kind: Literal["mnist"] = "mnist"
    path: FilePath
    validation: SplitFraction = 0.0
    test: SplitFraction = 0.0
    sample_shape: ClassVar[Shape] = (28, 28)


class FashionMnist(ImageSet):
    """The four Fashion-MNIST IDX files (optionally gzipped) in a folder, or an npz like
    Keras' mnist.npz."""

    kind: Literal["fashion_mnist"] = "fashion_mnist"
    path: FilePath
    validation: SplitFraction = 0.0
    test: SplitFraction = 0.0
    sample_shape: ClassVar[Shape] = (28, 28)


class Cifar10(ImageSet):
    """The python version's `cifar-10-batches-py` folder (or the folder that holds it)."""

    kind: Literal["cifar10"] = "cifar10"
    path: FilePath
    validation: SplitFraction = 0.0
    test: SplitFraction = 0.0
    sample_shape: ClassVar[Shape] = (32, 32, 3)

    def describe(self, spec_dir: str | Path) -> Description:
        folder = resolve_path(self.path, spec_dir)
        if folder.is_file():
            raise DataSourceError(mismatch(f"{folder} is a file",
                                           "the cifar-10-batches-py folder", "a file"))
        return super().describe(spec_dir)


class Imdb(Source):
    """Keras' imdb.npz movie reviews: ids 0 pad, 1 start, 2 out of vocabulary, words from 3
    by frequency; ids >= vocab become 2; reviews pre-padded and pre-truncated to max_len."""

    kind: Literal["imdb"] = "imdb"
    path: FilePath
    vocab: VocabSize
    max_len: PositiveInt
    validation: SplitFraction = 0.0
    test: SplitFraction = 0.0
    fixed_test_split: ClassVar[bool] = True
    reads_file: ClassVar[bool] = True

    def short_call(self) -> str:
        return f"imdb(vocab={self.vocab}, max_len={self.max_len})"

    def describe(self, spec_dir: str | Path) -> Description:
        _is_file(resolve_path(self.path, spec_dir), "Keras' imdb.npz file")
        what = self.short_call()
        return Description((Features(what, (self.max_len,), "int64", self.vocab),),
                           (Labels(what, "classes", classes=2),))


def _names(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


class Npz(Source):
    """Arrays of a NumPy .npz file. `x` and `y` name one array each, or a list of arrays
    for a model with several inputs or outputs (in the order of the inputs and outputs)."""

    kind: Literal["npz"] = "npz"
    path: FilePath
    x: ArrayName | list[ArrayName] = "x"
    y: ArrayName | list[ArrayName] = "y"
    validation: SplitFraction = 0.0
    test: SplitFraction = 0.0
    # extensions, after the fractions so that positional arguments keep their meaning
    weight: ArrayName | None = None  # an array of one loss weight per sample
    val_path: FilePath | None = None  # a file of the same arrays to validate on
    test_path: FilePath | None = None  # a file of the same arrays to test on
    reads_file: ClassVar[bool] = True

    @field_validator("x", "y")
    @classmethod
    def _distinct(cls, value: str | list[str]) -> str | list[str]:
        names = _names(value)
        if not names or len(set(names)) != len(names):
            raise ValueError(mismatch("array names", "one or more distinct names", names))
        return value

    @model_validator(mode="after")
    def _weight_apart(self) -> "Npz":
        if self.weight is not None and self.weight in (*self.x_names, *self.y_names):
            raise ValueError(mismatch("the weight array must be neither features nor labels",
                                      "an array not named by x or y", repr(self.weight)))
        return self

    @property
    def x_names(self) -> list[str]:
        return _names(self.x)

    @property
    def y_names(self) -> list[str]:
        return _names(self.y)

    @property
    def weight_names(self) -> list[str]:
        return [] if self.weight is None else [self.weight]

    def read_alike(self, path: str) -> "Source":
        # a held-out file needs no weights: only the training loss is weighted
        return super().read_alike(path).model_copy(update={"weight": None})

    def describe(self, spec_dir: str | Path) -> Description:
        file = resolve_path(self.path, spec_dir)
        if not _is_file(file, "an .npz file"):
            return Description(
                tuple(Features(f"npz array {n!r}", None, None) for n in self.x_names),
                tuple(Labels(f"npz array {n!r}", "any", None) for n in self.y_names))
        headers = npz_headers(file)
        lengths = set()
        for name in (*self.x_names, *self.y_names, *self.weight_names):
            if name not in headers:
                raise DataSourceError(mismatch(f"{file} has no array {name!r}",
                                               f"one of {', '.join(map(repr, headers))}",
                                               repr(name)))
            shape, kind = headers[name]
            if kind not in _NUMBER_KINDS:
                raise DataSourceError(mismatch(
                    f"npz array {name!r} in {file} must hold numbers{_WHY_NOT.get(kind, '')}",
                    "bool, int or float values", _KIND_WORDS.get(kind, f"dtype kind {kind!r}")))
            if not shape:
                raise DataSourceError(mismatch(
                    f"npz array {name!r} in {file} must hold one row per sample",
                    "an array of rank 1 or more", "a scalar"))
            lengths.add(shape[0])
        if len(lengths) > 1:
            sizes = ", ".join(f"{n!r}: {headers[n][0][0]}"
                              for n in (*self.x_names, *self.y_names, *self.weight_names))
            raise DataSourceError(mismatch(f"the arrays of {file} must have one row per "
                                           "sample", "equal first dimensions", sizes))
        if self.weight is not None and len(headers[self.weight][0]) != 1:
            raise DataSourceError(mismatch(
                f"npz array {self.weight!r} in {file} must hold one weight per sample",
                "an array of rank 1", f"shape {list(headers[self.weight][0])}"))
        return Description(
            tuple(_npz_features(name, *headers[name]) for name in self.x_names),
            tuple(_npz_labels(name, headers[name][0]) for name in self.y_names))


# The dtype kinds an npz array of features or labels may have, and how messages name others.
_NUMBER_KINDS = frozenset("biuf")
_KIND_WORDS = {"U": "strings", "S": "byte strings", "O": "Python objects (dtype object)",
               "c": "complex numbers", "M": "dates", "m": "time spans",
               "V": "structured records"}
_NOT_CONVERTED = ": strings are not converted, numeric ones included"
_WHY_NOT = {"U": _NOT_CONVERTED, "S": _NOT_CONVERTED,
            "O": ": object arrays are read only by unpickling, which can run code"}


def _npz_features(name: str, shape: tuple[int, ...], kind: str) -> Features:
    what = f"npz array {name!r}"
    return Features(what, tuple(shape[1:]), "float32" if kind == "f" else None)


def _npz_labels(name: str, shape: tuple[int, ...]) -> Labels:
    # One number per sample may hold class ids or a target value; more is a target array.
    what = f"npz array {name!r}"
    if len(shape) == 1:
        return Labels(what, "any")
    return Labels(what, "values", tuple(shape[1:]))


def npz_headers(file: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Shape and dtype kind ("f", "i", "u", "b", "O", ...) of each array in an .npz file,
    read from the .npy headers without loading any data."""
    from numpy.lib import format as npy  # numpy is needed only for this, and only here

    headers: dict[str, tuple[tuple[int, ...], str]] = {}
    try:
        with zipfile.ZipFile(file) as archive:
            for member in archive.infolist():
                if not member.filename.endswith(".npy"):
                    continue
                with archive.open(member) as stream:
                    version = npy.read_magic(stream)
                    read_header = (npy.read_array_header_1_0 if version == (1, 0)
                                   else npy.read_array_header_2_0)
                    shape, _, dtype = read_header(stream)
                headers[member.filename.removesuffix(".npy")] = (tuple(shape), dtype.kind)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise DataSourceError(f"{file} is not a readable .npz file ({error})") from None
    return headers


def _header(file: Path) -> list[str]:
    """The column names of a CSV file: its first line (after a UTF-8 byte order mark)."""
    try:
        with file.open(newline="", encoding="utf-8-sig") as stream:
            return next(csv.reader(stream), [])
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataSourceError(f"{file} is not a readable CSV file ({error})") from None


def _require_columns(file: Path, header: list[str], columns: dict[str, str]) -> None:
    for argument, column in columns.items():
        if column not in header:
            raise DataSourceError(mismatch(
                f"{file} has no column {column!r} (named by `{argument}`)",
                f"one of {', '.join(map(repr, header)) or 'no columns: the file is empty'}",
                repr(column)))


class Csv(Source):
    """A CSV file with a header line: column `target` holds the labels, column `weight` (when
    named) each sample's loss weight, every other column is a numeric feature. Class labels
    may be integers or names (numbered in sorted order)."""

    kind: Literal["csv"] = "csv"
    path: FilePath
    target: Annotated[str, Field(strict=True)]
    validation: SplitFraction = 0.0
    test: SplitFraction = 0.0
    # extensions, after the fractions so that positional arguments keep their meaning
    weight: Annotated[str, Field(strict=True)] | None = None  # a column of loss weights
    val_path: FilePath | None = None  # a CSV file of the same columns to validate on
    test_path: FilePath | None = None  # a CSV file of the same columns to test on
    reads_file: ClassVar[bool] = True

    @model_validator(mode="after")
    def _weight_apart(self) -> "Csv":
        if self.weight == self.target:
            raise ValueError(mismatch("the weight column must not be the target column",
                                      "another column", repr(self.weight)))
        return self

    def short_call(self) -> str:
        return f"csv(target={self.target!r})"

    def describe(self, spec_dir: str | Path) -> Description:
        file = resolve_path(self.path, spec_dir)
        what = self.short_call()
        if not _is_file(file, "a CSV file"):
            return Description((Features(what, None, "float32"),), (Labels(what, "any"),))
        header = _header(file)
        named = {"target": self.target, **({"weight": self.weight} if self.weight else {})}
        _require_columns(file, header, named)
        return Description((Features(what, (len(header) - len(named),), "float32"),),
                           (Labels(what, "any"),))


class TextCsv(Source):
    """A CSV file with a header line, one text per row in column `text` and its class in
    column `label`. Texts are lowercased and split on non-alphanumerics; the vocabulary is
    the training split's `vocab - 2` most frequent words (id 0 pads, 1 is out of
    vocabulary); sequences are pre-padded and pre-truncated to `max_len`, as for imdb."""

    kind: Literal["text_csv"] = "text_csv"
    path: FilePath
    text: Annotated[str, Field(strict=True)]
    label: Annotated[str, Field(strict=True)]
    vocab: VocabSize
    max_len: PositiveInt
    validation: SplitFraction = 0.0
    test: SplitFraction = 0.0
    reads_file: ClassVar[bool] = True

    def short_call(self) -> str:
        return f"text_csv(vocab={self.vocab}, max_len={self.max_len})"

    def describe(self, spec_dir: str | Path) -> Description:
        file = resolve_path(self.path, spec_dir)
        what = self.short_call()
        if _is_file(file, "a CSV file"):
            _require_columns(file, _header(file), {"text": self.text, "label": self.label})
        return Description((Features(what, (self.max_len,), "int64", self.vocab),),
                           (Labels(what, "classes"),))


# PIL's name for each color mode, and the channels it gives.
COLOR_MODES: dict[str, tuple[str, int]] = {"grayscale": ("L", 1), "rgb": ("RGB", 3),
                                           "rgba": ("RGBA", 4)}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


class ImageFolder(Source):
    """One subfolder of images per class, class ids in sorted order of the folder names
    (as Keras' image_dataset_from_directory). Images are resized bilinearly to `size` (an
    int or [height, width]), converted to `color_mode` and scaled to [0, 1]."""

    kind: Literal["image_folder"] = "image_folder"
    path: FilePath
    size: PositiveInt | list[PositiveInt]
    color_mode: Literal["grayscale", "rgb", "rgba"] = "rgb"
    validation: SplitFraction = 0.0
    test: SplitFraction = 0.0
    reads_file: ClassVar[bool] = True

    @field_validator("size")
    @classmethod
    def _height_width(cls, value: int | list[int]) -> int | list[int]:
        if isinstance(value, list) and len(value) != 2:
            raise ValueError(mismatch("size is one side or [height, width]",
                                      "an int or a list of 2", value))
        return value

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        height, width = (self.size, self.size) if isinstance(self.size, int) else self.size
        return height, width, COLOR_MODES[self.color_mode][1]

    def short_call(self) -> str:
        return f"image_folder(size={self.size}, color_mode={self.color_mode})"

    def describe(self, spec_dir: str | Path) -> Description:
        folder = resolve_path(self.path, spec_dir)
        what = self.short_call()
        if folder.is_file():
            raise DataSourceError(mismatch(f"{folder} is a file",
                                           "a folder with one subfolder of images per class",
                                           "a file"))
        classes = sum(1 for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else None
        if classes == 0:
            raise DataSourceError(mismatch(f"{folder} holds no class folders",
                                           "one subfolder of images per class", "none"))
        return Description((Features(what, self.sample_shape, "float32"),),
                           (Labels(what, "classes", classes=classes),))


class Synthetic(Source):
    """`n` random samples shaped like the model's inputs, with labels that a fixed random
    linear function of the inputs assigns (so that there is something to learn)."""

    kind: Literal["synthetic"] = "synthetic"
    n: PositiveInt
    validation: SplitFraction = 0.0
    test: SplitFraction = 0.0
    sequence_length: ClassVar[int] = 16  # the size a `?` dimension of the model gets

    def describe(self, spec_dir: str | Path) -> Description:
        return Description(None, None)


AnySource = Annotated[
    Union[Digits, Iris, BreastCancer, Diabetes, Mnist, FashionMnist, Cifar10, Imdb, Npz, Csv,
          TextCsv, ImageFolder, Synthetic],
    Field(discriminator="kind"),
]
DATA_SOURCES: dict[str, type[Source]] = {
    cls.model_fields["kind"].default: cls
    for cls in (Digits, Iris, BreastCancer, Diabetes, Mnist, FashionMnist, Cifar10, Imdb, Npz,
                Csv, TextCsv, ImageFolder, Synthetic)
}

__all__ = ["DATA_SOURCES", "AnySource", "DataSourceError", "Description", "Features",
           "Labels", "Source", "fits", "resolve_path"]
