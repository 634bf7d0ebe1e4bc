"""Completion: what may be written at the cursor, from the brackets open there and the
token before it.

- at file level: `model`, `block`, `let`, `import`; in a model: its section keywords;
- after `loss`, `optimizer`, `metrics`, `data`: the kinds of that section; in `layers { }`,
  after `->` and in sequence blocks: layer kinds and blocks; in `augment { }` and
  `train { }`: augmentations, train keys and calls;
- after `(` or `,` in a call: the arguments not given yet (with type and default), and the
  constants and parameters in scope; after `name=`: the words that argument takes;
- in graph bodies: the tensors bound above, the inputs (`in` in a block) and merges.
"""

from __future__ import annotations

from lsprotocol import types

from specc.lsp import catalog
from specc.lsp.analysis import Analysis, Frame, ImportCache, Token

# What may start a graph chain: the merges (names of tensors only) and the layers of several
# inputs (names, then their arguments), multihead_attention among them.
_STARTS = {name: cls.named_inputs for name, cls in catalog.FAMILIES["layer"].items()}
_CHAIN_STARTS = [name for name, named in _STARTS.items() if named is not None]
_MERGES = [name for name, named in _STARTS.items() if named is not None and named[1] is None]
_SINGLE_LAYERS = [name for name, cls in catalog.FAMILIES["layer"].items() if cls.arity != "many"]


def _kinds(family: str, names: list[str] | None = None) -> list[types.CompletionItem]:
    registry = catalog.FAMILIES[family]
    return [
        types.CompletionItem(
            label=name,
            kind=types.CompletionItemKind.Function,
            detail=catalog.signature(name, registry[name]),
            documentation=catalog.describe(registry[name]) or None,
        )
        for name in (names if names is not None else registry)
    ]


def _words(words: list[str] | tuple[str, ...], kind=types.CompletionItemKind.Keyword):
    return [types.CompletionItem(label=w, kind=kind) for w in dict.fromkeys(words)]


def _arguments(args: list[catalog.Argument], given: list[str]) -> list[types.CompletionItem]:
    return [
        types.CompletionItem(
            label=a.name,
            kind=types.CompletionItemKind.Property,
            detail=a.type if a.default is None else f"{a.type} = {a.default}",
            documentation="required" if a.default is None else f"default: {a.default}",
            insert_text=f"{a.name}=",
            sort_text=f"{index:03d}",
        )
        for index, a in enumerate(args)
        if a.name not in given
    ]


def _blocks(analysis: Analysis, imports: ImportCache) -> dict[str, list[str]]:
    """Every block in scope by name, with its parameter names."""
    found: dict[str, list[str]] = {}
    for path in sorted(analysis.imports):
        parsed = imports.parsed(path)
        for block in parsed.blocks if parsed is not None else ():
            found[block.name] = [p.name for p in block.params]
    params: dict[str, list[str]] = {}
    for d in analysis.outline.definitions:
        if d.kind == "param" and d.scope is not None:
            params.setdefault(d.scope.name, []).append(d.name)
    for d in analysis.outline.definitions:
        if d.kind == "block":
            found[d.name] = params.get(d.name, [])
    return found


def _block_items(blocks: dict[str, list[str]]) -> list[types.CompletionItem]:
    return [
        types.CompletionItem(
            label=name, kind=types.CompletionItemKind.Module, detail=f"block {name}({', '.join(p)})"
        )
        for name, p in blocks.items()
    ]


def _names(analysis: Analysis, frame: Frame | None, line: int, imports: ImportCache):
    """Constants, block parameters and (in graph bodies) tensors visible at the cursor."""
    items = []
    for d in analysis.outline.visible(frame):
        if d.kind in ("let", "param", "shared") or (
            d.kind in ("tensor", "input") and d.token.line < line
        ):
            kind = (
                types.CompletionItemKind.Constant
                if d.kind == "let"
                else types.CompletionItemKind.Variable
            )
            items.append(types.CompletionItem(label=d.name, kind=kind, detail=d.kind))
    for path in sorted(analysis.imports):
        parsed = imports.parsed(path)
        for let in parsed.lets if parsed is not None else ():
            items.append(
                types.CompletionItem(
                    label=let.name, kind=types.CompletionItemKind.Constant, detail="let"
                )
            )
    block = frame.enclosing("block") if frame is not None else None
    if block is not None:
        items.append(
            types.CompletionItem(
                label="in", kind=types.CompletionItemKind.Variable, detail="the block's input"
            )
        )
    return _unique(items)


def _unique(items: list[types.CompletionItem]) -> list[types.CompletionItem]:
    seen: dict[str, types.CompletionItem] = {}
    for item in items:
        seen.setdefault(item.label, item)
    return list(seen.values())


def _before(tokens: list[Token], line: int, column: int) -> list[Token]:
    """The code tokens before the cursor, less the word being typed."""
    found = []
    for token in tokens:
        if token.kind == "comment":
            continue
        if (token.line, token.column) >= (line, column):
            break
        if token.contains(line, column) and token.kind == "name":
            break
        found.append(token)
    return found


def _in_call(
    analysis: Analysis, frame: Frame, before: list[Token], imports: ImportCache, line: int
) -> list[types.CompletionItem]:
    callee = frame.name
    site = next(
        (c for c in analysis.outline.calls if c.name.end == (frame.start.line, frame.start.column)),
        None,
    )
    blocks = _blocks(analysis, imports)
    names = _names(analysis, frame, line, imports)
    previous = before[-1] if before else None
    keyword = (
        before[-2].text
        if previous is not None and previous.text == "=" and len(before) > 1
        else None
    )
    if callee in blocks:
        if keyword is not None:
            return names
        params = [catalog.Argument(p, "", None, ()) for p in blocks[callee]]
        return _arguments(params, frame.keywords) + names
    found = catalog.family_of(callee, site.family if site is not None else None)
    if found is None or callee in _MERGES:  # a merge takes the names of tensors
        return names
    _, cls = found
    args = catalog.arguments(cls)
    if keyword is not None:
        argument = next((a for a in args if a.name == keyword), None)
        items = _words(argument.choices, types.CompletionItemKind.EnumMember) if argument else []
        if keyword == "schedule":
            items += _kinds("schedule")
        return items + names
    return _arguments(args, frame.keywords) + names


def complete(
    analysis: Analysis, line: int, column: int, imports: ImportCache
) -> types.CompletionList:
    outline = analysis.outline
    frame = outline.frame_at(line, column)
    before = _before(outline.tokens, line, column)
    previous = before[-1].text if before else ""
    line_start = next((t.text for t in before if t.line == line), None)
    items: list[types.CompletionItem]
    if frame is None:
        items = _words(catalog.TOP_LEVEL_KEYWORDS)
    elif frame.kind == "call":
        items = _in_call(analysis, frame, before, imports, line)
    elif frame.kind == "list":
        items = _names(analysis, frame, line, imports)
    elif frame.kind == "model":
        items = _in_model(line_start, previous)
    elif frame.kind == "train":
        items = _in_train(before)
    elif frame.kind == "augment":
        items = _kinds("augmentation")
    elif frame.kind in ("layers", "graph", "block"):
        blocks = _block_items(_blocks(analysis, imports))
        graph = frame.kind == "graph" or (frame.kind == "block" and frame.graph)
        if previous == "->" or not graph:
            items = _kinds("layer", _SINGLE_LAYERS) + blocks
        elif previous == "=":  # the start of a chain: a tensor or a merge
            items = _names(analysis, frame, line, imports) + _kinds("layer", _CHAIN_STARTS)
        else:
            items = _names(analysis, frame, line, imports)
    else:
        items = []
    return types.CompletionList(is_incomplete=False, items=items)


def _in_model(line_start: str | None, previous: str) -> list[types.CompletionItem]:
    """Section keywords at the start of a line; after a section's keyword (or a comma or a
    colon in its statement), the kinds of that section."""
    if line_start is None:
        return _words(list(catalog.SECTION_FAMILIES))
    if line_start == "input":
        return _words(catalog.INPUT_TYPES) if previous == ":" else []
    family = catalog.SECTION_FAMILIES.get(line_start)
    if family is None or previous not in (line_start, ",", ":"):
        return []
    return _kinds(family)


def _in_train(before: list[Token]) -> list[types.CompletionItem]:
    """The `train` keys and calls; after `key =`, the words that key takes."""
    if len(before) > 1 and before[-1].text == "=":
        key = next((a for a in catalog.TRAIN_KEYS if a.name == before[-2].text), None)
        return _words(key.choices if key else (), types.CompletionItemKind.EnumMember)
    calls = catalog.FAMILIES["train setting"]
    return [
        types.CompletionItem(
            label=a.name,
            kind=types.CompletionItemKind.Property,
            detail=f"{a.type} = {a.default}",
            insert_text=a.name if a.name in calls else f"{a.name} = ",
        )
        for a in catalog.TRAIN_KEYS
    ]
