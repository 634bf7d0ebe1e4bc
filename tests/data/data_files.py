"""Tiny data files in the standard formats, written by the data tests into tmp folders."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

from specc.backends.common.data import DataCode


def images(rng: np.random.Generator, count: int, *shape: int) -> np.ndarray:
    return rng.integers(0, 256, size=(count, *shape), dtype=np.uint8)


def write_mnist_npz(path: Path, train: int = 20, test: int = 10) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    arrays = {"x_train": images(rng, train, 28, 28), "y_train": rng.integers(0, 10, train),
              "x_test": images(rng, test, 28, 28), "y_test": rng.integers(0, 10, test)}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def write_idx(path: Path, array: np.ndarray, gzipped: bool) -> None:
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gzipped:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def write_mnist_idx(folder: Path, gzipped: bool = True) -> dict[str, np.ndarray]:
    arrays = write_mnist_npz(folder / "unused.npz")
    (folder / "unused.npz").unlink()
    for stem, key in (("train-images-idx3-ubyte", "x_train"), ("train-labels-idx1-ubyte",
                      "y_train"), ("t10k-images-idx3-ubyte", "x_test"),
                      ("t10k-labels-idx1-ubyte", "y_test")):
        write_idx(folder / stem, arrays[key], gzipped)
    return arrays


def write_cifar10(folder: Path, per_batch: int = 4) -> np.ndarray:
    """Five training batches and a test batch; returns the test images [n, 32, 32, 3]."""
    rng = np.random.default_rng(2)
    folder.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        hwc = images(rng, per_batch, 32, 32, 3)
        rows = hwc.transpose(0, 3, 1, 2).reshape(per_batch, 3072)  # planar R, G, B rows
        batch = {b"data": rows, b"labels": rng.integers(0, 10, per_batch).tolist()}
        with (folder / name).open("wb") as file:
            pickle.dump(batch, file)
    return hwc


def write_imdb(path: Path, train: int = 12, test: int = 6) -> np.ndarray:
    """Keras' format: reviews as object arrays of lists of word ranks; returns x_test."""
    rng = np.random.default_rng(3)

    def reviews(count: int) -> np.ndarray:
        ragged = np.empty(count, dtype=object)
        for i in range(count):
            ragged[i] = rng.integers(1, 50, size=rng.integers(1, 12)).tolist()
        return ragged

    path.parent.mkdir(parents=True, exist_ok=True)
    x_test = reviews(test)
    np.savez(path, x_train=reviews(train), y_train=rng.integers(0, 2, train), x_test=x_test,
             y_test=rng.integers(0, 2, test))
    return x_test


def write_image_folder(folder: Path, classes: tuple[str, ...] = ("cat", "dog"),
                       per_class: int = 3, size: tuple[int, int] = (12, 10)) -> None:
    from PIL import Image

    rng = np.random.default_rng(4)
    for name in classes:
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = images(rng, 1, size[1], size[0], 3)[0]
            Image.fromarray(pixels, "RGB").save(folder / name / f"{i}.png")
    (folder / "cat" / "notes.txt").write_text("not an image")


def write_program(code: DataCode, program_dir: Path) -> Path:
    """The loader as a module of its own, imports first, as a backend template writes it."""
    program_dir.mkdir(parents=True, exist_ok=True)
    header = "\n".join(code.stdlib_imports) + "\n\n" + "\n".join(code.third_party_imports)
    path = program_dir / "data_loader.py"
    path.write_text(f'"""Generated data loader."""\n\n{header}\n\n{code.code}')
    return path
