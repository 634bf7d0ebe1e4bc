"""`return_state=true` in a graph: a binding names a recurrent layer's output and its final
states (`seq, h, c = x -> lstm(...)`), each a value with its shape."""

from __future__ import annotations

from specc.check_json import model_entry
from specc.report import model_table


def graph(lines: str, output: str = "y", inputs: str = "input x: float[7, 3]") -> str:
    body = "\n".join(f"        {line.strip()}" for line in lines.strip().splitlines())
    return f"model m {{\n    {inputs}\n    graph {{\n{body}\n    }}\n    output {output}\n}}\n"


def test_each_result_is_a_value_later_layers_read(check):
    model = check(graph("""
        seq, h, c = x -> lstm(6, return_sequences=true, return_state=true)
        out, g = x -> gru(4, return_state=true)
        y = concat(h, c, g, out) -> dense(2)
        s = seq -> global_avgpool1d()
    """, output="y, s, h")).model
    graph_ = model.graph
    lstm, gru, concat = graph_.nodes[:3]
    assert [(v.id, v.label, v.shape) for v in lstm.results] == [
        ("lstm_1", "seq", (7, 6)), ("lstm_1_h", "h", (6,)), ("lstm_1_c", "c", (6,))]
    assert [(v.label, v.shape) for v in gru.results] == [("out", (4,)), ("g", (4,))]
    assert concat.inputs == ("lstm_1_h", "lstm_1_c", "gru_1_h", "gru_1")
    assert concat.output.shape == (20,)
    # A state may be a model output too.
    assert graph_.outputs[2] == "lstm_1_h" and graph_.value("lstm_1_h").shape == (6,)
    table = model_table(model)
    assert "seq, h, c = lstm_1" in table and "[7, 6], [6], [6]" in table
    layers = {layer["id"]: layer for layer in model_entry(model)["layers"]}
    assert layers["gru_1"]["states"] == [{"name": "g", "shape": [4]}]
    assert "states" not in layers["dense_1"]


def test_the_number_of_names_must_be_the_number_of_results(check):
    checked = check(graph("""
        seq, h = x -> lstm(6, return_state=true)
        y = add(seq, h)
    """))
    error = checked.error("2 names bound to one chain")
    assert "got `lstm` gives 3: output, h, c" in error.message
    assert error.span.line == checked.line("seq, h =")
    assert error.span.column == checked.source.splitlines()[error.span.line - 1].index("h =") + 1


def test_several_names_need_a_layer_that_gives_states(check):
    checked = check(graph("""
        a, b = x -> lstm(6)
        y = add(a, b)
    """))
    checked.error("2 names bound to one chain", "got `lstm` gives one result")
    alias = check(graph("a, b = x\ny = add(a, b) -> flatten()"))
    alias.error("2 names bound to one chain", "got `x` gives one result")


def test_states_must_be_bound_where_the_layer_ends_a_chain(check):
    middle = check(graph("y = x -> gru(4, return_state=true) -> dense(2)"))
    error = middle.error("`gru` with return_state=true gives 2 results (output, h)")
    assert "`output, h = x -> gru(...)`" in error.message
    sequence = check("model m {\n    input x: float[7, 3]\n    layers {\n"
                     "        lstm(4, return_state=true)\n    }\n}\n")
    sequence.error("`lstm` with return_state=true gives 3 results (output, h, c)")


def test_a_name_bound_twice_in_one_binding_and_a_bidirectional_layer(check):
    twice = check(graph("y, y = x -> gru(4, return_state=true)"))
    twice.error("`y` is bound twice in one binding")
    both = check(graph("y, h = x -> gru(4, return_state=true, bidirectional=true)", "y, h"))
    both.error("return_state=true takes a layer of one direction")


def test_an_unused_state_is_a_warning_like_any_name(check):
    checked = check(graph("""
        seq, h, c = x -> lstm(6, return_state=true)
        y = add(seq, h)
    """))
    assert not checked.errors
    checked.warning("`c` is bound but never used")


def test_a_decoder_starts_from_an_encoder_s_states(check):
    model = check(graph("""
        code, h, c = x -> lstm(6, return_state=true)
        y = x -> lstm(6, return_sequences=true, initial_state=[h, c])
        z = x -> gru(6, initial_state=h)
    """, output="y, z, code")).model
    decoder, gru = model.graph.nodes[1:3]
    assert decoder.inputs == ("x", "lstm_1_h", "lstm_1_c") and decoder.output.shape == (7, 6)
    assert gru.inputs == ("x", "lstm_1_h")
    # the weights are those of the layer alone
    assert decoder.params == model.graph.nodes[0].params


def test_what_initial_state_must_be(check):
    wrong = check(graph("""
        code, h, c = x -> lstm(6, return_state=true)
        a = x -> lstm(6, initial_state=[h])
        b = x -> lstm(4, initial_state=[h, c])
        d = x -> gru(6, initial_state=[h, 2])
        e = x -> dense(6, initial_state=[h])
        f = x -> gru(6, initial_state=[hh])
        y = concat(a, b, d, e, f, code)
    """))
    wrong.error("lstm: initial_state gives 1 state (expected 2: h, c, each [6])")
    error = wrong.error("the initial state h must be [4]")
    assert "(expected [4], got [6])" in error.message
    assert error.span.line == wrong.line("b = x")
    number = wrong.error("initial_state takes the names of the tensors", "got number")
    assert number.span.line == wrong.line("d = x")
    wrong.error("initial_state", "dense")  # an argument dense does not have
    wrong.error("unknown name `hh`")
