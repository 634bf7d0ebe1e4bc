"""The one-shot GPU run (bench/gpu/README.md): the generated PyTorch programs of the four
workloads, compiled on another machine by bench/gpu/prepare.py, checked and timed on CUDA
next to the hand-written baselines, within a time budget; one JSON report.

    python bench/gpu/run_gpu.py --programs DIR --out OUT            # on the GPU machine
    python bench/gpu/run_gpu.py --programs DIR --out OUT --dry-run  # the same, on the CPU

It needs PyTorch and NumPy, never specc: every program ran through `specc compile` before.
Every part runs in a child process under a time limit taken from what is left of the
budget; a part that fails or runs out of time is recorded with its error, and the run goes
on. OUT/gpu_run.json is rewritten after every child, so that a run cut short still brings
back all it measured.

(a) Correctness, per workload: the generated train.py with its defaults (on CUDA: bf16
    autocast, torch.compile, fused Adam) trains one epoch (`--epochs 1 --device cuda`): it
    must exit 0, report CUDA in results.json, leave an epoch checkpoint and export
    model.pt2, which must load and give finite outputs (checks.py export). Then
    `--resume --epochs 2 --max-steps S+RESUME_STEPS` must resume from that checkpoint and
    train RESUME_STEPS steps of epoch 2. `loss_falls` compares epoch 2's mean loss with
    epoch 1's.
(b) Timing, in rounds; each round times every workload's generated program (defaults) and
    its hand-written baseline eager and compiled (bench/baselines, torch_<workload>.py),
    one fresh process each, through bench/measure.py: W warm-up steps (the program's own
    `warmup_batches`), then N timed ones. Per side the median samples/s of the rounds, and
    the medians of the per-round ratios generated / hand-written.

The correctness pass gets CORRECTNESS_SHARE of the budget, split evenly between the
workloads still to check; the timing rounds run until the budget is spent.

--dry-run runs every part on the CPU: the correctness pass with DIR/<workload>/tiny (the
same model on 4 batches of data), the timing with DRY_RUN_STEPS steps, under
DRY_RUN_BUDGET_S and DRY_RUN_LIMIT_S, and with TORCH_COMPILE_DISABLE=1, since Inductor
compiling for the CPU takes minutes; the commands and flags are the GPU run's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MEASURE = ROOT / "bench" / "measure.py"
CHECKS = Path(__file__).resolve().parent / "checks.py"
REPORT_NAME = "gpu_run.json"

BUDGET_S = 470  # of the 8 minutes of GPU time: the rest is start-up and copying back
DRY_RUN_BUDGET_S = 1800  # all four workloads on a loaded 2-core CPU took 10-12 minutes
CORRECTNESS_SHARE = 0.5
RESUME_STEPS = 50  # steps of epoch 2 after the resume (dry-run: 2)
TIMED_STEPS = 200  # per timing run, after the warm-up; one epoch holds 300 batches
DRY_RUN_STEPS = 2
ROUNDS = 3
MIN_START_S = 20  # a child given less time than this is not started
RUN_LIMIT_S = 150  # no child runs longer, whatever is left of the budget
DRY_RUN_LIMIT_S = 400  # on a CPU, a transformer step takes seconds
DEFAULT_WARMUP = 5
TIMING_SIDES = (  # name, bench/measure.py arguments after the common ones
    ("generated", None),
    ("hand_eager", ["--compile", "off"]),
    ("hand_compiled", ["--compile", "on"]),
)


class Run:
    """The budget's clock, the report and where the children write."""

    def __init__(self, args: argparse.Namespace, manifest: dict):
        self.started = time.monotonic()
        self.deadline = self.started + args.budget_s
        self.dry_run = args.dry_run
        self.run_limit_s = DRY_RUN_LIMIT_S if args.dry_run else RUN_LIMIT_S
        self.device = "cpu" if args.dry_run else "cuda"
        self.out = args.out
        self.work = Path(tempfile.mkdtemp(prefix="gpu-run-", dir=args.work))
        self.env = dict(os.environ)
        if args.dry_run:
            self.env["TORCH_COMPILE_DISABLE"] = "1"
        self.report = {
            "dry_run": args.dry_run, "device": self.device, "budget_s": args.budget_s,
            "commit": manifest.get("commit"), "dirty": manifest.get("dirty"),
            "prepared_at": manifest.get("prepared_at"),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": None, "correctness": {}, "timing": {"rounds": [], "summary": {}},
        }

    def left(self, deadline: float | None = None) -> float:
        return min(self.deadline, deadline or math.inf) - time.monotonic()

    def child(self, command: list[str], deadline: float | None = None) -> tuple[dict, str]:
        """Run `command` under what is left before `deadline` (and the budget), at most
        the run limit; its record and its stdout."""
        limit = min(self.left(deadline), self.run_limit_s)
        if limit < MIN_START_S:
            return {"status": "skipped", "reason": f"{max(limit, 0):.0f} s left"}, ""
        start = time.monotonic()
        # A session of its own: on a timeout the whole group goes, compile workers included.
        with subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, start_new_session=True) as proc:
            try:
                stdout, stderr = proc.communicate(timeout=limit)
                status = "ok" if proc.returncode == 0 else "failed"
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:  # it ended just now
                    pass
                stdout, stderr = proc.communicate()
                status = "timeout"
        record = {"status": status, "seconds": round(time.monotonic() - start, 2)}
        if status == "timeout":
            record["limit_s"] = round(limit, 1)
        if status != "ok":
            record["exit"] = proc.returncode
            record["output_tail"] = (stdout + stderr)[-2000:]
        return record, stdout

    def save(self) -> None:
        """Rewrite the report (a temporary file renamed over it: never half written)."""
        self.report["elapsed_s"] = round(time.monotonic() - self.started, 1)
        self.out.mkdir(parents=True, exist_ok=True)
        partial = self.out / (REPORT_NAME + ".partial")
        partial.write_text(json.dumps(self.report, indent=2) + "\n")
        partial.replace(self.out / REPORT_NAME)


def epoch_losses(run_dir: Path) -> dict[int, float]:
    path = run_dir / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return {record["epoch"]: record["loss"] for record in map(json.loads, lines)}


def last_json_line(output: str) -> dict:
    """What a checks.py child printed last (a library may have printed a warning before)."""
    return json.loads(output.strip().splitlines()[-1])


def read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def check_workload(run: Run, name: str, workload: dict, programs: Path,
                   deadline: float) -> dict:
    """The correctness pass of one workload: the record of each step and what it showed."""
    program = programs / name / ("tiny" if run.dry_run else "code") / "train.py"
    run_dir = run.work / "correctness" / name
    samples = workload["tiny_samples"] if run.dry_run else workload["samples"]
    epoch_steps = math.ceil(samples / workload["batch_size"])
    resume_steps = DRY_RUN_STEPS if run.dry_run else RESUME_STEPS
    result = {"program": str(program.relative_to(programs)), "epoch_steps": epoch_steps}
    failures = []

    train = [sys.executable, str(program), "--out", str(run_dir), "--device", run.device]
    result["train"], _ = run.child([*train, "--epochs", "1"], deadline)
    if result["train"]["status"] == "ok":
        results = read_json(run_dir / "results.json") or {}
        result["train"].update(device=results.get("device"),
                               samples_per_s=results.get("train_samples_per_s"))
        if not str(results.get("device", "")).startswith(run.device):
            failures.append(f"results.json names device {results.get('device')!r}")
        if not (run_dir / "checkpoints" / "epoch-0001.pt").exists():
            failures.append("no checkpoints/epoch-0001.pt after epoch 1")
        result["export"], shown = run.child(
            [sys.executable, str(CHECKS), "export", str(run_dir / "model.pt2"),
             json.dumps(workload["inputs"])], deadline)
        if result["export"]["status"] == "ok":
            result["export"].update(last_json_line(shown))
            if not result["export"]["finite"]:
                failures.append("the exported model's outputs are not finite")
        else:
            failures.append(f"export check {result['export']['status']}")

        result["resume"], shown = run.child(
            [*train, "--resume", "--epochs", "2", "--no-export",
             "--max-steps", str(epoch_steps + resume_steps)], deadline)
        if result["resume"]["status"] == "ok":
            resumed = "resuming from" in shown and "epoch-0001.pt" in shown
            result["resume"]["resumed_from_checkpoint"] = resumed
            if not resumed:
                failures.append("--resume did not resume from epoch-0001.pt")
        else:
            failures.append(f"resume {result['resume']['status']}")
    else:
        failures.append(f"train {result['train']['status']}")

    losses = epoch_losses(run_dir)
    result["epoch_losses"] = losses
    if 1 in losses and 2 in losses:
        result["loss_falls"] = losses[2] < losses[1]
        if not result["loss_falls"]:
            failures.append(f"epoch 2's loss {losses[2]:.4f} is not below epoch 1's "
                            f"{losses[1]:.4f}")
    result["failures"] = failures
    result["status"] = "ok" if not failures else "failed"
    return result


def time_side(run: Run, name: str, workload: dict, programs: Path, side: str,
              side_args: list[str] | None, round_index: int) -> dict:
    """One timing run of one side, through bench/measure.py."""
    program = programs / name / "code" / "train.py"
    steps = DRY_RUN_STEPS if run.dry_run else TIMED_STEPS
    folder = run.work / "timing" / f"{name}-{side}-{round_index}"
    folder.mkdir(parents=True)
    report = folder / "measure.json"
    command = [sys.executable, str(MEASURE), "--backend", "torch", "--steps", str(steps),
               "--warmup", str(warmup_steps(program)), "--device", run.device,
               "--batch-size", str(workload["batch_size"]), "--report", str(report)]
    if side_args is None:
        command += ["generated", str(program), str(folder / "run")]
    else:
        command += ["hand", workload["baseline"], *side_args]
    record, _ = run.child(command)
    if record["status"] == "ok":
        record.update(read_json(report) or {"status": "failed", "reason": f"no {report.name}"})
    return {"workload": name, "side": side, "round": round_index, "steps": steps, **record}


def warmup_steps(train_py: Path) -> int:
    """The steps the generated train.py leaves out of its samples/s (`warmup_batches = N`)."""
    for line in train_py.read_text().splitlines():
        if line.startswith("warmup_batches = "):
            return int(line.split("=")[1].split("#")[0])
    return DEFAULT_WARMUP


def summarize(rows: list[dict]) -> dict:
    """Per workload: each side's median samples/s and the median per-round ratios."""
    summary = {}
    for name in dict.fromkeys(row["workload"] for row in rows):
        speeds = {}  # side -> round -> samples/s
        for row in rows:
            if row["workload"] == name and row["status"] == "ok" and row["samples_per_s"]:
                speeds.setdefault(row["side"], {})[row["round"]] = row["samples_per_s"]
        entry = {f"{side}_samples_per_s": statistics.median(by_round.values())
                 for side, by_round in speeds.items()}
        entry["rounds"] = max((len(by_round) for by_round in speeds.values()), default=0)
        generated = speeds.get("generated", {})
        for side in ("hand_eager", "hand_compiled"):
            ratios = [generated[r] / speeds[side][r] for r in generated
                      if r in speeds.get(side, {})]
            entry[f"ratio_vs_{side}"] = statistics.median(ratios) if ratios else None
        summary[name] = entry
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=Path, required=True,
                        help="the folder bench/gpu/prepare.py wrote")
    parser.add_argument("--out", type=Path, required=True, help=f"where {REPORT_NAME} goes")
    parser.add_argument("--dry-run", action="store_true", help="on the CPU, a few steps each")
    parser.add_argument("--budget-s", type=float,
                        help=f"seconds for all parts together (default: {BUDGET_S}; "
                             f"{DRY_RUN_BUDGET_S} with --dry-run)")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="timing rounds at most")
    parser.add_argument("--workloads", help="a comma-separated subset (default: all)")
    parser.add_argument("--work", type=Path, help="where runs and checkpoints go (default: "
                        "a temporary folder); nothing of it goes to --out")
    args = parser.parse_args()
    if args.budget_s is None:
        args.budget_s = DRY_RUN_BUDGET_S if args.dry_run else BUDGET_S

    manifest_path = args.programs / "manifest.json"
    if not manifest_path.exists():
        sys.exit(f"error: {manifest_path} is missing: run bench/gpu/prepare.py first")
    manifest = json.loads(manifest_path.read_text())
    names = args.workloads.split(",") if args.workloads else list(manifest["workloads"])
    unknown = [name for name in names if name not in manifest["workloads"]]
    if unknown:
        sys.exit(f"error: --workloads {unknown[0]!r}: expected some of "
                 f"{', '.join(manifest['workloads'])}")
    run = Run(args, manifest)

    machine, shown = run.child([sys.executable, str(CHECKS), "machine"])
    run.report["machine"] = last_json_line(shown) if machine["status"] == "ok" else machine
    run.save()

    correctness_end = time.monotonic() + CORRECTNESS_SHARE * run.left()
    for index, name in enumerate(names):
        share = (correctness_end - time.monotonic()) / (len(names) - index)
        run.report["correctness"][name] = check_workload(
            run, name, manifest["workloads"][name], args.programs, time.monotonic() + share)
        run.save()

    rows = run.report["timing"]["rounds"]
    for round_index in range(args.rounds):
        for name in names:
            for side, side_args in TIMING_SIDES:
                rows.append(time_side(run, name, manifest["workloads"][name], args.programs,
                                      side, side_args, round_index))
                run.report["timing"]["summary"] = summarize(rows)
                run.save()
        if run.left() < MIN_START_S:
            break
    print(json.dumps({"correctness": {name: entry["status"] for name, entry in
                                      run.report["correctness"].items()},
                      "timing": run.report["timing"]["summary"]}, indent=2))
    print(f"report: {args.out / REPORT_NAME} ({run.report['elapsed_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
