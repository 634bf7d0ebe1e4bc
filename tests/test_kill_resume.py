"""A run killed with SIGKILL at any moment — mid-epoch, mid-checkpoint, mid-export — and then
resumed, ends exactly where an uninterrupted run ends, on both backends: the same metrics
lines (less the wall-clock times) and bit-identical predictions of the final weights."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import specc
from specc.backends import generate

BACKENDS = ("torch", "tensorflow")
QUIET = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
EPOCHS = 4

# Big enough that an epoch takes a noticeable fraction of a second, so that kills land inside
# epochs and inside checkpoint writes as well as between them.
SPEC = f"""
model killed {{
    input x: float[64]
    layers {{
        dense(128, activation=relu)
        dense(128, activation=relu)
        dense(4)
    }}
    loss cross_entropy()
    optimizer adam(lr=1e-3)
    metrics accuracy
    data synthetic(4000, validation=0.1, test=0.1)
    train {{
        epochs = {EPOCHS}
        batch_size = 32
    }}
}}
"""

KILLS = 3  # at most; each at a random moment after a random number of finished epochs
DEADLINE_S = 600  # for the whole killing loop of one backend


def program_for(folder: Path, backend: str) -> Path:
    spec = folder / "killed.spec"
    spec.write_text(SPEC)
    program = folder / f"program-{backend}"
    program.mkdir()
    for name, text in generate(specc.load(spec).models[0], backend, program).items():
        (program / name).write_text(text)
    return program


def command(program: Path, run: Path, *args: str) -> list[str]:
    return [sys.executable, str(program / "train.py"), "--out", str(run), *args]


def epochs_logged(run: Path) -> int:
    try:
        return len((run / "metrics.jsonl").read_text().splitlines())
    except OSError:
        return 0


def metrics_without_time(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in lines]


def predictions(program: Path, run: Path, inputs: Path) -> np.ndarray:
    done = subprocess.run(command(program, run, "--predict", str(inputs)), env=QUIET,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    with np.load(run / "predictions.npz") as arrays:
        return arrays["y"].copy()


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_runs_killed_at_random_moments_resume_to_the_same_result(tmp_path: Path,
                                                                 backend: str) -> None:
    program = program_for(tmp_path, backend)
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    done = subprocess.run(command(program, straight), env=QUIET, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]

    chooser = random.Random(f"{backend}-kills")
    kills, started = 0, time.monotonic()
    finished = False
    while not finished:
        assert time.monotonic() - started < DEADLINE_S, "the killing loop ran out of time"
        resume = ["--resume"] if (killed / "checkpoints").exists() else []
        process = subprocess.Popen(command(program, killed, *resume), env=QUIET,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if kills < KILLS:
            # Wait until a random number of epochs have been logged, then a random moment more.
            target = min(epochs_logged(killed) + chooser.randint(0, 1), EPOCHS)
            while process.poll() is None and epochs_logged(killed) < target:
                time.sleep(0.01)
            time.sleep(chooser.uniform(0.0, 0.8))
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                kills += 1
        _, stderr = process.communicate(timeout=600)
        if process.returncode == 0:
            finished = True
        else:
            assert process.returncode == -signal.SIGKILL, stderr[-2000:]
    assert kills >= 1

    assert metrics_without_time(killed) == metrics_without_time(straight)
    results = [json.loads((run / "results.json").read_text())["test"]
               for run in (killed, straight)]
    assert results[0] == results[1]
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, x=np.random.default_rng(0).standard_normal((50, 64)).astype(np.float32))
    assert np.array_equal(predictions(program, killed, inputs),
                          predictions(program, straight, inputs))
    leftovers = [p.name for p in (killed / "checkpoints").iterdir() if p.name.endswith(".tmp")]
    assert not leftovers
