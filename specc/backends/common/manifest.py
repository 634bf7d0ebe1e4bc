"""What a generated model.py holds, node by node: the manifest a backend's generator writes
beside the code, so that tools reading the program (`specc parity`, weight transfer) need
not know how the generator names, lays out or activates anything.

A backend's `manifest(model)` returns one; it is recorded by the same code that writes the
names into model.py, never worked out again afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Layout = Literal["first", "last"]  # channels right after the batch, or last


@dataclass(frozen=True)
class Weight:
    """One tensor of a node's weights, as the framework holds it."""

    holder: str  # PyTorch: the module's path in the state dict; Keras: the layer's name
    name: str  # PyTorch: the state-dict key under `holder`; Keras: the variable's name
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Entry:
    """One layer node of the model, as its program holds it."""

    node: tuple[str, ...]  # the block node ids down to it, its own id last
    kind: str  # the layer kind
    name: str  # PyTorch: the module path; Keras: the layer whose output is the node's
    layout: Layout  # how the program holds the output at `name`
    # The expression (of `x`, the tensor at `name`) that the program applies after `name`
    # to get the node's output: an `activation=` left to `forward`. None: nothing.
    activation_outside: str | None
    weights: tuple[Weight, ...]  # in the order the framework lists them

    @property
    def path(self) -> str:
        """The node's path in the model: block node ids and its own, joined by dots."""
        return ".".join(self.node)


@dataclass(frozen=True)
class Manifest:
    """Every layer node of one program, depth first in model order."""

    backend: str
    builder: str  # what model.py defines to build the model: its class (PyTorch), function (Keras)
    entries: tuple[Entry, ...]
