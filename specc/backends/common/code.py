"""The code writer every backend uses: how spec values become Python source.

Spec text reaches generated code in exactly three ways, all of them here:
- `lit`: a literal of plain data (None, bools, ints, finite floats, strings, and tuples,
  lists and dicts of those), in one quoting style: double quotes unless the string holds one;
- `doc_text`: text for a docstring or a comment, escaped to one line of printable ASCII;
- identifiers made safe by `specc.backends.naming`.
`Code` marks a fragment that the generator wrote itself and that is inserted as it is.
"""

from __future__ import annotations

import io
import json
import math
import re
import tokenize
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

LINE_LIMIT = 100  # the project's ruff line length, which generated code keeps too

# How a value of rank ≥ 2 is held: "last" is the canonical channels-last layout, "first"
# puts channels right after the batch.
Layout = Literal["first", "last"]


class Code(str):
    """A fragment of generated Python, inserted as it is: never spec text."""


def lit(value: object) -> str:
    """`value` as a Python literal that evaluates back to it; only plain data passes."""
    if isinstance(value, Code):
        return value
    if isinstance(value, Defaulted):
        return lit(value.value)
    if isinstance(value, str):
        quoted = repr(value)
        # Double quotes, as the rest of the file, when that needs no escaping.
        return f'"{quoted[1:-1]}"' if quoted[0] == "'" and '"' not in value else quoted
    if value is None or isinstance(value, (bool, int)):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"no Python literal for the float {value!r}")
        return repr(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(lit(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, list):
        return "[" + ", ".join(lit(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{lit(k)}: {lit(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"refusing to write a {type(value).__name__} into generated code")


def doc_text(value: object, width: int | None = None) -> str:
    r"""`value` as text that is safe inside a docstring or after a `#`: one line of printable
    ASCII in which backslashes, double quotes and every other character are escaped as in a
    JSON string (`"` is `\"`, a newline `\n`, U+2028 `\u2028`), all of them escapes that
    Python reads back the same way. No quote can close a docstring and no line break can end
    a comment. Longer than `width`, the middle gives way to `...`, whole escapes at a time,
    so that the line stays within the line limit."""
    escaped = [_escape(character) for character in str(value)]
    if width is None or sum(map(len, escaped)) <= width:
        return "".join(escaped)
    # Keep whole escapes from both ends in turn, as long as they fit beside the "...".
    room, front, back = width - 3, 0, len(escaped)
    from_front = True
    while front < back:
        index = front if from_front else back - 1
        if len(escaped[index]) > room:
            break
        room -= len(escaped[index])
        if from_front:
            front += 1
        else:
            back -= 1
        from_front = not from_front
    return "".join(escaped[:front]) + "..." + "".join(escaped[back:])


def _escape(character: str) -> str:
    """One character as a JSON string writes it, DEL (which JSON leaves raw) included."""
    return "\\u007f" if character == "\x7f" else json.dumps(character, ensure_ascii=True)[1:-1]


def call(function: str, *args: object, **kwargs: object) -> Code:
    """`function(args, key=value)`; values are literals (`lit`) unless they are `Code`.
    Keyword arguments given as None are left out, so callers pass None for defaults."""
    parts = [lit(a) for a in args]
    parts += [keyword_argument(key, value) for key, value in kwargs.items() if value is not None]
    return Code(f"{function}({', '.join(parts)})")


def keyword_argument(key: str, value: object) -> str:
    """`key=value` as source; a `Defaulted` value as a default marker (see `unless`)."""
    if isinstance(value, Defaulted):
        # A value equal to its default is written as the default, so that comparing the
        # two texts says what `unless` would (0.0 is the default 0).
        default = lit(value.value) if value.value == value.default else lit(value.default)
        return f"{DEFAULT_OPEN}{key}={lit(value.value)}{DEFAULT_SEPARATOR}{default}{DEFAULT_CLOSE}"
    return f"{key}={lit(value)}"


def axes(values: Sequence[int]) -> int | tuple[int, ...]:
    """One number when every axis has the same one (`3`), else a tuple (`(3, 5)`)."""
    return values[0] if len(set(values)) == 1 else tuple(values)


def unless(value: object, default: object) -> object:
    """`value`, or None (left out of the call) when it is the framework's default.

    While `keeping_defaults` is in effect, a `Defaulted` instead: the code of a block's use
    then keeps the keyword argument as a marker that records both, so that the uses of one
    block can be lined up argument by argument even where one of them leaves an argument
    out (`stride=2` in one, the default stride in another). `block_code.share` turns the
    markers back into source."""
    if _KEEP_DEFAULTS.get():
        return Defaulted(value, default)
    return None if value == default else value


@dataclass(frozen=True)
class Defaulted:
    """A keyword argument's value and the framework's default for it."""

    value: object
    default: object


# A kept default in generated text: OPEN key=value SEPARATOR default CLOSE. Control
# characters that no literal (`lit` escapes them) and no generated code contains, and that
# Python does not count as white space.
DEFAULT_OPEN, DEFAULT_SEPARATOR, DEFAULT_CLOSE = "\x01", "\x02", "\x03"
_KEEP_DEFAULTS: ContextVar[bool] = ContextVar("keep_defaults", default=False)
DEFAULT_MARKER = re.compile(r"\x01(\w+)=([^\x02]*)\x02([^\x03]*)\x03")


@contextmanager
def keeping_defaults() -> Iterator[None]:
    """Within it, `unless` keeps defaults as markers (for the code of a block's use)."""
    token = _KEEP_DEFAULTS.set(True)
    try:
        yield
    finally:
        _KEEP_DEFAULTS.reset(token)


def held_shape(shape: Sequence[int | None], layout: Layout) -> tuple[int | None, ...]:
    """A canonical shape as the tensor holds it in `layout` (batch excluded)."""
    if layout == "first" and len(shape) >= 2:
        return (shape[-1], *shape[:-1])
    return tuple(shape)


def shape_comment(shape: Sequence[int | None], layout: Layout = "last") -> str:
    """`(B, 28, 28, 1)`: a tensor's shape as a comment beside the code, batch first."""
    dims = ["?" if d is None else str(d) for d in held_shape(shape, layout)]
    return "(" + ", ".join(["B", *dims]) + ")"


def names_used(source: str) -> set[str]:
    """The identifiers `source` uses (to import or define only what it needs); comments and
    strings do not count."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {token.string for token in tokens if token.type == tokenize.NAME}
