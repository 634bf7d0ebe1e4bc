"""Small ONNX models with specc's export metadata, made in the test from PyTorch modules with
`torch.onnx.export(..., dynamo=True)`, as `specc export` writes them: raw samples in (the
scaling is inside the graph), a free batch axis, the `specc` metadata entry attached. The
serving and quantization tests use these, so they need no trained run. Importing this
module imports torch: the tests that use it are marked slow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch

from specc.export_metadata import ExportMetadata, OutputInfo, TensorInfo, attach

DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
VOCAB = 20  # token ids of the classifier's `tokens` input are below this


class ImageAndTokens(torch.nn.Module):
    """A classifier of two inputs: an 8x8 image of values 0..16 (scaled to [0, 1] inside) and
    a sequence of token ids of any length (embedded and averaged)."""

    def __init__(self):
        super().__init__()
        self.embedding = torch.nn.Embedding(VOCAB, 8)
        self.hidden = torch.nn.Linear(64 + 8, 32)
        self.logits = torch.nn.Linear(32, 10)

    def forward(self, image, tokens):
        pixels = (image / 16.0).reshape(image.shape[0], 64)
        words = self.embedding(tokens).mean(dim=1)
        return self.logits(torch.relu(self.hidden(torch.cat([pixels, words], dim=1))))


class DigitsConvNet(torch.nn.Module):
    """A small convnet on scikit-learn's 8x8 digits, raw pixel values 0..16 in,
    channels-last as the data source yields them."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 16, 3, padding=1)
        self.hidden = torch.nn.Linear(16 * 4 * 4, 64)
        self.logits = torch.nn.Linear(64, 10)

    def forward(self, image):
        x = (image / 16.0).permute(0, 3, 1, 2)  # NHWC -> NCHW
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        x = torch.nn.functional.max_pool2d(x, 2).flatten(1)
        return self.logits(torch.relu(self.hidden(x)))


class LinearClassifier(torch.nn.Module):
    """Logistic regression on the 64 raw pixel values (0..16) of a digit."""

    def __init__(self):
        super().__init__()
        self.logits = torch.nn.Linear(64, 10)

    def forward(self, image):
        return self.logits((image / 16.0).reshape(image.shape[0], 64))


def export(module: torch.nn.Module, inputs: dict[str, np.ndarray], free_axes: dict[str, list],
           path: Path, *, model: str, classes: int, class_names: list[str] | None,
           test_metrics: dict[str, float] | None = None) -> Path:
    """Write `module` to `path` as ONNX with the `specc` metadata: `inputs` are example
    batches by input name (in the forward's order), `free_axes` the per-sample axes of any
    length of each input; the one output `logits` is a classifier's of `classes`."""
    module.eval()
    batch = torch.export.Dim("batch")
    dynamic_shapes = {
        name: {0: batch, **{axis + 1: torch.export.Dim(f"{name}_{axis}")
                            for axis in free_axes.get(name, [])}}
        for name in inputs}
    examples = tuple(torch.from_numpy(array) for array in inputs.values())
    program = torch.onnx.export(module, examples, input_names=list(inputs),
                                output_names=["logits"], dynamic_shapes=dynamic_shapes,
                                dynamo=True, verbose=False)
    program.save(str(path))
    proto = onnx.load(str(path))
    metadata = ExportMetadata(
        model=model, backend="torch", spec_hash="0123456789abcdef",
        opset=proto.opset_import[0].version,
        inputs=[TensorInfo(name=name, dtype=str(array.dtype),
                           shape=[None if axis in free_axes.get(name, []) else size
                                  for axis, size in enumerate(array.shape[1:])])
                for name, array in inputs.items()],
        outputs=[OutputInfo(name="logits", shape=[classes], dtype="float32", classes=classes,
                            class_names=class_names)],
        test_metrics=test_metrics or {}, max_abs_difference=0.0, tolerance=1e-4)
    attach(proto, metadata)
    onnx.save(proto, str(path))
    return path


def image_and_tokens_classifier(path: Path) -> Path:
    """An untrained ImageAndTokens (seeded weights) as ONNX: inputs `image` float32
    [8, 8, 1] and `tokens` int64 [?]."""
    torch.manual_seed(0)
    examples = {"image": np.zeros((2, 8, 8, 1), np.float32),
                "tokens": np.zeros((2, 5), np.int64)}
    return export(ImageAndTokens(), examples, {"tokens": [0]}, path, model="image_and_tokens",
                  classes=10, class_names=DIGIT_NAMES)


def digits_splits(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """scikit-learn's digits as raw [n, 8, 8, 1] float32 images and int64 labels, split 80/20
    into "train" and "test" (shuffled with `seed`)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float32)[..., None]
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    cut = int(0.8 * len(labels))
    return {"train": (images[order[:cut]], labels[order[:cut]]),
            "test": (images[order[cut:]], labels[order[cut:]])}


def train(net: torch.nn.Module, splits: dict, epochs: int) -> torch.nn.Module:
    """`net` trained on the train split with Adam, batches of 128 (seeded)."""
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    images, labels = (torch.from_numpy(array) for array in splits["train"])
    for _ in range(epochs):
        for index in torch.randperm(len(labels)).split(128):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(images[index]), labels[index])
            loss.backward()
            optimizer.step()
    return net.eval()


def trained_digits_convnet(path: Path, splits: dict, epochs: int = 8) -> Path:
    """DigitsConvNet trained on the train split and exported."""
    torch.manual_seed(0)
    net = train(DigitsConvNet(), splits, epochs)
    return export(net, {"image": splits["train"][0][:2]}, {}, path, model="digits_convnet",
                  classes=10, class_names=DIGIT_NAMES)


def linear_classifier_that_int8_breaks(path: Path, splits: dict, epochs: int = 30) -> Path:
    """A trained LinearClassifier whose weights for pixel 0, which is 0 in every digit, are
    set to 1000: its float outputs are unchanged, but int8 weights quantized per tensor get a
    step of 1000 / 127, to which every other weight rounds to 0."""
    torch.manual_seed(0)
    net = train(LinearClassifier(), splits, epochs)
    assert not splits["train"][0].reshape(-1, 64)[:, 0].any()
    with torch.no_grad():
        net.logits.weight[:, 0] = 1000.0
    return export(net, {"image": splits["train"][0][:2]}, {}, path, model="digits_linear",
                  classes=10, class_names=DIGIT_NAMES)
