"""The `specc` command: the check table, exit codes, `specc fmt`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from specc.backends.common.program import PROGRAM_FILES
from specc.cli import EXIT_OK, EXIT_SPEC, EXIT_USAGE, main

SMALL = """model small {
    input x: float[4]
    layers {
        dense(8, activation=relu)
        dropout(0.1)
        dense(3)
    }
    loss cross_entropy()
}
"""
BROKEN = """model broken {
    input x: float[4]
    layers {
        dense2(8)
    }
    loss crossentropy()
}
"""


@pytest.fixture
def spec(tmp_path: Path):
    def write(text: str, name: str = "m.spec") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_check_prints_a_row_per_layer_and_totals(spec, capsys):
    code, out, err = run(capsys, "check", str(spec(SMALL)))
    assert code == EXIT_OK and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("model small (")
    rows = {line.split()[0]: line.split() for line in lines if line[:1].isalpha()
            and not line.startswith(("model", "layer", "total", "forward"))}
    # name, kind, line, shape..., params
    assert rows["x"][1:] == ["input", "[4]", "0"]
    assert rows["dense_1"][1:] == ["dense", "4", "[8]", "40"]
    assert rows["dropout_1"][1:] == ["dropout", "5", "[8]", "0"]
    assert rows["dense_2"][1:] == ["dense", "6", "[3]", "27"]
    assert "total params: 67 (trainable 67, non-trainable 0)" in out
    assert "forward FLOPs per sample:" in out


def test_check_shows_both_backends_when_parameter_counts_differ(spec, capsys):
    code, out, _ = run(capsys, "check", str(spec(
        "model r {\n    input x: float[5, 3]\n    layers {\n        lstm(4)\n"
        "        dense(1)\n    }\n}\n")))
    assert code == EXIT_OK
    assert "params (keras)" in out and "params (torch)" in out
    assert "keras total params:" in out and "torch total params:" in out


def test_check_errors_exit_1_with_every_error(spec, capsys):
    path = spec(BROKEN)
    code, out, err = run(capsys, "check", str(path))
    assert code == EXIT_SPEC and out == ""
    assert f"{path}:4:9: error: unknown layer `dense2`" in err
    assert f"{path}:6:10: error: unknown loss `crossentropy`" in err
    assert err.rstrip().endswith(f"{path}: 2 errors")


def test_check_several_files_fails_if_any_fails(spec, capsys):
    code, out, err = run(capsys, "check", str(spec(SMALL, "a.spec")),
                         str(spec(BROKEN, "b.spec")))
    assert code == EXIT_SPEC
    assert "model small" in out and "b.spec: 2 errors" in err


def test_check_warnings_do_not_fail(spec, capsys):
    code, _, err = run(capsys, "check", str(spec(SMALL.replace("dense(3)", "softmax()"))))
    assert code == EXIT_OK
    assert "warning: `cross_entropy` expects logits" in err


def test_check_a_missing_file(tmp_path, capsys):
    code, _, err = run(capsys, "check", str(tmp_path / "nope.spec"))
    assert code == EXIT_SPEC and "cannot read" in err and "Traceback" not in err


@pytest.mark.parametrize("args", [[], ["check"], ["frobnicate", "x.spec"],
                                  ["compile", "x.spec", "--backend", "jax"]])
def test_usage_errors_exit_2(args, capsys):
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == EXIT_USAGE
    assert "usage: specc" in capsys.readouterr().err


def test_fmt_check_exit_codes(spec, capsys):
    canonical = spec(SMALL, "canonical.spec")
    messy = spec(SMALL.replace("    input x", "  input   x"), "messy.spec")
    before = messy.read_text(encoding="utf-8")

    assert run(capsys, "fmt", "--check", str(canonical))[0] == EXIT_OK
    code, _, err = run(capsys, "fmt", "--check", str(messy), str(canonical))
    assert code == EXIT_SPEC and f"{messy}: would reformat" in err
    assert "canonical.spec" not in err
    assert messy.read_text(encoding="utf-8") == before  # --check never writes


def test_fmt_rewrites_in_place(spec, capsys):
    messy = spec(SMALL.replace("    input x", "  input   x"), "messy.spec")
    code, out, _ = run(capsys, "fmt", str(messy))
    assert code == EXIT_OK and f"reformatted {messy}" in out
    assert messy.read_text(encoding="utf-8") == SMALL
    assert run(capsys, "fmt", "--check", str(messy))[0] == EXIT_OK


def test_fmt_of_a_broken_file_reports_and_leaves_it(spec, capsys):
    path = spec("model m {\n    input x float[4]\n}\n")
    code, _, err = run(capsys, "fmt", str(path))
    assert code == EXIT_SPEC and f"{path}:2:13: error:" in err
    assert path.read_text(encoding="utf-8") == "model m {\n    input x float[4]\n}\n"


def test_the_console_command_end_to_end(spec):
    """The installed `specc` script (or `python -m specc.cli`) as a user runs it."""
    good, bad = spec(SMALL, "good.spec"), spec(BROKEN, "bad.spec")
    command = [sys.executable, "-m", "specc.cli", "check"]
    ok = subprocess.run([*command, str(good)], capture_output=True, text=True, timeout=60)
    failed = subprocess.run([*command, str(bad)], capture_output=True, text=True, timeout=60)
    usage = subprocess.run([*command], capture_output=True, text=True, timeout=60)
    assert (ok.returncode, failed.returncode, usage.returncode) == (0, 1, 2)
    assert "total params: 67" in ok.stdout
    assert "^~~~~~" in failed.stderr and "Traceback" not in failed.stderr


def test_the_console_command_ends_quick_commands_with_everything_written(spec, tmp_path):
    """check and compile end their process without the interpreter's teardown (specc.cli
    QUICK_COMMANDS): their output must be whole all the same, however much of it there is."""
    good = spec(SMALL, "good.spec")
    command = [sys.executable, "-m", "specc.cli"]
    many = subprocess.run([*command, "check", *[str(good)] * 200], capture_output=True,
                          text=True, timeout=60)
    assert many.returncode == 0
    assert many.stdout.count("total params: 67") == 200 and many.stdout.endswith("\n\n")
    out = tmp_path / "program"
    done = subprocess.run([*command, "compile", str(good), "-o", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert done.stdout.split() == [str(out / name) for name in PROGRAM_FILES]
    for name in PROGRAM_FILES:
        compile((out / name).read_text(), name, "exec")  # whole files: they parse


def test_compile_without_data_trains_on_synthetic_data_and_says_so(spec, tmp_path, capsys):
    path = spec("""
        model m {
            input x: float[4]
            layers { dense(3) }
            loss cross_entropy()
        }
    """)
    code, out, err = run(capsys, "compile", str(path), "-o", str(tmp_path / "program"))
    assert code == EXIT_OK
    assert "has no `data` section" in err and "synthetic(1024)" in err
    assert "Traceback" not in err
    assert "synthetic" in (tmp_path / "program" / "data.py").read_text()


def test_compile_without_loss_is_a_spec_error(spec, tmp_path, capsys):
    path = spec("""
        model m {
            input x: float[4]
            layers { dense(3) }
        }
    """)
    code, out, err = run(capsys, "compile", str(path), "-o", str(tmp_path / "program"))
    assert code == EXIT_SPEC
    assert "no `loss` section" in err
    assert not (tmp_path / "program").exists()
