"""What every layer kind provides: validated arguments, an output shape, a parameter count.

A layer kind is a frozen Pydantic model. Its fields are the layer's arguments, declared in the
order LANGUAGE.md lists them, so that positional arguments in a spec bind to fields in
declaration order. Field defaults are the normative defaults. The class knows nothing about
any framework: backends read its fields and the shapes the checker computed.

Shapes never include the batch dimension. A dimension is an int, or None for `?`.

Messages do not name their layer: the checker shows a ShapeError after the layer's name
("conv2d: window is larger than the input along height (expected …, got …)") and an argument's
validation error after the layer's and the argument's. Both follow `specc.errors.mismatch`:
what, expected, got.
"""

from math import prod
from typing import ClassVar, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

from specc.errors import ShapeError, mismatch

Dim = int | None
Shape = tuple[Dim, ...]
# A backend's name; specc.backends.registry lists them, and how each counts parameters.
Backend = str
# The element type a layer needs ("any": it only moves elements around) and the one it gives
# ("same": the input's). The checker uses them to reject, e.g., int token ids fed to `dense`.
Accepts = Literal["float", "int", "any"]
Produces = Literal["float", "same"]


class ParamCount(NamedTuple):
    trainable: int = 0
    non_trainable: int = 0

    @property
    def total(self) -> int:
        return self.trainable + self.non_trainable

    def __add__(self, other: object) -> "ParamCount":  # type: ignore[override]
        assert isinstance(other, ParamCount)
        return ParamCount(
            self.trainable + other.trainable, self.non_trainable + other.non_trainable
        )


class Layer(BaseModel):
    """Base of every layer kind. Subclasses declare `kind: Literal["name"] = "name"` first."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    kind: str
    # How many inputs the layer takes: 1, or "many" for merges (two or more).
    arity: ClassVar[int | Literal["many"]] = 1
    # How many named tensors the layer takes when a graph chain starts with it (`add(a, b)`,
    # `attention(query, value)`): (fewest, most; None for no limit). None: it cannot start
    # a chain. A layer of arity 1 may have it too (multihead_attention, cross-attention).
    # With no limit the layer takes tensors only (a merge); else arguments follow them.
    named_inputs: ClassVar[tuple[int, int | None] | None] = None
    # Older or Keras-style spellings a user may try, mapped to our argument name; used only
    # for the "did you mean" hint, never accepted silently.
    hints: ClassVar[dict[str, str]] = {}
    # The element type the layer needs of its inputs, and the one it outputs (see Accepts).
    accepts: ClassVar[Accepts] = "float"
    produces: ClassVar[Produces] = "float"
    # Whether training updates state that is no gradient's (a batchnorm's running averages):
    # such a layer cannot be shared, since Keras runs a functional model's uses of one layer
    # in an order of its own, and each use would move the state in turn.
    moves_state: ClassVar[bool] = False

    # What those results are called, in order (`h`, `c`).
    state_names: ClassVar[tuple[str, ...]] = ()

    def state_shapes(self, inputs: list[Shape]) -> list[Shape]:
        """The shapes of the results the layer gives after its output (a recurrent layer's
        final states, with `return_state`); none for most layers."""
        return []

    def output_shape(self, inputs: list[Shape]) -> Shape:
        """The output shape for these input shapes; raise ShapeError when they do not fit."""
        raise NotImplementedError

    def params(self, inputs: list[Shape], backend: Backend) -> ParamCount:
        """Parameters of this layer on `backend` (they differ only where a framework does)."""
        return ParamCount()

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        """Floating-point operations of one forward pass for one sample (a multiply-add is
        2); None when a `?` dimension makes the count unknown. Default: one per output."""
        return numel(output)


def numel(shape: Shape) -> int | None:
    """Elements per sample, or None when a dimension is unknown."""
    if any(d is None for d in shape):
        return None
    return prod(shape)  # type: ignore[arg-type]


def fmt_shape(shape: Shape) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def require_rank(layer: str, shape: Shape, ranks: int | tuple[int, ...], meaning: str) -> None:
    """Fail with a message naming the layout the layer needs and the shape received.

    `meaning` spells out the layout, e.g. "[height, width, channels]"; the batch is never
    counted, as in the spec's own `input` lines. `layer` is not repeated in the message: the
    checker already shows every shape error after the layer's name.
    """
    ranks = (ranks,) if isinstance(ranks, int) else ranks
    if len(shape) not in ranks:
        expected = " or ".join(str(r) for r in ranks)
        raise ShapeError(
            mismatch(
                f"input must be {meaning}",
                f"{expected} dimensions",
                f"{len(shape)}: {fmt_shape(shape)}",
            )
        )


def require_known(shape: Shape, axis: int, meaning: str) -> int:
    """The size of `shape[axis]`, which the layer needs to create its weights; fail on `?`."""
    size = shape[axis]
    if size is None:
        raise ShapeError(
            mismatch(
                f"needs a known number of {meaning} to create its weights",
                "a number",
                f"? in {fmt_shape(shape)}",
            )
        )
    return size


def resolve_axis(axis: int, shape: Shape) -> int:
    """The index into `shape` of an axis written the frameworks' way, batch as axis 0.

    `shape` excludes the batch, so axis a ≥ 1 is shape[a - 1] and a < 0 is shape[a]; axis 0
    (the batch) and axes past the rank are errors.
    """
    rank = len(shape)
    if not (1 <= axis <= rank or -rank <= axis <= -1):
        raise ShapeError(
            mismatch(
                f"axis {axis} does not exist in the input {fmt_shape(shape)}",
                f"1..{rank} or -{rank}..-1 (axis 0 is the batch)",
                axis,
            )
        )
    return axis - 1 if axis > 0 else rank + axis
