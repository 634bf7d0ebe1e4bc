"""(slow) The generated train.py of both backends on bad data, a device that is not there,
and --predict: inputs as the source reads them or in the model's input shape, image arrays
as well as image files, and class ids and names for classifiers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from data_files import write_image_folder

import specc
from specc.backends import generate

BACKENDS = ["torch", "tensorflow"]
pytestmark = pytest.mark.slow

DIGITS = """
model digits {
    input image: float[8, 8, 1]
    layers {
        flatten()
        dense(10)
    }
    loss cross_entropy()
    data digits(validation=0.1)
    train {
        epochs = 1
        batch_size = 256
    }
}
"""

PETS = """
model pets {
    input image: float[6, 6, 3]
    layers {
        flatten()
        dense(2)
    }
    loss cross_entropy()
    data image_folder("pets", 6)
    train {
        epochs = 1
        batch_size = 8
    }
}
"""

NPZ = """
model table {
    input x: float[3]
    layers {
        dense(2)
    }
    loss cross_entropy()
    data npz("table.npz")
    train { epochs = 1 }
}
"""


def compile_program(folder: Path, spec_text: str, backend: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / "model.spec"
    spec.write_text(textwrap.dedent(spec_text))
    program = folder / backend
    program.mkdir()
    for name, text in generate(specc.load(spec).models[0], backend, program).items():
        (program / name).write_text(text)
    return program


def run(program: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    # TensorFlow logs less from C++ (what it still logs is left out by one_error_line).
    return subprocess.run([sys.executable, str(program / "train.py"), "--no-export",
                           *map(str, args)], capture_output=True, text=True, timeout=120,
                          check=False, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


# What TensorFlow's C++ runtime logs at start-up whatever TF_CPP_MIN_LOG_LEVEL says: absl's
# note, and lines in glog's format ("I0000 00:00:... file.cc:153] ...").
FRAMEWORK_LOG = re.compile(r"WARNING: All log messages before absl|[IWEF]\d{4} \d\d:\d\d:")


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The program's one line on stderr, once it failed with exit status 1."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines()
             if not FRAMEWORK_LOG.match(line)]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def predictions(run_dir: Path) -> dict[str, np.ndarray]:
    with np.load(run_dir / "predictions.npz") as arrays:
        return dict(arrays)


@pytest.mark.parametrize("backend", BACKENDS)
def test_predict_takes_raw_rows_or_the_input_shape_and_names_the_classes(tmp_path, backend):
    from sklearn.datasets import load_digits

    program = compile_program(tmp_path, DIGITS, backend)
    run_dir = tmp_path / "run"
    trained = run(program, "--out", run_dir)
    assert trained.returncode == 0, trained.stderr
    rows = load_digits().data[:10]  # [10, 64], as digits() reads them
    np.savez(tmp_path / "rows.npz", x=rows)
    np.savez(tmp_path / "images.npz", image=rows.reshape(10, 8, 8, 1))  # the input's shape
    np.savez(tmp_path / "wrong.npz", x=rows[:, :60])

    assert run(program, "--out", run_dir, "--predict", tmp_path / "rows.npz").returncode == 0
    from_rows = predictions(run_dir)
    assert run(program, "--out", run_dir, "--predict", tmp_path / "images.npz").returncode == 0
    from_images = predictions(run_dir)
    assert list(from_rows) == ["y", "y_class_id", "y_class_name"]
    np.testing.assert_allclose(from_rows["y"], from_images["y"], atol=1e-6)
    assert from_rows["y"].shape == (10, 10)
    np.testing.assert_array_equal(from_rows["y_class_id"], from_rows["y"].argmax(axis=1))
    assert from_rows["y_class_id"].dtype == np.int64
    assert from_rows["y_class_name"].tolist() == [str(i) for i in from_rows["y_class_id"]]

    message = one_error_line(run(program, "--out", run_dir, "--predict", tmp_path / "wrong.npz"))
    assert message == (f"error: {tmp_path / 'wrong.npz'}: samples of shape [60] cannot be "
                       "standardized (expected 64 features per sample, as rows [n, 64] or "
                       "shaped like the input, [8, 8, 1])")


@pytest.mark.parametrize("backend", BACKENDS)
def test_predict_on_an_image_folder_run_takes_image_arrays_as_well_as_files(tmp_path, backend):
    from PIL import Image

    write_image_folder(tmp_path / "pets", per_class=3, size=(12, 10))
    program = compile_program(tmp_path, PETS, backend)
    run_dir = tmp_path / "run"
    trained = run(program, "--out", run_dir)
    assert trained.returncode == 0, trained.stderr
    files = sorted((tmp_path / "pets").glob("*/*.png"))
    pixels = np.stack([np.asarray(Image.open(file)) for file in files])  # uint8 [6, 10, 12, 3]
    np.savez(tmp_path / "files.npz", x=np.array([str(file) for file in files]))
    np.savez(tmp_path / "pixels.npz", x=pixels)

    assert run(program, "--out", run_dir, "--predict", tmp_path / "files.npz").returncode == 0
    from_files = predictions(run_dir)
    assert run(program, "--out", run_dir, "--predict", tmp_path / "pixels.npz").returncode == 0
    from_pixels = predictions(run_dir)
    np.testing.assert_array_equal(from_files["y"], from_pixels["y"])
    assert from_files["y"].shape == (6, 2)
    names = np.array(["cat", "dog"])[from_files["y"].argmax(axis=1)]
    assert from_pixels["y_class_name"].tolist() == names.tolist()



@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_data_and_a_missing_gpu_stop_with_one_line(tmp_path, backend):
    program = compile_program(tmp_path, NPZ, backend)  # the data file comes after the check
    data = tmp_path / "table.npz"
    ragged = np.empty(2, dtype=object)
    ragged[:] = [[1.0, 2.0, 3.0], [4.0]]
    np.savez(data, x=ragged, y=np.zeros(2))
    message = one_error_line(run(program, "--out", tmp_path / "run"))
    assert message.startswith(f"error: {data}: array 'x' holds Python objects")


    framework = {"torch": "PyTorch", "tensorflow": "TensorFlow"}[backend]
    message = one_error_line(run(program, "--out", tmp_path / "run", "--device", "cuda:99"))
    assert message.startswith(f"error: device 'cuda:99' asked for, but {framework} sees ")
