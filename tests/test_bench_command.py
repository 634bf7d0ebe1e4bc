"""`specc bench`: the variants it measures, its table and JSON, and its refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from specc.bench import table, variants_for

ROOT = Path(__file__).resolve().parent.parent
TINY_SPEC = """\
model tiny {
    input x: float[8]
    layers {
        dense(16, activation=relu)
        dense(3)
    }
    loss cross_entropy()
    optimizer adam(lr=1e-3)
    data synthetic(640)
    train {
        epochs = 1
        batch_size = 32
    }
}
"""


def specc_bench(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "specc.cli", "bench", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture
def tiny_spec(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.spec"
    path.write_text(TINY_SPEC)
    return path


def test_the_variants_follow_the_backend_and_the_device():
    assert [v.name for v in variants_for("torch", on_gpu=False)] == ["fp32", "fp32+compile"]
    assert [v.name for v in variants_for("tensorflow", on_gpu=False)] == ["fp32", "fp32+xla"]
    on_gpu = variants_for("torch", on_gpu=True)
    measured = [(v.precision, v.compile) for v in on_gpu if v.skip_reason is None]
    assert measured == [("fp32", False), ("fp32", True), ("bf16", False), ("bf16", True)]
    # CUDA graphs need torch.compile's mode, which the generated program has no option for.
    [skipped] = [v for v in on_gpu if v.skip_reason is not None]
    assert skipped.name == "bf16+cuda-graphs" and "captures CUDA graphs" in skipped.skip_reason
    assert [v.name for v in variants_for("tensorflow", on_gpu=True)] == [
        "fp32", "fp32+xla", "bf16", "bf16+xla"]


def test_the_table_shows_measured_failed_and_skipped_variants():
    report = {"model": "tiny", "backend": "torch", "device": "cuda", "batch_size": 32,
              "steps": 5, "fastest": "bf16",
              "variants": [
                  {"variant": "bf16", "precision": "bf16", "compile": False, "status": "ok",
                   "ms_per_step": 1.5, "samples_per_s": 21333.3, "peak_mb": 812.4,
                   "peak_memory": "cuda"},
                  {"variant": "bf16+compile", "precision": "bf16", "compile": True,
                   "status": "failed", "reason": "error: out of memory"},
                  {"variant": "bf16+cuda-graphs", "precision": "bf16", "compile": True,
                   "status": "skipped", "reason": "no option for the mode"}]}
    lines = table(report).splitlines()
    assert lines[1].split() == ["variant", "precision", "compile", "ms/step", "samples/s",
                                "peak", "MB", "memory"]
    assert lines[2].split() == ["bf16", "bf16", "off", "1.50", "21,333.3", "812", "cuda"]
    assert lines[3].split()[:4] == ["bf16+compile", "bf16", "on", "failed:"]
    assert lines[3].endswith("error: out of memory")
    assert lines[4].split()[3] == "skipped:"
    assert lines[5] == "fastest: bf16"


@pytest.mark.parametrize("args, message", [
    (["--device", "tpu"], "--device 'tpu': expected auto, cpu, cuda or cuda:N"),
    (["--device", "cpu", "--steps", "0"], "--steps must be at least 1"),
    (["--device", "cpu", "--variants", "fp32,bf16"], "--variants 'bf16': expected some of "
                                                     "fp32, fp32+compile (torch on cpu)"),
])
def test_a_request_that_cannot_be_measured_is_a_usage_error(tiny_spec, args, message):
    done = specc_bench(str(tiny_spec), *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unknown_backend_is_a_usage_error(tiny_spec):
    done = specc_bench(str(tiny_spec), "--backend", "jax")
    assert done.returncode == 2
    assert "invalid choice: 'jax'" in done.stderr


@pytest.mark.slow
def test_a_gpu_this_machine_lacks_is_refused_with_exit_1(tiny_spec):
    probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.device_count())"],
                           capture_output=True, text=True, timeout=60, check=True)
    gpus = int(probe.stdout)
    done = specc_bench(str(tiny_spec), "--device", f"cuda:{gpus}")
    assert done.returncode == 1, done.stderr
    assert f"--device cuda:{gpus}: PyTorch sees {gpus} GPU(s) on this machine" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("backend, framework", [("torch", "PyTorch"),
                                                ("tensorflow", "TensorFlow")])
def test_bench_measures_a_variant_and_writes_its_table_and_json(tiny_spec, tmp_path, backend,
                                                                framework):
    report_path = tmp_path / "bench.json"
    done = specc_bench(str(tiny_spec), "--backend", backend, "--device", "cpu",
                       "--variants", "fp32", "--steps", "3", "--json", str(report_path),
                       timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(report_path.read_text())
    assert {key: report[key] for key in ("model", "backend", "device", "batch_size", "steps",
                                         "fastest")} == {
        "model": "tiny", "backend": backend, "device": "cpu", "batch_size": 32, "steps": 3,
        "fastest": "fp32"}
    [row] = report["variants"]
    assert row["status"] == "ok" and row["precision"] == "fp32" and row["compile"] is False
    assert row["timed_steps"] == 3 and row["warmup_steps"] == 5
    assert row["samples_per_s"] > 0 and row["peak_mb"] > 0 and row["peak_memory"] == "rss"
    assert list(row["versions"]) == [backend]
    assert row["ms_per_step"] == pytest.approx(1000 * 32 / row["samples_per_s"])
    lines = done.stdout.splitlines()
    assert lines[0] == (f"tiny with {framework} on cpu, batch 32, 3 timed steps after the "
                        "program's warm-up")
    cells = lines[2].split()
    assert cells[:3] == ["fp32", "fp32", "off"] and cells[-1] == "rss"
    assert float(cells[3]) == pytest.approx(row["ms_per_step"], abs=0.01)
    assert lines[-1] == "fastest: fp32"


@pytest.mark.slow
def test_a_program_that_cannot_train_is_a_failed_variant_and_exit_1(tmp_path):
    spec = tmp_path / "missing.spec"
    spec.write_text(TINY_SPEC.replace("synthetic(640)", 'npz(path="missing.npz")'))
    report_path = tmp_path / "bench.json"
    done = specc_bench(str(spec), "--device", "cpu", "--variants", "fp32", "--steps", "2",
                       "--json", str(report_path), timeout=120)
    assert done.returncode == 1, done.stderr
    report = json.loads(report_path.read_text())
    [row] = report["variants"]
    assert row["status"] == "failed" and report["fastest"] is None
    assert row["reason"].startswith(f"error: data file not found at {tmp_path / 'missing.npz'}")
    assert done.stdout.splitlines()[2].endswith(row["reason"])
    assert "Traceback" not in done.stdout + done.stderr
