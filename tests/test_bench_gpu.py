"""bench/gpu: the one-shot GPU run, prepared here and dry-run on the CPU, so that the short
time on a GPU does not go to a typo."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GPU = ROOT / "bench" / "gpu"


def load_run_gpu():
    """bench/gpu/run_gpu.py as a module (bench/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("run_gpu", GPU / "run_gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def script(name: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(GPU / name), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_the_summary_takes_medians_of_speeds_and_of_per_round_ratios():
    run_gpu = load_run_gpu()
    speeds = {("generated", 0): 300.0, ("hand_eager", 0): 100.0, ("hand_compiled", 0): 200.0,
              ("generated", 1): 200.0, ("hand_eager", 1): 200.0, ("hand_compiled", 1): 100.0,
              ("generated", 2): 900.0, ("hand_eager", 2): 300.0}
    rows = [{"workload": "mnist_cnn", "side": side, "round": round_index, "status": "ok",
             "samples_per_s": value} for (side, round_index), value in speeds.items()]
    rows.append({"workload": "mnist_cnn", "side": "hand_compiled", "round": 2,
                 "status": "timeout"})
    summary = run_gpu.summarize(rows)["mnist_cnn"]
    assert summary["generated_samples_per_s"] == 300.0
    assert summary["hand_eager_samples_per_s"] == 200.0
    assert summary["hand_compiled_samples_per_s"] == 150.0
    assert summary["rounds"] == 3
    assert summary["ratio_vs_hand_eager"] == 3.0  # rounds' ratios 3, 1, 3
    assert summary["ratio_vs_hand_compiled"] == 1.75  # rounds' ratios 1.5, 2; the third timed out


def test_the_run_refuses_a_folder_without_programs_and_an_unknown_workload(tmp_path):
    done = script("run_gpu.py", "--programs", str(tmp_path), "--out", str(tmp_path / "out"),
                  timeout=30)
    assert done.returncode == 1
    assert f"error: {tmp_path / 'manifest.json'} is missing: run bench/gpu/prepare.py first" \
        in done.stderr
    (tmp_path / "manifest.json").write_text(json.dumps({"workloads": {"mnist_cnn": {}}}))
    done = script("run_gpu.py", "--programs", str(tmp_path), "--out", str(tmp_path / "out"),
                  "--workloads", "mnist", timeout=30)
    assert done.returncode == 1
    assert "error: --workloads 'mnist': expected some of mnist_cnn" in done.stderr


@pytest.mark.slow
def test_the_dry_run_checks_and_times_a_prepared_workload_on_the_cpu(tmp_path):
    programs, out = tmp_path / "programs", tmp_path / "out"
    done = script("prepare.py", "--out", str(programs), timeout=60)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((programs / "manifest.json").read_text())
    assert list(manifest["workloads"]) == ["mnist_cnn", "cifar_cnn", "lstm_text",
                                           "transformer_text"]
    for name in manifest["workloads"]:
        for folder in ("code", "tiny"):
            source = (programs / name / folder / "train.py").read_text()
            assert "import specc" not in source and "from specc" not in source
    done = script("run_gpu.py", "--programs", str(programs), "--out", str(out), "--dry-run",
                  "--workloads", "mnist_cnn", "--rounds", "1", "--work", str(tmp_path),
                  timeout=90)
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "gpu_run.json").read_text())
    assert sorted(path.name for path in out.iterdir()) == ["gpu_run.json"]
    assert report["dry_run"] is True and report["device"] == "cpu"
    assert report["commit"] == manifest["commit"]
    assert report["machine"]["torch"]

    check = report["correctness"]["mnist_cnn"]
    assert check["status"] == "ok", check["failures"]
    assert [check[step]["status"] for step in ("train", "export", "resume")] == ["ok"] * 3
    assert check["train"]["device"] == "cpu" and check["train"]["samples_per_s"] > 0
    assert check["export"] == {**check["export"], "output_shapes": [[2, 10]], "finite": True}
    assert check["resume"]["resumed_from_checkpoint"] is True
    assert sorted(check["epoch_losses"]) == ["1", "2"]

    rows = report["timing"]["rounds"]
    assert [(row["side"], row["status"]) for row in rows] == [
        ("generated", "ok"), ("hand_eager", "ok"), ("hand_compiled", "ok")]
    for row in rows:
        assert row["samples_per_s"] > 0 and row["peak_mb"] > 0
        # The probe's clock and the side's own agree: they timed the same steps.
        assert row["probe_samples_per_s"] == pytest.approx(row["samples_per_s"], rel=0.02)
    summary = report["timing"]["summary"]["mnist_cnn"]
    assert summary["rounds"] == 1
    assert summary["ratio_vs_hand_eager"] == pytest.approx(
        rows[0]["samples_per_s"] / rows[1]["samples_per_s"])
