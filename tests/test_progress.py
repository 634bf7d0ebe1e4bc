"""What a generated program shows and logs while it trains, on both backends: a progress bar
on a terminal (one line per epoch in a log), TensorBoard event files holding metrics.jsonl's
numbers, each output's loss for a model with several, and TensorFlow's start-up without its
notices."""

from __future__ import annotations

import fcntl
import json
import os
import select
import struct
import subprocess
import sys
import termios
import textwrap
import time
from pathlib import Path

import pytest

import specc
from specc.backends import generate

BACKENDS = ("torch", "tensorflow")

# 1600 training samples in batches of 16: 100 optimizer steps an epoch, so that the loop reads
# the loss (every log_every = 50 steps) twice an epoch.
CLASSIFIER = """
model tiny {{
    input x: float[8]
    layers {{
        dense(16, activation=relu)
        dense(3)
    }}
    loss cross_entropy()
    optimizer adam(lr=0.01)
    metrics accuracy
    data synthetic(n=2000, validation=0.2)
    train {{
        epochs = 2
        batch_size = 16
        {train}
    }}
}}
"""
STEPS_PER_EPOCH = 100

TWO_OUTPUTS = """
model two_heads {
    input x: float[6]
    graph {
        h = x -> dense(8, activation=relu)
        class = h -> dense(4)
        value = h -> dense(1)
    }
    output class, value
    loss class: cross_entropy(), value: mse(weight=0.5)
    optimizer adam(lr=0.01)
    metrics accuracy
    data synthetic(n=64, validation=0.25, test=0.25)
    train {
        epochs = 2
        batch_size = 8
    }
}
"""

# TensorFlow's start-up notices, which the TensorFlow program keeps out of stderr.
NOTICES = ("absl::InitializeLog", "oneDNN", "cpu_feature_guard", "CPU instructions",
           "rebuild TensorFlow")


def program(folder: Path, spec_text: str, backend: str) -> Path:
    """Generate the `backend` program of `spec_text` into folder/backend; its train.py."""
    spec = folder / "model.spec"
    spec.write_text(textwrap.dedent(spec_text), encoding="utf-8")
    model = specc.load(spec).models[0]
    code = folder / backend
    code.mkdir(parents=True, exist_ok=True)
    for name, text in generate(model, backend, code).items():
        (code / name).write_text(text, encoding="utf-8")
    return code / "train.py"


def environment(**settings: str) -> dict[str, str]:
    """This process's environment without TensorFlow's log level, plus `settings`."""
    env = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    return {**env, **settings}


def run(train_py: Path, *args: str | Path, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    """train.py run with `args` and --no-export, its output piped (not a terminal)."""
    return subprocess.run([sys.executable, str(train_py), *map(str, args), "--no-export"],
                          capture_output=True, text=True, timeout=240, check=False,
                          env=env or environment())


def run_in_terminal(train_py: Path, *args: str | Path, seconds: float = 240) -> str:
    """train.py run with its output on a pseudo-terminal of 120 columns (a fresh one has none,
    and tqdm draws no bar in zero columns); everything it wrote there, within `seconds`."""
    controller, terminal = os.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    child = subprocess.Popen([sys.executable, str(train_py), *map(str, args), "--no-export"],
                             stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal,
                             env=environment())
    os.close(terminal)
    written = bytearray()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.5)
            if not ready:
                if child.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the child closed the terminal: it has exited
                break
            if not chunk:
                break
            written += chunk
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=30)
        os.close(controller)
    assert child.returncode == 0, written.decode(errors="replace")[-2000:]
    return written.decode(errors="replace")


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def read_tensorboard(folder: Path) -> dict[str, dict[int, float]]:
    """Every scalar in the event files under `folder`, as TensorBoard reads them, by name:
    {step: value}, each step once. PyTorch's writer stores scalars as such, tf.summary as
    one-number tensors."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    tags = events.Tags()
    points = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in tags["scalars"]}
    points.update({tag: [(e.step, float(make_ndarray(e.tensor_proto)))
                         for e in events.Tensors(tag)] for tag in tags["tensors"]})
    for tag, logged in points.items():
        steps = [at_step for at_step, _ in logged]
        assert len(steps) == len(set(steps)), f"{tag}: a step logged twice, {steps}"
    return {tag: dict(logged) for tag, logged in points.items()}


# --- the generated source ---------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_tensorboard_false_leaves_tensorboard_out_of_the_program(tmp_path: Path,
                                                                 backend: str) -> None:
    def sources(train: str) -> str:
        """train.py and progress.py of the classifier with `train` in its train { }."""
        folder = tmp_path / ("off" if train else "default")
        folder.mkdir()
        train_py = program(folder, CLASSIFIER.format(train=train), backend)
        return train_py.read_text() + (train_py.parent / "progress.py").read_text()

    source = sources("tensorboard = false")
    for word in ("tensorboard", "summary", "write_scalars"):
        assert word not in source.lower()
    source = sources("")
    assert "write_scalars" in source
    assert "TensorBoardLog(run_dir, step, write=cluster.main)" in source


# --- runs -------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_tensorboard_holds_the_numbers_of_metrics_jsonl_across_a_resume(tmp_path: Path,
                                                                       backend: str) -> None:
    train_py = program(tmp_path, CLASSIFIER.format(train=""), backend)
    run_dir = tmp_path / "run"
    first = run(train_py, "--out", run_dir, "--epochs", "1")
    assert first.returncode == 0, first.stderr
    assert f"TensorBoard: tensorboard --logdir {run_dir / 'tensorboard'}" in first.stdout
    resumed = run(train_py, "--out", run_dir, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    if backend == "tensorflow":  # and TensorFlow loads without its notices
        for line in first.stderr.splitlines() + resumed.stderr.splitlines():
            assert not any(notice in line for notice in NOTICES), line

    scalars = read_tensorboard(run_dir / "tensorboard")
    records = read_metrics(run_dir)
    assert [r["epoch"] for r in records] == [1, 2]
    names = {name for record in records for name in record} - {"epoch", "time"}
    assert names == {"loss", "val_loss", "val_accuracy", "lr"}
    assert set(scalars) == names | {"step/loss"}
    for record in records:  # each epoch's values, at the optimizer step it ended on
        at_step = record["epoch"] * STEPS_PER_EPOCH
        for name in names:
            assert scalars[name][at_step] == pytest.approx(record[name], rel=1e-6), name
    assert sorted(scalars["loss"]) == [STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH]
    # the running loss, every log_every steps: an epoch's last one is that epoch's loss
    assert sorted(scalars["step/loss"]) == [50, 100, 150, 200]
    assert scalars["step/loss"][100] == pytest.approx(records[0]["loss"], rel=1e-6)
    assert scalars["step/loss"][200] == pytest.approx(records[1]["loss"], rel=1e-6)


@pytest.mark.slow
def test_a_resumed_pytorch_run_replaces_what_the_interrupted_one_logged(tmp_path: Path) -> None:
    train_py = program(tmp_path, CLASSIFIER.format(train=""), "torch")
    run_dir = tmp_path / "run"
    assert run(train_py, "--out", run_dir).returncode == 0
    # as if killed after logging epoch 2 and before its checkpoint: epoch 2 runs again
    (run_dir / "checkpoints" / "epoch-0002.pt").unlink()
    resumed = run(train_py, "--out", run_dir, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout and "(epoch 1, step 100)" in resumed.stdout
    scalars = read_tensorboard(run_dir / "tensorboard")  # no step twice
    assert sorted(scalars["loss"]) == [STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH]
    assert sorted(scalars["step/loss"]) == [50, 100, 150, 200]
    records = read_metrics(run_dir)
    assert [scalars["val_loss"][r["epoch"] * STEPS_PER_EPOCH] for r in records] == pytest.approx(
        [r["val_loss"] for r in records], rel=1e-6)


@pytest.mark.slow
def test_tensorboard_false_writes_no_event_files(tmp_path: Path) -> None:
    train_py = program(tmp_path, CLASSIFIER.format(train="tensorboard = false"), "torch")
    finished = run(train_py, "--out", tmp_path / "run", "--epochs", "1")
    assert finished.returncode == 0, finished.stderr
    assert (tmp_path / "run" / "metrics.jsonl").exists()
    assert not (tmp_path / "run" / "tensorboard").exists()
    assert "TensorBoard" not in finished.stdout


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_terminal_shows_a_bar_and_a_log_one_line_per_epoch(tmp_path: Path,
                                                              backend: str) -> None:
    train_py = program(tmp_path, CLASSIFIER.format(train="tensorboard = false"), backend)
    shown = run_in_terminal(train_py, "--out", tmp_path / "terminal")
    frames = shown.replace("\r\n", "\n").split("\r")  # what the terminal showed, redraw by redraw
    bars = [frame for frame in frames if "steps [" in frame]
    assert any(frame.startswith("epoch 1/2") and "%|" in frame for frame in bars), shown
    with_speed = [frame for frame in bars if "samples/s, loss " in frame and "ETA 00:" in frame]
    assert with_speed, shown
    assert any(f"/{STEPS_PER_EPOCH} steps [" in frame for frame in with_speed)
    assert "epoch 2/2  loss " in shown and "val_accuracy" in shown

    logged = run(train_py, "--out", tmp_path / "log")
    assert logged.returncode == 0, logged.stderr
    assert "\r" not in logged.stdout and "%|" not in logged.stdout and "█" not in logged.stdout
    epoch_lines = [line for line in logged.stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epoch_lines] == ["1/2", "2/2"]
    assert all("  loss " in line and "val_accuracy" in line for line in epoch_lines)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_each_output_s_loss_is_logged_when_there_are_several(tmp_path: Path,
                                                             backend: str) -> None:
    train_py = program(tmp_path, TWO_OUTPUTS, backend)
    run_dir = tmp_path / "run"
    finished = run(train_py, "--out", run_dir)
    assert finished.returncode == 0, finished.stderr
    records = read_metrics(run_dir)
    per_output = ["loss_class", "loss_value", "val_loss_class", "val_loss_value"]
    for record in records:
        assert list(record) == ["epoch", "loss", "loss_class", "loss_value", "val_loss",
                                "val_loss_class", "val_loss_value", "val_accuracy", "lr",
                                "time"]
        for split in ("", "val_"):  # the loss is the weighted sum of the outputs' losses
            weighted = record[f"{split}loss_class"] + 0.5 * record[f"{split}loss_value"]
            assert record[f"{split}loss"] == pytest.approx(weighted, rel=1e-5)
    epoch_lines = [line for line in finished.stdout.splitlines() if line.startswith("epoch ")]
    assert len(epoch_lines) == 2
    for line, record in zip(epoch_lines, records, strict=True):
        for name in per_output:
            assert f"  {name} {record[name]:.4g}  " in line, line
    test = json.loads((run_dir / "results.json").read_text())["test"]
    assert {"loss", "loss_class", "loss_value", "accuracy"} == set(test)
    scalars = read_tensorboard(run_dir / "tensorboard")
    for name in per_output:  # one value an epoch, in order of the steps
        logged = [value for _, value in sorted(scalars[name].items())]
        assert logged == pytest.approx([record[name] for record in records], rel=1e-6)


@pytest.mark.slow
def test_tensorflow_shows_its_notices_when_asked_to(tmp_path: Path) -> None:
    """TF_CPP_MIN_LOG_LEVEL=0, set by the user, keeps every start-up line."""
    train_py = program(tmp_path, CLASSIFIER.format(train="tensorboard = false"), "tensorflow")
    finished = run(train_py, "--out", tmp_path / "run", "--epochs", "1",
                   env=environment(TF_CPP_MIN_LOG_LEVEL="0"))
    assert finished.returncode == 0, finished.stderr
    assert "oneDNN custom operations are on" in finished.stderr
