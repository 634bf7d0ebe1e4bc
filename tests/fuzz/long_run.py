"""The long fuzz run of `specc check` and `specc fmt`, in one process:

    python -m tests.fuzz.long_run --cases 100000 [--seed 0] [--out fuzz-failures]

With --compile, each case that checks is also compiled for both backends. Half the cases
are written from the grammar, half are mutants of the checked-in specs and
error-corpus files (`tests/fuzz/cases.py` says how). Each case must exit 0 or 1, print no
traceback and answer within the time bound; `specc fmt` must keep every character of the
comments and be idempotent. Failing cases are saved under --out; the exit status is 1 when
there is one. README.md ("Reliability") states the size and result of the last long run.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from .cases import SEEDS, TIME_BOUND_S, generate, mutate, prepare_folder, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.long_run")
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("fuzz-failures"))
    parser.add_argument("--bound", type=float, default=TIME_BOUND_S,
                        help="seconds a case (check and fmt) may take")
    parser.add_argument("--compile", action="store_true",
                        help="also compile, for both backends, each case that checks")
    args = parser.parse_args(argv)

    failures = 0
    checked_clean = 0  # cases `specc check` accepted (exit 0); the others got errors
    slowest = (0.0, -1)
    seconds = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="specc-fuzz-") as name:
        folder = Path(name)
        prepare_folder(folder)
        for index in range(args.cases):
            rng = random.Random(f"{args.seed}:{index}")
            if index % 2:
                case = mutate(rng.choice(SEEDS).read_text(encoding="utf-8"), rng)
            else:
                case = generate(rng)
            outcome = run(case, folder, args.bound, args.compile)
            seconds.append(outcome.seconds)
            checked_clean += outcome.codes[:1] == (0,)
            slowest = max(slowest, (outcome.seconds, index))
            if outcome.problem is not None:
                failures += 1
                args.out.mkdir(parents=True, exist_ok=True)
                raw = case if isinstance(case, bytes) else case.encode("utf-8", "surrogatepass")
                (args.out / f"case-{args.seed}-{index}.spec").write_bytes(raw)
                (args.out / f"case-{args.seed}-{index}.txt").write_text(outcome.problem)
                print(f"case {index}: {outcome.problem.splitlines()[0]}", file=sys.stderr)
            if (index + 1) % 1000 == 0:
                print(f"{index + 1} cases, {failures} failing, "
                      f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
    seconds.sort()
    median = seconds[len(seconds) // 2] if seconds else 0.0
    print(f"{args.cases} cases (seed {args.seed}): {failures} failing, {checked_clean} "
          f"accepted by check, {args.cases - checked_clean} answered with errors; "
          f"median {median * 1000:.0f} ms, slowest {slowest[0]:.2f} s (case {slowest[1]}), "
          f"total {time.perf_counter() - started:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
