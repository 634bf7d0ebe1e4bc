"""AST and IR nodes are built with `model_construct` for speed; here every spec's trees go
through full Pydantic validation once, so a node built with a wrong field type fails."""

from __future__ import annotations

from pathlib import Path

import pytest

import specc
from specc import ast, ir
from specc.syntax import parse_file

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.spec")) + sorted(
    (ROOT / "tests" / "architectures").glob("*.spec")
)


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_ast_validates(spec: Path) -> None:
    tree = parse_file(spec)
    revalidated = ast.File.model_validate(tree.model_dump())
    assert revalidated == tree


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_ir_validates(spec: Path) -> None:
    program = specc.load(spec)
    for model in program.models:
        # Every node, nested blocks included, through its class's validator.
        for node in model.graph.nodes:
            cls = type(node)
            assert cls.model_validate(node.model_dump()) == node
        assert ir.Graph.model_validate(model.graph.model_dump()) == model.graph
