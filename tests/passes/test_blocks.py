"""Blocks and repeats: expansion, arguments, recursion, errors at the line and the call."""

from __future__ import annotations

from specc import ir

BLOCKS = """
block conv_bn(filters, kernel=3, stride=1) {
    conv2d(filters, kernel, stride=stride, padding=same, bias=false)
    batchnorm()
    relu()
}

block residual(filters) {
    h = in -> conv_bn(filters) -> conv2d(filters, 3, padding=same, bias=false) -> batchnorm()
    out = add(in, h) -> relu()
}
"""


def model_with(layers: str, blocks: str = BLOCKS, input: str = "image: float[8, 8, 3]") -> str:
    return f"{blocks}\nmodel m {{\n    input {input}\n    layers {{\n        {layers}\n    }}\n}}\n"


def kinds(graph: ir.Graph) -> list[str]:
    return [n.block if isinstance(n, ir.BlockNode) else n.layer.kind for n in graph.nodes]


def test_a_block_expands_with_defaults_and_arguments(check):
    model = check(model_with("conv_bn(16)\n        conv_bn(8, 5, stride=2)")).model
    first, second = model.graph.nodes
    assert isinstance(first, ir.BlockNode) and first.args == {"filters": 16, "kernel": 3,
                                                             "stride": 1}
    assert kinds(first.body) == ["conv2d", "batchnorm", "relu"]
    conv = second.body.nodes[0].layer
    assert (conv.filters, conv.kernel, conv.stride) == (8, 5, 2)
    assert second.output.shape == (4, 4, 8)


def test_a_graph_block_uses_in_and_binds_out(check):
    model = check(model_with("conv_bn(16)\n        residual(16)")).model
    residual = model.graph.nodes[1]
    assert kinds(residual.body) == ["conv_bn", "conv2d", "batchnorm", "add", "relu"]
    assert residual.body.inputs[0].label == "in"
    assert residual.output.shape == (8, 8, 16)
    # 2 convs of 3x3x16x16 without bias and 2 batchnorms of 16 channels (4 numbers each).
    assert residual.params["tensorflow"].total == 2 * (3 * 3 * 16 * 16) + 2 * 4 * 16


def test_block_parameters_feed_nested_blocks_and_defaults(check):
    blocks = BLOCKS + """
block stage(filters, blocks=2) {
    conv_bn(filters, stride=2)
    residual(filters) * blocks
}
"""
    model = check(model_with("stage(8)\n        stage(16, blocks=1)", blocks)).model
    first, second = model.graph.nodes
    assert kinds(first.body) == ["conv_bn", "residual", "residual"]
    assert kinds(second.body) == ["conv_bn", "residual"]
    assert second.output.shape == (2, 2, 16)


def test_a_block_parameter_default_may_use_earlier_parameters_and_constants(check):
    blocks = "let base = 4\nblock wide(units, hidden=units * base) {\n    dense(hidden)\n" \
             "    dense(units)\n}\n"
    model = check(model_with("wide(2)", blocks, "x: float[3]")).model
    assert model.graph.nodes[0].body.nodes[0].layer.units == 8


def test_too_many_arguments(check):
    checked = check(model_with("conv_bn(8, 3, 1, 2)"))
    error = checked.error("block `conv_bn` takes 3 arguments")
    assert "expected filters, kernel, stride, got 4" in error.message
    # At the first argument too many.
    assert (error.span.line, error.span.column) == (checked.line("conv_bn(8, 3, 1, 2)"), 26)
    assert error.notes[0][0] == "the block is defined here"


def test_missing_argument(check):
    checked = check(model_with("conv_bn(kernel=3)"))
    error = checked.error("missing its argument `filters`")
    assert error.span.line == checked.line("conv_bn(kernel=3)")


def test_unknown_parameter_name_suggests_one(check):
    error = check(model_with("conv_bn(8, strid=2)")).error("has no parameter `strid`")
    assert "did you mean `stride`?" in error.message


def test_parameter_given_twice(check):
    checked = check(model_with("conv_bn(8, filters=8)"))
    checked.error("parameter `filters` of `conv_bn` is given twice")


def test_direct_recursion(check):
    blocks = "block tower(n) {\n    dense(n)\n    tower(n)\n}\n"
    checked = check(model_with("tower(4)", blocks, "x: float[4]"))
    error = checked.error("block `tower` is recursive")
    assert "tower -> tower" in error.message and error.span.line == checked.line("    tower(n)")
    assert len(checked.errors) == 1


def test_indirect_recursion(check):
    blocks = ("block a(n) {\n    b(n)\n}\nblock b(n) {\n    dense(n)\n    c(n)\n}\n"
              "block c(n) {\n    out = in -> a(n)\n}\n")
    checked = check(model_with("a(4)", blocks, "x: float[4]"))
    error = checked.error("is recursive")
    assert "a -> b -> c -> a" in error.message
    assert len(checked.errors) == 1


def test_a_graph_block_must_bind_out(check):
    blocks = "block broken(n) {\n    h = in -> dense(n)\n    result = h -> relu()\n}\n"
    checked = check(model_with("broken(4)", blocks, "x: float[4]"))
    checked.error("a graph block must bind `out`")


def test_an_error_inside_a_block_notes_every_call_site(check):
    blocks = ("block inner(rate) {\n    dropout(rate)\n}\n"
              "block outer(rate) {\n    dense(4)\n    inner(rate)\n}\n")
    checked = check(model_with("outer(0.1)\n        outer(1.5)", blocks, "x: float[4]"))
    error = checked.error("invalid argument `rate`")
    assert error.span.line == checked.line("dropout(rate)")  # inside the block
    assert [(message, span.line) for message, span in error.notes] == [
        ("in block `inner`, used here", checked.line("    inner(rate)")),
        ("in block `outer`, used here", checked.line("outer(1.5)"))]


def test_a_shape_error_inside_a_block_points_into_the_block(check):
    blocks = "block shrink(k) {\n    conv2d(4, k)\n}\n"
    checked = check(model_with("shrink(3)\n        shrink(9)", blocks))
    error = checked.error("conv2d")
    assert error.span.line == checked.line("conv2d(4, k)")
    assert error.notes[0][1].line == checked.line("shrink(9)")


def test_a_block_used_in_a_graph_chain(check):
    spec = BLOCKS + """
model m {
    input image: float[8, 8, 3]
    graph {
        h = image -> conv_bn(8) -> residual(8) * 2
        logits = h -> global_avgpool2d() -> dense(10)
    }
    output logits
}
"""
    graph = check(spec).model.graph
    assert kinds(graph) == ["conv_bn", "residual", "residual", "global_avgpool2d", "dense"]
    assert graph.nodes[2].output.label == "h"


# --- repeats --------------------------------------------------------------------------------


def test_repeat_with_a_constant_and_an_expression(check):
    spec = "let n = 2\nmodel m {\n    input x: float[4]\n    layers {\n        dense(4) * n\n" \
           "        relu() * (n + 1)\n        dense(1)\n    }\n}\n"
    assert kinds(check(spec).model.graph) == ["dense"] * 2 + ["relu"] * 3 + ["dense"]


def test_repeat_count_from_a_block_parameter(check):
    blocks = "block stack(units, depth) {\n    dense(units, activation=relu) * depth\n}\n"
    model = check(model_with("stack(8, 3)", blocks, "x: float[4]")).model
    assert kinds(model.graph.nodes[0].body) == ["dense"] * 3


def test_repeated_nodes_have_unique_ids(check):
    model = check(model_with("conv_bn(4) * 3")).model
    ids = [n.id for n in model.graph.nodes]
    assert len(set(ids)) == 3


def test_repeat_zero_is_an_error(check):
    checked = check("let n = 0\n" + model_with("dense(4) * n", "", "x: float[4]"))
    error = checked.error("the repeat count must be a positive integer (got 0)")
    assert error.span.line == checked.line("dense(4) * n")


def test_repeat_zero_from_a_block_parameter_notes_the_call(check):
    blocks = "block stack(depth) {\n    dense(4) * depth\n}\n"
    checked = check(model_with("stack(0)", blocks, "x: float[4]"))
    error = checked.error("must be a positive integer (got 0)")
    assert error.span.line == checked.line("dense(4) * depth")
    assert error.notes[0][1].line == checked.line("stack(0)")


def test_repeat_by_a_fraction_is_an_error(check):
    checked = check(model_with("dense(4) * (3 / 2)", "", "x: float[4]"))
    checked.error("must be a positive integer (got 1.5)")


def test_a_block_is_used_like_a_layer_only_with_one_input(check):
    spec = BLOCKS + """
model m {
    input a: float[8, 8, 4]
    input b: float[8, 8, 4]
    graph {
        y = add(a, b) -> residual(4)
    }
    output y
}
"""
    assert check(spec).program is not None
