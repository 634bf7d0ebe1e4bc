"""What an exported ONNX model says about itself: the contract between `specc export` and
`specc serve` (and anyone else who runs the file).

`specc export` stores one JSON object under the ONNX metadata key `specc`. It describes the
model as a caller sees it: its inputs as the data source yields raw samples (preprocessing is
inside the exported graph), its outputs, the class names of a classifier, where the model
came from and how closely the exported graph was verified to agree with the framework that
trained it. A reader needs only `onnxruntime` (or `onnx`): nothing here imports a framework.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

METADATA_KEY = "specc"
FORMAT_VERSION = 1


class TensorInfo(BaseModel):
    """One input or output of the exported graph, per sample (the batch axis is left out and
    always free). `shape` entries are sizes, or None for an axis of any length."""

    model_config = ConfigDict(extra="forbid")

    name: str
    shape: list[int | None]
    dtype: str  # numpy's name: float32, int64, ...

    def accepts(self, sample_shape) -> bool:
        """Whether a sample of `sample_shape` has this shape: as many axes, each of the size
        given, or of any size above zero where the size is None."""
        sample_shape = tuple(sample_shape)
        return len(sample_shape) == len(self.shape) and all(
            got > 0 and want in (None, got)
            for want, got in zip(self.shape, sample_shape, strict=True))


class OutputInfo(TensorInfo):
    """An output; a classifier's (its loss is a cross-entropy over classes) has `classes`,
    the class count, and `class_names` where the data names its classes."""

    classes: int | None = None
    class_names: list[str] | None = None

    def scores_classes(self) -> bool:
        """Whether the last axis holds one score per class, so that its argmax is the class
        (a classifier's output; not a single binary logit)."""
        return self.classes is not None and bool(self.shape) and self.shape[-1] == self.classes


class ExportMetadata(BaseModel):
    """The `specc` metadata entry of an exported model."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = FORMAT_VERSION
    model: str  # the spec's model name
    backend: str  # the framework that trained it: torch or tensorflow
    spec_hash: str
    opset: int
    inputs: list[TensorInfo]  # raw samples, before preprocessing, in the graph's input order
    outputs: list[OutputInfo]  # in the graph's output order
    preprocessing_inside: bool = True  # standardization and scaling are part of the graph
    tokenizer: dict | None = None  # text inputs: the documented contract for the vocabulary
    test_metrics: dict[str, float] = Field(default_factory=dict)  # the framework's, at export
    runtime_test_metrics: dict[str, float] = Field(default_factory=dict)  # onnxruntime's
    max_abs_difference: float | None = None  # exported vs framework output, on test samples
    tolerance: float | None = None  # what export accepted as the largest difference
    quantized: str | None = None  # "int8" for a quantized model


class MetadataError(Exception):
    """An ONNX file without specc's metadata, or with metadata this version cannot read."""


def dumps(metadata: ExportMetadata) -> dict[str, str]:
    """The metadata as ONNX `metadata_props` entries (key -> string)."""
    return {METADATA_KEY: metadata.model_dump_json()}


def attach(model_proto, metadata: ExportMetadata) -> None:
    """Set (or replace) the `specc` entry of an `onnx.ModelProto`'s metadata_props."""
    for prop in list(model_proto.metadata_props):
        if prop.key == METADATA_KEY:
            model_proto.metadata_props.remove(prop)
    entry = model_proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, dumps(metadata)[METADATA_KEY]


def loads(custom_metadata: dict[str, str], source: str | Path) -> ExportMetadata:
    """The metadata from an ONNX file's custom metadata map (as onnxruntime's
    `session.get_modelmeta().custom_metadata_map` gives it); `source` names the file in
    errors."""
    if METADATA_KEY not in custom_metadata:
        raise MetadataError(f"{source} has no `{METADATA_KEY}` metadata (expected a model "
                            "written by `specc export --format onnx`)")
    try:
        raw = json.loads(custom_metadata[METADATA_KEY])
    except ValueError as error:
        raise MetadataError(f"{source}: its `{METADATA_KEY}` metadata is not JSON "
                            f"({error})") from None
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if version != FORMAT_VERSION:
        raise MetadataError(f"{source}: metadata format {version!r} (expected "
                            f"{FORMAT_VERSION}; export it again with this specc)")
    try:
        return ExportMetadata.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise MetadataError(f"{source}: its `{METADATA_KEY}` metadata is malformed at "
                            f"{where}: {first['msg']}") from None
