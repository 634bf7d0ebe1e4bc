"""Safe Python identifiers from spec names, for the code every backend generates.

A spec may name a tensor `class`, `lambda`, `input`, `torch` or `np`: any identifier that is not
a keyword of the spec language. Generated Python renames what it must, deterministically (the
same spec always gives the same code):

- variables are lower case (PEP 8, and ruff's pep8-naming rules): `myValue` → `my_value`;
- a name that is a Python keyword, a builtin, `self`, or one of the generated module's own
  names (its imports, helpers, classes) gets a trailing underscore, PEP 8's convention:
  `class` → `class_`, `torch` → `torch_`;
- a name already given to something else in the same scope gets `_2`, `_3`, … in order.

Class names are CapWords throughout (`Residual`, `Residual2`); a reserved one takes a word
where a variable takes the underscore (`TransformerEncoderModel`, `TransformerEncoderBlock`).

Nothing here knows a framework: each backend passes the names its module defines.
"""

from __future__ import annotations

import builtins
import keyword
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

# Names a generated identifier must never shadow, whatever the backend.
PYTHON_RESERVED: frozenset[str] = frozenset(
    {*keyword.kwlist, *keyword.softkwlist, *dir(builtins), "self", "cls"}
)

_NOT_IDENTIFIER = re.compile(r"[^A-Za-z0-9_]")


def identifier(text: str) -> str:
    """`text` made into valid identifier syntax (spec names already are; this is defence)."""
    name = _NOT_IDENTIFIER.sub("_", text)
    if not name:
        return "_"
    return f"_{name}" if name[0].isdigit() else name


def snake_case(name: str) -> str:
    """`myValue` → `my_value`, `X` → `x`: a variable name as PEP 8 spells it."""
    return _WORD_START.sub("_", identifier(name)).lower()


_WORD_START = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def pascal_case(name: str) -> str:
    """`mnist_cnn` → `MnistCnn`, `conv_bn` → `ConvBn`; capitals already there are kept."""
    parts = [p for p in identifier(name).split("_") if p]
    joined = "".join(p[0].upper() + p[1:] for p in parts) or "Model"
    return f"M{joined}" if joined[0].isdigit() else joined


def candidates(
    name: str, reserved: frozenset[str] | set[str], escape: str = "_", sep: str = "_"
) -> Iterator[str]:
    """Safe spellings of `name` in order of preference: `name`, then `name_2`, `name_3`, …
    A reserved `name` is escaped first (`class_`); classes pass `escape="Block"`, `sep=""`."""
    base = identifier(name)
    if base in reserved or keyword.iskeyword(base):
        base += escape
    if base not in reserved:
        yield base
    n = 2
    while True:
        numbered = f"{base}{sep}{n}"
        if numbered not in reserved:
            yield numbered
        n += 1


@dataclass
class Namer:
    """Hands out distinct safe identifiers within one scope (a module, a class, a function)."""

    reserved: frozenset[str] = PYTHON_RESERVED
    escape: str = "_"
    sep: str = "_"
    taken: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.reserved = PYTHON_RESERVED | self.reserved

    def name(self, wanted: str) -> str:
        """A fresh identifier for `wanted`, never handed out before by this namer."""
        options = candidates(wanted, self.reserved, self.escape, self.sep)
        chosen = next(c for c in options if c not in self.taken)
        self.taken.add(chosen)
        return chosen


@dataclass(frozen=True)
class Step:
    """One assignment in straight-line code: it reads `reads` and binds the value `value`."""

    value: str  # the value's id
    label: str  # the name the spec gave it
    reads: tuple[str, ...]


def graph_steps(nodes: Sequence) -> list[Step]:
    """The steps of a graph's nodes (`ir.Node`s) for `variable_names`: each node binds its
    output, named after its label, or `x` where the checker labelled it with the node's id
    (sequence layers, the middle of a chain); then its states (return_state), each by the
    name its binding gives it, bound in the same statement."""
    steps: list[Step] = []
    for node in nodes:
        label = "x" if node.output.label == node.id else node.output.label
        steps.append(Step(node.output.id, label, node.inputs))
        steps += [Step(state.id, state.label, ()) for state in node.results[1:]]
    return steps


def variable_names(
    inputs: Sequence[tuple[str, str]],
    steps: Sequence[Step],
    outputs: Iterable[str],
    reserved: Iterable[str] = (),
) -> dict[str, str]:
    """A variable for every value of a straight-line function, named after its spec label
    (in snake_case).

    `inputs` are (value id, label) pairs bound as the function's parameters. Values that share
    a label share a variable as long as that is safe: `h = h -> conv2d(...)` becomes
    `h = self.conv2d_1(h)`. A value gets a fresh spelling (`h_2`) only when the variable it
    would reuse still holds a value that a later step or the function's result reads.
    """
    reserved_names = PYTHON_RESERVED | frozenset(reserved)
    last_read: dict[str, int] = {}
    for index, step in enumerate(steps):
        for read in step.reads:
            last_read[read] = index
    for value in outputs:  # read by the return statement, after every step
        last_read[value] = len(steps)

    names: dict[str, str] = {}
    holds: dict[str, str] = {}  # variable → the value it holds now
    parameters = Namer(frozenset(reserved_names))
    for value, label in inputs:
        names[value] = parameters.name(snake_case(label))
        holds[names[value]] = value

    for index, step in enumerate(steps):
        # A variable is free once the value it holds has been read for the last time; the
        # step's own reads happen before its assignment, so `h = f(h)` may reuse `h`.
        variable = next(
            c
            for c in candidates(snake_case(step.label), reserved_names)
            if c not in holds or last_read.get(holds[c], -1) <= index
        )
        names[step.value] = variable
        holds[variable] = step.value
    return names
