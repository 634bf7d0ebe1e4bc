"""What both backends share: the Jinja environment rules and the data loader code.

Templates render Python source, so spec text may enter it only as a validated identifier or
through the `py` filter, which writes a literal with `repr()` and refuses anything that is
not plain data. Nothing else from a spec is pasted into generated code.
"""

from __future__ import annotations

import math
from pathlib import Path

from jinja2 import Environment, FileSystemBytecodeCache, FileSystemLoader, StrictUndefined

_PLAIN = (str, bool, int, type(None))

# Templates every backend's programs share (the data loader, the memory check): each
# backend's environment finds them after its own.
COMMON_TEMPLATES = Path(__file__).parent / "templates"


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
    """A Jinja environment for Python templates in `templates` (then COMMON_TEMPLATES):
    undefined names are errors, nothing is HTML-escaped, block tags leave no blank lines,
    `py` writes literals."""
    folders = [templates] if templates == COMMON_TEMPLATES else [templates, COMMON_TEMPLATES]
    environment = Environment(
        loader=FileSystemLoader(folders),
        bytecode_cache=_bytecode_cache(),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["py"] = py_literal
    return environment
