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
    """Print diagnostics, at most MAX_PRINTED_DIAGNOSTICS of them, then how many more."""
    from specc.errors import render
    from specc.limits import MAX_PRINTED_DIAGNOSTICS

    sources: dict[str, list[str]] = {}
    for diagnostic in diagnostics[:MAX_PRINTED_DIAGNOSTICS]:
        print(render(diagnostic, sources), file=sys.stderr)
    hidden = diagnostics[MAX_PRINTED_DIAGNOSTICS:]
    if hidden:
        errors = sum(d.severity == "error" for d in hidden)
        parts = [f"{count} more {kind}{'s' if count != 1 else ''}"
                 for count, kind in ((errors, "error"), (len(hidden) - errors, "warning"))
                 if count]
        file = next((d.span.file for d in diagnostics if d.span is not None), None)
        where = f"{file}: " if file else ""
        print(f"{where}and {' and '.join(parts)} not shown", file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    if args.json:
        return cmd_check_json(args)
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


def cmd_check_json(args: argparse.Namespace) -> int:
    """`specc check --json`: one JSON document on stdout, diagnostics inside it, nothing on
    stderr; the exit status is the text check's."""
    import json

    from specc import check
    from specc.check_json import check_document

    results = [(path, check(path)) for path in args.specs]
    status = EXIT_SPEC if any(result.program is None for _, result in results) else EXIT_OK
    try:
        print(json.dumps(check_document(results), indent=2))
    except BrokenPipeError:  # `specc check --json ... | head`: the reader has what it wanted
        pass
    return status


def cmd_compile(args: argparse.Namespace) -> int:
    from specc import compile

    written = compile(args.spec, backend=args.backend, out=args.out, model=args.model)
    for path in written.values():
        print(path)
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from specc.backends.common.launch import Cluster
    from specc.run import train

    cluster = None
    if args.nproc is not None or args.nnodes > 1:
        if args.nnodes > 1 and (args.master_addr is None or args.master_port is None):
            print("specc train: --nnodes above 1 needs --master-addr and --master-port (where "
                  "the machines meet: node 0's address and a free port)", file=sys.stderr)
            return EXIT_USAGE
        if not 0 <= args.node_rank < args.nnodes:
            print(f"specc train: --node-rank {args.node_rank}: expected 0 to {args.nnodes - 1}",
                  file=sys.stderr)
            return EXIT_USAGE
        cluster = Cluster(args.nproc or 1, args.nnodes, args.node_rank, args.master_addr,
                          args.master_port)
    return train(args.spec, backend=args.backend, device=args.device, epochs=args.epochs,
                 out=args.out, resume=args.resume, max_steps=args.max_steps, data=args.data,
                 model=args.model, max_memory=args.max_memory, cluster=cluster)


def _positive(text: str) -> int:
    """A count of processes or machines: an integer from 1 on."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _memory_size(text: str) -> str:
    """--max-memory's value, checked here (exit 2 before anything is compiled) and passed on
    to train.py as written."""
    from specc.memory import parse_size

    try:
        parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


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
    from specc.errors import SpecError
    from specc.fmt import format_source
    from specc.syntax import read_source

    status = EXIT_OK
    for path in args.specs:
        try:
            original = read_source(path)
            formatted = format_source(original, path)
        except SpecError as error:  # the file is left as it is
            _print_diagnostics(error.diagnostics)
            status = EXIT_SPEC
            continue
        if args.check:
            if formatted != original:
                print(f"{path}: would reformat", file=sys.stderr)
                status = EXIT_SPEC
        elif formatted != original:
            Path(path).write_text(formatted, encoding="utf-8")
            print(f"reformatted {path}")
    return status


def cmd_graph(args: argparse.Namespace) -> int:
    from specc import load
    from specc.backends import select_model

    suffixes = (".svg", ".png", ".pdf", ".dot", ".gv")
    if args.out is not None and Path(args.out).suffix.lower() not in suffixes:
        print(f"specc graph: -o must end with one of {', '.join(suffixes)} (got {args.out})",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        from specc.graph import DrawError, write
    except ModuleNotFoundError as error:
        print(f"specc graph needs the graphviz package ({error}): "
              "pip install 'specc[viz]'", file=sys.stderr)
        return EXIT_SPEC
    model = select_model(load(args.spec), args.model)
    out = args.out if args.out is not None else f"{model.name}.svg"
    try:
        print(write(model, out, expand=args.expand))
    except DrawError as error:
        print(f"specc graph: {error}", file=sys.stderr)
        return EXIT_SPEC
    return EXIT_OK


def cmd_plot(args: argparse.Namespace) -> int:
    suffixes = (".png", ".svg", ".pdf")
    if Path(args.out).suffix.lower() not in suffixes:
        print(f"specc plot: -o must end with one of {', '.join(suffixes)} (got {args.out})",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        from specc.plot import write
    except ModuleNotFoundError as error:
        print(f"specc plot needs matplotlib ({error}): pip install 'specc[viz]'",
              file=sys.stderr)
        return EXIT_SPEC
    from specc.run_files import RunError

    try:
        print(write([Path(run) for run in args.runs], args.out, metric=args.metric))
    except RunError as error:
        print(f"specc plot: {error}", file=sys.stderr)
        return EXIT_SPEC
    return EXIT_OK


def cmd_runs(args: argparse.Namespace) -> int:
    from specc.run_files import RunError
    from specc.runs import runs_table

    try:
        print(runs_table(Path(args.folder)))
    except RunError as error:
        print(f"specc runs: {error}", file=sys.stderr)
        return EXIT_SPEC
    return EXIT_OK


def cmd_lsp(args: argparse.Namespace) -> int:
    try:
        from specc.lsp import server
    except ModuleNotFoundError as error:  # pygls comes with the `lsp` extra
        print(f"specc lsp needs pygls: pip install 'specc[lsp]' ({error})", file=sys.stderr)
        return EXIT_USAGE
    server.serve()
    return EXIT_OK


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


# `specc serve` ------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from specc.serve import ServeError, serve
    except ModuleNotFoundError as error:  # fastapi, uvicorn, onnxruntime: the `serve` extra
        print(f"specc serve needs FastAPI, uvicorn and onnxruntime: pip install "
              f"'specc[serve]' ({error})", file=sys.stderr)
        return EXIT_USAGE
    limits = {name: value for name, value in (("max_batch", args.max_batch),
                                              ("max_body", args.max_body)) if value is not None}
    try:
        serve(args.target, host=args.host, port=args.port, **limits)
    except ServeError as error:
        print(f"specc serve: {error}", file=sys.stderr)
        return EXIT_SPEC
    return EXIT_OK


def _positive_count(text: str) -> int:
    """--max-batch's value: a whole number above zero (exit 2 otherwise)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number above zero, got {text!r}")
    return int(text)


def _port(text: str) -> int:
    """--port's value: 1 to 65535 (exit 2 otherwise)."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 1 to 65535, got {text!r}")
    return int(text)


def _byte_size(text: str) -> int:
    """--max-body's value: a size such as 1MB or 65536, in bytes (exit 2 otherwise)."""
    from specc.memory import parse_size

    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_serve_parser(sub) -> None:
    # The limits' defaults are specc.serve's (DEFAULT_MAX_BATCH, DEFAULT_MAX_BODY), named here
    # without importing it: building the parser stays as quick as `specc check` needs.
    serve = sub.add_parser("serve", help="serve an exported ONNX model over HTTP (FastAPI, "
                           "onnxruntime): POST /predict, GET /health, /metadata, /docs")
    serve.add_argument("target", metavar="RUN|MODEL.onnx",
                       help="a run directory (its export/model.onnx) or an ONNX file")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on "
                       "(default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=_port, default=8000, help="default: 8000")
    serve.add_argument("--max-batch", type=_positive_count, dest="max_batch", metavar="N",
                       help="most samples per request (default: 256)")
    serve.add_argument("--max-body", type=_byte_size, dest="max_body", metavar="BYTES",
                       help="largest request body, e.g. 1MB (default: 16MiB)")
    serve.set_defaults(run=cmd_serve)


# `specc quantize` ---------------------------------------------------------------------------
def cmd_quantize(args: argparse.Namespace) -> int:
    try:
        import specc.quantize  # noqa: F401
    except ModuleNotFoundError as error:  # onnx and onnxruntime: the `export` extra
        print(f"specc quantize needs onnx and onnxruntime: pip install 'specc[export]' "
              f"({error})", file=sys.stderr)
        return EXIT_USAGE
    model = Path(args.model)
    out = Path(args.out) if args.out else model.with_suffix(".int8.onnx")
    return _quantize(model, out, args.data, args.method, args.max_drop)


def _quantize(model: Path, out: Path, run_dir: str, method: str, max_drop: float) -> int:
    """Quantize the ONNX file `model` to `out` (calibrated on the training split of the run
    at `run_dir`), compare both on its test split, and refuse a drop above `max_drop`."""
    from specc.quantize import (
        AccuracyDropError,
        QuantizeError,
        choose_method,
        compare,
        quantize_onnx,
        run_splits,
    )

    try:
        if not model.is_file():
            raise QuantizeError(f"{model} not found (expected an ONNX file written by "
                                "`specc export --format onnx`)")
        splits = run_splits(run_dir)
        method = choose_method(model) if method == "auto" else method
        quantize_onnx(model, out, calibration=splits["train"][0], method=method)
        print(f"{out}: {method} int8 quantization of {model}")
        try:
            comparison = compare(model, out, *splits["test"], max_drop=max_drop)
        except AccuracyDropError as refused:
            out.unlink()  # a model that failed the check is not left to be served
            print("\n".join(refused.comparison.lines()))
            raise
        print("\n".join(comparison.lines()))
    except QuantizeError as error:
        print(f"specc quantize: {error}", file=sys.stderr)
        return EXIT_SPEC
    return EXIT_OK


def _points(text: str) -> float:
    """--max-drop's value: points of accuracy, 0 or more (exit 2 otherwise)."""
    try:
        points = float(text)
    except ValueError:
        points = -1.0
    if not points >= 0 or points == float("inf"):
        raise argparse.ArgumentTypeError(f"expected points of accuracy, 0 or more (such as "
                                         f"1 or 0.5), got {text!r}")
    return points


def add_quantize_parser(sub) -> None:
    quantize = sub.add_parser("quantize", help="int8 quantization of an exported ONNX model "
                              "(onnxruntime), refused when it costs accuracy")
    quantize.add_argument("model", metavar="MODEL.onnx")
    quantize.add_argument("--data", required=True, metavar="RUN", help="the run it was "
                          "trained in: calibration on its training split, the check on its "
                          "test split")
    quantize.add_argument("-o", "--out", metavar="FILE",
                          help="where to write it (default: MODEL.int8.onnx)")
    quantize.add_argument("--method", choices=("auto", "dynamic", "static"), default="auto",
                          help="auto (the default): static for models with convolutions, "
                          "dynamic for the others")
    quantize.add_argument("--max-drop", type=_points, default=1.0, dest="max_drop",
                          metavar="POINTS", help="refuse (exit 1) when test accuracy drops "
                          "by more than this many points (default: 1)")
    quantize.set_defaults(run=cmd_quantize)


# `specc export` -----------------------------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    from specc.export import EXPORT_DIR, ONNX_FILE, ExportUsageError, export

    if args.quantize and args.format != "onnx":
        print("specc export: --quantize int8 applies to --format onnx", file=sys.stderr)
        return EXIT_USAGE
    try:
        status = export(args.run_dir, args.format, out=args.out, tolerance=args.tolerance,
                        data_path=args.data)
    except ExportUsageError as error:
        print(f"specc export: {error}", file=sys.stderr)
        return EXIT_USAGE
    if status != EXIT_OK or not args.quantize:
        return status
    exported = Path(args.out) if args.out else Path(args.run_dir) / EXPORT_DIR / ONNX_FILE
    return _quantize(exported, exported.with_suffix(".int8.onnx"), args.run_dir, "auto",
                     args.max_drop)


def build_parser() -> argparse.ArgumentParser:
    from specc.backends.registry import BACKEND_NAMES

    parser = argparse.ArgumentParser(prog="specc", description="Compile model specs to "
                                     "standalone PyTorch and TensorFlow training programs.")
    from specc import __version__

    parser.add_argument("--version", action="version", version=f"specc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser("check", help="check specs; print shapes and parameter counts")
    check.add_argument("specs", nargs="+", metavar="SPEC")
    check.add_argument("--json", action="store_true",
                       help="print the check as JSON (schema: docs/check-json.md)")
    check.set_defaults(run=cmd_check)

    compile_ = sub.add_parser("compile", help="write a spec's program: train.py and its modules")
    compile_.add_argument("spec", metavar="SPEC")
    compile_.add_argument("--backend", choices=BACKEND_NAMES)
    compile_.add_argument("-o", "--out", metavar="DIR")
    compile_.add_argument("--model", help="which model of the file (default: the first)")
    compile_.set_defaults(run=cmd_compile)

    train = sub.add_parser("train", help="compile a spec into RUN/code and train it")
    train.add_argument("spec", metavar="SPEC")
    train.add_argument("--backend", choices=BACKEND_NAMES)
    train.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    train.add_argument("--epochs", type=int)
    train.add_argument("--max-steps", type=int, dest="max_steps")
    train.add_argument("--out", metavar="RUN")
    train.add_argument("--resume", action="store_true")
    train.add_argument("--data", metavar="PATH", help="override the data file or folder")
    train.add_argument("--model", help="which model of the file (default: the first)")
    train.add_argument("--max-memory", type=_memory_size, dest="max_memory", metavar="SIZE",
                       help="refuse to train if the memory estimate exceeds this (e.g. 2GB, "
                       "512MiB) instead of the device's free memory")
    # several processes (specc.launch): torchrun for PyTorch, TF_CONFIG workers for TensorFlow
    train.add_argument("--nproc", type=_positive, metavar="N",
                       help="train with N processes on this machine (one per GPU on GPUs)")
    train.add_argument("--nnodes", type=_positive, default=1, metavar="M",
                       help="machines in all (PyTorch; run the same command on each)")
    train.add_argument("--node-rank", type=int, default=0, dest="node_rank", metavar="R",
                       help="this machine's number, from 0 (0: the master)")
    train.add_argument("--master-addr", dest="master_addr", metavar="HOST",
                       help="the address of machine 0, where the machines meet")
    train.add_argument("--master-port", type=int, dest="master_port", metavar="PORT",
                       help="a free port on machine 0")
    train.set_defaults(run=cmd_train)

    parity = sub.add_parser("parity", help="check that the PyTorch and TensorFlow programs "
                            "compute the same outputs, gradients and optimizer steps")
    parity.add_argument("spec", metavar="SPEC")
    parity.add_argument("--steps", type=int, default=3, metavar="K",
                        help="optimizer steps to compare (default: 3)")
    parity.add_argument("--model", help="which model of the file (default: the first)")
    parity.set_defaults(run=cmd_parity)

    graph = sub.add_parser("graph", help="draw a model: layers, shapes, parameters (Graphviz)")
    graph.add_argument("spec", metavar="SPEC")
    graph.add_argument("-o", "--out", metavar="FILE",
                       help="FILE.svg, .png, .pdf or .dot (default: MODEL.svg)")
    graph.add_argument("--model", help="which model of the file (default: the first)")
    graph.add_argument("--expand", action="store_true",
                       help="draw each block's layers inside it (default: one node per block)")
    graph.set_defaults(run=cmd_graph)

    plot = sub.add_parser("plot", help="draw the training curves of runs (matplotlib)")
    plot.add_argument("runs", nargs="+", metavar="RUN")
    plot.add_argument("-o", "--out", metavar="FILE", default="curves.png",
                      help="FILE.png, .svg or .pdf (default: curves.png)")
    plot.add_argument("--metric", metavar="NAME",
                      help="draw only this quantity (loss, accuracy, lr, ...; default: all)")
    plot.set_defaults(run=cmd_plot)

    runs = sub.add_parser("runs", help="list the run directories under a folder")
    runs.add_argument("folder", nargs="?", default="runs", metavar="DIR",
                      help="where the runs are (default: runs)")
    runs.set_defaults(run=cmd_runs)

    fmt = sub.add_parser("fmt", help="rewrite specs in canonical layout")
    fmt.add_argument("specs", nargs="+", metavar="SPEC")
    fmt.add_argument("--check", action="store_true", help="only report files that would change")
    fmt.set_defaults(run=cmd_fmt)

    lsp = sub.add_parser("lsp", help="serve the Language Server Protocol to an editor")
    lsp.add_argument("--stdio", action="store_true", help="on standard input and output "
                     "(the only transport; accepted since clients pass it)")
    lsp.set_defaults(run=cmd_lsp)


    from specc.export import DEFAULT_TOLERANCE, formats

    export = sub.add_parser("export", help="write a trained run's model as ONNX (verified in "
                            "onnxruntime, preprocessing inside) or its framework's own file")
    export.add_argument("run_dir", metavar="RUN", help="the run directory of `specc train`")
    export.add_argument("--format", choices=formats(), default="onnx",
                        help="onnx (default), or the framework's own format")
    export.add_argument("-o", "--out", metavar="PATH",
                        help="where to write it (default: in RUN/export/, e.g. "
                        "RUN/export/model.onnx)")
    export.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE, metavar="T",
                        help="largest absolute difference from the framework's outputs that "
                        f"the ONNX export accepts (default: {DEFAULT_TOLERANCE:g})")
    export.add_argument("--data", metavar="PATH",
                        help="where the run's data is now, when it has moved")
    export.add_argument("--quantize", choices=("int8",), help="also write an int8 copy "
                        "(MODEL.int8.onnx; onnxruntime's static quantization for convolutions, "
                        "dynamic for the rest), refused when it costs accuracy")
    export.add_argument("--max-drop", type=_points, default=1.0, dest="max_drop",
                        metavar="POINTS", help="with --quantize: refuse (exit 1) when test "
                        "accuracy drops by more than this many points (default: 1)")
    export.set_defaults(run=cmd_export)

    bench = sub.add_parser("bench", help="time a spec's program in each precision and "
                           "compile setting that applies to this machine")
    bench.add_argument("spec", metavar="SPEC")
    bench.add_argument("--backend", choices=BACKEND_NAMES)
    bench.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    bench.add_argument("--steps", type=int, default=20, metavar="N",
                       help="timed optimizer steps per variant, after the warm-up (default: 20)")
    bench.add_argument("--variants", metavar="NAME,...",
                       help="measure only these (e.g. fp32,bf16+compile; default: all)")
    bench.add_argument("--json", metavar="FILE", help="also write the measurements here")
    bench.add_argument("--model", help="which model of the file (default: the first)")
    bench.set_defaults(run=cmd_bench)
    add_serve_parser(sub)
    add_quantize_parser(sub)
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
