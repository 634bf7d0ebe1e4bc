"""The ONNX metadata contract between `specc export` and `specc serve`."""

import json

import pytest

from specc import export_metadata as em


def sample() -> em.ExportMetadata:
    return em.ExportMetadata(
        model="digits", backend="torch", spec_hash="0123456789abcdef", opset=18,
        inputs=[em.TensorInfo(name="pixels", shape=[64], dtype="float32")],
        outputs=[em.OutputInfo(name="logits", shape=[10], dtype="float32", classes=10,
                               class_names=[str(k) for k in range(10)])],
        test_metrics={"accuracy": 0.97}, max_abs_difference=2e-6, tolerance=1e-4)


def test_metadata_round_trips_through_the_custom_metadata_map():
    metadata = sample()
    assert em.loads(em.dumps(metadata), "model.onnx") == metadata


def test_attach_replaces_an_earlier_entry():
    onnx = pytest.importorskip("onnx")
    proto = onnx.ModelProto()
    em.attach(proto, sample())
    em.attach(proto, sample().model_copy(update={"quantized": "int8"}))
    entries = [prop for prop in proto.metadata_props if prop.key == em.METADATA_KEY]
    assert len(entries) == 1
    assert json.loads(entries[0].value)["quantized"] == "int8"


@pytest.mark.parametrize(("custom", "message"), [
    ({}, "has no `specc` metadata"),
    ({"specc": "{not json"}, "is not JSON"),
    ({"specc": json.dumps({"format_version": 99})}, "metadata format 99"),
    ({"specc": json.dumps({"format_version": 1, "model": "m"})}, "malformed at backend"),
])
def test_unreadable_metadata_is_a_clear_error(custom, message):
    with pytest.raises(em.MetadataError, match=message):
        em.loads(custom, "model.onnx")
