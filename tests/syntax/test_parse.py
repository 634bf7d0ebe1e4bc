"""Every form of LANGUAGE.md parses into the AST it means."""

from __future__ import annotations

import pytest

from specc import ast
from specc.syntax import parse


def model_of(body: str, header: str = "") -> ast.Model:
    """The one model of a file made of `header` and a model whose sections are `body`."""
    (model,) = parse(f"{header}\nmodel m {{\n{body}\n}}\n").models
    return model


def let_value(expr: str) -> ast.Expr:
    return parse(f"let x = {expr}").lets[0].value


# --- values --------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [
    ("3", 3), ("-1", -1), ("0.5", 0.5), ("1e-3", 1e-3), ("2E+2", 200.0), ("-2.5e-1", -0.25),
    (".5", 0.5), ("10.", 10.0),
])
def test_numbers(text, value):
    number = let_value(text)
    assert isinstance(number, ast.Number)
    assert number.value == value
    assert type(number.value) is type(value)  # `3` stays an int, `1e-3` is a float


@pytest.mark.parametrize(("text", "value"), [
    (r'"data/x.npz"', "data/x.npz"),
    (r'"say \"hi\""', 'say "hi"'),
    (r'"C:\\data"', "C:\\data"),
    (r'"two\nlines"', "two\nlines"),
    (r'"tab\tand \u00e9"', "tab\tand é"),
    ('"# not a comment"', "# not a comment"),
])
def test_strings_take_json_escapes(text, value):
    string = let_value(text)
    assert isinstance(string, ast.String)
    assert string.value == value


def test_booleans_none_and_words():
    values = parse("let a = true\nlet b = false\nlet c = none\nlet d = relu").lets
    assert [type(v.value) for v in values] == [ast.Bool, ast.Bool, ast.NoneLit, ast.Name]
    assert [values[0].value.value, values[1].value.value] == [True, False]
    assert values[3].value.name == "relu"


def test_lists_nest_and_allow_a_trailing_comma():
    value = let_value("[3, [1, 2], -4,]")
    assert isinstance(value, ast.ListExpr)
    assert isinstance(value.items[1], ast.ListExpr)
    assert [value.items[0].value, value.items[2].value] == [3, -4]
    assert let_value("[]").items == []


def test_arithmetic_precedence_and_parentheses():
    value = let_value("1 + 2 * (3 - n) // 4 / 5")
    # + at the top; its right side groups * and the divisions to the left.
    assert isinstance(value, ast.BinOp) and value.op == "+"
    right = value.right
    assert right.op == "/" and right.left.op == "//" and right.left.left.op == "*"
    assert right.left.left.right.op == "-"
    assert right.left.left.right.right.name == "n"


def test_subtraction_groups_to_the_left():
    value = let_value("10 - 4 - 3")
    assert value.op == "-" and value.left.op == "-" and value.right.value == 3


def test_negation_of_a_name_and_of_a_group():
    value = let_value("-n * -(a + 1)")
    assert value.op == "*"
    assert isinstance(value.left, ast.Neg) and value.left.operand.name == "n"
    assert isinstance(value.right, ast.Neg) and value.right.operand.op == "+"


def test_comments_are_kept_with_their_place():
    file = parse('# top\nlet a = 1  # trailing\nlet s = "# inside a string"\n')
    assert file.comments == [(1, 1, "# top"), (2, 12, "# trailing")]
    assert file.lets[1].value.value == "# inside a string"


# --- file level ------------------------------------------------------------------------------


def test_import_and_let():
    file = parse('import "layers/common.spec"\nlet width = 64 / 2\n')
    assert file.imports[0].path == "layers/common.spec"
    assert file.lets[0].name == "width" and file.lets[0].value.op == "/"


def test_block_with_sequence_body_and_defaults():
    (block,) = parse("""
block conv_bn(filters, kernel=3, stride=1) {
    conv2d(filters, kernel, stride=stride, padding=same, bias=false)
    batchnorm()
    relu()
}
""").blocks
    assert [p.name for p in block.params] == ["filters", "kernel", "stride"]
    assert block.params[0].default is None and block.params[1].default.value == 3
    assert isinstance(block.body, ast.SequenceBody)
    conv = block.body.calls[0]
    assert [a.name for a in conv.args] == ["filters", "kernel"]
    assert [k.name for k in conv.keywords] == ["stride", "padding", "bias"]
    assert isinstance(conv.keywords[2].value, ast.Bool)


def test_block_with_graph_body():
    (block,) = parse("""
block residual(filters) {
    h = in -> conv_bn(filters) -> conv2d(filters, 3, padding=same, bias=false) -> batchnorm()
    out = add(in, h) -> relu()
}
""").blocks
    assert isinstance(block.body, ast.GraphBody)
    first, second = block.body.bindings
    assert first.target == "h" and first.source.name == "in"
    assert [s.name for s in first.steps] == ["conv_bn", "conv2d", "batchnorm"]
    assert isinstance(second.source, ast.Call) and second.source.name == "add"
    assert [a.name for a in second.source.args] == ["in", "h"]


def test_block_without_parameters():
    (block,) = parse("block head() {\n    flatten()\n    dense(10)\n}").blocks
    assert block.params == [] and len(block.body.calls) == 2


# --- models ----------------------------------------------------------------------------------


def test_inputs_float_int_and_unknown_dims():
    model = model_of("input image: float[28, 28, 1]\ninput tokens: int[?]\nlayers { relu() }")
    image, tokens = model.inputs
    assert (image.name, image.dtype, [d.value for d in image.dims]) == \
        ("image", "float", [28, 28, 1])
    assert tokens.dtype == "int" and isinstance(tokens.dims[0], ast.Unknown)


def test_input_dims_may_be_expressions():
    model = model_of("input x: float[size * 2, ?]\nlayers { relu() }", "let size = 3")
    assert model.inputs[0].dims[0].op == "*"


def test_layers_section_with_repeats():
    model = model_of("""
input x: float[4]
layers {
    dense(64, activation=relu) * 3
    residual(16) * depth
    dense(8) * (n + 1)
    dropout(0.5)
}""")
    calls = model.body.calls
    assert isinstance(model.body, ast.SequenceBody)
    assert calls[0].repeat.value == 3
    assert calls[1].repeat.name == "depth"
    assert calls[2].repeat.op == "+"
    assert calls[3].repeat is None


def test_graph_section_chains_merges_rebinding_and_outputs():
    model = model_of("""
input image: float[8, 8, 3]
graph {
    h = image -> conv2d(16, 3, padding=same) -> batchnorm() -> relu()
    h = h -> residual(16) * 2 -> relu()
    y = concat(h, image, axis=-1)
    logits = add(h, y) -> global_avgpool2d() -> dense(10)
    value = y
}
output logits, value""")
    bindings = model.body.bindings
    assert [b.target for b in bindings] == ["h", "h", "y", "logits", "value"]
    assert bindings[1].steps[0].repeat.value == 2
    assert bindings[2].source.keywords[0].value.value == -1 and bindings[2].steps == []
    assert bindings[4].source.name == "y"
    assert [o.name for o in model.outputs] == ["logits", "value"]


def test_single_loss_and_per_output_losses():
    single = model_of("input x: float[4]\nlayers { dense(1) }\nloss cross_entropy()")
    assert single.losses[0].output is None and single.losses[0].call.name == "cross_entropy"
    several = model_of("input x: float[4]\nlayers { dense(1) }\n"
                       "loss logits: cross_entropy(label_smoothing=0.1), value: mse(weight=0.5)")
    assert [(t.output, t.call.name) for t in several.losses] == \
        [("logits", "cross_entropy"), ("value", "mse")]


def test_optimizer_with_schedule_call():
    model = model_of("input x: float[4]\nlayers { dense(1) }\n"
                     "optimizer sgd(lr=0.1, momentum=0.9, schedule=step(10, gamma=0.5))")
    schedule = model.optimizer.keywords[2].value
    assert model.optimizer.name == "sgd"
    assert isinstance(schedule, ast.Call) and schedule.name == "step"
    assert schedule.args[0].value == 10


def test_metrics_bare_and_call_forms():
    model = model_of("input x: float[4]\nlayers { dense(1) }\n"
                     "metrics accuracy, top_k_accuracy(k=5), f1")
    assert [m.name for m in model.metrics] == ["accuracy", "top_k_accuracy", "f1"]
    assert model.metrics[0].args == [] and model.metrics[1].keywords[0].value.value == 5


def test_data_augment_and_train_sections():
    model = model_of("""
input image: float[28, 28, 1]
layers { flatten() }
data mnist(path="data/mnist.npz", validation=0.1)
augment {
    random_flip(horizontal)
    random_crop(28, 4)
}
train {
    backend = torch          # or tensorflow
    device = cuda
    epochs = 10
    grad_clip = 1.0
    early_stopping(monitor=val_loss, patience=5)
    checkpoint(every=1, keep=3)
}""")
    assert model.data.name == "mnist" and model.data.keywords[0].value.value == "data/mnist.npz"
    assert [c.name for c in model.augment] == ["random_flip", "random_crop"]
    settings = {s.key: s.value for s in model.settings}
    assert settings["backend"].name == "torch" and settings["epochs"].value == 10
    assert isinstance(settings["early_stopping"], ast.Call)
    assert settings["checkpoint"].keywords[1].value.value == 3


def test_sections_are_recorded_in_order():
    model = model_of("input x: float[4]\nlayers { dense(1) }\nloss mse()\noptimizer adam()")
    assert [s.keyword for s in model.sections] == ["input", "layers", "loss", "optimizer"]


def test_newlines_are_plain_whitespace():
    model = model_of("input x: float[4] layers { dense(\n8,\nactivation=relu) dense(1) }")
    assert [c.name for c in model.body.calls] == ["dense", "dense"]


@pytest.mark.parametrize("name", ["class", "lambda", "torch", "np", "tf", "self", "def",
                                  "import_", "F", "nn", "in_"])
def test_python_keywords_and_modules_are_valid_names(name):
    model = model_of(f"""
input {name}: float[4]
graph {{
    lambda = {name} -> dense(4)
    {name}_2 = lambda -> relu()
}}
output {name}_2""", f"let {name}_width = 4")
    assert model.inputs[0].name == name
    assert model.body.bindings[0].target == "lambda"


def test_spans_point_at_the_source():
    file = parse("let a = 1\nmodel net {\n    input x: float[4]\n    layers { dense(1) }\n}\n")
    model = file.models[0]
    assert (model.name_span.line, model.name_span.column) == (2, 7)
    call = model.body.calls[0]
    assert (call.span.line, call.span.column, call.span.end_column) == (4, 14, 22)
    assert (call.name_span.column, call.name_span.end_column) == (14, 19)
