"""Fixtures of the pass tests: spec text written to a tmp folder and checked."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import specc


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: imports a framework or trains")


class Checked:
    """The outcome of `specc.check` on a spec, with shortcuts for the assertions."""

    def __init__(self, result, source: str):
        self.result = result
        self.source = source
        self.program = result.program
        self.errors = result.diagnostics.errors
        self.warnings = result.diagnostics.warnings

    @property
    def model(self):
        assert self.program is not None, [d.message for d in self.errors]
        return self.program.models[0]

    def error(self, *words: str):
        """The one error whose message contains every word."""
        found = [d for d in self.errors if all(w in d.message for w in words)]
        assert len(found) == 1, [d.message for d in self.errors]
        return found[0]

    def line(self, text: str) -> int:
        """The line of `main.spec` that holds `text` (which must be on one line only)."""
        lines = [n for n, line in enumerate(self.source.splitlines(), 1) if text in line]
        assert len(lines) == 1, f"{text!r} is on lines {lines}"
        return lines[0]

    def warning(self, *words: str):
        found = [d for d in self.warnings if all(w in d.message for w in words)]
        assert len(found) == 1, [d.message for d in self.warnings]
        return found[0]


@pytest.fixture
def check(tmp_path: Path):
    """`check(text, **other_files)`: write `main.spec` (and other files, by relative path)
    and check it."""

    def run(text: str, **files: str) -> Checked:
        for name, content in files.items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(content), encoding="utf-8")
        main = tmp_path / "main.spec"
        source = textwrap.dedent(text)
        main.write_text(source, encoding="utf-8")
        return Checked(specc.check(main), source)

    return run

