"""Item-wise parsing (`specc.lsp.incremental`) gives the whole parse's AST and check."""

from __future__ import annotations

from pathlib import Path

import pytest

from specc.errors import SpecError
from specc.lsp.analysis import tokenize
from specc.lsp.incremental import ItemParses
from specc.passes.check import check_parsed, check_source
from specc.syntax import parse

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted(p for folder in ("specs", "tests") for p in (ROOT / folder).rglob("*.spec"))


def _without_file_span(text: str, path: str, items: ItemParses):
    file = items.parse(text, path, tokenize(text))
    return file.model_dump(exclude={"span", "comments"})


@pytest.mark.parametrize("path", SPECS, ids=[str(p.relative_to(ROOT)) for p in SPECS])
def test_items_parse_to_the_whole_parse(path: Path):
    text = path.read_text(encoding="utf-8")
    try:
        whole = parse(text, str(path))
    except SpecError:
        with pytest.raises(SpecError):
            ItemParses().parse(text, str(path), tokenize(text))
        return
    items = ItemParses()
    assert _without_file_span(text, str(path), items) == whole.model_dump(
        exclude={"span", "comments"}
    )
    parsed = items.parse(text, str(path), tokenize(text))
    assert check_parsed(parsed).diagnostics.items == check_source(text, path).diagnostics.items


def test_an_edit_reparses_only_its_item():
    text = (ROOT / "tests" / "architectures" / "resnet20.spec").read_text(encoding="utf-8")
    items = ItemParses()
    before = items.parse(text, "r.spec", tokenize(text))
    edited = text.replace("dense(10, activation=softmax)", "dense(12, activation=softmax)")
    after = items.parse(edited, "r.spec", tokenize(edited))
    assert after.blocks == before.blocks and all(
        a is b for a, b in zip(after.blocks, before.blocks, strict=True)
    )
    assert after.models[0] is not before.models[0]
    assert after.models[0].model_dump() == parse(edited, "r.spec").models[0].model_dump()
