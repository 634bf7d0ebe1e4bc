"""The generated programs checked in under examples/ are exactly what specc generates today.

Regenerate them after an intended change to the generators with

    SPECC_UPDATE_EXAMPLES=1 python -m pytest tests/test_examples.py
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import specc
from specc.backends import generate

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.spec"))
EXAMPLE_BACKENDS = ("torch", "tensorflow")
UPDATE = os.environ.get("SPECC_UPDATE_EXAMPLES") == "1"


def _cases():
    for spec in SPECS:
        for backend in EXAMPLE_BACKENDS:
            yield pytest.param(spec, backend, id=f"{spec.stem}-{backend}")


@pytest.mark.parametrize(("spec", "backend"), list(_cases()))
def test_example_is_current(spec: Path, backend: str) -> None:
    program = specc.load(spec)
    model = program.models[0]
    program_dir = ROOT / "examples" / spec.stem / backend
    sources = generate(model, backend, program_dir)
    for name, text in sources.items():
        target = program_dir / name
        if UPDATE:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        assert target.is_file(), f"{target} is missing: run with SPECC_UPDATE_EXAMPLES=1"
        assert target.read_text(encoding="utf-8") == text, (
            f"{target} differs from what specc generates: run with SPECC_UPDATE_EXAMPLES=1")


def test_examples_stand_alone() -> None:
    programs = sorted((ROOT / "examples").rglob("*.py"))
    assert programs, "examples/ holds no generated program"
    for program in programs:
        text = program.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(import specc|from specc)", text, re.MULTILINE), program
        compile(text, str(program), "exec")  # it parses
