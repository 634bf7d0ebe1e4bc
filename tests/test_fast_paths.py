"""The generated programs' fast paths do not change fp32 numbers (slow).

Each backend's train.py trains one epoch of a small convnet on the CPU; a plain loop written
here trains the same model from the same initial weights on the same batches, with the loss,
optimizer and schedule of the program's own recipe.py (imported, as `specc parity` imports
it). The weights they end with must be equal, bit for bit. What the plain loop leaves
out is what the generated one does for speed:

- PyTorch: the data on the device for the whole run and each epoch's batches gathered in one
  go (here: each batch gathered from the NumPy split and copied to a tensor), no host sync in
  the loop (here: the loss read back at every step);
- TensorFlow: each batch cut out of the epoch's tensors inside the traced step, and the
  learning rate set only when the schedule moves it (here: sliced eagerly and set at every
  step).

The schedule (cosine) changes the rate at every step and the last batch is a partial one, so
both paths are exercised. The plain loop runs in a process of its own, as train.py does
(`python tests/test_fast_paths.py BACKEND SPEC PROGRAM OUT.npz`): thread counts, which this
test process may have set otherwise, change how a convolution's gradient is summed.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import specc
from specc import parity
from specc.backends.torch.model_gen import model_class_name

pytestmark = pytest.mark.slow

SPEC = """
model fast {
    input image: float[8, 8, 1]
    layers {
        conv2d(4, 3, padding=same, activation=relu)
        batchnorm()
        maxpool2d(2)
        flatten()
        dense(3)
    }
    loss cross_entropy()
    optimizer adam(lr=0.01, schedule=cosine())
    data synthetic(100)
    train {
        epochs = 1
        batch_size = 16
        seed = 3
    }
}
"""
SEED, BATCH = 3, 16


def trained(tmp_path: Path, backend: str) -> tuple[dict, dict]:
    """The weights train.py ends its one epoch with, and those of the plain loop, by name."""
    spec = tmp_path / "fast.spec"
    spec.write_text(textwrap.dedent(SPEC))
    program, run = tmp_path / "program", tmp_path / "run"
    specc.compile(spec, backend=backend, out=program)
    plain = tmp_path / "plain.npz"
    for command in ([str(program / "train.py"), "--out", str(run), "--no-export"],
                    [__file__, backend, str(spec), str(program), str(plain)]):
        done = subprocess.run([sys.executable, *command], capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    if backend == "torch":
        import torch

        checkpoint = torch.load(run / "checkpoints" / "epoch-0001.pt", weights_only=True)
        assert checkpoint["step"] == 7
        generated = {name: value.numpy() for name, value in checkpoint["model"].items()}
    else:
        with np.load(run / "checkpoints" / "epoch-0001.npz") as saved:
            assert '"step": 7' in str(saved["position"])
            generated = {name: saved[name] for name in saved.files if name != "position"
                         and name.startswith("model_")}
    with np.load(plain) as saved:
        return generated, dict(saved)


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_fast_paths_train_the_same_weights(tmp_path: Path, backend: str) -> None:
    generated, plain = trained(tmp_path, backend)
    assert sorted(generated) == sorted(plain) and len(plain) >= 6
    for name, value in plain.items():
        assert np.array_equal(generated[name], value), name


# --- the plain loops, each run as a process of its own ------------------------------------------


def plain_torch(model, program: Path) -> dict[str, np.ndarray]:
    import torch

    x, y = parity.load_splits(model, program)["train"]
    torch.manual_seed(SEED)  # as train.py seeds before it builds the model
    net = getattr(parity.import_file(program / "model.py"), model_class_name(model))()
    steps = math.ceil(len(y) / BATCH)
    recipe = parity.import_file(program / "recipe.py")
    optimizer = recipe.make_optimizer(net)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(SEED)).numpy()
    net.train()
    for step, start in enumerate(range(0, len(y), BATCH)):
        rows = order[start:start + BATCH]
        inputs, targets = torch.from_numpy(x[rows]), torch.from_numpy(y[rows])
        optimizer.zero_grad()
        loss = recipe.compute_loss((net(inputs),), (targets,))
        loss.backward()
        for group in optimizer.param_groups:
            group["lr"] = recipe.learning_rate_at(0, step, steps, steps)
        optimizer.step()
        assert math.isfinite(loss.item())  # a host sync at every step
    return {name: value.numpy() for name, value in net.state_dict().items()}


def plain_tensorflow(model, program: Path) -> dict[str, np.ndarray]:
    import keras
    import tensorflow as tf

    x, y = parity.load_splits(model, program)["train"]
    keras.utils.set_random_seed(SEED)  # as train.py seeds before it builds the model
    net = parity.import_file(program / "model.py").build_model()
    steps = math.ceil(len(y) / BATCH)
    recipe = parity.import_file(program / "recipe.py")
    optimizer, compute_loss = recipe.make_optimizer(net), recipe.compute_loss

    @tf.function  # traced as train.py's step is: graph rewrites may round differently
    def train_step(inputs, targets):
        with tf.GradientTape() as tape:
            loss = compute_loss((net(inputs, training=True),), (targets,))
        optimizer.apply(tape.gradient(loss, net.trainable_variables), net.trainable_variables)

    order = tf.random.experimental.stateless_shuffle(tf.range(len(y)), seed=[SEED, 0])
    epoch_x, epoch_y = tf.gather(x, order), tf.gather(y, order)
    for step, start in enumerate(range(0, len(y), BATCH)):
        optimizer.learning_rate = recipe.learning_rate_at(0, step, steps, steps)
        train_step(epoch_x[start:start + BATCH], epoch_y[start:start + BATCH])
    return {f"model_{index}": variable.numpy() for index, variable in enumerate(net.variables)}


if __name__ == "__main__":
    arguments = argparse.ArgumentParser(description="the plain loop of one backend")
    arguments.add_argument("backend", choices=["torch", "tensorflow"])
    for name in ("spec", "program", "out"):
        arguments.add_argument(name, type=Path)
    args = arguments.parse_args()
    plain = plain_torch if args.backend == "torch" else plain_tensorflow
    weights = plain(specc.load(args.spec).models[0], args.program)
    np.savez(args.out, **weights)
