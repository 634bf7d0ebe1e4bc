"""Names in a `graph`: binding, re-binding, unknown and unused names, merges, outputs."""

from __future__ import annotations

import pytest


def graph_model(bindings: str, output: str = "y", inputs: str = "input x: float[4]",
                extra: str = "") -> str:
    body = "\n".join(f"        {line.strip()}" for line in bindings.strip().splitlines())
    return (f"model m {{\n    {inputs}\n    graph {{\n{body}\n    }}\n    output {output}\n"
            f"{extra}}}\n")


def test_chains_merges_and_rebinding(check):
    model = check(graph_model("""
        h = x -> dense(8) -> relu()
        h = h -> dense(8)
        g = x -> dense(8)
        y = concat(h, g, axis=-1) -> dense(1)
    """)).model
    graph = model.graph
    assert [n.layer.kind for n in graph.nodes] == ["dense", "relu", "dense", "dense", "concat",
                                                   "dense"]
    concat = graph.nodes[4]
    assert concat.output.shape == (16,)
    # The re-bound `h` is the second dense: concat reads it, not the first binding.
    assert concat.inputs[0] == graph.nodes[2].id
    assert graph.outputs == (graph.nodes[5].id,)


@pytest.mark.parametrize("name", ["class", "lambda", "torch", "np", "tf", "self", "in"])
def test_python_keywords_and_modules_are_valid_names(check, name):
    spec = graph_model(f"{name} = x -> dense(4)\ny = {name} -> relu()",
                       inputs=f"input {name}_in: float[4]").replace("= x ->", f"= {name}_in ->")
    model = check(spec).model
    assert model.graph.nodes[0].output.label == name


def test_unknown_name_suggests_a_close_one(check):
    checked = check(graph_model("hidden = x -> dense(8)\ny = hiden -> dense(1)"))
    error = checked.error("unknown name `hiden`")
    assert "did you mean `hidden`?" in error.message
    assert error.span.line == checked.line("y = hiden") and error.span.column == 13


def test_use_before_bind(check):
    checked = check(graph_model("a = b -> dense(4)\nb = x -> dense(4)\ny = add(a, b)"))
    error = checked.error("`b` is used before it is bound")
    assert f"bound at line {checked.line('b = x')}" in error.message
    assert error.span.line == checked.line("a = b")


def test_a_name_cannot_use_itself(check):
    checked = check(graph_model("y = y -> dense(4)\nz = x -> dense(1)", output="y, z"))
    checked.error("`y` is used before it is bound")


def test_unused_input_is_an_error(check):
    checked = check(graph_model("y = x -> dense(1)", inputs="input x: float[4]\n"
                                "    input extra: float[2]"))
    error = checked.error("input `extra` is never used")
    assert error.span.line == checked.line("input extra")
    assert checked.program is None


def test_unused_name_is_a_warning(check):
    checked = check(graph_model("spare = x -> dense(3)\ny = x -> dense(1)"))
    warning = checked.warning("`spare` is bound but never used")
    assert warning.span.line == checked.line("spare =")
    assert checked.program is not None and checked.errors == []


def test_rebinding_before_use_is_a_warning(check):
    checked = check(graph_model("h = x -> dense(3)\nh = x -> dense(4)\ny = h -> dense(1)"))
    warning = checked.warning("`h` is re-bound before it is used")
    assert warning.span.line == checked.line("h = x -> dense(3)")


def test_an_error_does_not_cascade_to_what_depends_on_it(check):
    checked = check(graph_model("""
        a = x -> dense2(4)
        b = a -> dense(4) -> relu()
        y = add(a, b) -> dense(1)
    """))
    assert [d.message.split(" (")[0] for d in checked.errors] == ["unknown layer `dense2`"]


def test_independent_errors_are_all_reported(check):
    checked = check(graph_model("""
        a = x -> dense2(4)
        b = a -> dropout(2)
        c = x -> conv2d(4, kernel_size=3)
        y = add(b, c) -> dense(1)
    """))
    assert len(checked.errors) == 3
    checked.error("unknown layer `dense2`")
    checked.error("invalid argument `rate`")  # checked although its input failed
    checked.error("has no argument `kernel_size`")


def test_merge_takes_names(check):
    checked = check(graph_model("y = add(x, 3)"))
    checked.error("`add` takes names of tensors (got number)")


def test_merge_needs_two_tensors(check):
    checked = check(graph_model("y = add(x) -> dense(1)"))
    checked.error("`add` merges two or more tensors (got 1)")


def test_merge_in_a_sequence_is_an_error(check):
    checked = check("model m {\n    input x: float[4]\n    layers { add() }\n}\n")
    checked.error("`add` merges named tensors")


def test_a_chain_must_start_with_a_name_or_a_merge(check):
    checked = check(graph_model("y = dense(4) -> relu()"))
    checked.error("a chain starts with a name or a merge")


def test_mismatched_merge_shapes(check):
    checked = check(graph_model("a = x -> dense(3)\nb = x -> dense(5)\ny = multiply(a, b)"))
    error = checked.error("multiply")
    assert error.span.line == checked.line("y = multiply")


def test_several_outputs(check):
    model = check(graph_model("h = x -> dense(8)\nlogits = h -> dense(3)\nvalue = h -> dense(1)",
                              output="logits, value")).model
    outputs = {v.label: v.shape for n in model.graph.nodes for v in [n.output]
               if n.output.id in model.graph.outputs}
    assert outputs == {"logits": (3,), "value": (1,)}


def test_output_must_name_a_bound_tensor(check):
    checked = check(graph_model("y = x -> dense(1)", output="y, z"))
    checked.error("unknown name `z`")


def test_graph_needs_an_output_and_layers_takes_none(check):
    checked = check("model m {\n    input x: float[4]\n    graph { y = x -> relu() }\n}\n")
    checked.error("a `graph` needs an `output` line")
    checked = check("model m {\n    input x: float[4]\n    layers { relu() }\n    output y\n}\n")
    checked.error("`output` is only used with `graph`")


def test_layers_needs_exactly_one_input(check):
    checked = check("model m {\n    input a: float[4]\n    input b: float[4]\n"
                    "    layers { relu() }\n}\n")
    checked.error("`layers` needs exactly one input (got 2: a, b)")


def test_int_inputs_only_feed_layers_that_take_them(check):
    model = check("model m {\n    input tokens: int[16]\n    layers {\n        embedding(100, 8)\n"
                  "        global_avgpool1d()\n        dense(2)\n    }\n}\n").model
    assert model.graph.inputs[0].dtype == "int64"
    assert model.graph.nodes[0].output.dtype == "float32"
    checked = check("model m {\n    input tokens: int[16]\n    layers { dense(8) }\n}\n")
    checked.error("`dense` cannot take `tokens` of type int")


def test_unknown_input_type(check):
    checked = check("model m {\n    input x: double[4]\n    layers { relu() }\n}\n")
    error = checked.error("unknown input type `double`")
    assert error.span.column == 14


def test_a_model_without_body_or_input(check):
    checked = check("model m {\n    loss mse()\n}\n")
    checked.error("has no input")
    checked.error("has no `layers` or `graph` section")


def test_a_name_for_an_input_before_any_layer(check):
    """`h = x` as the first binding names a tensor no layer made (it once raised IndexError)."""
    checked = check("""
        model m {
            input x: float[4]
            graph {
                h = x
                y = h -> dense(2)
            }
            output y
            loss mse()
        }
    """)
    assert [node.layer.kind for node in checked.model.graph.nodes] == ["dense"]
    assert checked.model.graph.nodes[0].inputs == ("x",)


def test_rebinding_an_input_name_reports_the_unused_input(check):
    """`y = x -> ...` where `y` is also an input (it once raised KeyError)."""
    checked = check("""
        model m {
            input y: float[4]
            input x: float[4]
            graph { y = x -> dense(1) }
            output y
            loss mse()
        }
    """)
    assert [(e.span.line, e.message) for e in checked.errors] == [(3, "input `y` is never used")]


SEQUENCES = "input q: float[5, 8]\n    input kv: float[7, 6]"


def test_layers_of_several_inputs_take_names_then_arguments(check):
    model = check(graph_model("""
        c = multihead_attention(q, kv, 2, key_dim=3)
        d = transformer_decoder(c, c, 2, 16, 0.0, gelu)
        y = attention(q, d, c, use_scale=true) -> flatten()
    """, inputs=SEQUENCES)).model
    cross, decoder, luong = model.graph.nodes[:3]
    assert cross.inputs == ("q", "kv") and (cross.layer.heads, cross.layer.key_dim) == (2, 3)
    assert cross.params["torch"].total == (8 * 6 + 6) + 2 * (6 * 6 + 6) + (6 * 8 + 8)
    assert decoder.inputs == (cross.id, cross.id)
    assert (decoder.layer.ff, decoder.layer.dropout, decoder.layer.activation) == (16, 0.0, "gelu")
    assert luong.inputs == ("q", decoder.id, cross.id) and luong.layer.use_scale


def test_several_inputs_errors_are_located(check):
    checked = check(graph_model("""
        a = attention(q) -> flatten()
        b = transformer_decoder(q, kv, 2, 16) -> flatten()
        c = dot(q, kv, axes=-1) -> flatten()
        d = additive_attention(q, kv, kv, kv) -> flatten()
        y = concat(a, b, c, d)
    """, inputs=SEQUENCES))
    error = checked.error("`attention` takes named tensors first, e.g. `attention(a, b)` "
                          "(expected 2 to 3, got 1)")
    assert error.span.line == checked.line("a = attention")
    error = checked.error("transformer_decoder: needs a memory with the target's features "
                          "(expected [?, 8], got [7, 6] beside the target [5, 8])")
    assert error.span.line == checked.line("b = transformer_decoder")
    error = checked.error("dot: needs equal sizes along the axes [-1, -1]")
    assert error.span.line == checked.line("c = dot")
    # A fourth name after the three tensors is a positional argument, and none is expected.
    error = checked.error("additive_attention")
    assert error.span.line == checked.line("d = additive_attention")


def test_layers_of_several_inputs_in_a_sequence_are_an_error(check):
    checked = check("model m {\n    input x: float[4, 2]\n    layers { attention() }\n}\n")
    checked.error("`attention` takes named tensors: write it as the start of a graph chain")
    checked = check(graph_model("y = x -> dot(axes=1)", inputs="input x: float[4]"))
    checked.error("`dot` merges named tensors")
