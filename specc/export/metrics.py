"""The test-split metric of exported outputs (NumPy), to print beside the framework's: accuracy
for a classifier's first output, mean absolute and squared error for a regression's."""

from __future__ import annotations

from types import ModuleType

import numpy as np

from specc.training import LOSSES


def first_output_metrics(data: ModuleType, outputs: list[np.ndarray],
                         labels: list[np.ndarray]) -> dict[str, float]:
    """The metrics of the first output with a loss (data.py's MODEL_OUTPUTS, in order), from
    its values and its prepared labels."""
    name, (_, loss) = next(iter(data.MODEL_OUTPUTS.items()))
    values, target = outputs[0], labels[0]
    if LOSSES[loss].task == "classes":
        ids = target if loss == "cross_entropy" else target.argmax(axis=-1)  # one-hot rows
        return {"accuracy": float(np.mean(values.argmax(axis=-1) == ids))}
    if LOSSES[loss].task == "binary":
        threshold = data.BINARY_THRESHOLDS[name]
        return {"accuracy": float(np.mean((values > threshold) == (target > 0.5)))}
    error = values.astype(np.float64) - target
    return {"mae": float(np.mean(np.abs(error))), "mse": float(np.mean(error ** 2))}
