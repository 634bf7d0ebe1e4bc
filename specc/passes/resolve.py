"""Imports, constants and blocks: the names a file's models can use.

`resolve(file)` follows `import` statements (paths relative to the importing file), detects
import cycles and duplicate names, evaluates `let` constants in order and finds recursive
blocks. Every problem found is collected; the caller decides whether to go on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from specc import ast
from specc.errors import Diagnostic, Diagnostics, Span, SpecError
from specc.passes.evaluate import Env, evaluate
from specc.syntax import parse_file


@dataclass
class Scope:
    """What is visible to a file's models."""

    constants: Env = field(default_factory=Env)
    constant_spans: dict[str, Span] = field(default_factory=dict)
    blocks: dict[str, ast.Block] = field(default_factory=dict)


def _define(scope: Scope, kind: str, name: str, span: Span, diags: Diagnostics) -> bool:
    previous = scope.constant_spans.get(name) or (
        scope.blocks[name].span if name in scope.blocks else None
    )
    if previous is not None:
        diags.items.append(
            Diagnostic(f"`{name}` is defined twice (as a constant or block)", span).with_note(
                "first defined here", previous
            )
        )
        return False
    return True


def resolve(
    file: ast.File,
    diags: Diagnostics,
    _stack: tuple[str, ...] = (),
    parse_import: Callable[[Path], ast.File] = parse_file,
) -> Scope:
    """Collect the constants and blocks visible in `file`, its imports included; each
    imported file is read by `parse_import` (a long-lived caller may reuse earlier parses)."""
    scope = Scope()
    here = Path(file.path).resolve()
    stack = (*_stack, str(here))
    for imp in file.imports:
        target = (here.parent / imp.path).resolve()
        if str(target) in stack:
            chain = " -> ".join(Path(p).name for p in (*stack, str(target)))
            diags.error(imp.span, f"import cycle: {chain}")
            continue
        try:
            imported_file = parse_import(target)
        except SpecError as error:
            if not target.is_file():
                diags.error(
                    imp.span,
                    f'cannot import "{imp.path}" (expected a file at {target}, got no such file)',
                )
            else:
                diags.extend(
                    [d.with_note("imported from here", imp.span) for d in error.diagnostics]
                )
            continue
        # Problems inside the imported file also say which import brought it in.
        found = Diagnostics()
        imported = resolve(imported_file, found, stack, parse_import)
        diags.extend([d.with_note("imported from here", imp.span) for d in found.items])
        for name, value in imported.constants.values.items():
            if _define(scope, "constant", name, imported.constant_spans[name], diags):
                scope.constants.values[name] = value
                scope.constant_spans[name] = imported.constant_spans[name]
        for name, block in imported.blocks.items():
            if _define(scope, "block", name, block.span, diags):
                scope.blocks[name] = block

    for let in file.lets:
        if not _define(scope, "constant", let.name, let.span, diags):
            continue
        try:
            scope.constants.values[let.name] = evaluate(let.value, scope.constants)
            scope.constant_spans[let.name] = let.span
        except SpecError as error:
            diags.extend(error.diagnostics)
    for block in file.blocks:
        if _define(scope, "block", block.name, block.span, diags):
            scope.blocks[block.name] = block
    if not _stack:
        _check_recursion(scope.blocks, diags)
    return scope


def _calls_in(block: ast.Block) -> list[ast.Call]:
    if isinstance(block.body, ast.SequenceBody):
        return list(block.body.calls)
    calls: list[ast.Call] = []
    for binding in block.body.bindings:
        if isinstance(binding.source, ast.Call):
            calls.append(binding.source)
        calls += binding.steps
    return calls


def _check_recursion(blocks: dict[str, ast.Block], diags: Diagnostics) -> None:
    """A block that uses itself, directly or through others, can never be expanded."""
    reported: set[str] = set()

    def visit(name: str, path: list[tuple[str, Span | None]]) -> None:
        names = [n for n, _ in path]
        if name in names:
            cycle = names[names.index(name) :] + [name]
            if name not in reported:
                reported.update(cycle)
                span = path[-1][1]
                diags.error(
                    span,
                    f"block `{name}` is recursive: {' -> '.join(cycle)} "
                    "(blocks may use other blocks, never themselves)",
                )
            return
        for call in _calls_in(blocks[name]):
            if call.name in blocks:
                visit(call.name, [*path, (name, call.name_span)])

    for name in blocks:
        if name not in reported:
            visit(name, [])
