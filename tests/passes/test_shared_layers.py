"""Shared layers in a `graph`: `let name = call` declares one layer whose weights every step
naming it applies (a siamese pair)."""

from __future__ import annotations

from specc.check_json import model_entry
from specc.report import model_table

SIAMESE = """\
model siamese {
    input left: float[8]
    input right: float[8]
    graph {
        let encoder = dense(16, activation=relu)
        let project = dense(4)
        a = left -> encoder -> project
        b = right -> encoder -> project
        logits = concat(a, b) -> dense(2)
    }
    output logits
}
"""


def test_each_use_is_a_node_and_the_weights_count_once(check):
    model = check(SIAMESE).model
    nodes = model.graph.nodes
    assert [(n.id, n.sharing and (n.sharing.name, n.sharing.first)) for n in nodes] == [
        ("dense_1", ("encoder", "dense_1")),
        ("dense_2", ("project", "dense_2")),
        ("dense_3", ("encoder", "dense_1")),
        ("dense_4", ("project", "dense_2")),
        ("concat_1", None),
        ("dense_5", None),
    ]
    assert [n.reuses for n in nodes] == [False, False, True, True, False, False]
    # Each use reads its own input and has its own output.
    assert nodes[2].inputs == ("right",) and nodes[3].inputs == ("dense_3",)
    assert [n.output.label for n in nodes[:4]] == ["dense_1", "a", "dense_3", "b"]
    # 8*16 + 16, 16*4 + 4 at the first uses, nothing at the later ones, 8*2 + 2 at the end.
    totals = [n.params["torch"].total for n in nodes]
    assert totals == [144, 68, 0, 0, 0, 18]
    assert model.graph.params["torch"].total == model.graph.params["tensorflow"].total == 230
    # The memory estimate counts the parameters once too.
    assert model.memory.parameters == 230 * 4
    # Both uses do the work: the FLOPs are per use.
    assert nodes[2].flops == nodes[0].flops > 0


def test_the_check_table_and_json_say_which_uses_share(check):
    model = check(SIAMESE).model
    table = model_table(model)
    assert "dense (shared encoder)" in table and "dense (shared project)" in table
    assert "total params: 230 " in table
    entry = model_entry(model)
    shared = {layer["id"]: layer.get("shared") for layer in entry["layers"]}
    assert shared["dense_3"] == {"name": "encoder", "first": "dense_1"}
    assert shared["dense_1"] == {"name": "encoder", "first": "dense_1"}
    assert shared["dense_5"] is None
    assert entry["totals"]["params"]["tensorflow"]["total"] == 230


def graph(lines: str, inputs: str = "input left: float[8]\n    input right: float[8]",
          output: str = "y") -> str:
    body = "\n".join(f"        {line.strip()}" for line in lines.strip().splitlines())
    return f"model m {{\n    {inputs}\n    graph {{\n{body}\n    }}\n    output {output}\n}}\n"


def test_a_use_with_other_features_is_an_error_naming_both_uses(check):
    checked = check(graph("""
        let shared = dense(4)
        a = left -> shared
        b = right -> dense(6) -> shared
        y = add(a, b)
    """))
    error = checked.error("shared layer `shared` takes [6] here, but [8] at its first use")
    assert f"line {checked.line('a = left')}" in error.message
    assert "expected the same rank and last dimension" in error.message
    lines = checked.source.splitlines()
    at = checked.line("b = right")
    assert (error.span.line, error.span.column) == (at, lines[at - 1].index("shared") + 1)
    assert error.notes[0][0] == "the first use of `shared`"
    first = checked.line("a = left")
    assert (error.notes[0][1].line, error.notes[0][1].column) == (
        first, lines[first - 1].index("shared") + 1)


def test_a_use_of_another_rank_is_an_error(check):
    checked = check(graph("""
        let shared = dense(4)
        a = left -> shared
        b = right -> reshape([2, 4]) -> shared -> flatten()
        y = concat(a, b)
    """))
    checked.error("shared layer `shared` takes [2, 4] here, but [8]")


def test_an_unknown_step_name_lists_the_shared_layers(check):
    checked = check(graph("""
        let encoder = dense(4)
        a = left -> encodr
        b = right -> encoder
        y = add(a, b)
    """))
    error = checked.error("unknown layer `encodr`")
    assert "did you mean `encoder`?" in error.message and ": encoder)" in error.message
    assert error.span.line == checked.line("a = left")


def test_a_tensor_as_a_step_is_an_error_saying_so(check):
    checked = check(graph("h = left -> dense(4)\ny = right -> dense(4) -> h\nz = add(h, y)",
                          output="z"))
    error = checked.error("`h` is a tensor, not a layer: a step applies a layer")
    assert error.span.line == checked.line("y = right")


def test_a_step_name_without_shared_layers_says_how_to_declare_one(check):
    checked = check(graph("y = left -> encoder", inputs="input left: float[8]"))
    error = checked.error("unknown layer `encoder`")
    assert "declared first: `let encoder = dense(64)`" in error.message


def test_what_cannot_be_shared(check):
    checked = check(graph("""
        let norm = batchnorm()
        let again = dense(4)
        let again = dense(5)
        let a = relu()
        a = left -> again
        b = right -> again
        y = add(a, b)
    """) + "block mlp(n) {\n    dense(n)\n}\n")
    checked.error("`batchnorm` cannot be shared", "running statistics")
    duplicate = checked.error("shared layer `again` is declared twice")
    assert duplicate.notes[0][0] == "first declared here"
    checked.error("`a` names both a shared layer and a tensor")
    block = check(graph("""
        let encoder = mlp(4)
        y = left -> encoder
    """, inputs="input left: float[8]") + "block mlp(n) {\n    dense(n)\n}\n")
    block.error("`let encoder` shares a layer (got block `mlp`")


def test_an_unused_shared_layer_is_a_warning(check):
    checked = check(graph("""
        let spare = dense(4)
        y = left -> dense(2)
    """, inputs="input left: float[8]"))
    assert not checked.errors
    checked.warning("shared layer `spare` is never used")


def test_a_bad_argument_of_a_shared_layer_is_reported_once(check):
    checked = check(graph("""
        let encoder = dense(-4)
        a = left -> encoder
        b = right -> encoder
        y = add(a, b)
    """))
    assert len(checked.errors) == 1
    assert checked.errors[0].span.line == checked.line("let encoder")
