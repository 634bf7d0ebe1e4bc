"""No damaged or foreign checkpoint is ever used, on either backend.

Every checkpoint a generated train.py writes is sealed: its zip comment is a JSON object
naming its backend and spec hash, with the SHA-256 of the bytes before the comment's length
field. These tests damage checkpoints as disks and kills do (a flipped bit, a truncated file,
an empty file, a stale `.tmp`), hand a program the other backend's or another network's run,
fill the disk while it saves and kill it while it exports, and check that the program says
so in one line (never a traceback), falls back where it can, and overwrites nothing.

A full disk and a kill are simulated from outside the program: a sitecustomize module on the
child's PYTHONPATH (`HOOKS`) makes os.fsync fail with ENOSPC, or ends the process where the
export would be written. The generated code holds nothing for the tests.

The `specc train --resume` checks at the end run no framework: run.py refuses before it
generates anything.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

import specc
from specc import run
from specc.backends import generate
from specc.backends.common.plan import spec_hash
from specc.errors import SpecError

BACKENDS = ("torch", "tensorflow")
SUFFIX = {"torch": ".pt", "tensorflow": ".npz"}

# 48 training samples: 3 batches of 16 per epoch; dropout draws from the random state that a
# resume restores.
SPEC = """
model tiny {
    input x: float[8]
    layers {
        dense(16, activation=relu)
        dropout(0.25)
        dense(UNITS)
    }
    loss cross_entropy()
    optimizer adam(lr=0.01)
    metrics accuracy
    data synthetic(n=96, validation=0.25, test=0.25)
    train {
        epochs = 3
        batch_size = 16
    }
}
"""

# Loaded by the child Python at start-up (it is first on its PYTHONPATH).
HOOKS = '''
import errno
import os

if os.environ.get("FULL_DISK") == "1":
    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    os.fsync = fsync

if os.environ.get("KILL_AT_EXPORT") == "torch":
    import torch

    torch.export.save = lambda *args, **kwargs: os._exit(137)
elif os.environ.get("KILL_AT_EXPORT") == "tensorflow":
    import keras

    keras.Model.save = lambda *args, **kwargs: os._exit(137)
'''


def write_program(folder: Path, backend: str, units: int = 3) -> Path:
    """The generated program of SPEC (its last layer `units` wide) in folder/program."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / "tiny.spec"
    spec.write_text(textwrap.dedent(SPEC).replace("UNITS", str(units)))
    program = folder / "program"
    program.mkdir(exist_ok=True)
    for name, text in generate(specc.load(spec).models[0], backend, program).items():
        (program / name).write_text(text)
    return program


def run_train(program: Path, run_dir: Path, *args: str, **env: str
              ) -> subprocess.CompletedProcess[str]:
    """program/train.py --out run_dir with `args` (and --no-export unless "--export" is
    among them), `env` added to its environment (HOOKS reads it)."""
    options = [a for a in args if a != "--export"]
    if "--export" not in args:
        options.append("--no-export")
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env}
    if env:
        hooks = program.parent / "hooks"
        hooks.mkdir(exist_ok=True)
        (hooks / "sitecustomize.py").write_text(HOOKS)
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(hooks), *filter(None, [os.environ.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, str(program / "train.py"), "--out", str(run_dir),
                           *options], capture_output=True, text=True, timeout=300,
                          check=False, env=environment)


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one-line error a program ended with (exit 1), with no traceback."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr.strip().splitlines()[-1]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, by its relative path: what must stay untouched."""
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def weights(path: Path, backend: str) -> dict[str, np.ndarray]:
    """The model weights a checkpoint holds."""
    if backend == "torch":
        import torch

        state = torch.load(path, weights_only=True)["model"]
        return {name: tensor.numpy() for name, tensor in state.items()}
    with np.load(path) as arrays:
        return {name: arrays[name] for name in arrays if name.startswith("model_")}


def metrics(run_dir: Path) -> list[dict]:
    """metrics.jsonl without the times, which differ from run to run."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in record.items() if k != "time"} for record in records]


def flip_bytes(path: Path, count: int = 16) -> None:
    """Flip `count` bytes from the middle of the file: inside the weights, not the seal."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for i in range(middle, middle + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    """`trained(backend)` → (its program, a run of 3 epochs), each trained once; a test copies
    the run before it changes anything."""
    done: dict[str, tuple[Path, Path]] = {}

    def get(backend: str) -> tuple[Path, Path]:
        if backend not in done:
            folder = tmp_path_factory.mktemp(backend)
            program = write_program(folder, backend)
            result = run_train(program, folder / "run")
            assert result.returncode == 0, result.stderr
            done[backend] = program, folder / "run"
        return done[backend]

    return get


def copied_run(trained, backend: str, tmp_path: Path) -> tuple[Path, Path, Path]:
    """(program, the original run, a copy of it to change)."""
    program, original = trained(backend)
    copy = tmp_path / "run"
    shutil.copytree(original, copy)
    return program, original, copy


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_checkpoint_is_sealed_and_loads_with_the_framework_s_own_loader(
        trained, backend: str) -> None:
    _, run_dir = trained(backend)
    saved = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    suffix = SUFFIX[backend]
    assert saved == [f"best{suffix}", f"epoch-0001{suffix}", f"epoch-0002{suffix}",
                     f"epoch-0003{suffix}"]
    network = spec_hash(specc.load(run_dir.parent / "tiny.spec").models[0])
    for name in saved:
        data = (run_dir / "checkpoints" / name).read_bytes()
        comment = zipfile.ZipFile(io.BytesIO(data)).comment
        seal = json.loads(comment)
        assert seal["backend"] == backend and seal["spec_hash"] == network
        assert seal["sha256"] == hashlib.sha256(data[:-len(comment) - 2]).hexdigest()
        assert weights(run_dir / "checkpoints" / name, backend)  # a plain torch.load / np.load


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_resume_skips_damaged_checkpoints_and_stale_temp_files(
        trained, backend: str, tmp_path: Path) -> None:
    program, original, run_dir = copied_run(trained, backend, tmp_path)
    folder, suffix = run_dir / "checkpoints", SUFFIX[backend]
    (folder / f"epoch-0003{suffix}").write_bytes(b"")  # emptied
    second = folder / f"epoch-0002{suffix}"
    second.write_bytes(second.read_bytes()[:-100])  # truncated
    (folder / f"epoch-0004{suffix}.tmp").write_bytes(b"half a file")  # a kill while saving
    result = run_train(program, run_dir, "--resume")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert f"warning: {folder / f'epoch-0003{suffix}'} is damaged (empty): not used" in lines
    assert any(line.startswith(f"warning: {second} is damaged") for line in lines), lines
    assert f"resuming from {folder / f'epoch-0001{suffix}'} (epoch 1, step 3)" in lines
    assert not list(folder.glob("*.tmp"))
    # Epochs 2 and 3 trained again from epoch 1's checkpoint: exactly as the first time.
    assert metrics(run_dir) == metrics(original)
    for name in (f"epoch-0002{suffix}", f"epoch-0003{suffix}"):
        again, first = weights(folder / name, backend), weights(original / "checkpoints" / name,
                                                                backend)
        assert again.keys() == first.keys()
        assert all(np.array_equal(again[k], first[k]) for k in first)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_with_no_intact_checkpoint_resume_stops_and_changes_nothing(
        trained, backend: str, tmp_path: Path) -> None:
    program, _, run_dir = copied_run(trained, backend, tmp_path)
    for path in (run_dir / "checkpoints").glob("epoch-*"):
        flip_bytes(path)
    before = snapshot(run_dir)
    message = error_line(run_train(program, run_dir, "--resume"))
    assert message == (f"error: no checkpoint in {run_dir / 'checkpoints'} is intact, so the "
                       "run cannot resume; remove them to start afresh, or choose another --out")
    assert snapshot(run_dir) == before


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_damaged_best_checkpoint_is_never_used(trained, backend: str, tmp_path: Path) -> None:
    program, _, run_dir = copied_run(trained, backend, tmp_path)
    folder, suffix = run_dir / "checkpoints", SUFFIX[backend]
    best = folder / f"best{suffix}"
    flip_bytes(best)
    # --predict falls back to the newest epoch checkpoint, and says so.
    inputs = tmp_path / "new.npz"
    np.savez(inputs, x=np.zeros((5, 8), np.float32))
    predicted = run_train(program, run_dir, "--predict", str(inputs))
    assert predicted.returncode == 0, predicted.stderr
    assert (f"warning: {best} is damaged (its content does not match its checksum): not used"
            in predicted.stdout.splitlines())
    assert f"weights {folder / f'epoch-0003{suffix}'}" in predicted.stdout
    # The test metrics need the best weights: with nothing left to train, the resumed run
    # stops before it rewrites results.json.
    before = (run_dir / "results.json").read_bytes()
    message = error_line(run_train(program, run_dir, "--resume", "--export"))
    assert message.startswith(f"error: {best} is damaged (its content does not match its "
                              "checksum): no test metrics")
    assert (run_dir / "results.json").read_bytes() == before
    assert not (run_dir / "model.pt2").exists() and not (run_dir / "model.keras").exists()


@pytest.mark.slow
@pytest.mark.parametrize(("backend", "other"), [("torch", "tensorflow"),
                                                ("tensorflow", "torch")])
def test_a_run_of_the_other_backend_is_refused(trained, backend: str, other: str,
                                               tmp_path: Path) -> None:
    program, _ = trained(backend)
    _, _, run_dir = copied_run(trained, other, tmp_path)
    before = snapshot(run_dir)
    name = {"torch": "PyTorch", "tensorflow": "TensorFlow"}
    result = run_train(program, run_dir, "--resume")
    assert error_line(result) == (
        f"error: {run_dir / 'checkpoints'} holds {name[other]} checkpoints (best{SUFFIX[other]}),"
        f" not this {name[backend]} program's; choose another --out")
    assert snapshot(run_dir) == before


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_run_of_another_network_is_refused(trained, backend: str, tmp_path: Path) -> None:
    _, _, run_dir = copied_run(trained, backend, tmp_path)
    wider = write_program(tmp_path / "wider", backend, units=4)
    before = snapshot(run_dir)
    message = error_line(run_train(wider, run_dir, "--resume"))
    assert message.startswith(f"error: {run_dir / 'checkpoints'}/epoch-0003{SUFFIX[backend]} "
                              "holds another network (spec hash")
    assert snapshot(run_dir) == before


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_full_disk_stops_the_run_and_keeps_the_previous_checkpoints(
        trained, backend: str, tmp_path: Path) -> None:
    program, _, run_dir = copied_run(trained, backend, tmp_path)
    folder, suffix = run_dir / "checkpoints", SUFFIX[backend]
    kept, results = snapshot(folder), (run_dir / "results.json").read_bytes()
    result = run_train(program, run_dir, "--resume", "--epochs", "4", FULL_DISK="1")
    message = error_line(result)
    # Epoch 4 trained; its first checkpoint (best or epoch-0004) could not be written.
    assert message.startswith(f"error: cannot write {folder}/"), message
    assert message.endswith(f"(No space left on device): stopped; the last good checkpoint "
                            f"is {folder / f'epoch-0003{suffix}'}"), message
    assert snapshot(folder) == kept  # no .tmp left, nothing replaced
    assert (run_dir / "results.json").read_bytes() == results  # the earlier run's


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_results_json_is_written_only_after_the_export(trained, backend: str,
                                                       tmp_path: Path) -> None:
    program, _, run_dir = copied_run(trained, backend, tmp_path)
    assert (run_dir / "results.json").is_file()
    # Nothing left to train: test metrics, then the export, killed as it starts writing.
    result = run_train(program, run_dir, "--resume", "--export", KILL_AT_EXPORT=backend)
    assert result.returncode == 137, result.stdout + result.stderr
    assert not (run_dir / "results.json").exists()
    assert not list(run_dir.glob("*.tmp"))


# --- the seal, from each generated checkpoints.py, run here ------------------------------------

def sealing_functions(backend: str, tmp_path: Path) -> dict[str, object]:
    """The namespace of the generated checkpoints.py, executed without its framework: the
    seal's functions call none (only save/load_training_state do)."""
    program = write_program(tmp_path / backend, backend)
    tree = ast.parse((program / "checkpoints.py").read_text())
    tree.body = [node for node in tree.body if not (
        isinstance(node, ast.Import) and node.names[0].name in ("torch", "tensorflow"))]
    namespace: dict[str, object] = {}
    exec(compile(tree, "checkpoints.py", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_changed_checkpoint_is_refused_or_its_payload_is_intact(backend: str,
                                                                  tmp_path: Path) -> None:
    generated = sealing_functions(backend, tmp_path)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as payload:  # what torch.save and np.savez write
        payload.writestr("weights", np.arange(2000, dtype=np.float32).tobytes())
        payload.writestr("state", json.dumps({"epoch": 3}))
    path = tmp_path / f"epoch-0001{SUFFIX[backend]}"
    spec_hash = "0123456789abcdef"
    generated["write_sealed"](path, archive.getvalue(), spec_hash)
    sealed = path.read_bytes()
    assert generated["read_sealed"](path, spec_hash) == sealed
    assert zipfile.ZipFile(path).read("state") == b'{"epoch": 3}'  # still a plain zip
    body = archive.getvalue()[:-2]
    damaged = generated["DamagedCheckpointError"]
    rng = np.random.default_rng(0)
    outcomes = {"refused": 0, "intact": 0, "foreign": 0}
    for case in range(600):
        data = bytearray(sealed)
        if case % 3 == 0:  # a few bytes anywhere (the seal included) changed
            for at in rng.integers(0, len(data), size=rng.integers(1, 17)):
                data[at] ^= int(rng.integers(1, 256))
        elif case % 3 == 1:  # cut short, possibly to nothing
            data = data[:int(rng.integers(0, len(data)))]
        else:  # bytes changed near the end: the zip records and the seal
            for at in rng.integers(len(data) - 300, len(data), size=rng.integers(1, 5)):
                data[at] ^= int(rng.integers(1, 256))
        path.write_bytes(bytes(data))
        try:
            read = generated["read_sealed"](path, spec_hash)
        except damaged as error:
            assert str(error).startswith(f"{path} is damaged (")
            outcomes["refused"] += 1
        except SystemExit as stop:  # a changed backend or spec hash in the seal
            assert str(stop.code).startswith(f"error: {path} ")
            outcomes["foreign"] += 1
        else:  # only what the checksum does not cover changed (the seal's spacing, say)
            assert read.startswith(body)
            outcomes["intact"] += 1
    assert outcomes["refused"] > 550, outcomes


# --- specc train --resume: refused before anything is generated --------------------------------

@pytest.fixture
def spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """SPEC in tmp_path, which is also the working directory; no program is ever run."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tiny.spec"
    path.write_text(textwrap.dedent(SPEC).replace("UNITS", "3"))

    def no_program(command, check):
        raise AssertionError(f"ran {command}")

    monkeypatch.setattr(run.subprocess, "run", no_program)
    return path


def sealed_archive(path: Path, seal: dict[str, str]) -> None:
    """A zip archive at `path` with `seal` as its comment, as train.py seals a checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("data", b"weights")
        archive.comment = json.dumps(seal).encode()


@pytest.mark.parametrize(("backend", "other"), [("torch", "tensorflow"),
                                                ("tensorflow", "torch")])
def test_specc_train_resume_refuses_the_other_backend_s_run(spec: Path, backend: str,
                                                            other: str) -> None:
    run_dir = Path("runs/tiny")
    checkpoint = run_dir / "checkpoints" / f"epoch-0001{SUFFIX[other]}"
    sealed_archive(checkpoint, {"backend": other, "spec_hash": "0", "sha256": "0"})
    with pytest.raises(SpecError) as raised:
        run.train(spec, backend=backend, resume=True)
    assert raised.value.diagnostics[0].message == (
        f"{checkpoint} is a {other} checkpoint: resume that run with --backend {other}, or "
        "choose another --out")
    assert not (run_dir / "code").exists()


def test_specc_train_resume_refuses_another_network_s_run(spec: Path) -> None:
    run_dir = Path("runs/tiny")
    checkpoint = run_dir / "checkpoints" / "epoch-0001.pt"
    sealed_archive(checkpoint, {"backend": "torch", "spec_hash": "0123", "sha256": "0"})
    with pytest.raises(SpecError) as raised:
        run.train(spec, backend="torch", resume=True)
    assert raised.value.diagnostics[0].message.startswith(
        f"{checkpoint} holds another network (spec hash 0123, this spec's ")
    assert not (run_dir / "code").exists()


def test_specc_train_resume_leaves_a_damaged_seal_to_train_py(
        spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = Path("runs/tiny")
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "epoch-0001.pt").write_bytes(b"")  # train.py skips it
    ran = []
    monkeypatch.setattr(run.subprocess, "run",
                        lambda command, check: ran.append(command)
                        or subprocess.CompletedProcess(command, 0))
    assert run.train(spec, backend="torch", resume=True) == 0
    assert ran and (run_dir / "code" / "train.py").is_file()
