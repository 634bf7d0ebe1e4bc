"""`specc train`: compile one model of a spec into RUN/code, then run its train.py.

The generated program runs in a child process, with this one's Python, working directory
and terminal, so that its output streams straight through (a terminal still gets the
program's updating progress line) and specc itself never imports a framework. The child's
exit status is the result: 0 trained, 1 a data or training error (it printed why). With a
cluster (`--nproc N`, and `--nnodes` ... for several machines), the backend's launcher
(`specc.backends.<name>.launch`) runs it as that many processes and names the rank that
failed, if one did.

The run directory RUN defaults to `runs/<model name>`. Without `resume`, a RUN that holds
checkpoints is never overwritten: the run goes to `RUN-2`, `RUN-3`, ... instead, and says
so. With `resume`, the program is regenerated into RUN/code and continues from RUN's newest
intact checkpoint. A RUN whose checkpoints are another backend's, or another network's (by
the spec hash in their seal), is refused before anything is generated; train.py verifies the
rest of each seal (its checksum) itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import specc
from specc.backends import generate, select_model
from specc.backends.common.launch import Cluster, LaunchError
from specc.backends.common.plan import spec_hash
from specc.backends.registry import BACKENDS
from specc.errors import SpecError


def train(spec_path: str | Path, *, backend: str | None = None, device: str | None = None,
          epochs: int | None = None, out: str | Path | None = None, resume: bool = False,
          max_steps: int | None = None, data: str | None = None,
          model: str | None = None, max_memory: str | None = None,
          cluster: Cluster | None = None) -> int:
    """Train a model of the spec at `spec_path` (the first unless `model` names one) with
    `backend` (default: the spec's `train { backend }`); returns the exit status. Raises
    SpecError when the spec has errors, or when `resume` finds checkpoints of another backend
    or network; nothing has been written then. `max_memory` (a size such as "2GB") replaces
    the device's free memory as the limit train.py refuses runs above (specc.memory). With
    `cluster`, train.py runs as that many processes (specc.launch)."""
    program = specc.load(spec_path)
    chosen = select_model(program, model)
    backend = backend or chosen.train.backend
    if cluster is not None:
        try:
            BACKENDS[backend].launcher().check(cluster)
        except LaunchError as error:
            print(f"specc train: {error}", file=sys.stderr)
            return 2
    run_dir = Path(out) if out is not None else Path("runs") / chosen.name
    if resume:
        refuse_foreign_checkpoints(run_dir, backend, spec_hash(chosen))
    else:
        run_dir = unused_run_dir(run_dir)

    code_dir = run_dir / "code"
    sources = generate(chosen, backend, code_dir)
    code_dir.mkdir(parents=True, exist_ok=True)
    for name, text in sources.items():
        (code_dir / name).write_text(text, encoding="utf-8")

    options = {"--device": device, "--epochs": epochs, "--max-steps": max_steps, "--data": data,
               "--max-memory": max_memory}
    command = [sys.executable, str(code_dir / "train.py"), "--out", str(run_dir)]
    for option, value in options.items():
        if value is not None:
            command += [option, str(value)]
    if resume:
        command.append("--resume")
    processes = (f" on {cluster.world_size} processes"
                 if cluster is not None and cluster.world_size > 1 else "")
    print(f"training `{chosen.name}` with {backend}{processes} in {run_dir}", flush=True)
    if cluster is not None:
        failure = BACKENDS[backend].launcher().run(command, cluster)
        if failure is None:
            return 0
        print(failure.message(), file=sys.stderr, flush=True)
        return failure.exit_status()
    status = subprocess.run(command, check=False).returncode
    return 128 - status if status < 0 else status  # killed by signal N: the shell's 128 + N


def unused_run_dir(run_dir: Path) -> Path:
    """`run_dir`, or the first of `run_dir-2`, `run_dir-3`, ... that holds no checkpoints,
    saying so when it is not `run_dir` itself."""
    chosen, number = run_dir, 1
    while holds_checkpoints(chosen):
        number += 1
        chosen = run_dir.with_name(f"{run_dir.name}-{number}")
    if chosen != run_dir:
        print(f"{run_dir} holds an earlier run (pass --resume to continue it); "
              f"this one goes to {chosen}")
    return chosen


def checkpoint_files(run_dir: Path) -> dict[str, list[Path]]:
    """The run's checkpoint files, by the backend whose train.py writes them."""
    folder = run_dir / "checkpoints"
    return {backend.name: sorted(folder.glob(f"*{backend.checkpoint_suffix}"))
            for backend in BACKENDS.values()}


def holds_checkpoints(run_dir: Path) -> bool:
    return any(checkpoint_files(run_dir).values())


def refuse_foreign_checkpoints(run_dir: Path, backend: str, network: str) -> None:
    """Raise SpecError when `run_dir` holds checkpoints of a backend other than `backend`, or
    of a network whose spec hash is not `network`: resuming would regenerate RUN/code over
    the program that wrote them."""
    for owner, paths in checkpoint_files(run_dir).items():
        for path in paths:
            if owner != backend:
                raise SpecError.at(None, f"{path} is a {owner} checkpoint: resume that run "
                                         f"with --backend {owner}, or choose another --out")
            sealed = read_seal(path).get("spec_hash", network)
            if sealed != network:
                raise SpecError.at(None, f"{path} holds another network (spec hash {sealed}, "
                                         f"this spec's {network}): choose another --out")


def read_seal(path: Path) -> dict[str, object]:
    """A checkpoint's seal, the JSON object in its zip comment (backend, spec_hash, sha256),
    or {} when it cannot be read: train.py verifies it and skips a damaged file."""
    try:
        with zipfile.ZipFile(path) as archive:
            seal = json.loads(archive.comment)
    except (OSError, zipfile.BadZipFile, NotImplementedError, ValueError):
        return {}  # NotImplementedError: zipfile's answer to a garbled version field
    return seal if isinstance(seal, dict) else {}
