"""Property-based fuzzing of `specc check` and `specc fmt` (issue 8, items 2 and 3): for
specs written from the grammar and for mutants of every checked-in spec and error-corpus
file, both commands exit 0 or 1, print no traceback, answer within the time bound, and fmt
keeps every character of the comments and is idempotent.

Sized for CI (about a minute on two cores); `python -m tests.fuzz.long_run` runs the same
cases at length."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from .cases import SEEDS, TIME_BOUND_S, generate, mutate, prepare_folder, run

_SETTINGS = settings(
    max_examples=250,
    deadline=None,  # the time bound is checked per case, with the CLI's own timer
    derandomize=True,  # the same cases on every run: CI stays reproducible
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
    # A case is a seed for a random generator: shrinking it says little and takes minutes;
    # the failing case is printed whole instead (and `long_run --out` saves such cases).
    phases=[Phase.explicit, Phase.generate],
)


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory(prefix="specc-fuzz-") as name:
        prepare_folder(Path(name))
        yield Path(name)


def test_there_are_seeds():
    assert len(SEEDS) >= 40


@_SETTINGS
@given(rng=st.randoms(use_true_random=False))
def test_generated_specs_are_answered(folder, rng):
    case = generate(rng)
    note(f"case: {case!r}")
    outcome = run(case, folder)
    assert outcome.problem is None, outcome.problem
    assert outcome.seconds < TIME_BOUND_S


@_SETTINGS
@given(seed=st.sampled_from(SEEDS), rng=st.randoms(use_true_random=False))
def test_mutated_specs_are_answered(folder, seed, rng):
    case = mutate(seed.read_text(encoding="utf-8"), rng)
    note(f"case: {case!r}")
    outcome = run(case, folder)
    assert outcome.problem is None, outcome.problem
    assert outcome.seconds < TIME_BOUND_S


def test_the_fuzzer_finds_a_known_crash(folder, monkeypatch):
    """The judge itself: a case that makes the checker raise is reported, not passed."""
    import specc.passes.check as check

    def broken(*args, **kwargs):
        raise KeyError("y")

    monkeypatch.setattr(check, "_check", broken)
    outcome = run("model m {}\n", folder)
    assert outcome.problem is not None and "exited 3" in outcome.problem
