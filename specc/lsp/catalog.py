"""What the language offers by name, as hover and completion show it: the layer kinds, the
training-section kinds, the `train` keys, and each one's arguments with type and default.

Everything is read from the Pydantic models that the checker binds calls to, so an argument
added to a layer shows up here without a change.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from specc.data_sources import DATA_SOURCES
from specc.layers import LAYERS
from specc.training import (
    AUGMENTATIONS,
    LOSSES,
    METRICS,
    OPTIMIZERS,
    SCHEDULES,
    TRAIN_CALLS,
    TrainConfig,
)

# Each family of named kinds, by what the checker calls it in its messages.
FAMILIES: dict[str, dict[str, type[BaseModel]]] = {
    "layer": LAYERS,
    "loss": LOSSES,
    "optimizer": OPTIMIZERS,
    "schedule": SCHEDULES,
    "metric": METRICS,
    "data source": DATA_SOURCES,
    "augmentation": AUGMENTATIONS,
    "train setting": TRAIN_CALLS,
}

# The model-level statements, each with the family its calls belong to (None: no calls).
SECTION_FAMILIES: dict[str, str | None] = {
    "input": None,
    "layers": "layer",
    "graph": "layer",
    "output": None,
    "loss": "loss",
    "optimizer": "optimizer",
    "metrics": "metric",
    "data": "data source",
    "augment": "augmentation",
    "train": "train setting",
}
TOP_LEVEL_KEYWORDS = ("model", "block", "let", "import")
INPUT_TYPES = ("float", "int")
# Words that are values wherever an expression may stand.
VALUE_WORDS = ("true", "false", "none")


@dataclass(frozen=True)
class Argument:
    name: str
    type: str  # as a user reads it, e.g. "int > 0 or list of int > 0"
    default: str | None  # in spec syntax; None when the argument is required
    choices: tuple[str, ...]  # the words it takes, when it takes words


def show_value(value: object) -> str:
    """A Python value as a spec writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e6 else repr(value)
    if isinstance(value, str):
        return value if value.isidentifier() else json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(show_value(v) for v in value) + "]"
    if isinstance(value, BaseModel):
        kind = getattr(value, "kind", type(value).__name__.lower())
        given = [f"{name}={show_value(getattr(value, name))}" for name in _argument_names(value)]
        return f"{kind}({', '.join(given)})"
    return str(value)


def _argument_names(model: BaseModel | type[BaseModel]) -> list[str]:
    cls = model if isinstance(model, type) else type(model)
    return [name for name in cls.model_fields if name != "kind"]


_BOUNDS = (
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Ge, "ge", "≥"),
    (annotated_types.Lt, "lt", "<"),
    (annotated_types.Le, "le", "≤"),
)


def _bounds(metadata: list[object]) -> str:
    found = []
    for item in metadata:
        for kind, attribute, sign in _BOUNDS:
            if isinstance(item, kind):
                found.append(f"{sign} {show_value(getattr(item, attribute))}")
    return (" " + ", ".join(found)) if found else ""


def _type_text(annotation: object, metadata: list[object]) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        inner_metadata = [m for extra in args[1:] for m in _metadata_of(extra)]
        return _type_text(args[0], inner_metadata + list(metadata))
    if origin is typing.Literal:
        return " | ".join(show_value(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        sections = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
        if sections and len(sections) == len(members):
            text = " | ".join(f"{_kind_of(m)}(…)" for m in sections)
        else:
            text = " or ".join(_type_text(m, []) for m in members)
        return text + (" or none" if len(members) < len(args) else "")
    if origin is list:
        return f"list of {_type_text(args[0], [])}" if args else "list"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"{_kind_of(annotation)}(…)"
    names = {int: "int", float: "float", bool: "bool", str: "string"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation))) + _bounds(
        metadata
    )


def _metadata_of(extra: object) -> list[object]:
    return list(extra.metadata) if isinstance(extra, FieldInfo) else [extra]


def _kind_of(cls: type[BaseModel]) -> str:
    field = cls.model_fields.get("kind")
    return str(field.default) if field is not None else cls.__name__.lower()


def _choices(annotation: object) -> tuple[str, ...]:
    """The words (enum values, true/false, none) an argument of this type takes."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _choices(args[0])
    if origin is typing.Literal:
        return tuple(show_value(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        words = [w for a in args for w in _choices(a)]
        return tuple(dict.fromkeys(words))
    if annotation is bool:
        return ("true", "false")
    if annotation is type(None):
        return ("none",)
    return ()


def arguments(cls: type[BaseModel]) -> list[Argument]:
    """The arguments of a kind (or the `train` keys of TrainConfig), in positional order."""
    found = []
    for name in _argument_names(cls):
        field = cls.model_fields[name]
        default = (
            None
            if field.default is PydanticUndefined and field.default_factory is None
            else show_value(field.get_default(call_default_factory=True))
        )
        found.append(
            Argument(
                name,
                _type_text(field.annotation, list(field.metadata)),
                default,
                _choices(field.annotation),
            )
        )
    return found


def signature(name: str, cls: type[BaseModel]) -> str:
    """`conv2d(filters: int > 0, kernel: …, stride=1, …)`: required arguments with their
    type, the others with their default."""
    parts = [
        f"{a.name}: {a.type}" if a.default is None else f"{a.name}={a.default}"
        for a in arguments(cls)
    ]
    return f"{name}({', '.join(parts)})"


def family_of(name: str, preferred: str | None = None) -> tuple[str, type[BaseModel]] | None:
    """The family and class of a kind's name, looking in `preferred` first (`mae` is a loss
    and a metric)."""
    order = ([preferred] if preferred in FAMILIES else []) + list(FAMILIES)
    for family in order:
        if name in FAMILIES[family]:
            return family, FAMILIES[family][name]
    return None


def describe(cls: type[BaseModel]) -> str:
    """The first paragraph of a kind's docstring, or nothing."""
    doc = cls.__doc__ or ""
    if doc.startswith(("A base", "Base of")) or cls.__doc__ == BaseModel.__doc__:
        return ""
    return " ".join(doc.strip().split("\n\n")[0].split())


TRAIN_KEYS: list[Argument] = arguments(TrainConfig)
