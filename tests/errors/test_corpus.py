"""The errors corpus: each `corpus/*.spec` is a tiny broken spec whose header says where
`specc check` must report errors and what the messages must say:

    # expect: 7,9                       lines of this file (1-based) with an error
    # expect: imports/other.spec:3      or a line of another file, relative to this one
    # message: did you mean `kernel`?   a substring of the output (any number of these)

Each file is checked by the real command in its own process, as a user would run it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import pytest

CORPUS = Path(__file__).parent / "corpus"
SPECS = sorted(CORPUS.glob("*.spec"))


def _header(path: Path) -> tuple[list[tuple[str, int]], list[str]]:
    """(file name, line) pairs of `# expect:` and the `# message:` substrings."""
    expected: list[tuple[str, int]] = []
    messages: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# expect:"):
            for entry in line.removeprefix("# expect:").split(","):
                file, _, number = entry.strip().rpartition(":")
                expected.append((file or path.name, int(number)))
        elif line.startswith("# message:"):
            messages.append(line.removeprefix("# message:").strip())
    return expected, messages


@lru_cache(maxsize=1)
def _outputs() -> dict[Path, subprocess.CompletedProcess]:
    """`specc check` of every corpus file, run a few at a time (each start costs ~0.3 s)."""
    def check(path: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "specc.cli", "check", str(path)],
                              capture_output=True, text=True, timeout=60)

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return dict(zip(SPECS, pool.map(check, SPECS), strict=True))


def test_corpus_is_there():
    assert len(SPECS) >= 30


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_corpus_file_is_reported(path: Path):
    expected, messages = _header(path)
    assert expected, f"{path.name} has no `# expect:` header"
    result = _outputs()[path]
    output = result.stdout + result.stderr

    assert result.returncode == 1, output
    assert "Traceback" not in output and "internal error" not in output, output
    for file, line in expected:
        # The file is named as given on the command line, or resolved for an imported one.
        pattern = rf"(^|/){re.escape(file)}:{line}:\d+: error: "
        assert re.search(pattern, output, re.MULTILINE), f"no error at {file}:{line}\n{output}"
    for message in messages:
        assert message in output, output
    assert re.search(r"^ +\^~*$", output, re.MULTILINE), f"no caret line\n{output}"


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_corpus_reports_no_unexpected_error_lines(path: Path):
    """Every error line of the output is one the header expects: no noise after a mistake."""
    expected, _ = _header(path)
    output = _outputs()[path].stderr
    reported = {(Path(file).name, int(line)) for file, line in
                re.findall(r"^(\S+?\.spec):(\d+):\d+: error: ", output, re.MULTILINE)}
    assert reported == {(Path(file).name, line) for file, line in expected}, output
