"""The package as users get it: no framework at import, the grammar inside the wheel, and
`specc check` fast enough to run on every save."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMALL = """model small {
    input image: float[8, 8, 1]
    layers {
        conv2d(4, 3, padding=same, activation=relu)
        maxpool2d(2)
        flatten()
        dense(10)
    }
    loss cross_entropy()
    optimizer adam(lr=1e-3)
    metrics accuracy
}
"""


@pytest.fixture
def small_spec(tmp_path: Path) -> Path:
    path = tmp_path / "small.spec"
    path.write_text(SMALL, encoding="utf-8")
    return path


def python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env})


def test_import_and_check_load_no_framework(small_spec, tmp_path):
    result = python(
        "import sys, specc\n"
        f"result = specc.check({str(small_spec)!r})\n"
        "assert result.program is not None, result.diagnostics.items\n"
        "loaded = [m for m in ('torch', 'tensorflow', 'keras', 'jax') if m in sys.modules]\n"
        "assert not loaded, loaded\n", tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation",
                            "--outdir", str(out), str(ROOT)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    (path,) = out.glob("specc-*.whl")
    return path


def test_wheel_ships_the_grammar_and_templates(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        grammar = archive.read("specc/grammars/specc.lark").decode("utf-8")
    assert grammar == (ROOT / "grammars" / "specc.lark").read_text(encoding="utf-8")
    templates = {str(p.relative_to(ROOT)) for p in (ROOT / "specc").rglob("*.j2")}
    assert templates <= names
    assert any(name.endswith("entry_points.txt") for name in names)


def test_installed_wheel_finds_its_own_grammar(wheel, small_spec, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    # Run outside the checkout, with the unpacked wheel first on the path.
    result = python(
        "import sys\n"
        f"sys.path.insert(0, {str(site)!r})\n"
        "import specc\n"
        "from specc.syntax.parser import grammar_path\n"
        f"assert specc.__file__.startswith({str(site)!r}), specc.__file__\n"
        "print(grammar_path())\n"
        f"assert specc.check({str(small_spec)!r}).program is not None\n", tmp_path)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == site / "specc" / "grammars" / "specc.lark"


def test_check_of_a_small_spec_takes_under_a_second(small_spec, tmp_path):
    command = [sys.executable, "-m", "specc.cli", "check", str(small_spec)]
    subprocess.run(command, capture_output=True, timeout=60)  # warm the file caches
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        best = min(best, time.perf_counter() - start)
        assert result.returncode == 0, result.stderr
    assert best < 1.0, f"specc check took {best:.2f} s"
