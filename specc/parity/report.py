"""The results of `specc parity`: tensors compared within a tolerance, and the table."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

RTOL, ATOL = 1e-4, 1e-5


@dataclass(frozen=True)
class Difference:
    """One pair of tensors compared: `name` says which."""

    name: str
    max_abs: float
    max_rel: float  # |diff| / |reference| at most, over the elements where |reference| > ATOL
    ok: bool


def compare(name: str, ours: np.ndarray, reference: np.ndarray,
            per_tensor: bool = False) -> Difference:
    """Keras's `ours` against PyTorch's `reference`, relative to each element of it, or with
    `per_tensor` to its largest (see the module docstring)."""
    ours, reference = np.asarray(ours, np.float64), np.asarray(reference, np.float64)
    if ours.shape != reference.shape:
        return Difference(f"{name} (shapes {ours.shape} vs {reference.shape})", math.inf,
                          math.inf, False)
    if not ours.size:
        return Difference(name, 0.0, 0.0, True)
    gap = np.abs(ours - reference)
    size = np.abs(reference)
    if per_tensor:
        size = np.full_like(size, size.max())
    sizable = size > ATOL
    relative = float(np.max(gap[sizable] / size[sizable])) if sizable.any() else 0.0
    ok = bool(np.all(gap <= ATOL + RTOL * size))  # nan fails
    return Difference(name, float(np.max(gap)), relative, ok)


@dataclass
class Check:
    """A row of the report: several differences of one kind, in model order."""

    title: str
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(d.ok for d in self.differences)

    @property
    def shown(self) -> Difference | None:
        """The first failure, else the largest difference."""
        failures = [d for d in self.differences if not d.ok]
        if failures:
            return failures[0]
        return max(self.differences, key=lambda d: d.max_abs, default=None)


@dataclass
class Report:
    model: str
    setup: str  # one line: data, batches, optimizer
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def first_divergence(self) -> Difference | None:
        """The first failing comparison, in the order they were made."""
        for check in self.checks:
            if not check.ok:
                return check.shown
        return None

    def table(self) -> str:
        rows = [("check", "first failure or largest |diff|", "max |diff|", "max rel", "")]
        for check in self.checks:
            shown = check.shown
            if shown is None:
                rows.append((check.title, "(nothing to compare)", "", "", "ok"))
                continue
            rows.append((check.title, shown.name, f"{shown.max_abs:.2e}",
                         f"{shown.max_rel:.2e}", "ok" if check.ok else "FAILED"))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = [f"parity of `{self.model}`: {self.setup}",
                 f"tolerance: |keras - torch| <= {ATOL:g} + {RTOL:g} * |torch|, in float32 "
                 "the largest |torch| of the tensor", ""]
        for row in rows:
            lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths,
                                                                              strict=False))
                         + "  " + row[4])
        divergence = self.first_divergence
        lines.append("")
        if divergence is None:
            lines.append("parity: the two programs agree")
        else:
            lines.append(f"parity FAILED: first divergence at {divergence.name} (max |diff| "
                         f"{divergence.max_abs:.3g})")
        return "\n".join(line.rstrip() for line in lines)
