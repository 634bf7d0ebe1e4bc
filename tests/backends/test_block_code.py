"""One class (PyTorch) or function (Keras) per spec block: `block_code.share`, which writes
the code of a block's uses once, and what the generated model.py files hold for it."""

from __future__ import annotations

import ast
from pathlib import Path

import specc
from specc.backends.common.block_code import Use, share, tokens
from specc.backends.common.code import call, keeping_defaults, unless
from specc.backends.naming import pascal_case
from specc.backends.tensorflow import model_gen as keras_gen
from specc.backends.torch import model_gen as torch_gen

ROOT = Path(__file__).resolve().parents[2]
CONV = {"nn.Conv2d": ("in_channels", "out_channels")}


def conv(in_channels: int, filters: int, stride: int) -> str:
    with keeping_defaults():
        return call("nn.Conv2d", in_channels, filters, kernel_size=3, stride=unless(stride, 1),
                    bias=unless(False, True))


# --- share ---------------------------------------------------------------------------------


def test_numbers_that_differ_become_parameters_named_after_the_block_s_own() -> None:
    uses = [
        Use([[conv(1, 16, 1)]], ["(B, 16, 8, 8)"], {"filters": 16, "stride": 1}),
        Use([[conv(16, 32, 2)]], ["(B, 32, 4, 4)"], {"filters": 32, "stride": 2}),
        Use([[conv(32, 32, 1)]], ["(B, 32, 4, 4)"], {"filters": 32, "stride": 1}),
    ]
    (definition,) = share(uses, CONV)
    assert definition.members == [0, 1, 2]
    # `in_channels` is no argument of the block: the call's own parameter names it.
    assert definition.params == ["in_channels", "filters", "stride"]
    assert definition.render(0) == [
        "nn.Conv2d(in_channels, filters, kernel_size=3, stride=stride, bias=False)"
    ]
    assert definition.arguments == [
        {"in_channels": "1", "filters": "16", "stride": "1"},
        {"in_channels": "16", "filters": "32", "stride": "2"},
        {"in_channels": "32", "filters": "32", "stride": "1"},
    ]
    # A comment's number that differs is the parameter with those values, else `?`.
    assert definition.comments == ["(B, filters, ?, ?)"]


def test_a_default_every_use_keeps_is_left_out_and_one_they_agree_on_is_written() -> None:
    uses = [Use([[conv(4, 8, 1)]], [""], {"n": 1}), Use([[conv(4, 8, 1)]], [""], {"n": 2})]
    (definition,) = share(uses, CONV)
    assert definition.params == []
    assert definition.render(0) == ["nn.Conv2d(4, 8, kernel_size=3, bias=False)"]
    # One use alone: its code as `unless` writes it outside a block.
    assert share(uses[:1], CONV)[0].render(0) == [call(
        "nn.Conv2d", 4, 8, kernel_size=3, stride=unless(1, 1), bias=unless(False, True)
    )]


def test_uses_that_differ_in_more_than_literals_are_variants() -> None:
    uses = [
        Use([["x = F.relu(x)"]], [""], {}),
        Use([["x = F.gelu(x)"]], [""], {}),
        Use([["x = F.relu(x)"]], [""], {}),
    ]
    definitions = share(uses, CONV)
    assert [d.members for d in definitions] == [[0, 2], [1]]


def test_a_parameter_spelled_where_it_is_read() -> None:
    uses = [Use([["p = 1"], ["F.pad(x, (0, 1, 0, 1))"]], ["", ""], {}),
            Use([["p = 1"], ["F.pad(x, (1, 1, 1, 1))"]], ["", ""], {})]
    (definition,) = share(uses, {"F.pad": ("x", "padding")})
    # A tuple of numbers is one value: its length belongs to the padding, not the code.
    assert definition.params == ["padding"]
    assert definition.render(1, lambda p: f"self.{p}") == ["F.pad(x, self.padding)"]
    assert definition.used_in(0) == [] and definition.used_in(1) == ["padding"]
    assert [t.kind for t in tokens("f(x, [3, 3])")][-2] == "literal"


# --- resnet's model.py ---------------------------------------------------------------------


def resnet():
    model = specc.load(ROOT / "specs" / "resnet.spec").models[0]
    blocks = {node.block for path, node in _block_nodes(model.graph)}
    assert blocks == {"conv_bn", "residual", "downsample"}
    return model, blocks


def _block_nodes(graph, path=()):
    for node in graph.nodes:
        if hasattr(node, "body"):
            yield path, node
            yield from _block_nodes(node.body, (*path, node.id))


def _constructor_calls(tree: ast.Module, name: str) -> list[dict[str, object]]:
    return [
        {k.arg: ast.literal_eval(k.value) for k in node.keywords
         if isinstance(k.value, ast.Constant)}
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        and node.func.id == name
    ]


def test_resnet_has_one_pytorch_class_per_block() -> None:
    model, blocks = resnet()
    tree = ast.parse(torch_gen.render_model(model))
    classes = [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
    expected = {pascal_case(block) for block in blocks}
    assert sorted(classes) == sorted([*expected, torch_gen.model_class_name(model)])
    # residual(16) and residual(32): one class, built by two calls with their arguments.
    assert sorted(c["filters"] for c in _constructor_calls(tree, "Residual")) == [16, 32]
    # conv_bn with stride 1 and 2: one class, whose calls pass the stride.
    strides = {c["stride"] for c in _constructor_calls(tree, "ConvBn") if "stride" in c}
    assert strides == {1, 2}
    (conv_bn,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ConvBn"]
    init = next(f for f in conv_bn.body if isinstance(f, ast.FunctionDef)
                and f.name == "__init__")
    assert [a.arg for a in init.args.args][:4] == ["self", "in_channels", "filters", "stride"]


def test_resnet_has_one_keras_function_per_block() -> None:
    model, blocks = resnet()
    tree = ast.parse(keras_gen.render_model(model))
    functions = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    assert sorted(functions) == sorted([*blocks, keras_gen.BUILDER])
    (conv_bn,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "conv_bn"]
    assert [a.arg for a in conv_bn.args.args] == ["x", "filters", "stride", "name"]
    assert sorted(c["filters"] for c in _constructor_calls(tree, "residual")) == [16, 32]
    assert {c["stride"] for c in _constructor_calls(tree, "conv_bn") if "stride" in c} == {1, 2}


def test_repeats_are_a_module_list_and_a_loop() -> None:
    model, _ = resnet()  # residual(16) * 2
    torch_source = torch_gen.render_model(model)
    assert "self.residual_blocks = nn.ModuleList(Residual(filters=16) for _ in range(2))" in (
        torch_source
    )
    names = [entry.name for entry in torch_gen.manifest(model).entries]
    assert "residual_blocks.1.conv_bn_2.batchnorm_1" in names
    keras_source = keras_gen.render_model(model)
    assert 'for i in range(1, 3):\n        x = residual(x, filters=16, name=f"residual_{i}")' in (
        keras_source
    )
    # Keras keeps its layer names: residual_2's layers are still named after it.
    keras_names = [entry.name for entry in keras_gen.manifest(model).entries]
    assert "residual_2__conv_bn_2__batchnorm_1" in keras_names


def test_comments_on_shapes_of_different_ranks_say_less_rather_than_wrong() -> None:
    uses = [Use([["x = f(x)"]], ["takes (B, 9, 3) and returns (B, 9, 8)"], {}),
            Use([["x = f(x)"]], ["takes (B, 36) and returns (B, 3)"], {})]
    assert share(uses, {})[0].comments == ["takes (B, ...) and returns (B, ...)"]
    uses[1].comments = ["other words (B, 3)"]
    assert share(uses, {})[0].comments == [""]


def test_a_value_equal_to_its_default_is_left_out_whatever_its_spelling() -> None:
    with keeping_defaults():
        penalty = call("L1L2", l1=unless(0.0, 0), l2=unless(1e-4, 0))
    assert share([Use([[penalty]], [""], {})], {})[0].render(0) == ["L1L2(l2=0.0001)"]


def test_repeats_inside_a_block_loop_too() -> None:
    model = specc.load(ROOT / "tests" / "architectures" / "resnet20.spec").models[0]
    torch_source = torch_gen.render_model(model)
    stage = torch_source[torch_source.index("class Stage(") :]
    assert "self.residual_blocks = nn.ModuleList(Residual(filters=filters) for _ in range(2))" in (
        stage
    )
    keras_source = keras_gen.render_model(model)
    stage = keras_source[keras_source.index("def stage(") :]
    assert 'for i in range(1, 3):\n        x = residual(x, filters=filters, name=f"{name}__' \
        'residual_{i}")' in stage
    # Per-use numbers a class could compute itself never reach it: no initializer's std.
    assert "std" not in torch_source.split("class ConvBn(")[1].split("class ")[0]
