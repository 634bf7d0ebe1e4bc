"""The syntax tree of a spec file: what the user wrote, with a span on every node.

Produced by `specc.syntax` from Lark's parse tree; nothing here is checked yet beyond the
grammar. Expressions stay unevaluated (a `Name` may be a constant, a block parameter or an
enum word such as `relu`); the expand pass gives them meaning.
"""

# Annotations are evaluated as the module runs, here and in every module of Pydantic models
# (no `from __future__ import annotations`): Pydantic would otherwise compile each field's
# annotation string at import, which `specc check` pays at every start. Names defined further
# down are quoted.
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from specc.errors import Span


class Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    span: Span


# --- expressions --------------------------------------------------------------------------


class Number(Node):
    kind: Literal["number"] = "number"
    value: int | float


class String(Node):
    kind: Literal["string"] = "string"
    value: str


class Bool(Node):
    kind: Literal["bool"] = "bool"
    value: bool


class NoneLit(Node):
    kind: Literal["none"] = "none"


class Name(Node):
    """A bare word: a constant, a block parameter, a graph name or an enum value."""

    kind: Literal["name"] = "name"
    name: str


class Unknown(Node):
    """`?` in an input dimension."""

    kind: Literal["unknown"] = "unknown"


class ListExpr(Node):
    kind: Literal["list"] = "list"
    items: list["Expr"]


class BinOp(Node):
    kind: Literal["binop"] = "binop"
    op: Literal["+", "-", "*", "/", "//"]
    left: "Expr"
    right: "Expr"


class Neg(Node):
    kind: Literal["neg"] = "neg"
    operand: "Expr"


class Keyword(Node):
    name: str
    value: "Expr"


class Call(Node):
    """`name(args, key=value)`; `repeat` holds N of `call * N` where the grammar allows it."""

    kind: Literal["call"] = "call"
    name: str
    name_span: Span
    args: list["Expr"]
    keywords: list[Keyword]
    repeat: "Expr | None" = None


# Tagged by `kind`, so that `none` and `?` (both only a span) stay apart when validated.
Expr = Annotated[
    Union[Number, String, Bool, NoneLit, Name, Unknown, ListExpr, BinOp, Neg, Call],
    Field(discriminator="kind"),
]


# --- network bodies -----------------------------------------------------------------------


class Binding(Node):
    """`target = source -> step -> ...` in a graph body; a step that is a bare name applies
    the graph's shared layer of that name (`SharedLayer`)."""

    target: str
    target_span: Span
    source: Name | Call
    steps: list[Call | Name]
    # `seq, h, c = x -> lstm(..., return_state=true)`: the names after the first, bound to the
    # further results of the chain's last layer (its final states), in order.
    more: list[Name] = []


class SharedLayer(Node):
    """`let name = call` in a graph body: one layer whose weights serve every step of the
    graph that names it (`a = left -> name`, `b = right -> name`)."""

    name: str
    name_span: Span
    call: Call


class SequenceBody(Node):
    kind: Literal["sequence"] = "sequence"
    calls: list[Call]


class GraphBody(Node):
    kind: Literal["graph"] = "graph"
    bindings: list[Binding]
    shared: list[SharedLayer] = []  # the `let` lines, in source order


Body = Union[SequenceBody, GraphBody]


# --- file-level statements ----------------------------------------------------------------


class Import(Node):
    path: str


class Let(Node):
    name: str
    value: Expr


class Param(Node):
    name: str
    default: Expr | None


class Block(Node):
    name: str
    params: list[Param]
    body: Body
    file: str  # the file that defines it: errors inside point here


class Input(Node):
    name: str
    dtype: str
    dtype_span: Span
    dims: list[Expr]


class LossTerm(Node):
    """One loss; `output` is None for the single-output form `loss cross_entropy()`."""

    output: str | None
    call: Call


class Setting(Node):
    """A `train { }` entry: `key = value`, or a call such as `early_stopping(...)`."""

    key: str
    value: Expr


class Section(Node):
    """Where a model section was written; lets the checker report duplicates."""

    keyword: str


class Model(Node):
    name: str
    name_span: Span
    inputs: list[Input]
    body: Body | None
    outputs: list[Name]
    losses: list[LossTerm]
    optimizer: Call | None
    metrics: list[Call]
    # the output each metric is of (`metrics value: mae`), or None: the first with a loss
    metric_outputs: list[Name | None] = []
    data: Call | None
    augment: list[Call]
    settings: list[Setting]
    sections: list[Section]


class File(Node):
    path: str
    imports: list[Import]
    lets: list[Let]
    blocks: list[Block]
    models: list[Model]
    comments: list[tuple[int, int, str]] = []  # (line, column, text): kept for `specc fmt`
