"""`specc train --nproc 2` on the CPU, on both backends (torchrun and DDP; TF_CONFIG workers
and MultiWorkerMirroredStrategy): two processes at a global batch B train what one process
trains at batch B on the same data order, and so do two devices of one TensorFlow process
(MirroredStrategy on the CPU split in two, `--devices 2`); the weights end identical in both
processes (each process's digest, which train.py compares, is the digest of the checkpoint
rank 0 wrote); rank 0 alone writes the run directory; `--predict` under two processes
predicts in rank 0 alone what one process predicts; the digits convnet trained on two
processes passes 93 % test accuracy; a worker killed mid-epoch stops the launcher in
bounded time, naming its rank, and `--resume` finishes the run."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

BACKENDS = ("torch", "tensorflow")
QUIET = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
RUN_TIMEOUT_S = 240  # for any one training command
# How far the two-process (or two-device) run's numbers may be from the one-process run's:
# the same sums of the same float32 gradients, added in another order (measured: below 1e-7).
TOLERANCE = 1e-5
# The digits convnet (specs/digits_cnn.spec) at 2 processes, 6 of its 20 epochs: measured
# 96.7 % (PyTorch) and 96.4 % (TensorFlow) test accuracy.
DIGITS_EPOCHS = 6
DIGITS_ACCURACY = 0.93
# A worker killed mid-epoch: the launcher notices within a poll, stops the other process
# (SIGTERM, then SIGKILL after 10 s) and exits; this bounds it with room for a busy machine.
KILL_EXIT_S = 30

# Two epochs of a network without dropout or batchnorm, whose batches split over the
# processes without changing what is computed.
COMPARED = """
model compared {
    input x: float[16]
    layers {
        dense(32, activation=relu)
        dense(4)
    }
    loss cross_entropy()
    optimizer sgd(lr=0.1, momentum=0.9)
    metrics accuracy
    data synthetic(512, validation=0.125, test=0.125)
    train {
        epochs = 2
        batch_size = 32
        batch_size_is = global
    }
}
"""

# Epochs of a second or more on two shared cores, so that a kill lands inside one.
KILLED = """
model killed {
    input x: float[64]
    layers {
        dense(256, activation=relu)
        dense(256, activation=relu)
        dense(4)
    }
    loss cross_entropy()
    optimizer adam(lr=1e-3)
    metrics accuracy
    data synthetic(12000, validation=0.1, test=0.1)
    train {
        epochs = 2
        batch_size = 32
    }
}
"""


def specc_train(spec: Path, backend: str, run: Path, *options: str
                ) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "specc.cli", "train", str(spec), "--backend", backend,
         "--out", str(run), *options],
        env=QUIET, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def results(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


def assert_trained_alike(one: Path, other: Path) -> None:
    """The run `other` logged what `one` did, epoch by epoch, within TOLERANCE, and reached
    the same test loss."""
    for first, second in zip(metrics(one), metrics(other), strict=True):
        for name in ("loss", "val_loss", "val_accuracy"):
            assert second[name] == pytest.approx(first[name], rel=TOLERANCE), name
    assert results(other)["test"]["loss"] == pytest.approx(results(one)["test"]["loss"],
                                                            rel=TOLERANCE)


def predict_on_two_processes(program: Path, run: Path, inputs: Path, backend: str
                             ) -> subprocess.CompletedProcess:
    """`train.py --predict` run by the backend's own launcher on two processes (torchrun, or
    two workers of one TF_CONFIG), as a user of several processes would run it."""
    from specc.backends.common.launch import Cluster
    from specc.backends.tensorflow.launch import worker_configs
    from specc.backends.torch.launch import torchrun_command

    command = [sys.executable, str(program), "--out", str(run), "--predict", str(inputs)]
    if backend == "torch":
        return subprocess.run(torchrun_command(command, Cluster(2)), env=QUIET,
                              capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    workers = [subprocess.Popen(command, env={**QUIET, "TF_CONFIG": config},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for config in worker_configs(2)]
    outputs = [worker.communicate(timeout=RUN_TIMEOUT_S) for worker in workers]
    assert workers[1].returncode == 0, outputs[1][1][-3000:]
    assert outputs[1][0] == ""  # the other worker ends quietly, having predicted nothing
    return subprocess.CompletedProcess(command, workers[0].returncode, *outputs[0])


def checkpoint_digest(path: Path, backend: str) -> str:
    """The sha256 of a checkpoint's model weights, in the order train.py digests them."""
    digest = hashlib.sha256()
    if backend == "torch":
        import torch

        state = torch.load(io.BytesIO(path.read_bytes()), map_location="cpu",
                           weights_only=True)["model"]
        for tensor in state.values():
            digest.update(tensor.numpy().tobytes())
    else:
        with np.load(path) as arrays:
            count = sum(name.startswith("model_") for name in arrays.files)
            for i in range(count):
                digest.update(arrays[f"model_{i}"].tobytes())
    return digest.hexdigest()


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_two_processes_train_what_one_does(tmp_path: Path, backend: str) -> None:
    spec = tmp_path / "compared.spec"
    spec.write_text(COMPARED)
    one, two = tmp_path / "one", tmp_path / "two"
    alone = specc_train(spec, backend, one)
    assert alone.returncode == 0, alone.stderr[-3000:]
    both = specc_train(spec, backend, two, "--nproc", "2")
    assert both.returncode == 0, both.stderr[-3000:]

    assert "2 processes on 1 node(s)" in both.stdout
    assert "a global batch of 32, 16 a process (batch_size_is = global)" in both.stdout
    assert (results(one)["world_size"], results(one)["replicas"]) == (1, 1)
    assert (results(two)["world_size"], results(two)["nodes"], results(two)["replicas"]) == (
        2, 1, 2)

    # One line per epoch: only rank 0 logs.
    assert [line["epoch"] for line in metrics(two)] == [1, 2]
    assert_trained_alike(one, two)

    # Each process's weights hashed the same (train.py stops otherwise), and that digest is
    # the one of the weights rank 0 checkpointed last.
    shown = re.search(r"weights identical in the 2 processes \(sha256 ([0-9a-f]{64})\)",
                      both.stdout)
    assert shown, both.stdout[-3000:]
    suffix = ".pt" if backend == "torch" else ".npz"
    assert shown[1] == checkpoint_digest(two / "checkpoints" / f"epoch-0002{suffix}", backend)

    # The run directory holds what one process writes, once.
    written = sorted(path.name for path in two.iterdir())
    expected = {"torch": ["model.pt2"], "tensorflow": ["model.keras", "saved_model"]}[backend]
    assert written == sorted(["checkpoints", "code", "metrics.jsonl", "preprocessing.json",
                              "results.json", "tensorboard", *expected])
    # one process's event file: each writer names its own after its host and pid
    assert len(list((two / "tensorboard").iterdir())) == 1
    assert sorted(path.name for path in (two / "checkpoints").iterdir()) == [
        f"best{suffix}", f"epoch-0001{suffix}", f"epoch-0002{suffix}"]

    # --predict under two processes: rank 0 predicts what one process predicts, alone (to
    # float32 rounding: torchrun runs each process on one thread, which sums in another order).
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, x=np.random.default_rng(0).normal(size=(5, 16)).astype(np.float32))
    program = two / "code" / "train.py"
    alone = subprocess.run([sys.executable, str(program), "--out", str(two), "--predict",
                            str(inputs)], env=QUIET, capture_output=True, text=True,
                           timeout=RUN_TIMEOUT_S, check=False)
    assert alone.returncode == 0, alone.stderr[-3000:]
    with np.load(two / "predictions.npz") as predictions:
        expected = dict(predictions)
    (two / "predictions.npz").unlink()
    predicted = predict_on_two_processes(program, two, inputs, backend)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert ("--predict: rank 0 predicts alone, the other 1 process(es) end without "
            "predicting") in predicted.stdout
    assert predicted.stdout.count("wrote ") == 1
    with np.load(two / "predictions.npz") as predictions:
        assert sorted(predictions.files) == sorted(expected)
        np.testing.assert_allclose(predictions["y"], expected["y"], rtol=TOLERANCE, atol=1e-6)
        np.testing.assert_array_equal(predictions["y_class_id"], expected["y_class_id"])


@pytest.mark.slow
def test_two_devices_of_one_process_train_what_one_device_does(tmp_path: Path) -> None:
    """TensorFlow's MirroredStrategy on the CPU split into two logical devices (`--devices
    2`): each device trains on its half of every batch, and the run logs what one device's
    run at the same batch logs."""
    spec = tmp_path / "compared.spec"
    spec.write_text(COMPARED)
    one, two = tmp_path / "one", tmp_path / "two"
    alone = specc_train(spec, "tensorflow", one)
    assert alone.returncode == 0, alone.stderr[-3000:]
    program = one / "code" / "train.py"
    mirrored = subprocess.run([sys.executable, str(program), "--out", str(two), "--devices", "2"],
                              env=QUIET, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                              check=False)
    assert mirrored.returncode == 0, mirrored.stderr[-3000:]
    assert "2 devices in one process (MirroredStrategy): a batch of 32, 16 a device" in (
        mirrored.stdout)
    assert (results(two)["world_size"], results(two)["replicas"]) == (1, 2)
    assert_trained_alike(one, two)

    # A batch that the devices cannot split evenly is refused before training.
    uneven = subprocess.run([sys.executable, str(program), "--out", str(tmp_path / "three"),
                             "--devices", "3"], env=QUIET, capture_output=True, text=True,
                            timeout=RUN_TIMEOUT_S, check=False)
    assert uneven.returncode == 1
    assert ("batch_size 32, this process's batch, does not split evenly over its 3 devices"
            in uneven.stderr)
    assert not (tmp_path / "three" / "metrics.jsonl").exists()


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_digits_convnet_on_two_processes_is_accurate(tmp_path: Path, backend: str) -> None:
    run = tmp_path / "run"
    spec = Path(__file__).resolve().parents[1] / "specs" / "digits_cnn.spec"
    done = specc_train(spec, backend, run, "--nproc", "2", "--epochs", str(DIGITS_EPOCHS))
    assert done.returncode == 0, done.stderr[-3000:]
    assert (results(run)["world_size"], results(run)["replicas"]) == (2, 2)
    assert results(run)["test"]["accuracy"] >= DIGITS_ACCURACY


def rank_pid(launcher: int, rank: int) -> int | None:
    """The pid of the training process of local rank `rank` under the launcher: the
    descendant whose environment has LOCAL_RANK=rank (torchrun and the TensorFlow launcher
    both set it). Linux's /proc."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    descendants, frontier = set(), {launcher}
    for _ in range(8):  # launcher -> torchrun -> worker at most; a bound, not a guess
        frontier = {pid for pid, parent in parents.items() if parent in frontier}
        descendants |= frontier
    for pid in sorted(descendants):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if f"LOCAL_RANK={rank}".encode() in environ and b"train.py" in cmdline:
            return pid
    return None


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_killed_worker_stops_the_run_and_resume_finishes_it(tmp_path: Path,
                                                              backend: str) -> None:
    spec = tmp_path / "killed.spec"
    spec.write_text(KILLED)
    run = tmp_path / "run"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "specc.cli", "train", str(spec), "--backend", backend,
         "--out", str(run), "--nproc", "2"],
        env=QUIET, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        started = time.monotonic()
        while not (run / "metrics.jsonl").exists() or not metrics(run):
            assert launcher.poll() is None, launcher.communicate()[1][-3000:]
            assert time.monotonic() - started < RUN_TIMEOUT_S, "no epoch was logged"
            time.sleep(0.05)
        time.sleep(0.3)  # into the second epoch
        victim = rank_pid(launcher.pid, 1)
        assert victim is not None, "no process of rank 1"
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        _, stderr = launcher.communicate(timeout=KILL_EXIT_S)
        waited = time.monotonic() - killed_at
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.communicate()
    assert launcher.returncode != 0
    assert waited < KILL_EXIT_S
    assert "error: rank 1 was killed by signal 9" in stderr, stderr[-3000:]
    assert not (run / "results.json").exists()
    assert len(metrics(run)) < 2  # killed within the second epoch

    resumed = specc_train(spec, backend, run, "--nproc", "2", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stdout
    assert [line["epoch"] for line in metrics(run)] == [1, 2]
    assert json.loads((run / "results.json").read_text())["world_size"] == 2

    if backend != "torch":
        return  # the refusal below is train.py's shared resume code: one backend shows it
    # A resume on another number of processes is refused, saying why.
    program = run / "code" / "train.py"
    other = subprocess.run([sys.executable, str(program), "--out", str(run), "--resume",
                            "--epochs", "3"], env=QUIET, capture_output=True, text=True,
                           timeout=RUN_TIMEOUT_S, check=False)
    assert other.returncode == 1
    assert "written by a run of 2 process(es), and this one has 1" in other.stderr



@pytest.mark.parametrize(("options", "message"), [
    (["--nproc", "0"], "expected a positive integer, got '0'"),
    (["--nproc", "2", "--nnodes", "2"], "--nnodes above 1 needs --master-addr and --master-port"),
    (["--nproc", "2", "--nnodes", "2", "--node-rank", "2", "--master-addr", "10.0.0.1",
      "--master-port", "29500"], "--node-rank 2: expected 0 to 1"),
    (["--backend", "tensorflow", "--nproc", "2", "--nnodes", "2", "--master-addr", "10.0.0.1",
      "--master-port", "29500"], "--nnodes is for PyTorch (torchrun)"),
])
def test_clusters_the_launchers_cannot_start_are_usage_errors(tmp_path: Path, options: list[str],
                                                              message: str) -> None:
    spec = tmp_path / "compared.spec"
    spec.write_text(COMPARED)
    done = subprocess.run([sys.executable, "-m", "specc.cli", "train", str(spec),
                           "--out", str(tmp_path / "run"), *options],
                          env=QUIET, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert not (tmp_path / "run").exists()  # refused before anything was written
