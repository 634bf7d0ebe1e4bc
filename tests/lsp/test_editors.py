"""editors/vscode: the extension's manifest, language configuration and TextMate grammar
are valid and name every keyword and kind of the language."""

from __future__ import annotations

import json
import re
from pathlib import Path

from specc.lsp.catalog import FAMILIES, SECTION_FAMILIES, TOP_LEVEL_KEYWORDS

VSCODE = Path(__file__).resolve().parents[2] / "editors" / "vscode"


def _grammar() -> dict:
    return json.loads((VSCODE / "syntaxes" / "spec.tmLanguage.json").read_text(encoding="utf-8"))


def _scope_of(word: str, following: str = "") -> set[str]:
    """The scopes whose pattern matches `word` (then `following`) at its start."""
    found = set()
    for rule in _grammar()["repository"].values():
        for item in rule.get("patterns", [rule]):
            pattern = item.get("match")
            if pattern and re.match(pattern, word + following) and item.get("name"):
                found.add(item["name"])
    return found


def test_manifest_starts_the_server_for_spec_files():
    manifest = json.loads((VSCODE / "package.json").read_text(encoding="utf-8"))
    (language,) = manifest["contributes"]["languages"]
    assert language["extensions"] == [".spec"]
    assert (VSCODE / language["configuration"]).is_file()
    (grammar,) = manifest["contributes"]["grammars"]
    assert grammar["scopeName"] == _grammar()["scopeName"]
    assert manifest["contributes"]["configuration"]["properties"]["specc.command"]["default"] == [
        "specc",
        "lsp",
    ]
    extension = (VSCODE / manifest["main"]).read_text(encoding="utf-8")
    assert 'language: "spec"' in extension and "vscode-languageclient" in extension


def test_language_configuration_toggles_hash_comments():
    config = json.loads((VSCODE / "language-configuration.json").read_text(encoding="utf-8"))
    assert config["comments"]["lineComment"] == "#"
    assert ["{", "}"] in config["brackets"] and ["(", ")"] in config["brackets"]


def test_grammar_names_every_keyword_and_kind():
    for keyword in (*TOP_LEVEL_KEYWORDS, *SECTION_FAMILIES):
        assert "keyword.control.spec" in _scope_of(keyword, " "), keyword
    for layer in FAMILIES["layer"]:
        assert "support.function.layer.spec" in _scope_of(layer, "("), layer
    for family, kinds in FAMILIES.items():
        for kind in kinds if family != "layer" else ():
            scopes = _scope_of(kind, "(")
            assert scopes & {"support.function.spec", "support.function.layer.spec"}, kind
    assert _scope_of("1e-3") == {"constant.numeric.spec"}
    assert _scope_of("# a comment") == {"comment.line.number-sign.spec"}
    assert _scope_of("true") == {"constant.language.spec"}
    assert "support.function.layer.spec" not in _scope_of("dense_block", "(")
