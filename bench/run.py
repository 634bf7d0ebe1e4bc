"""Generated programs vs hand-written baselines: training speed and memory, side by side.

    python bench/run.py                                  # every workload, PyTorch, CPU
    python bench/run.py --workloads mnist_cnn,mlp_regression --repeats 5
    python bench/run.py --backends torch,tensorflow --device cuda --json bench.json

For each workload (a spec in bench/specs/) and backend, this one process:
  1. compiles the spec with `specc compile` run as a new process, --repeats times, and
     reports the median wall-clock time;
  2. runs the generated train.py and the hand-written baseline (bench/baselines/) in turn,
     --repeats rounds of (generated, hand-written), each run a fresh process
     (bench/measure.py) training W warm-up steps and then --steps timed steps.
     W is the generated train.py's own `warmup_batches`, so both sides leave out the same
     steps; both clocks start after step W and stop when step W + steps has finished;
  3. prints a row: the median samples/s of each side, their ratio (generated / hand-written:
     the median of the per-round ratios, so that a change of machine load between rounds
     cancels), each side's peak memory, and the compile time. --json writes every run.

The machine may be shared. Before each run this script waits (up to --quiet-wait seconds)
for the cores the run needs to be idle; it measures how much CPU other processes (and, on a
virtual machine, the host) took during each run, and measures a round again (up to
--retries times) when that exceeded --max-contention cores. Both sides run in the same
environment: --threads sets their thread pools, and --allocator steady (the default) gives
both the same glibc malloc settings (see STEADY_MALLOC).

Backends without a code generator yet (no `generate` in specc.backends.<name>) are skipped,
and say so. The default steps per workload suit a 2-core CPU; --steps overrides them all.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path[:0] = [str(ROOT), str(BENCH)]  # `import specc` from a checkout as well

from check_time import specc_command  # noqa: E402

import specc  # noqa: E402  (reads specs only: never imports a framework)


@dataclass(frozen=True)
class Workload:
    name: str  # bench/specs/<name>.spec; baselines bench/baselines/<torch|keras>_<name>.py
    cpu_steps: int  # timed steps by default on the CPU (a 2-core machine)
    cuda_steps: int  # and on a GPU

    @property
    def spec(self) -> Path:
        return BENCH / "specs" / f"{self.name}.spec"


WORKLOADS = {w.name: w for w in (
    Workload("mnist_cnn", cpu_steps=40, cuda_steps=200),
    Workload("cifar_cnn", cpu_steps=40, cuda_steps=200),
    Workload("lstm_text", cpu_steps=10, cuda_steps=200),
    Workload("transformer_text", cpu_steps=3, cuda_steps=100),
    Workload("mlp_regression", cpu_steps=100, cuda_steps=200),
)}
# The hand-written baseline of each backend: bench/baselines/<prefix>_<workload>.py
BASELINE_PREFIX = {"torch": "torch", "tensorflow": "keras"}
# train.py's warm-up, when a program does not name it in a way this script can read.
DEFAULT_WARMUP = 5
CHILD_TIMEOUT_S = 900
# glibc malloc settings for --allocator steady: memory up to 32 MiB a block (glibc's
# largest mmap threshold) comes from the heap, and the heap is never trimmed, so a training
# step reuses the memory the step before it freed. By default glibc moves its threshold with
# what the process has freed so far, so one program may keep its steps' memory while another
# returns it to the kernel and takes ~10,000 page faults a step (measured on mnist_cnn:
# bench/README.md), an accident of each process's history, not of its training code.
STEADY_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(32 * 2**20), "MALLOC_TRIM_THRESHOLD_": str(2**40)}
# A run may start when other processes use no more than this many cores beyond those the
# runs leave free (all but --threads).
QUIET_CORES = 0.2


def backend_missing(backend: str) -> str | None:
    """Why `backend` cannot generate programs yet, or None when it can."""
    try:
        module = importlib.import_module(f"specc.backends.{backend}")
    except ImportError as error:
        return f"specc.backends.{backend} does not import ({error})"
    if not hasattr(module, "generate"):
        return f"specc.backends.{backend} has no generate() yet"
    return None


def compile_spec(spec: Path, backend: str, out: Path) -> float:
    """Seconds that `specc compile SPEC --backend B -o OUT` takes as a new process."""
    command = [*specc_command(), "compile", str(spec), "--backend", backend,
               "-o", str(out)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"specc compile failed:\n{done.stderr.strip()}")
    return seconds


def warmup_steps(train_py: Path) -> int:
    """The steps the generated train.py leaves out of its samples/s (`warmup_batches = N`)."""
    found = re.search(r"^warmup_batches = (\d+)", train_py.read_text(), re.MULTILINE)
    return int(found.group(1)) if found else DEFAULT_WARMUP


def cpu_seconds() -> tuple[float, float] | None:
    """CPU seconds, summed over the machine's CPUs since boot, spent busy (by any process)
    and stolen (on a virtual machine: the host ran something else), from Linux's /proc/stat;
    None elsewhere."""
    stat = Path("/proc/stat")
    if not stat.exists():
        return None
    ticks = [int(field) for field in stat.read_text().splitlines()[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks + [0] * (8 - len(ticks))
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(side_args: list[str], common: list[str], work_dir: Path,
            env: dict[str, str]) -> dict:
    """Run bench/measure.py in a new process; its report, or {"error": ...}. The report gains
    how busy the rest of the machine was meanwhile: `others_cpu_share`, the CPU time other
    processes used as a share of all the CPUs' time, and `stolen_cpu_share` (by the host)."""
    report = work_dir / "report.json"
    report.unlink(missing_ok=True)
    command = [sys.executable, str(BENCH / "measure.py"), *common, "--report", str(report),
               *side_args]
    machine_before, child_before = cpu_seconds(), children_cpu_seconds()
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, cwd=work_dir,
                              env=env, timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {CHILD_TIMEOUT_S} s"}
    capacity = (time.perf_counter() - start) * os.cpu_count()
    if done.returncode != 0 or not report.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
        return {"error": "\n".join(tail) or f"exit status {done.returncode}"}
    result = json.loads(report.read_text())
    machine_after = cpu_seconds()
    if machine_before and machine_after:
        busy = machine_after[0] - machine_before[0]
        others = busy - (children_cpu_seconds() - child_before)
        result["others_cpu_share"] = max(0.0, others) / capacity
        result["stolen_cpu_share"] = (machine_after[1] - machine_before[1]) / capacity
    return result


def child_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment both sides run in."""
    env = dict(os.environ)
    if args.allocator == "steady":
        env.update(STEADY_MALLOC)
    if args.threads:
        threads = str(args.threads)
        env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads,
                   TF_NUM_INTRAOP_THREADS=threads)
    return env


def contention(result: dict) -> float | None:
    """The share of the machine that other processes and the host took during a run."""
    if "others_cpu_share" not in result:
        return None
    return result["others_cpu_share"] + result["stolen_cpu_share"]


def wait_for_quiet(limit_s: float, spare_cores: int) -> None:
    """Wait, at most `limit_s` seconds, until over one second the machine's busy cores number
    no more than `spare_cores` + QUIET_CORES (other engineers' test runs share it)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = cpu_seconds()
        if before is None:
            return
        time.sleep(1.0)
        after = cpu_seconds()
        busy_cores = (after[0] - before[0]) + (after[1] - before[1])
        if busy_cores <= spare_cores + QUIET_CORES:
            return


def median_of(runs: list[dict], key: str) -> float | None:
    values = [run[key] for run in runs if run.get(key) is not None]
    return statistics.median(values) if values else None


def bench_workload(workload: Workload, backend: str, args: argparse.Namespace,
                   scratch: Path) -> dict:
    """Compile and measure one workload on one backend: a row of the table."""
    row = {"workload": workload.name, "backend": backend}
    missing = backend_missing(backend)
    if missing:
        return {**row, "status": f"skipped: {missing}"}

    model = specc.load(workload.spec).models[0]
    batch_size, samples = model.train.batch_size, model.data.source.n
    steps = args.steps or (workload.cuda_steps if args.device.startswith("cuda")
                           else workload.cpu_steps)
    program = scratch / f"{workload.name}-{backend}"
    try:
        compile_runs = [compile_spec(workload.spec, backend, program)
                        for _ in range(args.repeats)]
    except RuntimeError as error:
        return {**row, "status": f"failed: {error}"}
    warmup = warmup_steps(program / "train.py")
    if (warmup + steps) * batch_size > samples:
        return {**row, "status": f"failed: {warmup} + {steps} steps of {batch_size} need more "
                                 f"than the spec's {samples} samples"}
    row.update(steps=steps, warmup=warmup, batch_size=batch_size,
               compile_s=statistics.median(compile_runs), compile_runs_s=compile_runs)

    common = ["--backend", backend, "--steps", str(steps), "--warmup", str(warmup),
              "--device", args.device, "--batch-size", str(batch_size)]
    baseline = f"{BASELINE_PREFIX[backend]}_{workload.name}"
    runs = {"generated": [], "hand": []}
    discarded = []  # rounds measured while something else took too much of the machine
    spare_cores = os.cpu_count() - min(args.threads or os.cpu_count(), os.cpu_count())
    for round_number in range(args.repeats):
        run_dir = scratch / f"run-{workload.name}-{backend}-{round_number}"
        sides = {"generated": ["generated", str(program / "train.py"), str(run_dir)],
                 "hand": ["hand", baseline]}
        for attempt in range(1 + args.retries):
            pair = {}
            for side, side_args in sides.items():
                wait_for_quiet(args.quiet_wait, spare_cores)
                shutil.rmtree(run_dir, ignore_errors=True)
                pair[side] = result = measure(side_args, common, scratch, child_env(args))
                if "error" in result:
                    return {**row, "status": f"failed: {side} run: {result['error']}"}
                print(f"  {workload.name} {backend} round {round_number + 1}/{args.repeats} "
                      f"{side}: {result['samples_per_s']:.1f} samples/s, others took "
                      f"{percent(contention(result))}", file=sys.stderr)
            contended = any((contention(run) or 0) * os.cpu_count()
                            > spare_cores + args.max_contention for run in pair.values())
            if not contended or attempt == args.retries:
                break
            discarded.append(pair)
            print("  (others took too much of the machine: measuring that round again)",
                  file=sys.stderr)
        for side, result in pair.items():
            runs[side].append(result)

    ratios = [gen["samples_per_s"] / hand["samples_per_s"]
              for gen, hand in zip(runs["generated"], runs["hand"], strict=True)]
    # How much of the machine something else took, at worst, while this row was measured.
    shares = [contention(run) for side_runs in runs.values() for run in side_runs]
    row.update(status="ok", ratio=statistics.median(ratios), ratios=ratios,
               contention=max(shares) if None not in shares else None, runs=runs,
               discarded=discarded)
    for side, side_runs in runs.items():
        row[side] = {key: median_of(side_runs, key) for key in
                     ("samples_per_s", "probe_samples_per_s", "peak_mb", "train_peak_mb")}
        row[side]["memory"] = side_runs[0]["memory"]
    return row


def machine() -> dict:
    """What the numbers were measured on."""
    cpu = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE)
        cpu = names[0] if names else cpu
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "load_average_at_start": list(os.getloadavg())}


def number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"


def print_table(rows: list[dict], info: dict) -> None:
    print(f"\n{info['cpu']}, {info['cores']} cores, device {info['device']}, threads "
          f"{info['threads']}, allocator {info['allocator']}; load average "
          f"{info['load_average_at_start'][0]:.2f} at start, "
          f"{info['load_average_at_end'][0]:.2f} at end; {info['versions']}")
    print("steps: warm-up + timed; samples/s: median over rounds; ratio: median of the "
          "rounds' generated/hand-written;\npeak MB: whole process / timed steps only; "
          "others: the most CPU time that other processes and the host took\nduring one of the "
          "row's runs, as a share of the machine")
    header = (f"{'workload':<17}{'backend':<11}{'steps':>9}{'generated':>12}{'hand':>12}"
              f"{'ratio':>7}{'gen peak MB':>16}{'hand peak MB':>16}{'compile s':>11}"
              f"{'others':>8}")
    print(header)
    print("-" * len(header))
    for row in rows:
        start = f"{row['workload']:<17}{row['backend']:<11}"
        if row["status"] != "ok":
            print(start + row["status"].splitlines()[0])
            continue
        gen, hand = row["generated"], row["hand"]
        memory = {side: f"{number(values['peak_mb'])} / {number(values['train_peak_mb'])}"
                  for side, values in (("gen", gen), ("hand", hand))}
        print(f"{start}{row['warmup']:>4}+{row['steps']:<4}"
              f"{number(gen['samples_per_s'], 1):>12}{number(hand['samples_per_s'], 1):>12}"
              f"{row['ratio']:>7.3f}{memory['gen']:>16}{memory['hand']:>16}"
              f"{row['compile_s']:>11.2f}{percent(row['contention']):>8}")
    failed = [row for row in rows if row["status"].startswith("failed")]
    for row in failed:
        print(f"\n{row['workload']} {row['backend']} {row['status']}")


def framework_versions(rows: list[dict]) -> str:
    seen = {}
    for row in rows:
        for side_runs in row.get("runs", {}).values():
            for run in side_runs:
                for name in ("torch", "tensorflow"):
                    if name in run:
                        seen[name] = run[name]
    return ", ".join(f"{name} {version}" for name, version in sorted(seen.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help="comma-separated, from: " + ", ".join(WORKLOADS))
    parser.add_argument("--backends", default="torch", help="torch, tensorflow or both")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--steps", type=int, help="timed steps per run (default: per workload)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of (generated, hand)")
    parser.add_argument("--json", type=Path, help="write every measurement here")
    parser.add_argument("--allocator", choices=["steady", "default"], default="steady",
                        help="steady: both sides run with glibc malloc settings that keep a "
                             "step's memory for the next (see STEADY_MALLOC); default: as is")
    parser.add_argument("--threads", type=int,
                        help="compute threads per run (OMP_NUM_THREADS, TensorFlow's intra-op "
                             "pool); default: the frameworks' own, one per core")
    parser.add_argument("--quiet-wait", type=float, default=60.0, metavar="SECONDS",
                        help="before each run, wait up to this long for an idle machine")
    parser.add_argument("--max-contention", type=float, default=0.4, metavar="CORES",
                        help="measure a round again when, during one of its runs, other "
                             "processes kept more than this many cores busy on average, "
                             "besides the cores that --threads leaves free")
    parser.add_argument("--retries", type=int, default=2,
                        help="how many times a round may be measured again")
    args = parser.parse_args()
    workloads = args.workloads.split(",")
    backends = args.backends.split(",")
    unknown = [w for w in workloads if w not in WORKLOADS]
    unknown += [b for b in backends if b not in BASELINE_PREFIX]
    if unknown:
        parser.error(f"unknown workload or backend: {', '.join(unknown)}")

    info = {**machine(), "device": args.device, "repeats": args.repeats,
            "allocator": args.allocator, "threads": args.threads or "default"}
    rows = []
    with tempfile.TemporaryDirectory(prefix="specc-bench-") as scratch:
        for name in workloads:
            for backend in backends:
                rows.append(bench_workload(WORKLOADS[name], backend, args, Path(scratch)))
    info["load_average_at_end"] = list(os.getloadavg())
    info["versions"] = framework_versions(rows)
    print_table(rows, info)
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "rows": rows}, indent=2) + "\n")
    return 1 if any(row["status"].startswith("failed") for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
