"""No module of one backend imports another backend: what they share lives in
specc/backends/common (the code writer, the training plan, the data loader)."""

from __future__ import annotations

import ast
from pathlib import Path

BACKENDS_DIR = Path(__file__).resolve().parents[2] / "specc" / "backends"
BACKEND_PACKAGES = sorted(
    p.name for p in BACKENDS_DIR.iterdir()
    if p.is_dir() and p.name != "common" and (p / "__init__.py").exists())


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    names |= {node.module for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    return names


def test_there_are_backends_to_check() -> None:
    assert {"torch", "tensorflow"} <= set(BACKEND_PACKAGES)


def test_no_backend_imports_another() -> None:
    crossings = []
    for backend in BACKEND_PACKAGES:
        others = [b for b in BACKEND_PACKAGES if b != backend]
        for path in sorted((BACKENDS_DIR / backend).rglob("*.py")):
            for module in imported_modules(path):
                if any(module == f"specc.backends.{o}" or module.startswith(f"specc.backends.{o}.")
                       for o in others):
                    crossings.append(f"{path.relative_to(BACKENDS_DIR)} imports {module}")
    assert not crossings, crossings


def test_common_imports_no_backend() -> None:
    for path in sorted((BACKENDS_DIR / "common").rglob("*.py")):
        for module in imported_modules(path):
            assert not any(module.startswith(f"specc.backends.{b}") for b in BACKEND_PACKAGES), (
                path, module)


def test_parity_reads_the_backends_only_through_their_manifests() -> None:
    # specc.parity may use `specc.backends` (generate, manifest) and what backends/common
    # defines, never a backend's own modules (its LayerWriter, RULES, naming of weights).
    parity = BACKENDS_DIR.parent / "parity"
    paths = sorted(parity.rglob("*.py"))
    assert {p.name for p in paths} >= {"__init__.py", "transfer.py", "compare.py", "report.py"}
    reaching = [f"{path.name} imports {module}" for path in paths
                for module in imported_modules(path)
                if any(module == f"specc.backends.{b}" or module.startswith(f"specc.backends.{b}.")
                       for b in BACKEND_PACKAGES)]
    assert not reaching, reaching
