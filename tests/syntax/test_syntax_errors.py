"""Syntax errors: the right place, a useful message, and all of them in one run."""

from __future__ import annotations

import pytest

from specc.errors import SpecError
from specc.syntax import parse


def errors_of(text: str) -> list:
    with pytest.raises(SpecError) as caught:
        parse(text, "t.spec")
    return caught.value.diagnostics


def places(text: str) -> list[tuple[int, int]]:
    return [(d.span.line, d.span.column) for d in errors_of(text)]


@pytest.mark.parametrize(("text", "place", "words"), [
    ("model 3net {\n}", (1, 7), "unexpected `3`"),
    ("model my-net {\n}", (1, 9), "unexpected `-`"),
    ("model m {\n    input x float[4]\n}", (2, 13), "expected `:`"),
    ("model m {\n    layers {\n        dense(8,, 2)\n    }\n}", (3, 17), "unexpected `,`"),
    ("let a = [1, 2\nlet b = 3", (2, 1), "unexpected `let`"),
    ("model m {\n    input x: float[4]\n    layers { dense(1) ] }\n}", (3, 23), "unexpected `]`"),
    ("model m {\n    loss: mse()\n}", (2, 9), "unexpected `:`"),
    ("let a = 3 $ 4", (1, 11), "unexpected character `$`"),
    ("let s = 'single'", (1, 9), "unexpected character `'`"),
])
def test_syntax_error_place_and_message(text, place, words):
    (error,) = errors_of(text)
    assert (error.span.line, error.span.column) == place
    assert error.span.file == "t.spec"
    assert words in error.message


def test_expected_tokens_are_named_in_words():
    (error,) = errors_of("model m {\n    input x: float[4]\n    layers { dense(1) ] }\n}")
    assert "(expected" in error.message and "got `]`" in error.message


def test_unclosed_brace_points_at_the_brace_that_is_not_closed():
    text = "model m {\n    input x: float[4]\n    layers {\n        dense(1)\n    }\n"
    (error,) = errors_of(text)
    assert "unclosed `{`" in error.message
    assert (error.span.line, error.span.column) == (1, 9)


def test_braces_in_strings_and_comments_do_not_count():
    text = 'model m {  # {\n    data csv("{", target="y")\n    layers { dense(1) }\n'
    (error,) = errors_of(text)
    assert (error.span.line, error.span.column) == (1, 9)


def test_several_syntax_errors_are_all_reported():
    text = """model m {
    input x: float[4]
    layers {
        dense(8,, activation=relu)
        dense(4) )
        dense(1)
    }
    loss mse(]
}
"""
    assert [line for line, _ in places(text)] == [4, 5, 8]


def test_recovery_inserts_what_is_missing():
    # `:` missing, `)` missing before a keyword, `)` typed as `]`: each is one report, and the
    # parser goes on as if the token had been right.
    text = """model m {
    input x float[4]
    optimizer adam(lr=1e-3
    train { epochs = 3 }
    loss mse(]
    metrics accuracy
}
"""
    errors = errors_of(text)
    assert [(d.span.line, d.span.column) for d in errors] == [(2, 13), (4, 5), (5, 14)]
    assert "expected `:`" in errors[0].message
    assert "expected `)`, `,`" in errors[1].message


def test_a_missing_value_does_not_cascade():
    errors = errors_of("model m {\n    train {\n        epochs =\n    }\n}\nlet a = 1\n")
    assert [(d.span.line, d.span.column) for d in errors] == [(4, 5)]


def test_one_report_per_line():
    # After a first mistake on a line, the rest of the line is usually noise.
    assert len(errors_of("let a = ) ) )\n")) == 1


def test_bad_string_escape():
    (error,) = errors_of('let s = "C:\\data"\nlet t = "ok\\n"')
    assert "invalid string escape" in error.message
    assert (error.span.line, error.span.column) == (1, 9)


def test_duplicate_section_notes_the_first():
    (error,) = errors_of("model m {\n    loss mse()\n    optimizer adam()\n    loss mae()\n}")
    assert "second `loss` section" in error.message
    assert error.span.line == 4
    assert [(note, span.line) for note, span in error.notes] == [("the first one is here", 2)]


def test_layers_and_graph_together_are_a_duplicate_body():
    text = "model m {\n    layers { relu() }\n    graph { y = x -> relu() }\n}"
    (error,) = errors_of(text)
    assert "second `graph` section" in error.message and error.span.line == 3


def test_mixed_block_body():
    (error,) = errors_of("block b() {\n    relu()\n    out = in -> relu()\n}")
    assert "mixes layer lines and `name = ...` bindings" in error.message
    assert error.span.line == 3


def test_positional_after_keyword():
    (error,) = errors_of("let a = f(x=1, 2)")
    assert "positional argument after a keyword" in error.message
    assert (error.span.line, error.span.column) == (1, 16)


def test_errors_of_the_parser_and_of_the_tree_are_not_mixed_up():
    # A tree-level problem (bad escape) is only looked for once the file parses.
    errors = errors_of('let s = "\\q"\nlet t = (\n')
    assert len(errors) == 1 and "unexpected end of file" in errors[0].message


def test_unreadable_file(tmp_path):
    from specc.syntax import parse_file

    with pytest.raises(SpecError) as caught:
        parse_file(tmp_path / "missing.spec")
    assert "cannot read" in caught.value.diagnostics[0].message
    (tmp_path / "latin1.spec").write_bytes(b"# caf\xe9\n")
    with pytest.raises(SpecError) as caught:
        parse_file(tmp_path / "latin1.spec")
    assert "not UTF-8" in caught.value.diagnostics[0].message
