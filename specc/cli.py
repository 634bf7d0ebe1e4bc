"""The `specc` command: argument parsing and exit codes only.

Exit codes: 0 success, 1 errors in a spec or its data, 2 usage errors, 3 an internal error
(a bug in specc: it prints "internal error, please report" and the traceback).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import traceback
import warnings
from pathlib import Path

EXIT_OK, EXIT_SPEC, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
# Commands that take a fraction of a second, most of it start-up (bench/README.md, "Check
# time"). The `specc` script runs them with the cycle collector off, since nearly every
# object they make lives until they end, and ends their process with os._exit once the
# output is flushed: the interpreter's teardown of the classes and tables a check built
# would add a fifth to the time of `specc check`.
QUICK_COMMANDS = frozenset({"check", "compile", "fmt"})


def _print_diagnostics(diagnostics) -> None:
    from specc.errors import render

    sources: dict[str, str] = {}
    for diagnostic in diagnostics:
        print(render(diagnostic, sources), file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    from specc import check
    from specc.report import model_table

    status = EXIT_OK
    for path in args.specs:
        result = check(path)
        _print_diagnostics(result.diagnostics.items)
        if result.program is None:
            errors = len(result.diagnostics.errors)
            print(f"{path}: {errors} error{'s' if errors != 1 else ''}", file=sys.stderr)
            status = EXIT_SPEC
            continue
        for model in result.program.models:
            print(model_table(model))
            print()
    return status


def cmd_compile(args: argparse.Namespace) -> int:
    from specc import compile

    written = compile(args.spec, backend=args.backend, out=args.out, model=args.model)
    for path in written.values():
        print(path)
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from specc.run import train

    return train(args.spec, backend=args.backend, device=args.device, epochs=args.epochs,
                 out=args.out, resume=args.resume, max_steps=args.max_steps, data=args.data,
                 model=args.model)


def cmd_parity(args: argparse.Namespace) -> int:
    from specc.parity import run

    if args.steps < 1:
        print("specc parity: --steps must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = run(args.spec, steps=args.steps, model=args.model)
    except ModuleNotFoundError as error:  # parity runs both frameworks
        print(f"specc parity needs both PyTorch and TensorFlow installed: {error}",
              file=sys.stderr)
        return EXIT_USAGE
    print(report.table())
    return EXIT_OK if report.ok else EXIT_SPEC


def cmd_fmt(args: argparse.Namespace) -> int:
    from specc.fmt import format_file

    status = EXIT_OK
    for path in args.specs:
        original = Path(path).read_text(encoding="utf-8")
        formatted = format_file(path)
        if args.check:
            if formatted != original:
                print(f"{path}: would reformat", file=sys.stderr)
                status = EXIT_SPEC
        elif formatted != original:
            Path(path).write_text(formatted, encoding="utf-8")
            print(f"reformatted {path}")
    return status


def cmd_bench(args: argparse.Namespace) -> int:
    import json

    from specc.bench import BenchError, bench, table

    try:
        variants = args.variants.split(",") if args.variants else None
        report = bench(args.spec, backend=args.backend, device=args.device, steps=args.steps,
                       variants=variants, model=args.model)
    except BenchError as error:
        print(error, file=sys.stderr)
        return error.status
    print(table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return EXIT_OK if report["fastest"] else EXIT_SPEC  # every variant failed: it says why


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="specc", description="Compile model specs to "
                                     "standalone PyTorch and TensorFlow training programs.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser("check", help="check specs; print shapes and parameter counts")
    check.add_argument("specs", nargs="+", metavar="SPEC")
    check.set_defaults(run=cmd_check)

    compile_ = sub.add_parser("compile", help="write model.py and train.py for a spec")
    compile_.add_argument("spec", metavar="SPEC")
    compile_.add_argument("--backend", choices=("torch", "tensorflow"))
    compile_.add_argument("-o", "--out", metavar="DIR")
    compile_.add_argument("--model", help="which model of the file (default: the first)")
    compile_.set_defaults(run=cmd_compile)

    train = sub.add_parser("train", help="compile a spec into RUN/code and train it")
    train.add_argument("spec", metavar="SPEC")
    train.add_argument("--backend", choices=("torch", "tensorflow"))
    train.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    train.add_argument("--epochs", type=int)
    train.add_argument("--max-steps", type=int, dest="max_steps")
    train.add_argument("--out", metavar="RUN")
    train.add_argument("--resume", action="store_true")
    train.add_argument("--data", metavar="PATH", help="override the data file or folder")
    train.add_argument("--model", help="which model of the file (default: the first)")
    train.set_defaults(run=cmd_train)

    parity = sub.add_parser("parity", help="check that the PyTorch and TensorFlow programs "
                            "compute the same outputs, gradients and optimizer steps")
    parity.add_argument("spec", metavar="SPEC")
    parity.add_argument("--steps", type=int, default=3, metavar="K",
                        help="optimizer steps to compare (default: 3)")
    parity.add_argument("--model", help="which model of the file (default: the first)")
    parity.set_defaults(run=cmd_parity)

    fmt = sub.add_parser("fmt", help="rewrite specs in canonical layout")
    fmt.add_argument("specs", nargs="+", metavar="SPEC")
    fmt.add_argument("--check", action="store_true", help="only report files that would change")
    fmt.set_defaults(run=cmd_fmt)

    bench = sub.add_parser("bench", help="time a spec's program in each precision and "
                           "compile setting that applies to this machine")
    bench.add_argument("spec", metavar="SPEC")
    bench.add_argument("--backend", choices=("torch", "tensorflow"))
    bench.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    bench.add_argument("--steps", type=int, default=20, metavar="N",
                       help="timed optimizer steps per variant, after the warm-up (default: 20)")
    bench.add_argument("--variants", metavar="NAME,...",
                       help="measure only these (e.g. fp32,bf16+compile; default: all)")
    bench.add_argument("--json", metavar="FILE", help="also write the measurements here")
    bench.add_argument("--model", help="which model of the file (default: the first)")
    bench.set_defaults(run=cmd_bench)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    warnings.showwarning = _show_warning  # specc's warnings are for users, not tracebacks
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on usage errors
    from specc.errors import SpecError

    try:
        return args.run(args)
    except SpecError as error:
        _print_diagnostics(error.diagnostics)
        return EXIT_SPEC
    except KeyboardInterrupt:
        return 130
    except Exception:  # a bug in specc, never the user's fault
        traceback.print_exc()
        print("specc: internal error, please report it with the spec that caused it",
              file=sys.stderr)
        return EXIT_INTERNAL


def run() -> None:
    """The `specc` console script: `main` on the command line's arguments, then exit."""
    argv = sys.argv[1:]
    quick = bool(argv) and argv[0] in QUICK_COMMANDS
    if quick:
        gc.disable()
    status = main(argv)
    if not quick:
        sys.exit(status)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # `specc check ... | head`: the reader has what it wanted
        pass
    os._exit(status)


if __name__ == "__main__":
    run()
