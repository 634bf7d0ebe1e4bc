"""`specc check --json`: the documented schema, totals equal to the text table's, diagnostics
with their places, exit codes; `specc --version`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

import specc
from specc.cli import EXIT_OK, EXIT_SPEC, main

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "docs" / "check-json.schema.json").read_text(encoding="utf-8"))
SPECS = sorted((ROOT / "specs").glob("*.spec")) + sorted(
    (ROOT / "tests" / "architectures").glob("*.spec")) + [
    ROOT / "tests" / "vocabulary" / f"{name}.spec" for name in ("shared_layers", "encoder_decoder",
                                                               "recurrent_encoder_decoder")]
# "total params: 1,234 (trainable 1,200, non-trainable 34)", optionally after "keras "/"torch "
TOTAL = re.compile(r"^(?:(keras|torch) )?total params: ([\d,]+) \(trainable ([\d,]+), "
                   r"non-trainable ([\d,]+)\)$", re.MULTILINE)


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def number(text: str) -> int:
    return int(text.replace(",", ""))


def test_there_are_specs_to_check():
    assert len(SPECS) >= 10


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_document_follows_the_schema_and_totals_equal_the_table(path, capsys):
    code, out, err = run(capsys, "check", "--json", str(path))
    assert code == EXIT_OK and err == ""
    document = json.loads(out)
    jsonschema.validate(document, SCHEMA)
    assert document["specc"] == specc.__version__
    (entry,) = document["files"]
    assert entry["ok"] and entry["models"]

    code, table, _ = run(capsys, "check", str(path))
    assert code == EXIT_OK
    # the table prints one totals line per model (two when the backends differ), in order
    printed = TOTAL.findall(table)
    expected = []
    for model in entry["models"]:
        totals = model["totals"]["params"]
        for backend in ("tensorflow", "torch"):
            summed = [sum(layer["params"][backend][key] for layer in model["layers"])
                      for key in ("trainable", "non_trainable", "total")]
            assert summed == [totals[backend][key]
                              for key in ("trainable", "non_trainable", "total")]
        differ = totals["tensorflow"] != totals["torch"]
        for backend in ("tensorflow", "torch") if differ else ("tensorflow",):
            count = totals[backend]
            label = {"tensorflow": "keras", "torch": "torch"}[backend] if differ else ""
            expected.append((label, count["total"], count["trainable"], count["non_trainable"]))
        flops = [layer["flops"] for layer in model["layers"]]
        if None not in flops:
            assert model["totals"]["flops"] == sum(flops)
    assert [(label, number(t), number(a), number(b)) for label, t, a, b in printed] == expected


def test_resnet20_layers_carry_kind_place_shape_and_the_published_count(capsys):
    path = ROOT / "tests" / "architectures" / "resnet20.spec"
    code, out, _ = run(capsys, "check", "--json", str(path))
    assert code == EXIT_OK
    (model,) = json.loads(out)["files"][0]["models"]
    # the spec's header: 274,442 parameters, 273,066 of them trainable
    assert model["totals"]["params"]["tensorflow"] == {
        "trainable": 273066, "non_trainable": 1376, "total": 274442}
    kinds = [layer["kind"] for layer in model["layers"]]
    assert kinds.count("conv2d") == 21 and kinds.count("add") == 9
    first = model["layers"][0]
    assert first["kind"] == "conv2d" and first["blocks"] == ["conv_bn_1"]
    # the first layer is conv_bn's conv2d, written 4 spaces in
    conv_line = path.read_text(encoding="utf-8").splitlines().index(
        "    conv2d(filters, 3, stride=stride, padding=same, init=he_normal, l2=weight_decay)")
    assert (first["span"]["file"], first["span"]["line"], first["span"]["column"]) == (
        str(path), conv_line + 1, 5)
    assert first["output_shape"] == [32, 32, 16]
    assert first["params"]["torch"]["total"] == 3 * 3 * 3 * 16 + 16
    assert model["outputs"] == [{"name": model["layers"][-1]["name"], "shape": [10]}]


def test_unknown_dimensions_are_null(tmp_path, capsys):
    path = tmp_path / "seq.spec"
    path.write_text("model seq {\n    input tokens: int[?]\n    layers {\n"
                    "        embedding(100, 8)\n        global_avgpool1d()\n        dense(2)\n"
                    "    }\n}\n", encoding="utf-8")
    code, out, _ = run(capsys, "check", "--json", str(path))
    assert code == EXIT_OK
    document = json.loads(out)
    jsonschema.validate(document, SCHEMA)
    (model,) = document["files"][0]["models"]
    assert model["inputs"] == [{"name": "tokens", "shape": [None], "dtype": "int64"}]
    assert model["layers"][0]["output_shape"] == [None, 8]
    assert model["totals"]["flops"] is None


def test_errors_are_diagnostics_with_places_and_exit_1(tmp_path, capsys):
    broken = tmp_path / "broken.spec"
    broken.write_text("model broken {\n    input x: float[4]\n    layers {\n        dense2(8)\n"
                      "    }\n    loss crossentropy()\n}\n", encoding="utf-8")
    good = ROOT / "specs" / "iris_graph.spec"
    missing = tmp_path / "missing.spec"
    code, out, err = run(capsys, "check", "--json", str(broken), str(good), str(missing))
    assert code == EXIT_SPEC and err == ""
    document = json.loads(out)
    jsonschema.validate(document, SCHEMA)
    bad, ok, unreadable = document["files"]
    assert (bad["ok"], bad["models"]) == (False, [])
    assert [(d["file"], d["line"], d["column"], d["severity"]) for d in bad["diagnostics"]] == [
        (str(broken), 4, 9, "error"), (str(broken), 6, 10, "error")]
    assert bad["diagnostics"][0]["message"].startswith("unknown layer `dense2`")
    assert ok["ok"] and ok["models"][0]["name"]
    (cannot_read,) = unreadable["diagnostics"]
    assert cannot_read["file"] == str(missing) and cannot_read["line"] is None
    assert cannot_read["message"].startswith("cannot read")


def test_warnings_keep_exit_0(tmp_path, capsys):
    path = tmp_path / "warn.spec"
    path.write_text("model warn {\n    input x: float[4]\n    graph {\n"
                    "        unused = x -> dense(3)\n        y = x -> dense(2)\n    }\n"
                    "    output y\n}\n", encoding="utf-8")
    code, out, _ = run(capsys, "check", "--json", str(path))
    assert code == EXIT_OK
    (entry,) = json.loads(out)["files"]
    assert entry["ok"]
    assert [(d["severity"], d["line"]) for d in entry["diagnostics"]] == [("warning", 4)]


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"specc {specc.__version__}\n"
    assert specc.__version__ == "0.1.0"


def test_check_and_runs_load_no_framework_nor_drawing_library(tmp_path):
    spec = ROOT / "specs" / "resnet.spec"
    code = (
        "import sys\n"
        "from specc.cli import main\n"
        f"assert main(['check', {str(spec)!r}]) == 0\n"
        f"assert main(['check', '--json', {str(spec)!r}]) == 0\n"
        f"assert main(['runs', {str(tmp_path)!r}]) == 0\n"
        "heavy = ('torch', 'tensorflow', 'keras', 'matplotlib', 'graphviz', 'jsonschema')\n"
        "print(sorted(name for name in heavy if name in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"
