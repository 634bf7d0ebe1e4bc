"""What both backends share: the Jinja environment rules and the data loader code.

Templates render Python source, so spec text may enter it only as a validated identifier,
through the `py` filter, which writes a literal with `repr()` and refuses anything that is
not plain data, or through the `doc` filter, which writes text for a docstring or a comment.
Nothing else from a spec (not even its file name) is pasted into generated code.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from jinja2 import Environment, FileSystemBytecodeCache, FileSystemLoader, StrictUndefined

_PLAIN = (str, bool, int, type(None))


def py_literal(value: object) -> str:
    """`repr()` of a literal made of None, bools, ints, finite floats, strings, and tuples,
    lists and dicts of those: valid Python that evaluates back to `value`."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"no Python literal for the float {value!r}")
        return repr(value)
    if isinstance(value, _PLAIN):
        return repr(value)
    if isinstance(value, (tuple, list)):
        items = ", ".join(py_literal(item) for item in value)
        if isinstance(value, list):
            return f"[{items}]"
        return f"({items},)" if len(value) == 1 else f"({items})"
    if isinstance(value, dict):
        pairs = ", ".join(f"{py_literal(k)}: {py_literal(v)}" for k, v in value.items())
        return "{" + pairs + "}"
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


def _bytecode_cache() -> FileSystemBytecodeCache | None:
    """Jinja's cache of compiled templates, in a folder of this user's under the system's
    temporary directory (keyed by each template's text, so an edited template is compiled
    anew). Compiling the templates is most of `specc compile`'s own time without it: ~0.1 s.
    None where that folder cannot be made."""
    try:
        return FileSystemBytecodeCache()
    except (OSError, RuntimeError):
        return None


def template_environment(templates: Path) -> Environment:
    """A Jinja environment for Python templates in `templates`: undefined names are errors,
    nothing is HTML-escaped, block tags leave no blank lines, `py` writes literals."""
    environment = Environment(
        loader=FileSystemLoader(templates),
        bytecode_cache=_bytecode_cache(),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["py"] = py_literal
    environment.filters["doc"] = doc_text
    return environment
