"""specc.memory against Keras' own parameter counts, and the TensorFlow train.py refusing a
run that cannot fit before it allocates the model or the data (tests/backends/torch/
test_memory.py measures the rest of the estimate against PyTorch)."""

from __future__ import annotations

import importlib.util
import itertools
import math

import pytest

import specc
from specc.backends.tensorflow.model_gen import BUILDER
from specc.memory import estimate

from ..torch.test_memory import CNN, HUGE, MLP, _run_measured
from .test_train import run_train, write_program

pytestmark = pytest.mark.slow
_modules = itertools.count()


@pytest.mark.parametrize("text", [MLP, CNN], ids=["mlp", "cnn"])
def test_parameter_bytes_are_keras_weights_to_the_byte(tmp_path, frameworks, text):
    folder = tmp_path / f"program{next(_modules)}"
    program = write_program(folder, text)
    model = specc.load(folder / "model.spec").models[0]
    spec = importlib.util.spec_from_file_location(f"memory_keras_{folder.name}",
                                                  program / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    network = getattr(module, BUILDER)()
    memory = estimate(model, "tensorflow")
    assert network.count_params() * 4 == memory.parameters
    trainable = sum(math.prod(w.shape) for w in network.trainable_weights)
    assert trainable * 4 == memory.gradients


def test_a_model_that_cannot_fit_is_refused_before_anything_is_allocated(tmp_path):
    program = write_program(tmp_path, HUGE)
    run_dir = tmp_path / "run"
    done, peak = _run_measured([str(program / "train.py"), "--out", str(run_dir)])
    assert done.returncode == 1, done.stderr
    [error] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith("error: training needs an estimated ")
    assert "(memory_needed in recipe.py), more than the limit, " in error
    assert "(the machine's available memory): not started" in error
    assert "Traceback" not in done.stderr
    assert peak < 2 * 2**30  # TensorFlow's import, not the 26 GiB of weights
    assert not run_dir.exists()  # nothing written


def test_max_memory_refuses_a_small_model(tmp_path):
    program = write_program(tmp_path, MLP.replace("1024", "16").replace("2048", "32"))
    refused = run_train(program, "--out", tmp_path / "refused", "--max-memory", "10KB")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1].endswith(
        "(--max-memory 10KB): not started (a smaller batch_size or model needs less; "
        "--max-memory sets the limit)")
    assert not (tmp_path / "refused").exists()
    bad = run_train(program, "--out", tmp_path / "bad", "--max-memory", "a lot")
    assert bad.returncode == 2 and "--max-memory 'a lot': expected a size" in bad.stderr

