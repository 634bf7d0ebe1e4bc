"""The IR: a checked model as a typed, frozen graph with a shape on every edge.

This is what the checker produces and what the backends read. Everything in it is concrete:
constants are substituted, arguments validated into layer models, shapes and parameter counts
computed. Blocks stay visible as nested graphs so that generated code can give each block a
class of its own.

A `Graph` lists its nodes in an order where every node comes after the values it reads.
Values are named by unique ids within their graph; `label` keeps the spec's own name (which
may be `class` or `lambda`: backends turn labels into safe identifiers).
"""

from typing import Literal, Union

from pydantic import BaseModel, ConfigDict

from specc.backends.registry import BACKEND_NAMES
from specc.errors import Span
from specc.layers import AnyLayer
from specc.layers.base import Backend, ParamCount, Shape
from specc.training import Augmentation, Loss, Metric, Optimizer, TrainConfig

DType = Literal["float32", "int64"]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Value(Frozen):
    """A tensor flowing along an edge. `id` is unique within its graph."""

    id: str
    label: str
    shape: Shape
    dtype: DType
    # Whether it carries a padding mask (`specc/layers/masking.py`): a sequence whose steps
    # an `embedding(mask_zero=true)` marked as padding where its token id was 0.
    masked: bool = False


class Sharing(Frozen):
    """A layer that a graph declares once (`let name = call`) and applies at several steps:
    every use is a node of its own (its input, its output, its shape), and all of them use the
    weights of the first, `first` (a node id of the same graph). The later uses count no
    parameters: they are the first's."""

    name: str  # the `let` name
    first: str


class LayerNode(Frozen):
    """One layer applied to one or more values."""

    id: str  # unique within its graph, e.g. "conv2d_1"; backends use it for attribute names
    layer: AnyLayer
    inputs: tuple[str, ...]
    output: Value
    params: dict[Backend, ParamCount]
    flops: int | None
    span: Span
    sharing: Sharing | None = None  # a shared layer's use (None: a layer of its own)
    # The results after `output` (a recurrent layer's final states, with return_state), each
    # a value of its own that a graph binds by name: `seq, h, c = x -> lstm(...)`.
    states: tuple[Value, ...] = ()

    @property
    def results(self) -> tuple[Value, ...]:
        """The values the node gives: its output, then its states."""
        return (self.output, *self.states)

    @property
    def reuses(self) -> bool:
        """Whether this node applies the weights of an earlier node (a shared layer's later
        use): it holds none of its own."""
        return self.sharing is not None and self.sharing.first != self.id


class BlockNode(Frozen):
    """A block instantiated with concrete arguments; its body is a graph of its own."""

    id: str
    block: str  # the block's name in the spec
    args: dict[str, object]  # the concrete parameter values, for naming and comments
    body: "Graph"
    inputs: tuple[str, ...]
    output: Value
    span: Span

    @property
    def params(self) -> dict[Backend, ParamCount]:
        return self.body.params

    @property
    def results(self) -> tuple[Value, ...]:
        return (self.output,)

    @property
    def flops(self) -> int | None:
        return self.body.flops


Node = Union[LayerNode, BlockNode]


class Graph(Frozen):
    inputs: tuple[Value, ...]
    nodes: tuple[Node, ...]
    outputs: tuple[str, ...]  # value ids

    @property
    def params(self) -> dict[Backend, ParamCount]:
        total: dict[Backend, ParamCount] = dict.fromkeys(BACKEND_NAMES, ParamCount())
        for node in self.nodes:
            for backend, count in node.params.items():
                total[backend] = total[backend] + count
        return total

    @property
    def flops(self) -> int | None:
        counts = [node.flops for node in self.nodes]
        return None if any(c is None for c in counts) else sum(counts)  # type: ignore[misc]

    def value(self, value_id: str) -> Value:
        for v in self.inputs:
            if v.id == value_id:
                return v
        for node in self.nodes:
            for value in node.results:
                if value.id == value_id:
                    return value
        raise KeyError(value_id)

    def reading_masks(self) -> set[str]:
        """The kinds of the layers here that take a masked value (masks stay out of blocks):
        the generators write the masked forms of their helpers only for these."""
        return {
            node.layer.kind
            for node in self.nodes
            if isinstance(node, LayerNode) and any(self.value(v).masked for v in node.inputs)
        }

    def walk(self) -> list[tuple[tuple[str, ...], LayerNode]]:
        """Every layer node, depth first, with the path of block ids that contains it."""
        found: list[tuple[tuple[str, ...], LayerNode]] = []
        for node in self.nodes:
            if isinstance(node, BlockNode):
                found += [((node.id, *path), n) for path, n in node.body.walk()]
            else:
                found.append(((), node))
        return found


class LossTerm(Frozen):
    output: str  # value id of the model output it applies to
    loss: Loss
    span: Span


class DataSource(Frozen):
    """A validated `data` section; `source` is a model from specc.data_sources."""

    source: object
    spec_dir: str  # folder of the spec file that named it: relative paths start here
    span: Span


class Model(Frozen):
    name: str
    graph: Graph
    losses: tuple[LossTerm, ...]
    optimizer: Optimizer
    metrics: tuple[Metric, ...]
    # the label of the output each metric is of, or None: the first output with a loss
    metric_outputs: tuple[str | None, ...] = ()
    data: DataSource | None
    augment: tuple[Augmentation, ...]
    train: TrainConfig
    file: str
    span: Span
    # the layer nodes `train { freeze }` names (each the path of block ids down to it, its own
    # id last): their parameters count as non-trainable
    frozen: tuple[tuple[str, ...], ...] = ()

    @property
    def memory(self):
        """The memory of training this model on its spec's backend: a
        `specc.memory.MemoryEstimate` (bytes of parameters, gradients, optimizer state,
        activations per batch, data; `.training` their sum)."""
        from specc.memory import estimate  # specc.memory reads this module's classes

        return estimate(self)


class Program(Frozen):
    """Everything a spec file defines, checked."""

    file: str
    models: tuple[Model, ...]
