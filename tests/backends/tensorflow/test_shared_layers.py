"""A siamese network whose encoder is shared (`let` layers in a graph): its parameter count
is that of the same network built by hand in Keras and in PyTorch (one encoder, applied to
both inputs), and each backend's program trains it, holding the encoder's weights once."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from specc.backends import generate

from .conftest import load

SIAMESE = """
model siamese {
    input left: float[10, 10, 1]
    input right: float[10, 10, 1]
    graph {
        let conv = conv2d(6, 3, activation=relu)
        let squeeze = maxpool2d(2)
        let embed = dense(12, activation=relu)
        a = left -> conv -> squeeze -> flatten() -> embed
        b = right -> conv -> squeeze -> flatten() -> embed
        logits = concat(a, b) -> dense(2)
    }
    output logits
    loss cross_entropy()
    optimizer adam(lr=1e-2)
    data synthetic(n=48)
    train { epochs = 2 batch_size = 16 tensorboard = false }
}
"""


@pytest.mark.slow
def test_the_parameters_are_those_of_one_encoder_built_by_hand(frameworks, tmp_path) -> None:
    torch, keras = frameworks
    model = load(tmp_path, SIAMESE)
    nodes = {node.id: node for node in model.graph.nodes}
    assert nodes["conv2d_2"].reuses and nodes["dense_2"].reuses

    layers = keras.layers
    conv = layers.Conv2D(6, 3, activation="relu")
    pool = layers.MaxPooling2D(2)
    embed = layers.Dense(12, activation="relu")
    left, right = keras.Input((10, 10, 1)), keras.Input((10, 10, 1))
    a = embed(layers.Flatten()(pool(conv(left))))
    b = embed(layers.Flatten()(pool(conv(right))))
    by_hand = keras.Model([left, right], layers.Dense(2)(layers.Concatenate()([a, b])))

    class Siamese(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 6, 3)
            self.embed = torch.nn.Linear(6 * 4 * 4, 12)
            self.head = torch.nn.Linear(24, 2)

    # 6 * (9 + 1), 96 * 12 + 12, 24 * 2 + 2
    assert by_hand.count_params() == 60 + 1164 + 50
    assert model.graph.params["tensorflow"].total == by_hand.count_params()
    assert model.graph.params["torch"].total == sum(p.numel() for p in Siamese().parameters())
    assert model.memory.parameters == 4 * by_hand.count_params()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_each_backend_trains_the_shared_encoder(tmp_path, backend: str) -> None:
    model = load(tmp_path, SIAMESE)
    program = tmp_path / backend
    program.mkdir()
    for name, text in generate(model, backend, program).items():
        (program / name).write_text(text)
    run = tmp_path / f"run_{backend}"
    quiet = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, str(program / "train.py"), "--out", str(run), "--no-export"],
        capture_output=True, text=True, timeout=300, check=False, env=quiet)
    assert done.returncode == 0, done.stderr[-2000:]
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert all(np.isfinite(e["loss"]) for e in epochs)
    results = json.loads((run / "results.json").read_text())
    assert results["backend"] == backend and results["epochs_run"] == 2
    # The encoder's weights are held once: the program's own count is the spec's.
    source = (program / "model.py").read_text()
    if backend == "torch":
        assert source.count("nn.Conv2d(") == 1 and source.count("self.conv2d_1(") == 2
    else:
        assert source.count("layers.Conv2D(") == 1 and source.count(" = conv(") == 2
