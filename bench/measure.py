"""One measurement in a fresh process, for bench/run.py: train a generated program or a
hand-written baseline for `--warmup` + `--steps` optimizer steps, and write what was
measured to `--report` as JSON.

    python bench/measure.py --backend torch --steps 20 --warmup 5 --device cpu \\
        --batch-size 128 --report OUT.json generated PROGRAM_DIR/train.py RUN_DIR
    python bench/measure.py --backend torch ... hand torch_mnist_cnn [--compile on|off]

What the report holds:
  samples_per_s        the side's own figure: the generated train.py's results.json
                       `train_samples_per_s` (the program run as users run it, via runpy, with
                       --max-steps warmup + steps --no-export), or the baseline's benchmark()
  probe_samples_per_s  the same steps timed by this script's probe (PyTorch only; below):
                       one clock for both sides, a check on the two figures above
  peak_mb              the process's peak memory over the whole run: the peak resident set
                       (VmHWM) on the CPU, torch.cuda.max_memory_allocated on CUDA
  train_peak_mb        the peak over the timed steps only (PyTorch only), which leaves out
                       start-up and data loading
  page_faults_per_step minor page faults per timed step (PyTorch only): memory the
                       allocator gave back to the kernel and asked for again
  memory               "rss" or "cuda"; torch, tensorflow: their versions

The probe (PyTorch): a global optimizer-step hook counts steps. After step `warmup` it
synchronizes CUDA, notes the clock and resets the peak-memory counters (the kernel's VmHWM
through /proc/self/clear_refs; CUDA's peak statistics); after step `warmup + steps` it
synchronizes and reads both again; it reads the page-fault count at both. Neither program
is changed for this, and no step besides those two waits for the device.
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import runpy
import sys
import time
from pathlib import Path

BASELINES = Path(__file__).resolve().parent / "baselines"


def resident_peak_mb() -> float:
    """This process's peak resident set size (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def page_faults() -> int:
    """Page faults this process has taken so far (minor ones: memory the kernel had to map
    and zero, which a step pays for when its allocator hands memory back and asks again)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def reset_resident_peak() -> bool:
    """Reset VmHWM to the current resident size (Linux 4.0+); False where that is refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class TorchProbe:
    """Times steps warmup+1 .. warmup+steps and tracks their peak memory, from a global
    optimizer-step hook (torch.optim.optimizer.register_optimizer_step_post_hook)."""

    def __init__(self, warmup: int, steps: int, device: str):
        import torch
        from torch.optim.optimizer import register_optimizer_step_post_hook

        self.torch = torch
        self.cuda = device.startswith("cuda")
        self.warmup, self.last = warmup, warmup + steps
        self.count = 0
        self.start = self.seconds = None
        self.peak_before_mb = self.train_peak_mb = None
        self.faults_at_start = self.faults = None
        self.reset = False  # whether the peak counters were reset after the warm-up
        register_optimizer_step_post_hook(self._after_step)

    def _peak_mb(self) -> float:
        if self.cuda:
            return self.torch.cuda.max_memory_allocated() / 2**20
        return resident_peak_mb()

    def _after_step(self, optimizer, args, kwargs) -> None:
        self.count += 1
        if self.count not in (self.warmup, self.last):
            return
        if self.cuda:
            self.torch.cuda.synchronize()
        now = time.perf_counter()
        if self.count == self.warmup:
            self.peak_before_mb = self._peak_mb()
            if self.cuda:
                self.torch.cuda.reset_peak_memory_stats()
                self.reset = True
            else:
                self.reset = reset_resident_peak()
            self.faults_at_start = page_faults()
            self.start = now
        else:
            self.seconds = now - self.start
            self.faults = page_faults() - self.faults_at_start
            if self.reset:
                self.train_peak_mb = self._peak_mb()

    def report(self, batch_size: int) -> dict:
        steps = self.last - self.warmup
        # The whole run's peak is at least every reading taken (the kernel's resident-set
        # counters are per-CPU estimates: a later VmHWM can read a page or two lower).
        readings = [self._peak_mb(), self.peak_before_mb, self.train_peak_mb]
        whole = max(reading for reading in readings if reading is not None)
        return {
            "probe_samples_per_s": steps * batch_size / self.seconds if self.seconds else None,
            "peak_mb": whole,
            "train_peak_mb": self.train_peak_mb,
            "page_faults_per_step": self.faults / steps if self.faults is not None else None,
            "memory": "cuda" if self.cuda else "rss",
            "torch": self.torch.__version__,
        }


def run_generated(train_py: Path, run_dir: Path, args: argparse.Namespace) -> float:
    """Run the generated train.py in this process as `python train.py ...` would; return its
    results.json `train_samples_per_s`."""
    sys.argv = [str(train_py), "--max-steps", str(args.warmup + args.steps), "--no-export",
                "--out", str(run_dir), "--device", args.device]
    try:
        runpy.run_path(str(train_py), run_name="__main__")
    except SystemExit as stop:
        if stop.code not in (None, 0):
            raise
    results = json.loads((run_dir / "results.json").read_text())
    return results["train_samples_per_s"]


def run_hand(name: str, args: argparse.Namespace) -> float:
    """Call the baseline module's benchmark(steps, warmup, device), and with `--compile` its
    `compiled` (PyTorch baselines)."""
    sys.path.insert(0, str(BASELINES))
    baseline = importlib.import_module(name)
    if baseline.BATCH_SIZE != args.batch_size:
        sys.exit(f"error: {name} trains with batch {baseline.BATCH_SIZE}, the spec with "
                 f"{args.batch_size}: they must match to compare")
    if args.compile == "auto":
        return baseline.benchmark(args.steps, args.warmup, args.device)
    return baseline.benchmark(args.steps, args.warmup, args.device,
                              compiled=args.compile == "on")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["torch", "tensorflow"], required=True)
    parser.add_argument("--steps", type=int, required=True, help="timed optimizer steps")
    parser.add_argument("--warmup", type=int, required=True, help="untimed steps before them")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--report", type=Path, required=True)
    sides = parser.add_subparsers(dest="side", required=True)
    generated = sides.add_parser("generated")
    generated.add_argument("train_py", type=Path)
    generated.add_argument("run_dir", type=Path)
    hand = sides.add_parser("hand")
    hand.add_argument("module", help="a module of bench/baselines, e.g. torch_mnist_cnn")
    hand.add_argument("--compile", choices=["auto", "on", "off"], default="auto",
                      help="torch.compile the baseline (auto: as it chooses, on CUDA only)")
    args = parser.parse_args()

    probe = TorchProbe(args.warmup, args.steps, args.device) if args.backend == "torch" else None
    if args.side == "generated":
        samples_per_s = run_generated(args.train_py, args.run_dir, args)
    else:
        samples_per_s = run_hand(args.module, args)

    report = {"samples_per_s": samples_per_s}
    if probe is not None:
        report.update(probe.report(args.batch_size))
    else:  # no hook into a Keras training step: the whole process's peak only
        import tensorflow as tf

        report.update(probe_samples_per_s=None, peak_mb=resident_peak_mb(),
                      train_peak_mb=None, memory="rss", tensorflow=tf.__version__)
    args.report.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
