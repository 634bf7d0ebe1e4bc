"""The benchmark harness (bench/): its workloads fit their baselines, and bench/run.py
measures both sides of a workload end to end."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import specc

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"


def load_runner():
    """bench/run.py as a module (bench/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_workload_has_a_spec_that_fits_its_baselines_and_default_steps():
    runner = load_runner()
    for workload in runner.WORKLOADS.values():
        model = specc.load(workload.spec).models[0]
        batch_size, samples = model.train.batch_size, model.data.source.n
        # One epoch must hold the warm-up and the timed steps: a run that crossed into a
        # second epoch would time an evaluation and a checkpoint too.
        longest = runner.DEFAULT_WARMUP + max(workload.cpu_steps, workload.cuda_steps)
        assert longest * batch_size <= samples, workload.name
        for prefix in runner.BASELINE_PREFIX.values():
            baseline = (BENCH / "baselines" / f"{prefix}_{workload.name}.py").read_text()
            declared = re.search(r"^BATCH_SIZE = (\d+)$", baseline, re.MULTILINE)
            assert int(declared.group(1)) == batch_size, f"{prefix}_{workload.name}"
            assert re.search(rf"^SAMPLES = {samples}\b", baseline, re.MULTILINE), \
                f"{prefix}_{workload.name} holds another amount of data than the spec"


def test_the_warmup_is_read_from_the_generated_program(tmp_path):
    runner = load_runner()
    program = tmp_path / "train.py"
    program.write_text("log_every = 50\nwarmup_batches = 7  # not timed\n")
    assert runner.warmup_steps(program) == 7
    program.write_text("print('no warm-up named here')\n")
    assert runner.warmup_steps(program) == runner.DEFAULT_WARMUP


@pytest.mark.slow
def test_the_harness_measures_generated_and_hand_written_side_by_side(tmp_path):
    report = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--workloads", "mlp_regression",
         "--backends", "torch", "--steps", "2", "--repeats", "1", "--json", str(report),
         "--quiet-wait", "0", "--retries", "0"],  # a test run takes the machine as it is
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [row] = json.loads(report.read_text())["rows"]
    assert row["status"] == "ok"
    assert row["steps"] == 2 and row["warmup"] > 0
    for side in ("generated", "hand"):
        assert row[side]["samples_per_s"] > 0
        # The probe times the same steps as the side's own clock; on 2 steps they agree to
        # within a few per cent.
        assert row[side]["probe_samples_per_s"] == pytest.approx(row[side]["samples_per_s"],
                                                                  rel=0.1)
        assert row[side]["peak_mb"] > 0
        if row[side]["train_peak_mb"] is not None:  # None where the kernel refuses a reset
            assert row[side]["peak_mb"] >= row[side]["train_peak_mb"] > 0
    assert row["ratio"] == pytest.approx(
        row["generated"]["samples_per_s"] / row["hand"]["samples_per_s"])
    assert row["compile_s"] > 0
    table_row = next(line for line in done.stdout.splitlines()
                     if line.startswith("mlp_regression"))
    assert "torch" in table_row and f"{row['ratio']:.3f}" in table_row
