"""The outline that completion and navigation read: what a document defines, from its
tokens alone, on any text and in time linear in its size."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from specc.lsp.analysis import outline, tokenize

RESNET20 = Path(__file__).resolve().parents[2] / "tests" / "architectures" / "resnet20.spec"


def test_outline_of_resnet20():
    found = outline(tokenize(RESNET20.read_text(encoding="utf-8")))
    kinds = {(d.kind, d.name) for d in found.definitions}
    assert {
        ("let", "weight_decay"),
        ("block", "conv_bn"),
        ("param", "stride"),
        ("tensor", "shortcut"),
        ("input", "image"),
        ("model", "resnet20"),
    } <= kinds
    conv_bn = next(d for d in found.definitions if d.name == "conv_bn" and d.kind == "block")
    assert conv_bn.detail == "(filters, stride)"
    assert (conv_bn.start, conv_bn.end) == ((10, 0), (13, 1))
    families = {c.name.text: c.family for c in found.calls}
    assert families["conv2d"] == "layer" and families["adam"] == "optimizer"
    assert families["step"] == "schedule" and families["random_flip"] == "augmentation"
    assert families["cifar10"] == "data source" and families["cross_entropy"] == "loss"


def test_half_typed_text_keeps_what_is_before_the_cursor():
    text = "block b(filters) {\n    h = in -> dense(filters\n"
    found = outline(tokenize(text))
    frame = found.frame_at(1, len("    h = in -> dense(filters"))
    assert frame is not None and frame.kind == "call" and frame.name == "dense"
    assert frame.body is not None and frame.body.kind == "block" and frame.body.graph
    assert {d.name for d in found.visible(frame)} == {"b", "filters", "h"}


@pytest.mark.parametrize(
    "text",
    ["block a(" * 30000, ") ) ) {" * 30000, "{" * 50000, "dense(" * 30000, "( [ { ) ] }" * 20000],
    ids=["open-params", "stray-closers", "open-braces", "open-calls", "crossed"],
)
def test_outline_takes_linear_time(text):
    started = time.perf_counter()
    found = outline(tokenize(text))
    found.frame_at(0, len(text) // 2)
    assert time.perf_counter() - started < 10  # ~1 s here; quadratic would take minutes


def test_shared_layers_and_every_name_of_a_binding_are_defined_in_the_graph():
    text = ("model m {\n    input x: float[7, 3]\n    graph {\n        let enc = gru(4)\n"
            "        seq, h, c = x -> lstm(4, return_state=true)\n"
            "        y = h -> enc\n    }\n    output y\n}\n")
    found = outline(tokenize(text))
    graph = {(d.kind, d.name, d.token.line) for d in found.definitions
             if d.kind in ("tensor", "shared")}
    # lines count from 0 here
    assert graph == {("shared", "enc", 3), ("tensor", "seq", 4), ("tensor", "h", 4),
                     ("tensor", "c", 4), ("tensor", "y", 5)}
    # the arguments of a call are no definitions, commas or not
    assert not any(d.name == "return_state" for d in found.definitions)
