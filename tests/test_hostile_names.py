"""Text from outside never becomes code: a spec's file name and every name the checker accepts
reach the generated programs only as quoted literals, docstring or comment text, or identifiers
made safe, on both backends; and each such program compiles, trains and exports."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import specc
from specc.backends import generate
from specc.backends.common.program import PROGRAM_FILES

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("torch", "tensorflow")
QUIET = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

# What each hostile file name would run if it escaped its docstring or comment: it creates
# the file SENTINEL in the working directory (a file name cannot hold a `/`).
SENTINEL = "pwned"
PAYLOAD = f'__import__("os").system("touch {SENTINEL}")'
HOSTILE_FILE_NAMES = {
    "triple double quotes": f'x"""+str({PAYLOAD})+""".spec',
    "triple single quotes": f"x'''+str({PAYLOAD})+'''.spec",
    "backslashes": f'a\\"""\\\\{PAYLOAD}\\.spec',
    "newline": f"line\n{PAYLOAD}\n.spec",
    "line separator": f"u\u2028{PAYLOAD}\u2029.spec",
    "other line breaks": f"v\x0b\x0c\x1c\x1d\x1e\x85{PAYLOAD}.spec",
    "template syntax": "{{ 7 * 7 }}{% raw %}{#.spec",
    "comment sign": f'#"""; {PAYLOAD} #.spec',
    "long": "n" * 150 + f'""" {PAYLOAD}.spec',
}

SPEC = """
model net {
    input x: float[4]
    layers {
        dense(8, activation=relu)
        dense(3)
    }
    loss cross_entropy()
    optimizer adam()
    metrics accuracy
    data synthetic(32, validation=0.25)
    train {
        epochs = 1
        batch_size = 8
    }
}
"""

# Names that are Python keywords, builtins, dunders, `self`, framework and module names, or
# start with `_`: identifiers of the spec language, so the checker accepts them all.
HOSTILE_NAMES_SPEC = """
block __import__(n) {
    dense(n, activation=relu)
}

block self(n) {
    h = in -> dense(n)
    out = add(in, h)
}

model _m {
    input self: float[4]
    input lambda: float[4]
    graph {
        class = self -> __import__(4)
        torch = lambda -> dense(4)
        np = add(class, torch) -> self(4)
        __class__ = np -> dense(3)
    }
    output __class__
    loss cross_entropy()
    optimizer adam()
    data synthetic(32)
    train { epochs = 1  batch_size = 16 }
}

model __import__ {
    input _: float[4]
    layers { __import__(2) }
    loss mse()
    optimizer sgd()
    data synthetic(32)
    train { epochs = 1  batch_size = 16 }
}

model build_model {
    input keras: float[4]
    layers { dense(2) }
    loss mse()
    optimizer sgd()
    data synthetic(32)
    train { epochs = 1  batch_size = 16 }
}
"""
HOSTILE_MODELS = ("_m", "__import__", "build_model")


def compile_into(folder: Path, spec: Path, backend: str, model: str | None = None) -> Path:
    program = folder / f"program-{backend}-{model or 'first'}"
    chosen = specc.load(spec).models[0] if model is None else next(
        m for m in specc.load(spec).models if m.name == model)
    program.mkdir(parents=True)
    for name, text in generate(chosen, backend, program).items():
        (program / name).write_text(text, encoding="utf-8")
    return program


def ruff(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--config", str(ROOT / "pyproject.toml"),
         "--extend-ignore", "E402,N812", "--output-format", "concise", *map(str, paths)],
        capture_output=True, text=True, check=False)


def run(program: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "train.py", "--out", "run", *args], cwd=program,
                          capture_output=True, text=True, timeout=300, check=False, env=QUIET)


def module_docstring_and_calls(source: str) -> tuple[str, set[str]]:
    """The module's docstring, and the names of everything the module calls (`f(...)` and
    `obj.f(...)` alike)."""
    tree = ast.parse(source)
    calls = {node.func.id if isinstance(node.func, ast.Name) else node.func.attr
             for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute))}
    return ast.get_docstring(tree) or "", calls


@pytest.mark.parametrize("backend", BACKENDS)
def test_hostile_file_names_stay_text(tmp_path: Path, backend: str) -> None:
    programs = []
    for case, file_name in HOSTILE_FILE_NAMES.items():
        folder = tmp_path / case.replace(" ", "-")
        folder.mkdir()
        spec = folder / file_name
        spec.write_text(SPEC)
        program = compile_into(folder, spec, backend)
        for name in PROGRAM_FILES:
            source = (program / name).read_text(encoding="utf-8")
            assert source.isascii() or name == "model.py", case
            docstring, calls = module_docstring_and_calls(source)  # parses
            assert "__import__" not in calls and "system" not in calls, (case, name)
            if name == "train.py":
                # The escapes read back as the file name, or as its two ends around "..."
                # when the name is too long for its line.
                shown = docstring.split("Generated by specc from `", 1)[1].split("`.\n")[0]
                head, _, tail = shown.partition("...")
                assert shown == file_name or (
                    file_name.startswith(head) and file_name.endswith(tail)), (case, shown)
        programs += [program / name for name in PROGRAM_FILES]
    lint = ruff(programs)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_a_long_file_name_is_shortened_in_the_middle(tmp_path: Path) -> None:
    spec = tmp_path / HOSTILE_FILE_NAMES["long"]
    spec.write_text(SPEC)
    source = (compile_into(tmp_path, spec, "torch") / "train.py").read_text()
    line = next(line for line in source.splitlines() if line.startswith("Generated by specc"))
    assert "nnnn...nnnn" not in line and "..." in line and line.startswith(
        "Generated by specc from `nnnn") and line.endswith('.spec`.') and len(line) <= 100


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_programs_of_hostile_file_names_run_without_running_them(tmp_path: Path,
                                                                 backend: str) -> None:
    for case in ("triple double quotes", "newline"):
        folder = tmp_path / case.replace(" ", "-")
        folder.mkdir()
        spec = folder / HOSTILE_FILE_NAMES[case]
        spec.write_text(SPEC)
        program = compile_into(folder, spec, backend)
        done = run(program, "--max-steps", "2", "--no-export")
        assert done.returncode == 0, done.stderr[-2000:]
        assert (program / "run" / "results.json").exists()
        assert not any(path.name == SENTINEL for path in tmp_path.rglob("*")), case


@pytest.mark.parametrize("backend", BACKENDS)
def test_hostile_names_give_programs_that_parse_and_pass_ruff(tmp_path: Path,
                                                              backend: str) -> None:
    spec = tmp_path / "names.spec"
    spec.write_text(HOSTILE_NAMES_SPEC)
    paths = []
    for model in HOSTILE_MODELS:
        program = compile_into(tmp_path, spec, backend, model)
        for name in PROGRAM_FILES:
            ast.parse((program / name).read_text())
            paths.append(program / name)
    lint = ruff(paths)
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_hostile_names_train_and_export(tmp_path: Path, backend: str) -> None:
    spec = tmp_path / "names.spec"
    spec.write_text(HOSTILE_NAMES_SPEC)
    for model in HOSTILE_MODELS:
        program = compile_into(tmp_path, spec, backend, model)
        done = run(program)
        assert done.returncode == 0, (model, done.stderr[-2000:])
        assert "export failed" not in done.stdout + done.stderr, (model, done.stdout)
        exported = ["model.pt2"] if backend == "torch" else ["model.keras", "saved_model"]
        for name in exported:
            assert (program / "run" / name).exists(), (model, name, done.stdout)
