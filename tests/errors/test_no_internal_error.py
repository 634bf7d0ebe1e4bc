"""No spec in the repository, broken or not, makes `specc check` fail with an internal error
(exit code 3, a traceback): every problem is a diagnostic."""

from __future__ import annotations

from pathlib import Path

import pytest

from specc.cli import EXIT_INTERNAL, main

ROOT = Path(__file__).resolve().parents[2]
ALL_SPECS = sorted(p for folder in ("tests", "specs") for p in (ROOT / folder).rglob("*.spec"))


def test_there_are_specs_to_check():
    assert len(ALL_SPECS) >= 30


@pytest.mark.parametrize("path", ALL_SPECS, ids=[str(p.relative_to(ROOT)) for p in ALL_SPECS])
def test_check_never_fails_internally(path: Path, capsys):
    code = main(["check", str(path)])
    captured = capsys.readouterr()
    assert code != EXIT_INTERNAL, captured.err
    assert code in (0, 1)
    assert "Traceback" not in captured.err
