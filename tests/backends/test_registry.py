"""The backend registry is the one place that names backends: its entries match the backend
packages, it imports nothing heavy, and no module outside specc/backends/ spells a backend's
name or label in a string of its own."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from specc.backends.registry import (
    BACKEND_NAMES,
    BACKENDS,
    BACKENDS_BY_FRAMEWORK,
    DEFAULT_BACKEND,
    TABLE_ORDER,
    ParamConvention,
)

SPECC = Path(__file__).resolve().parents[2] / "specc"
BACKENDS_DIR = SPECC / "backends"
# Modules outside specc/backends/ that may name backends. Parity runs the PyTorch program
# beside the TensorFlow one and compares them, so it names both by construction.
NAMING_ALLOWED = {SPECC / "parity"}  # compares the two frameworks by design


def test_every_backend_package_has_one_entry() -> None:
    packages = {p.name for p in BACKENDS_DIR.iterdir()
                if p.is_dir() and p.name != "common" and (p / "__init__.py").exists()}
    assert set(BACKEND_NAMES) == packages
    for entry in BACKENDS.values():
        assert entry.package == f"specc.backends.{entry.name}"


def test_entries_are_told_apart() -> None:
    entries = list(BACKENDS.values())
    for field in ("label", "framework", "checkpoint_suffix"):
        values = [getattr(entry, field) for entry in entries]
        assert len(set(values)) == len(values), field
    assert sorted(TABLE_ORDER) == sorted(BACKEND_NAMES)
    assert DEFAULT_BACKEND in BACKENDS
    assert BACKENDS_BY_FRAMEWORK == {entry.framework: entry.name for entry in entries}


def test_generator_is_the_backend_package() -> None:
    module = BACKENDS["torch"].generator()
    assert module.__name__ == "specc.backends.torch"
    assert callable(module.generate)


@pytest.mark.parametrize(("convention", "own", "carried"), [
    (ParamConvention(), 1, 1), (ParamConvention(), 2, 2),
    (ParamConvention(recurrent_biases=2), 1, 2), (ParamConvention(recurrent_biases=2), 2, 2),
])
def test_recurrent_bias_vectors(convention: ParamConvention, own: int, carried: int) -> None:
    assert convention.recurrent_bias_vectors(own) == carried


def test_registry_imports_no_generator_template_engine_or_framework(tmp_path: Path) -> None:
    code = ("import sys\n"
            "import specc.backends.registry\n"
            "heavy = [m for m in sys.modules if m.split('.')[0] in "
            "('jinja2', 'torch', 'tensorflow', 'keras') or m.startswith('specc.backends.') "
            "and m != 'specc.backends.registry']\n"
            "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def docstrings(tree: ast.Module) -> set[int]:
    """The ids of the string constants that are docstrings of a module, class or function."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                found.add(id(first.value))
    return found


# A backend's name or label as a whole word; the frameworks' own capitalised names
# ("PyTorch", "Keras") may appear in messages that speak about them.
BACKEND_WORD = re.compile(r"\b(" + "|".join(
    sorted({*BACKEND_NAMES, *(entry.label for entry in BACKENDS.values())})) + r")\b")


def backend_literals(source: str) -> list[tuple[int, str]]:
    """(line, text) of each string constant of `source`, docstrings aside, that names a
    backend."""
    tree = ast.parse(source)
    skipped = docstrings(tree)
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in skipped and BACKEND_WORD.search(node.value)]


def test_the_scan_finds_a_comparison_and_spares_docstrings() -> None:
    source = ('"""Counts for torch and keras."""\n'
              'def f(backend):\n'
              '    """Say what tensorflow does."""\n'
              '    return f"keras {backend}" if backend == "torch" else "PyTorch"\n')
    assert sorted(backend_literals(source)) == [(4, "keras "), (4, "torch")]


def test_no_backend_name_outside_the_backends() -> None:
    found = []
    for path in sorted(SPECC.rglob("*.py")):
        if BACKENDS_DIR in path.parents or NAMING_ALLOWED & set(path.parents):
            continue
        for line, text in backend_literals(path.read_text(encoding="utf-8")):
            found.append(f"{path.relative_to(SPECC.parent)}:{line}: {text!r}")
    assert not found, found
