"""The child process of `specc bench` (specc/bench.py): run a generated train.py as
`python train.py ARGS...` would, then write the peak memory of the run to REPORT as JSON.

    python -m specc.bench_probe run REPORT TRAIN_PY [ARGS...]
    python -m specc.bench_probe gpus BACKEND      # prints how many GPUs the framework sees

It imports nothing of specc but the package's (framework-free) `__init__`, so that the
child runs what the generated program imports (the framework, NumPy) and little else.

The report holds `peak_mb` and `peak_memory`, which says what was measured: "rss" (the
process's peak resident set, over the whole run) or "cuda" (the framework's peak of
allocated device memory); and `versions`, the framework's version.
"""

from __future__ import annotations

import json
import resource
import runpy
import sys
from pathlib import Path

from specc.backends.registry import BACKENDS


def peak_memory() -> tuple[float, str]:
    """The run's peak memory in MiB, and what it measured: the GPU's, as the framework the
    program imported counts it, else the process's resident memory."""
    for entry in BACKENDS.values():
        if entry.framework_module in sys.modules:
            peak = entry.devices().peak_gpu_mib()
            if peak is not None:
                return peak, "cuda"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss"  # KiB on Linux


def run(report: Path, train_py: Path, program_args: list[str]) -> None:
    sys.argv = [str(train_py), *program_args]
    try:
        runpy.run_path(str(train_py), run_name="__main__")
    except SystemExit as stop:
        if stop.code not in (None, 0):
            raise  # the program's own `error: ...` message and exit status
    peak_mb, measured = peak_memory()
    versions = {entry.framework_module: sys.modules[entry.framework_module].__version__
                for entry in BACKENDS.values() if entry.framework_module in sys.modules}
    report.write_text(json.dumps({"peak_mb": peak_mb, "peak_memory": measured,
                                  "versions": versions}) + "\n")


def main() -> None:
    if sys.argv[1:2] == ["gpus"] and len(sys.argv) == 3:
        print(BACKENDS[sys.argv[2]].devices().gpu_count())
    elif sys.argv[1:2] == ["run"] and len(sys.argv) >= 4:
        run(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:])
    else:
        sys.exit("usage: python -m specc.bench_probe run REPORT TRAIN_PY [ARGS...] | gpus BACKEND")


if __name__ == "__main__":
    main()
