"""`specc bench`: which precision and compile settings train a spec's model fastest here.

Each variant that applies to the backend and the device (`variants_for`) is the model
generated with that variant's `train { precision, compile }` values, which become the
program's config block, into a temporary folder; its train.py then runs in a child process
(specc/bench_probe.py) as a user runs it:
`--epochs W+N --max-steps W+N --no-export --device D --out RUN`, W being the program's own
`warmup_batches` and N `--steps`. `--epochs` is as large so that data of only a few
batches still trains W+N steps (the program then times later epochs from their first batch,
their evaluation and checkpoints left out).

What is measured: train.py's own results.json `train_samples_per_s`. Its clock starts after
batch W (after a device sync) and stops once the loss of step W+N is read back, so start-up,
data loading, compilation and the first W steps are left out: the figure is the marginal
speed of a step. ms/step is batch_size × grad_accum / samples_per_s. Peak memory is the
child's peak resident set on the CPU and the framework's peak allocated device memory on
CUDA, over the whole run (bench_probe.py).

A variant that needs a knob the generated program does not have is listed as skipped, with
the reason, and not measured.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import specc
from specc.backends import generate, select_model
from specc.backends.registry import BACKENDS

# The child: run as a module, since running a file of specc/ by its path would put specc/
# first on sys.path, where specc/ast.py hides the standard library's ast.
PROBE = [sys.executable, "-m", "specc.bench_probe"]
DEFAULT_WARMUP = 5  # the generated train.py's `warmup_batches` when it does not say


class BenchError(Exception):
    """A request that cannot be measured here; `status` is the exit code it ends with."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Variant:
    name: str
    precision: str  # fp32, bf16
    compile: bool  # torch.compile (PyTorch) or XLA's jit_compile (TensorFlow)
    skip_reason: str | None = None  # why it is not measured, when it is not


def variants_for(backend: str, on_gpu: bool) -> list[Variant]:
    """The variants worth measuring for `backend` on a GPU or the CPU. bf16 is GPU-only: on
    the CPU autocast to bf16 is slower than fp32 on most processors."""
    entry = BACKENDS[backend]
    compiled = entry.compiler
    precisions = ("fp32", "bf16") if on_gpu else ("fp32",)
    variants = [Variant(precision if not on else f"{precision}+{compiled}", precision, on)
                for precision in precisions for on in (False, True)]
    if on_gpu and entry.cuda_graphs:
        variants.append(Variant(
            "bf16+cuda-graphs", "bf16", True,
            skip_reason="the generated train.py has no option for the compiler's mode that "
                        "captures CUDA graphs"))
    return variants


def check_device(device: str) -> None:
    if device in ("auto", "cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit()):
        return
    raise BenchError(f"specc bench: --device {device!r}: expected auto, cpu, cuda or cuda:N", 2)


def resolve_device(device: str, backend: str) -> str:
    """`device` with `auto` decided, after checking that the framework sees the GPU asked
    for (a child process asks it: specc itself never imports a framework)."""
    if device == "cpu":
        return device
    answer = subprocess.run([*PROBE, "gpus", backend], capture_output=True,
                            text=True, check=False)
    if answer.returncode != 0:
        raise BenchError(f"specc bench: cannot start {BACKENDS[backend].framework}: "
                         f"{last_line(answer.stderr)}", 1)
    gpus = int(answer.stdout.strip())
    if device == "auto":
        return "cuda" if gpus else "cpu"
    index = int(device.partition(":")[2] or 0)
    if index >= gpus:
        raise BenchError(f"specc bench: --device {device}: {BACKENDS[backend].framework} sees "
                         f"{gpus} GPU(s) on this machine", 1)
    return device


def warmup_steps(train_py: Path) -> int:
    """The steps the generated train.py leaves out of its samples/s (`warmup_batches = N`)."""
    found = re.search(r"^warmup_batches = (\d+)", train_py.read_text(), re.MULTILINE)
    return int(found.group(1)) if found else DEFAULT_WARMUP


def last_line(text: str) -> str:
    """The last non-empty line of a child's output: its `error: ...` message, if it failed."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def measure(model, backend: str, device: str, variant: Variant, steps: int,
            work_dir: Path, timeout_s: float) -> dict:
    """Generate and run one variant; its row of the table."""
    row = {"variant": variant.name, "precision": variant.precision,
           "compile": variant.compile}
    if variant.skip_reason:
        return {**row, "status": "skipped", "reason": variant.skip_reason}
    train = model.train.model_copy(update={"precision": variant.precision,
                                           "compile": variant.compile})
    program_dir = work_dir / variant.name / "code"
    program_dir.mkdir(parents=True)
    for name, text in generate(model.model_copy(update={"train": train}), backend,
                               program_dir).items():
        (program_dir / name).write_text(text, encoding="utf-8")
    train_py = program_dir / "train.py"
    warmup = warmup_steps(train_py)
    run_dir, report = work_dir / variant.name / "run", work_dir / variant.name / "probe.json"
    # As many epochs as steps: even one-batch epochs then hold W+N steps.
    command = [*PROBE, "run", str(report), str(train_py), "--epochs", str(warmup + steps),
               "--max-steps", str(warmup + steps), "--no-export", "--device", device,
               "--out", str(run_dir)]
    try:
        child = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                               check=False)
    except subprocess.TimeoutExpired:
        return {**row, "status": "failed", "reason": f"did not finish in {timeout_s:g} s"}
    if child.returncode != 0:
        return {**row, "status": "failed", "reason": last_line(child.stderr)}
    samples_per_s = json.loads((run_dir / "results.json").read_text())["train_samples_per_s"]
    memory = json.loads(report.read_text())
    samples_per_step = model.train.batch_size * model.train.grad_accum
    return {**row, "status": "ok", "warmup_steps": warmup, "timed_steps": steps,
            "samples_per_s": samples_per_s, "ms_per_step": 1000 * samples_per_step / samples_per_s,
            "peak_mb": memory["peak_mb"], "peak_memory": memory["peak_memory"],
            "versions": memory["versions"]}


def bench(spec_path: str | Path, *, backend: str | None = None, device: str | None = None,
          steps: int = 20, variants: list[str] | None = None, model: str | None = None,
          timeout_s: float = 600) -> dict:
    """Measure every variant of a model of the spec (the first unless `model` names one);
    `variants` names a subset to measure. Returns the report that `table` prints and `--json`
    writes. Raises SpecError for errors in the spec, BenchError for a device, step count or
    variant that cannot be measured."""
    if steps < 1:
        raise BenchError("specc bench: --steps must be at least 1", 2)
    chosen = select_model(specc.load(spec_path), model)
    backend = backend or chosen.train.backend
    device = device or chosen.train.device
    check_device(device)
    device = resolve_device(device, backend)
    chosen_variants = variants_for(backend, device != "cpu")
    if variants is not None:
        known = [variant.name for variant in chosen_variants]
        unknown = [name for name in variants if name not in known]
        if unknown:
            raise BenchError(f"specc bench: --variants {unknown[0]!r}: expected some of "
                             f"{', '.join(known)} ({backend} on {device})", 2)
        chosen_variants = [variant for variant in chosen_variants if variant.name in variants]
    with tempfile.TemporaryDirectory(prefix="specc-bench-") as work:
        rows = [measure(chosen, backend, device, variant, steps, Path(work), timeout_s)
                for variant in chosen_variants]
    measured = [row for row in rows if row["status"] == "ok"]
    fastest = max(measured, key=lambda row: row["samples_per_s"]) if measured else None
    return {"spec": str(spec_path), "model": chosen.name, "backend": backend, "device": device,
            "batch_size": chosen.train.batch_size, "steps": steps, "variants": rows,
            "fastest": fastest["variant"] if fastest else None}


def table(report: dict) -> str:
    """The report as the table `specc bench` prints."""
    lines = [f"{report['model']} with {BACKENDS[report['backend']].framework} on "
             f"{report['device']}, batch {report['batch_size']}, {report['steps']} timed steps "
             "after the program's warm-up",
             f"{'variant':<18} {'precision':<9} {'compile':<7} {'ms/step':>9} {'samples/s':>11} "
             f"{'peak MB':>9}  memory"]
    for row in report["variants"]:
        start = f"{row['variant']:<18} {row['precision']:<9} {'on' if row['compile'] else 'off':<7}"
        if row["status"] == "ok":
            lines.append(f"{start} {row['ms_per_step']:>9.2f} {row['samples_per_s']:>11,.1f} "
                         f"{row['peak_mb']:>9,.0f}  {row['peak_memory']}")
        else:
            lines.append(f"{start} {row['status']}: {row['reason']}")
    if report["fastest"]:
        lines.append(f"fastest: {report['fastest']}")
    return "\n".join(lines)
