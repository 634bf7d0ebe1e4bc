"""Padding masks on both backends (slow): a masked bidirectional LSTM's output does not move
when more padding is added, before or after the tokens, in PyTorch and in Keras, and the two
agree; PyTorch's recurrent dropout draws one mask per sequence, as Keras's does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from specc.backends.tensorflow.model_gen import BUILDER, render_model
from specc.backends.torch import model_gen as torch_gen
from specc.parity.transfer import torch_to_keras

from .conftest import import_source, load, model_spec
from .test_model_gen import assert_same_outputs, keras_outputs, torch_network, torch_outputs

pytestmark = pytest.mark.slow

PADDED = model_spec(
    "input tokens: int[?]",
    """
    e = tokens -> embedding(20, 6, mask_zero=true)
    last = e -> lstm(5, bidirectional=true)
    mean = e -> lstm(4, return_sequences=true, bidirectional=true) -> global_avgpool1d()
    back = e -> gru(3, go_backwards=true)
    """,
    "last, mean, back",
)
# Sequences of 1 to 5 real tokens (ids 1..19).
SEQUENCES = [[3], [5, 1, 19], [2, 2, 7, 4], [9, 8, 7, 6, 5]]


def padded(length: int, side: str) -> np.ndarray:
    """SEQUENCES padded with id 0 to `length`, before them ("pre", Keras's pad_sequences
    default) or after them ("post")."""
    rows = []
    for tokens in SEQUENCES:
        zeros = [0] * (length - len(tokens))
        rows.append(zeros + tokens if side == "pre" else tokens + zeros)
    return np.array(rows, dtype=np.int64)


@pytest.fixture(scope="module")
def programs(frameworks, tmp_path_factory):
    """(the PyTorch network, the Keras model with its weights copied across)."""
    folder: Path = tmp_path_factory.mktemp("masking")
    model = load(folder, PADDED)
    net = torch_network(frameworks, folder, model)
    keras_model = getattr(import_source(folder, render_model(model)), BUILDER)()
    state = {key: value.numpy() for key, value in net.state_dict().items()}
    for name, weights in torch_to_keras(model, state).items():
        keras_model.get_layer(name).set_weights(weights)
    return net, keras_model


@pytest.mark.parametrize("side", ["pre", "post"])
def test_more_padding_leaves_the_output_unchanged(frameworks, programs, side) -> None:
    net, keras_model = programs
    short, long = padded(5, side), padded(11, side)
    torch_short = torch_outputs(frameworks, net, [short])
    keras_short = keras_outputs(keras_model, [short])
    assert_same_outputs(torch_outputs(frameworks, net, [long]), torch_short, f"torch {side}")
    assert_same_outputs(keras_outputs(keras_model, [long]), keras_short, f"keras {side}")
    assert_same_outputs(keras_short, torch_short, f"keras vs torch, {side}")


def test_padding_before_or_after_reads_the_same_tokens(frameworks, programs) -> None:
    """Padded steps are skipped wherever they are: go_backwards reads the real tokens last
    first whether the padding is before or after them."""
    net, keras_model = programs
    for run in (lambda x: torch_outputs(frameworks, net, [x]),
                lambda x: keras_outputs(keras_model, [x])):
        assert_same_outputs(run(padded(7, "pre")), run(padded(7, "post")), "pre vs post")


def test_the_mask_changes_what_the_lstm_computes(frameworks, programs) -> None:
    """Without the mask the padded steps would count: the same ids with a token 0 read as
    a real one (another embedding row) give other outputs."""
    net, _ = programs
    ones = padded(7, "post")
    ones[ones == 0] = 1
    assert not np.allclose(torch_outputs(frameworks, net, [ones])[0],
                           torch_outputs(frameworks, net, [padded(7, "post")])[0])


def test_recurrent_dropout_keeps_one_mask_per_sequence(frameworks, tmp_path) -> None:
    torch = frameworks[0]
    model = load(tmp_path, model_spec(
        "input series: float[6, 4]",
        """
        a = series -> lstm(3, dropout=0.5, recurrent_dropout=0.5)
        b = series -> simple_rnn(3, dropout=0.5)
        """,
        "a, b",
    ))
    module = import_source(tmp_path, torch_gen.render_model(model))
    net = getattr(module, torch_gen.model_class_name(model))()
    seen: list[tuple[int, object]] = []
    gate_inputs = module.gate_inputs

    def recording(x, keep, weight, bias):
        seen.append((x.shape[-1], keep))
        return gate_inputs(x, keep, weight, bias)

    module.gate_inputs = recording
    x = torch.randn(2, 6, 4)
    net.train()
    net(x)
    # LSTM: input and state masks, 4 of each (one per gate); the RNN: one input mask only.
    lstm_inputs = [keep for width, keep in seen[:12] if width == 4]
    lstm_states = [keep for width, keep in seen[:12] if width == 3]
    assert len(lstm_inputs) == len(lstm_states) == 6
    for masks in (lstm_inputs, lstm_states):
        assert len(masks[0]) == 4 and all(m is masks[0] for m in masks)  # the same every step
        values = torch.stack(masks[0]).unique().tolist()
        assert set(values) <= {0.0, 2.0} and len(values) == 2  # dropped, or kept as 1 / 0.5
    rnn_inputs = [keep for width, keep in seen[12:] if width == 4]
    assert len(rnn_inputs) == 6 and len(rnn_inputs[0]) == 1
    assert all(keep is None for width, keep in seen[12:] if width == 3)
    seen.clear()
    net.eval()
    net(x)
    assert all(keep is None for _, keep in seen)  # at inference nothing is dropped
