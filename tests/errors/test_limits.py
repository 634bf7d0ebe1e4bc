"""Inputs that once crashed or hung the front end (issue 8, items 2 and 3): each is answered
with exit code 1 and an error at its place, naming the limit it passes, well within time.

The commands run in this process through the command line's entry function, as in
`test_no_internal_error.py`; the time bounds are loose enough for a slow, shared machine and
tight enough that the quadratic or exponential behaviour they replace would fail them."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from specc.cli import EXIT_SPEC, main
from specc.limits import MAX_LAYERS, MAX_PRINTED_DIAGNOSTICS, MAX_SOURCE_BYTES

MODEL = "model m {\n    input x: float[4]\n    layers { dense(1) }\n}\n"


def _run(command: str, path: Path, capsys, seconds: float) -> str:
    started = time.perf_counter()
    code = main([command, str(path)])
    elapsed = time.perf_counter() - started
    output = capsys.readouterr()
    text = output.out + output.err
    assert code == EXIT_SPEC, text[-3000:]
    assert "Traceback" not in text and "internal error" not in text, text[-3000:]
    assert elapsed < seconds, f"{command} took {elapsed:.1f} s"
    return text


def _error_at(text: str, path: Path, line: int, message: str) -> None:
    pattern = rf"^{re.escape(str(path))}:{line}:\d+: error: .*{re.escape(message)}"
    assert re.search(pattern, text, re.MULTILINE), text[-3000:]


# (name, spec text, line of the error, a substring of its message). The first are errors of
# the parser, which `specc fmt` reports as `specc check` does; the others are the checker's.
SYNTAX_CASES = [
    ("long_integer", f"model m {{\n input x: float[4]\n layers {{ dense(1{'0' * 330}) }}\n}}\n",
     3, "the limit of a number's digits"),
    ("int_string_limit", f"let n = 1{'0' * 5000}\n{MODEL}", 1, "the limit of a number's digits"),
    ("integer_beyond_int64", f"let n = 9223372036854775808\n{MODEL}", 1,
     "the limit of numbers"),
    ("infinite_float", "model m {\n input x: float[4]\n layers { dense(1) }\n"
     " optimizer sgd(lr=1e999)\n}\n", 4, "expected a finite float"),
    ("nul_in_import", f'import "a\\u0000b.spec"\n{MODEL}', 1, "NUL"),
    ("nul_in_data_path", "model m {\n input x: float[4]\n layers { dense(1) }\n"
     ' data npz(path="a\\u0000b.npz")\n}\n', 4, "NUL"),
    ("lone_surrogate", "model m {\n input x: float[4]\n layers { dense(1) }\n"
     ' data npz(path="\\ud800")\n}\n', 4, "lone surrogate"),
    ("deep_lists", f"let a = {'[' * 500}1{']' * 500}\n{MODEL}", 1, "the limit of nesting"),
    ("long_sum", f"let a = {' + '.join(['1'] * 5000)}\n{MODEL}", 1, "the limit of nesting"),
    ("deep_negation", f"let a = {'-(' * 500}1{')' * 500}\n{MODEL}", 1, "the limit of nesting"),
    ("deep_calls", "model m {\n input x: float[4]\n layers { dense(1, activation="
     f"{'f(' * 500}{')' * 500}) }}\n}}\n", 3, "the limit of nesting"),
]
CHECK_CASES = [
    (
        "rebound_input",
        "model m {\n input y: float[4]\n input x: float[4]\n"
        " graph { y = x -> dense(1) }\n output y\n}\n",
        2,
        "input `y` is never used",
    ),
    ("float_overflow_in_let", f"let big = 1e300 * 1e300\n{MODEL}", 1, "expected a finite float"),
    ("let_squaring", "let a0 = 2\n" + "".join(f"let a{i} = a{i - 1} * a{i - 1}\n"
                                              for i in range(1, 41)) + MODEL,
     7, "the limit of numbers"),
    ("huge_repeat", "model m {\n input x: float[4]\n layers { dense(4) * 1000000000 }\n}\n",
     3, "the limit of layers in a file"),
    ("block_doubling", "block b0() { dense(4) }\n"
     + "".join(f"block b{i}() {{ b{i - 1}() b{i - 1}() }}\n" for i in range(1, 21))
     + "model m {\n input x: float[4]\n layers { b20() }\n}\n",
     24, "the limit of layers in a file"),
    ("blocks_nested_deep", "block b0() { dense(4) }\n"
     + "".join(f"block b{i}() {{ b{i - 1}() }}\n" for i in range(1, 150))
     + "model m {\n input x: float[4]\n layers { b149() }\n}\n",
     51, "the limit of nesting"),
    ("long_import", f'import "{"a" * 300}.spec"\n{MODEL}', 1, "the limit of file systems"),
    ("device_import", f'import "/dev/zero"\n{MODEL}', 1, "not a regular file"),
    ("directory_import", f'import "/tmp"\n{MODEL}', 1, "is a directory"),
    ("long_data_path", "model m {\n input x: float[4]\n layers { dense(1) }\n"
     f' data npz(path="{"a" * 300}.npz")\n}}\n', 4, "the limit of file systems"),
    ("huge_tensor", "model m {\n input x: float[4000000000, 4000000000, 4000000000]\n"
     " layers { flatten() }\n}\n", 3, "the limit of counts"),
]


@pytest.mark.parametrize("command", ["check", "fmt"])
@pytest.mark.parametrize(("name", "text", "line", "message"), SYNTAX_CASES,
                         ids=[c[0] for c in SYNTAX_CASES])
def test_syntax_limit_is_a_located_error(tmp_path, capsys, command, name, text, line, message):
    path = tmp_path / f"{name}.spec"
    path.write_text(text, encoding="utf-8")
    _error_at(_run(command, path, capsys, seconds=5), path, line, message)
    assert path.read_text(encoding="utf-8") == text  # fmt leaves what it cannot parse


@pytest.mark.parametrize(("name", "text", "line", "message"), CHECK_CASES,
                         ids=[c[0] for c in CHECK_CASES])
def test_check_limit_is_a_located_error(tmp_path, capsys, name, text, line, message):
    path = tmp_path / f"{name}.spec"
    path.write_text(text, encoding="utf-8")
    _error_at(_run("check", path, capsys, seconds=5), path, line, message)


def test_data_path_fails_at_check_not_at_compile(tmp_path, capsys):
    path = tmp_path / "nul.spec"
    path.write_text("model m {\n input x: float[4]\n layers { dense(1) }\n"
                    f' data csv(path="{"b" * 300}.csv", target="y")\n}}\n', encoding="utf-8")
    _error_at(_run("compile", path, capsys, seconds=5), path, 4, "the data path")


@pytest.mark.parametrize("count", [5_000, 100_000])
def test_unbalanced_braces_are_linear(tmp_path, capsys, count):
    path = tmp_path / "braces.spec"
    path.write_text("model m {\n" + "{\n" * count, encoding="utf-8")
    output = _run("check", path, capsys, seconds=5)
    assert output.count(": error: ") <= 21


def test_one_line_of_stray_words_is_linear(tmp_path, capsys):
    path = tmp_path / "words.spec"
    path.write_text("model " * 50_000, encoding="utf-8")
    _run("check", path, capsys, seconds=5)


def test_many_errors_are_linear_and_capped(tmp_path, capsys):
    path = tmp_path / "zeros.spec"
    path.write_text("model m {\n input x: float[4]\n layers {\n" + " dense(0)\n" * 4000 + "}\n}\n",
                    encoding="utf-8")
    output = _run("check", path, capsys, seconds=5)
    assert output.count(": error: ") == MAX_PRINTED_DIAGNOSTICS
    assert f"and {4000 - MAX_PRINTED_DIAGNOSTICS} more errors not shown" in output
    assert f"{path}: 4000 errors" in output


def test_layer_limit_counts_expanded_layers(tmp_path, capsys):
    """The limit is on layers as expanded: two repeats under it can pass it together."""
    half = MAX_LAYERS // 2 + 1
    path = tmp_path / "two.spec"
    path.write_text(f"model m {{\n input x: float[4]\n layers {{\n dense(4) * {half}\n"
                    f" dense(4) * {half}\n }}\n}}\n", encoding="utf-8")
    _error_at(_run("check", path, capsys, seconds=10), path, 5, "the limit of layers")


@pytest.mark.parametrize("command", ["check", "fmt"])
def test_invalid_utf8_is_located(tmp_path, capsys, command):
    path = tmp_path / "latin1.spec"
    path.write_bytes(b"model m {\n input x: float[4]  # caf\xe9\n layers { dense(1) }\n}\n")
    _error_at(_run(command, path, capsys, seconds=5), path, 2, "is not UTF-8 text")



@pytest.mark.parametrize("command", ["check", "fmt"])
@pytest.mark.parametrize("target", ["/dev/zero", "folder"])
def test_a_spec_that_is_no_regular_file(tmp_path, capsys, command, target):
    path = tmp_path / target if target == "folder" else Path(target)
    if target == "folder":
        path.mkdir()
    started = time.perf_counter()
    code = main([command, str(path)])
    output = capsys.readouterr().err
    assert code == EXIT_SPEC and time.perf_counter() - started < 5
    assert f"cannot read {path}: it is " in output and "Traceback" not in output


def test_a_spec_over_the_size_limit(tmp_path, capsys):
    path = tmp_path / "big.spec"
    path.write_text(MODEL + "# " + "x" * MAX_SOURCE_BYTES + "\n", encoding="utf-8")
    code = main(["check", str(path)])
    assert code == EXIT_SPEC
    assert "the limit of a source's size" in capsys.readouterr().err


def test_fmt_goes_on_after_a_file_in_error(tmp_path, capsys):
    broken, messy = tmp_path / "broken.spec", tmp_path / "messy.spec"
    broken.write_bytes(b"model m {\xff\n")
    messy.write_text("model m {\ninput x: float[4]\n  layers { dense(1) }\n}\n", encoding="utf-8")
    assert main(["fmt", str(broken), str(messy)]) == EXIT_SPEC
    output = capsys.readouterr()
    assert f"{broken}:1:10: error: " in output.err
    assert f"reformatted {messy}" in output.out
    assert messy.read_text(encoding="utf-8").startswith("model m {\n    input x: float[4]\n")


def test_layer_limit_is_per_file_not_per_model(tmp_path, capsys):
    """Many models each under the limit are no way around it."""
    half = MAX_LAYERS // 2 + 1
    models = "".join(f"model m{i} {{\n input x: float[4]\n layers {{ dense(4) * {half} }}\n}}\n"
                     for i in range(2))
    path = tmp_path / "models.spec"
    path.write_text(models, encoding="utf-8")
    _error_at(_run("check", path, capsys, seconds=10), path, 7, "the limit of layers in a file")
