"""What both backends share: the Jinja environment rules, the code writer (`code`), the
training plan (`plan`) and the data loader code (`data`).

Templates render Python source, so spec text may enter it only as a validated identifier,
through the `py` filter (`code.lit`: a literal of plain data) or through the `doc` filter
(`code.doc_text`: text for a docstring or a comment). Nothing else from a spec, not even its
file name, is pasted into generated code.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemBytecodeCache, FileSystemLoader, StrictUndefined

from specc.backends.common.code import doc_text, lit

# Templates every backend's programs share (the data loader, the memory check): each
# backend's environment finds them after its own.
COMMON_TEMPLATES = Path(__file__).parent / "templates"


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
    environment.filters["py"] = lit
    environment.filters["doc"] = doc_text
    return environment
