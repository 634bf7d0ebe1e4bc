"""Which values carry a padding mask (`embedding(mask_zero=true)`), decided in the front end
and read by both generators; the layers that cannot take one are errors at their line."""

from __future__ import annotations

import pytest


def spec(body: str, inputs: str = "input tokens: int[8]", blocks: str = "") -> str:
    return f"""
{blocks}
model net {{
    {inputs}
    graph {{
{body}
    }}
    output y
}}
"""


def masked(model) -> dict[str, bool]:
    return {node.output.label: node.output.masked for node in model.graph.nodes}


def test_the_mask_travels_while_the_time_axis_is_kept_and_stops_where_keras_drops_it(check):
    model = check(spec("""
        e = tokens -> embedding(20, 6, mask_zero=true)
        d = e -> dropout(0.1) -> dense(4, activation=relu) -> layernorm()
        s = d -> lstm(3, return_sequences=true)
        a = add(d, d)
        p = s -> global_avgpool1d()
        f = e -> lstm(3)
        c = e -> conv1d(4, 3)
        y = concat(p, f) -> dense(2)
        plain = tokens -> embedding(20, 6)
    """)).model
    named = {"e", "d", "s", "a", "p", "f", "c", "y", "plain"}
    assert {label for label, carries in masked(model).items() if label in named and carries} \
        == {"e", "d", "s", "a"}
    # Inside a chain too: dropout, dense and layernorm keep it; the merge's inputs share it.
    assert [masked(model)[n] for n in ("dropout_1", "dense_1", "concat_1")] == [True, True, False]
    assert not model.graph.inputs[0].masked


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("y = tokens -> embedding(20, 6, mask_zero=true) -> batchnorm() -> lstm(2)",
         ("batchnorm", "masked sequence", "batch statistics")),
        ("y = tokens -> embedding(20, 6, mask_zero=true) -> softmax() -> lstm(2)",
         ("softmax", "masked sequence")),
        ("y = tokens -> embedding(20, 6, mask_zero=true) -> transformer_encoder(2, 4) -> relu()"
         " -> transformer_encoder(2, 4)",
         ("transformer_encoder", "came through a transformer_encoder")),
        ("y = tokens -> embedding(20, 6, mask_zero=true) -> gru(3, return_state=true)",
         ("gru", "masked sequence with return_state or initial_state")),
    ],
)
def test_layers_that_would_compute_otherwise_under_a_mask_are_errors(check, line, words):
    checked = check(spec(f"        {line}"))
    error = checked.error(*words)
    assert "expected" in error.message and "got" in error.message
    assert error.span.line == checked.line(line.strip())


def test_attention_reads_a_masked_value_that_feeds_it_alone(check):
    checked = check(spec("""
        e = tokens -> embedding(20, 6, mask_zero=true)
        a = e -> multihead_attention(2) -> lstm(2)
        b = e -> lstm(3)
        y = concat(a, b)
    """))
    error = checked.error("multihead_attention", "share the masked value `e`")
    assert "got 2 layers" in error.message
    assert error.span.line == checked.line("multihead_attention(2)")
    # A dropout's output is its input's tensor in Keras: the same value.
    through = check(spec("""
        e = tokens -> embedding(20, 6, mask_zero=true)
        d = e -> dropout(0.1)
        a = d -> transformer_encoder(2, 4) -> lstm(2)
        b = e -> lstm(3)
        y = concat(a, b)
    """))
    assert "got 2 layers" in through.error("transformer_encoder", "share").message
    fine = check(spec("""
        e = tokens -> embedding(20, 6, mask_zero=true)
        a = e -> multihead_attention(2) -> multihead_attention(3, causal=true) -> lstm(2)
        y = a -> dense(2)
    """))
    assert not fine.errors


def test_mask_zero_needs_a_sequence_of_token_ids(check):
    checked = check(spec("        y = grid -> embedding(20, 6, mask_zero=true) -> flatten()",
                         inputs="input grid: int[3, 4]"))
    assert "expected rank 1, got rank 2" in checked.error("mask_zero").message


def test_a_mask_neither_enters_nor_leaves_a_block(check):
    blocks = """
block encode(width) {
    embedding(20, width, mask_zero=true)
}
block read(units) {
    lstm(units)
}
"""
    checked = check(spec("""
        y = tokens -> encode(4) -> lstm(2)
        z = tokens -> embedding(20, 4, mask_zero=true) -> read(3)
    """, blocks=blocks))
    assert checked.error("encode", "leave blocks").span.line == checked.line("encode(4)")
    assert checked.error("read", "enter blocks").span.line == checked.line("-> read(3)")


def test_go_backwards_cannot_be_bidirectional(check):
    line = "y = tokens -> embedding(20, 6) -> gru(3, go_backwards=true, bidirectional=true)"
    checked = check(spec(f"        {line}"))
    error = checked.error("go_backwards", "bidirectional")
    assert "expected one of go_backwards and bidirectional, got both" in error.message
    assert error.span.line == checked.line(line)


def test_masks_into_the_layers_of_several_inputs_are_errors_until_they_are_read(check):
    lines = ["e = tokens -> embedding(20, 6, mask_zero=true)",
             "q = tokens -> embedding(20, 6)",
             "c = multihead_attention(q, e, 2)",
             "d = transformer_decoder(q, e, 2, 8)",
             "a = attention(q, e)",
             "y = concat(c, d, a) -> flatten()"]
    checked = check(spec("\n".join(f"        {line}" for line in lines)))
    cross = checked.error("multihead_attention", "cross-attention")
    assert cross.span.line == checked.line(lines[2])
    for line, kind in ((lines[3], "transformer_decoder"), (lines[4], "attention")):
        error = checked.error(kind, "masks of its several inputs")
        assert error.span.line == checked.line(line)


def test_states_are_not_given_with_the_step_loop_s_options_yet(check):
    line = "h, c = x -> lstm(4, dropout=0.2, return_state=true)"
    checked = check(spec(f"        {line}\n        y = add(h, c)", inputs="input x: float[5, 3]"))
    error = checked.error("return_state", "recurrent_dropout or go_backwards")
    assert error.span.line == checked.line(line)
