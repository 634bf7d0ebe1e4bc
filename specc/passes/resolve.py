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
from specc.errors import Diagnostic, Diagnostics, Span, SpecError, quoted
from specc.limits import MAX_NESTING, path_problem
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


def _import_target(imp: ast.Import, here: Path, diags: Diagnostics) -> Path | None:
    """The file an import names, or None (reported) when the path cannot name one."""
    problem = path_problem(imp.path)
    if problem is not None:
        diags.error(imp.span, f"cannot import {quoted(imp.path)}: the path {problem}")
        return None
    try:
        target = (here.parent / imp.path).resolve()
        exists = target.exists()
    except (OSError, RuntimeError) as error:  # a loop of symbolic links, a path too long
        diags.error(imp.span, f"cannot import {quoted(imp.path)}: {error}")
        return None
    if not exists:
        diags.error(
            imp.span,
            f"cannot import {quoted(imp.path)} (expected a file at {target}, got no such file)",
        )
        return None
    return target


def resolve(
    file: ast.File,
    diags: Diagnostics,
    parse_import: Callable[[Path, Span], ast.File] = parse_file,
    _stack: tuple[str, ...] = (),
    _done: dict[str, tuple[Scope, list[Diagnostic]]] | None = None,
) -> Scope:
    """Collect the constants and blocks visible in `file`, its imports included. Each
    imported file is read by `parse_import(path, span of the import)`: a long-lived caller
    (`specc lsp`) may reuse earlier parses. `_done` holds the files already resolved in this
    run: a file imported along many paths is read once, so a lattice of imports costs its
    size, not the number of its paths."""
    scope = Scope()
    done = {} if _done is None else _done
    here = Path(file.path).resolve()
    stack = (*_stack, str(here))
    for imp in file.imports:
        target = _import_target(imp, here, diags)
        if target is None:
            continue
        if str(target) in stack:
            chain = " -> ".join(Path(p).name for p in (*stack, str(target)))
            diags.error(imp.span, f"import cycle: {chain}")
            continue
        if len(stack) > MAX_NESTING:
            diags.error(
                imp.span,
                f"imports nest more than {MAX_NESTING} files deep (expected at most "
                f"{MAX_NESTING}, the limit of nesting)",
            )
            continue
        if str(target) not in done:
            try:
                imported_file = parse_import(target, imp.span)
            except SpecError as error:
                diags.extend(
                    [
                        d if d.span == imp.span else d.with_note("imported from here", imp.span)
                        for d in error.diagnostics
                    ]
                )
                continue
            found = Diagnostics()
            done[str(target)] = (
                resolve(imported_file, found, parse_import, stack, done), found.items
            )
        imported, found_items = done[str(target)]
        # Problems inside the imported file also say which import brought it in.
        diags.extend([d.with_note("imported from here", imp.span) for d in found_items])
        for name, value in imported.constants.values.items():
            if _define(scope, "constant", name, imported.constant_spans[name], diags):
                scope.constants.values[name] = value
                scope.constant_spans[name] = imported.constant_spans[name]
        for name, block in imported.blocks.items():
            if _define(scope, "block", name, block.span, diags):
                scope.blocks[name] = block

    failed: set[str] = set()  # constants whose value is in error: their uses report nothing
    for let in file.lets:
        if not _define(scope, "constant", let.name, let.span, diags):
            continue
        if failed and not failed.isdisjoint(_names_in(let.value)):
            failed.add(let.name)
            scope.constant_spans[let.name] = let.span
            continue
        try:
            scope.constants.values[let.name] = evaluate(let.value, scope.constants)
            scope.constant_spans[let.name] = let.span
        except SpecError as error:
            diags.extend(error.diagnostics)
            failed.add(let.name)
            scope.constant_spans[let.name] = let.span
    for block in file.blocks:
        if _define(scope, "block", block.name, block.span, diags):
            scope.blocks[block.name] = block
    if not _stack:
        _check_recursion(scope.blocks, diags)
    return scope


def _names_in(expr: ast.Expr) -> set[str]:
    """The bare words an expression uses."""
    names: set[str] = set()
    stack: list[ast.Expr] = [expr]
    while stack:
        node = stack.pop()
        match node:
            case ast.Name():
                names.add(node.name)
            case ast.ListExpr():
                stack += node.items
            case ast.BinOp():
                stack += [node.left, node.right]
            case ast.Neg():
                stack.append(node.operand)
            case ast.Call():
                stack += node.args
                stack += [k.value for k in node.keywords]
    return names


def calls_in(block: ast.Block) -> list[ast.Call]:
    """The calls written in a block's body, in order (merges included)."""
    if isinstance(block.body, ast.SequenceBody):
        return list(block.body.calls)
    calls: list[ast.Call] = []
    for binding in block.body.bindings:
        if isinstance(binding.source, ast.Call):
            calls.append(binding.source)
        calls += [step for step in binding.steps if isinstance(step, ast.Call)]
    return calls


def _check_recursion(blocks: dict[str, ast.Block], diags: Diagnostics) -> None:
    """A block that uses itself, directly or through others, can never be expanded.

    A depth-first walk of the graph of which block uses which, without recursion (a chain of
    blocks may be long) and visiting each block once (a block used by many is walked once)."""
    reported: set[str] = set()
    finished: set[str] = set()
    for root in blocks:
        if root in finished:
            continue
        path = [root]
        pending = [iter(calls_in(blocks[root]))]
        while pending:
            call = next(pending[-1], None)
            if call is None:
                finished.add(path.pop())
                pending.pop()
                continue
            if call.name not in blocks or call.name in finished:
                continue
            if call.name in path:
                cycle = path[path.index(call.name) :] + [call.name]
                if call.name not in reported:
                    reported.update(cycle)
                    diags.error(
                        call.name_span,
                        f"block `{call.name}` is recursive: {' -> '.join(cycle)} "
                        "(blocks may use other blocks, never themselves)",
                    )
                continue
            path.append(call.name)
            pending.append(iter(calls_in(blocks[call.name])))
