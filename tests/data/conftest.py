"""Fixtures of the data tests: specs written to a tmp folder and checked, and the generated
loader run as a module (tiny data files in the standard formats are in data_files.py)."""

from __future__ import annotations

import runpy
import textwrap
from pathlib import Path

import pytest
from data_files import write_program

import specc
from specc import ir
from specc.backends.common.data import render_data_code


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: imports a framework or trains")


MODEL_TEMPLATE = """
model m {{
    input {input}
    layers {{
{layers}
    }}
    loss {loss}
    data {data}
}}
"""


@pytest.fixture
def spec_text(tmp_path: Path):
    """`spec_text(text)` → the checker's result for a whole spec file's text."""

    def make(text: str):
        folder = tmp_path / "specs"
        folder.mkdir(exist_ok=True)
        path = folder / "model.spec"
        path.write_text(textwrap.dedent(text))
        return specc.check(path)

    return make


@pytest.fixture
def spec_model(tmp_path: Path):
    """`spec_model(input, layers, loss, data)` → the checked ir.Model of a one-model spec
    written to tmp_path/specs/model.spec (data paths are relative to that folder)."""

    def make(input: str, layers: str, loss: str, data: str) -> ir.Model:
        return specc.load(write_spec(tmp_path, input, layers, loss, data)).models[0]

    return make


@pytest.fixture
def spec_diagnostics(tmp_path: Path):
    """Like spec_model, but returns the messages of the errors the checker reports."""

    def make(input: str, layers: str, loss: str, data: str) -> list[str]:
        result = specc.check(write_spec(tmp_path, input, layers, loss, data))
        return [d.message for d in result.diagnostics.errors]

    return make


def write_spec(tmp_path: Path, input: str, layers: str, loss: str, data: str) -> Path:
    folder = tmp_path / "specs"
    folder.mkdir(exist_ok=True)
    body = textwrap.indent(textwrap.dedent(layers).strip(), " " * 8)
    path = folder / "model.spec"
    path.write_text(MODEL_TEMPLATE.format(input=input, layers=body, loss=loss, data=data))
    return path


@pytest.fixture
def loader(tmp_path: Path):
    """`loader(model)` → the globals of the rendered loader, written to tmp_path/program."""

    def make(model: ir.Model, program_dir: Path | None = None) -> dict:
        program_dir = program_dir or tmp_path / "program"
        path = write_program(render_data_code(model, program_dir), program_dir)
        return runpy.run_path(str(path))

    return make
