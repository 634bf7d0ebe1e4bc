"""`specc graph`: the drawn model names its layers, carries shapes on its edges, folds or
expands blocks, and says how to install Graphviz when `dot` is missing."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import specc
from specc.cli import EXIT_OK, EXIT_SPEC, EXIT_USAGE, main
from specc.graph import LEFT_TO_RIGHT_MAX_NODES, draw, layer_call

ROOT = Path(__file__).resolve().parent.parent
RESNET20 = ROOT / "tests" / "architectures" / "resnet20.spec"
RESNET = ROOT / "specs" / "resnet.spec"
SVG = "{http://www.w3.org/2000/svg}"


def drawn(svg: Path) -> dict[str, list[str]]:
    """The texts of an SVG that Graphviz drew, by kind of element: node, edge, cluster."""
    texts: dict[str, list[str]] = {"node": [], "edge": [], "cluster": []}
    for group in ET.parse(svg).getroot().iter(f"{SVG}g"):
        kind = group.get("class")
        if kind in texts:
            texts[kind].append("\n".join(t.text or "" for t in group.iter(f"{SVG}text")))
    return texts


def graph(tmp_path: Path, capsys, spec: Path, name: str, *options: str) -> Path:
    out = tmp_path / name
    assert main(["graph", str(spec), "-o", str(out), *options]) == EXIT_OK
    assert capsys.readouterr().out == f"{out}\n"
    return out


def test_resnet20_expanded_names_every_layer_and_carries_shapes(tmp_path, capsys):
    texts = drawn(graph(tmp_path, capsys, RESNET20, "resnet20.svg", "--expand"))
    kinds = [text.split("(")[0] for text in texts["node"]]
    assert kinds.count("conv2d") == 21 and kinds.count("batchnorm") == 19
    assert kinds.count("add") == 9 and kinds.count("dense") == 1
    # the input and the output are nodes of their own
    assert "image\n[32, 32, 3]" in texts["node"] and "output dense_1" in texts["node"]
    # each stage's shape on the edges, the first conv's parameters on its node
    for shape in ("[32, 32, 3]", "[32, 32, 16]", "[16, 16, 32]", "[8, 8, 64]", "[64]", "[10]"):
        assert shape in texts["edge"]
    assert "conv2d(16, 3, padding=same, l2=0.0001,\ninit=he_normal)\nconv2d_1: 448 params" in (
        texts["node"])
    # every layer has an edge in: one per input, 2 for each add
    layer_inputs = sum(2 if kind == "add" else 1 for kind in kinds if kind not in (
        "image\n[32, 32, 3]", "output dense_1"))
    assert len(texts["edge"]) == layer_inputs + 1  # + the edge into the output
    # a conv_bn before the stages; 3 residuals holding 2 conv_bn each; 2 stages, each
    # holding 3 residual blocks (the first a downsampling one) of 2 conv_bn each
    assert len(texts["cluster"]) == 1 + 3 * (1 + 2) + 2 * (1 + 3 * (1 + 2))
    assert any(text.startswith("stage_1: stage(filters=32)") for text in texts["cluster"])


def test_blocks_are_folded_to_one_node_unless_expanded(tmp_path, capsys):
    texts = drawn(graph(tmp_path, capsys, RESNET20, "folded.svg"))
    assert texts["cluster"] == []
    assert [text.split("\n")[0] for text in texts["node"]] == [
        "image", "conv_bn(filters=16, stride=1)", "relu()", "residual(filters=16)",
        "residual(filters=16)", "residual(filters=16)", "stage(filters=32)",
        "stage(filters=64)", "avgpool2d(8)", "flatten()", "dense(10, activation=softmax)",
        "output dense_1"]
    assert "stage(filters=64)\nstage_2: 206,784 params" in texts["node"]
    assert "[16, 16, 32]" in texts["edge"]


def test_residual_spec_shows_the_add_of_a_projection_shortcut(tmp_path, capsys):
    texts = drawn(graph(tmp_path, capsys, RESNET, "resnet.svg", "--expand"))
    assert "conv2d(32, 1, stride=2, bias=false)\nconv2d_1: 512 params" in texts["node"]
    assert "batchnorm()\nshortcut = batchnorm_1: 128 params" in texts["node"]
    assert sum(text.startswith("add()") for text in texts["node"]) == 4
    assert "[4, 4, 32]" in texts["edge"] and "[8, 8, 16]" in texts["edge"]


def test_png_and_pdf_are_drawn(tmp_path, capsys):
    png = graph(tmp_path, capsys, RESNET, "resnet.png")
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    pdf = graph(tmp_path, capsys, RESNET, "resnet.pdf")
    assert pdf.read_bytes().startswith(b"%PDF")


def test_long_chains_run_top_to_bottom_short_ones_left_to_right(tmp_path):
    long_model = specc.load(RESNET).models[0]
    assert 'rankdir=TB' in draw(long_model, expand=True).source
    path = tmp_path / "short.spec"
    path.write_text("model short {\n    input x: float[4]\n    layers {\n"
                    "        dense(8, activation=relu)\n        dense(3)\n    }\n}\n",
                    encoding="utf-8")
    short = specc.load(path).models[0]
    assert len(short.graph.nodes) <= LEFT_TO_RIGHT_MAX_NODES
    assert 'rankdir=LR' in draw(short).source


def test_layer_calls_read_as_the_spec_writes_them():
    model = specc.load(RESNET).models[0]
    layers = [node.layer for _, node in model.graph.walk()]
    assert layer_call(layers[0]) == "conv2d(16, 3, padding=same, bias=false)"
    assert layer_call(layers[1]) == "batchnorm()"
    assert layer_call(layers[-1]) == "dense(10)"


def test_several_inputs_outputs_and_a_chosen_model(tmp_path, capsys):
    spec = tmp_path / "two.spec"
    spec.write_text(
        "model first {\n    input x: float[4]\n    layers {\n        dense(2)\n    }\n}\n"
        "model second {\n    input a: float[4]\n    input b: float[4]\n    graph {\n"
        "        h = concat(a, b) -> dense(8)\n        p = h -> dense(3)\n"
        "        v = h -> dense(1)\n    }\n    output p, v\n}\n", encoding="utf-8")
    texts = drawn(graph(tmp_path, capsys, spec, "second.svg", "--model", "second"))
    assert {"a\n[4]", "b\n[4]", "output p", "output v"} <= set(texts["node"])
    assert texts["edge"].count("[4]") == 2 and texts["edge"].count("[8]") == 3
    assert main(["graph", str(spec), "--model", "third", "-o", str(tmp_path / "x.svg")]) == (
        EXIT_SPEC)
    assert "no model `third`" in capsys.readouterr().err


def test_file_names_reach_the_picture_quoted(tmp_path, capsys):
    spec = tmp_path / 'odd "name" \\ here.spec'
    spec.write_text(RESNET.read_text(encoding="utf-8"), encoding="utf-8")
    texts = drawn(graph(tmp_path, capsys, spec, "odd.svg"))
    assert any("conv_bn(filters=16, stride=1)" in text for text in texts["node"])


def test_without_dot_the_dot_text_is_written_and_pictures_say_how_to_install(
        tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    dot = graph(tmp_path, capsys, RESNET, "resnet.dot")
    source = dot.read_text(encoding="utf-8")
    assert source.startswith("digraph resnet {") and "add()" not in source  # folded
    assert "residual_1 -> residual_2 [label=\"[8, 8, 16]\"]" in source
    code = main(["graph", str(RESNET), "-o", str(tmp_path / "resnet.svg")])
    err = capsys.readouterr().err
    assert code == EXIT_SPEC and not (tmp_path / "resnet.svg").exists()
    assert err.startswith("specc graph: drawing .svg needs Graphviz's `dot` program")
    assert "apt-get install graphviz" in err and "Traceback" not in err


def test_an_unknown_output_format_is_a_usage_error(tmp_path, capsys):
    assert main(["graph", str(RESNET), "-o", str(tmp_path / "resnet.jpeg")]) == EXIT_USAGE
    assert "-o must end with one of .svg, .png, .pdf, .dot" in capsys.readouterr().err


def test_the_default_output_is_the_model_name_as_svg(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["graph", str(RESNET)]) == EXIT_OK
    assert capsys.readouterr().out == "resnet.svg\n"
    assert ET.parse(tmp_path / "resnet.svg").getroot().tag == f"{SVG}svg"


def test_a_spec_with_errors_draws_nothing_and_exits_1(tmp_path, capsys):
    spec = tmp_path / "broken.spec"
    spec.write_text("model broken {\n    input x: float[4]\n    layers {\n        dense2(8)\n"
                    "    }\n}\n", encoding="utf-8")
    assert main(["graph", str(spec), "-o", str(tmp_path / "b.svg")]) == EXIT_SPEC
    assert f"{spec}:4:9: error: unknown layer `dense2`" in capsys.readouterr().err
    assert not (tmp_path / "b.svg").exists()


def test_without_the_graphviz_package_the_error_says_which_extra(tmp_path, capsys,
                                                                 monkeypatch):
    monkeypatch.delitem(sys.modules, "specc.graph", raising=False)
    monkeypatch.setitem(sys.modules, "graphviz", None)  # makes `import graphviz` fail
    assert main(["graph", str(RESNET), "-o", str(tmp_path / "r.svg")]) == EXIT_SPEC
    assert "pip install 'specc[viz]'" in capsys.readouterr().err


def test_parameters_that_differ_by_backend_show_both(tmp_path, capsys):
    spec = tmp_path / "rnn.spec"
    spec.write_text("model rnn {\n    input x: float[5, 3]\n    layers {\n        lstm(4)\n"
                    "        dense(1)\n    }\n}\n", encoding="utf-8")
    texts = drawn(graph(tmp_path, capsys, spec, "rnn.svg"))
    # Keras's LSTM has one bias of 4 gates x 4 units; PyTorch's a second one
    assert "lstm(4)\nlstm_1: keras 128 / torch 144 params" in texts["node"]
    assert "dense(1)\ndense_1: 5 params" in texts["node"]


def test_a_shared_layer_is_drawn_at_each_use_joined_to_its_first(tmp_path, capsys):
    spec = tmp_path / "siamese.spec"
    spec.write_text(
        "model siamese {\n    input l: float[4]\n    input r: float[4]\n    graph {\n"
        "        let enc = dense(8)\n        a = l -> enc\n        b = r -> enc\n"
        "        y = add(a, b) -> dense(1)\n    }\n    output y\n}\n", encoding="utf-8")
    out = graph(tmp_path, capsys, spec, "siamese.svg")
    texts = drawn(out)
    assert "enc: dense(8)\na = dense_1: 40 params" in texts["node"]
    assert "enc: dense(8)\nb = dense_2: the weights of dense_1" in texts["node"]
    # the line between the two uses: dashed, without an arrow head or a shape
    joins = [g for g in ET.parse(out).getroot().iter(f"{SVG}g") if g.get("class") == "edge"
             and (g.find(f"{SVG}title").text or "") == "dense_1->dense_2"]
    assert len(joins) == 1
    assert joins[0].find(f"{SVG}path").get("stroke-dasharray")
    assert joins[0].find(f"{SVG}polygon") is None


def test_a_layer_s_states_leave_it_on_edges_of_their_own(tmp_path, capsys):
    spec = tmp_path / "states.spec"
    spec.write_text(
        "model states {\n    input x: float[7, 3]\n    graph {\n"
        "        seq, h, c = x -> lstm(6, return_sequences=true, return_state=true)\n"
        "        y = seq -> lstm(6, initial_state=[h, c])\n    }\n    output y\n}\n",
        encoding="utf-8")
    texts = drawn(graph(tmp_path, capsys, spec, "states.svg"))
    # x into lstm_1; its sequence, h and c into lstm_2; lstm_2 into the output
    assert sorted(texts["edge"]) == sorted(["[7, 3]", "[7, 6]", "[6]", "[6]", "[6]"])
