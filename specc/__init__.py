"""specc: a compiler from model specs to standalone PyTorch and Keras training programs.

The Python API mirrors the command line:

    program = specc.load("specs/mnist_cnn.spec")        # checked IR; raises SpecError
    result = specc.check("specs/mnist_cnn.spec")        # IR (or None) plus diagnostics
    files = specc.compile("specs/mnist_cnn.spec", backend="torch", out="build/mnist")

Importing specc imports no deep-learning framework.
"""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"
__all__ = ["Diagnostic", "SpecError", "check", "compile", "load", "render"]


def __getattr__(name: str):
    # specc.errors imports Pydantic (~0.1 s): `import specc` and the command line's argument
    # parsing do not wait for it.
    if name in ("Diagnostic", "SpecError", "render"):
        from specc import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'specc' has no attribute {name!r}")


def check(path: str | Path):
    """Check a spec file: a `CheckResult` with `.program` (None on errors) and
    `.diagnostics` (errors and warnings)."""
    from specc.passes.check import check_file

    return check_file(path)


def load(path: str | Path):
    """The checked `ir.Program` of a spec file; raises SpecError listing every error."""
    from specc.errors import SpecError

    result = check(path)
    if result.program is None:
        raise SpecError(result.diagnostics.errors)
    return result.program


def compile(
    path: str | Path,
    backend: str | None = None,
    out: str | Path | None = None,
    model: str | None = None,
) -> dict[str, Path]:
    """Generate the program of one model of a spec (the first unless `model` names one)
    into `out` (default: `build/<model>/<backend>`); returns the written files by name."""
    from specc.backends import generate, select_model

    program = load(path)
    chosen = select_model(program, model)
    backend = backend or chosen.train.backend
    out_dir = Path(out) if out is not None else Path("build") / chosen.name / backend
    sources = generate(chosen, backend, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, text in sources.items():
        target = out_dir / name
        target.write_text(text, encoding="utf-8")
        written[name] = target
    return written
