"""`specc fmt`: canonical layout, comments kept, idempotent, the same AST."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from specc.errors import SpecError
from specc.fmt import format_file, format_source
from specc.syntax import parse

ROOT = Path(__file__).resolve().parents[2]
_SPAN_KEYS = {"span", "name_span", "target_span", "dtype_span", "comments", "path", "file"}

MESSY = """# A file in no particular layout.
import   "common.spec"
let width=64/2   # half
let rate = 1e-3
let neg = - 1
let k = 2 - (3 - 1)
let m = (2 * 3) + (4 // (1 + 1))


# before the block
block conv_bn(filters,kernel=3)   # header comment
{
    conv2d(filters,kernel,padding=same,bias=false)     # conv



    batchnorm( )
    relu() * (width//16)
    # last line of the block
}   # end of block
model  net{
  input image:float[28,28,1]
  input tokens : int[ ? ]
  graph {
    h=image->conv_bn(32)->relu()
    logits = add(h,
                 # between the arguments
                 h) -> dense(10,
                             activation=none)   # a long call
  }
  output logits,h
  loss logits: cross_entropy(label_smoothing=0.10), h: mse(weight=.5)
  optimizer adam(lr=rate, schedule=cosine(warmup=1))
  metrics accuracy,top_k_accuracy(k=5)
  data csv("data/\\u00e9t\\u00e9.csv", target="y\\tz")
  augment { random_flip(horizontal) random_crop(28, 4) }
  train { backend=torch
    epochs = 10 early_stopping(patience=2) }
}
# the end
"""

CANONICAL = """# A file in no particular layout.
import "common.spec"

let width = 64 / 2  # half
let rate = 1e-3
let neg = -1
let k = 2 - (3 - 1)
let m = 2 * 3 + 4 // (1 + 1)

# before the block
block conv_bn(filters, kernel=3) {  # header comment
    conv2d(filters, kernel, padding=same, bias=false)  # conv

    batchnorm()
    relu() * (width // 16)
    # last line of the block
}  # end of block

model net {
    input image: float[28, 28, 1]
    input tokens: int[?]
    graph {
        h = image -> conv_bn(32) -> relu()
        # between the arguments
        logits = add(h, h) -> dense(10, activation=none)  # a long call
    }
    output logits, h
    loss logits: cross_entropy(label_smoothing=0.10), h: mse(weight=.5)
    optimizer adam(lr=rate, schedule=cosine(warmup=1))
    metrics accuracy, top_k_accuracy(k=5)
    data csv("data/été.csv", target="y\\tz")
    augment {
        random_flip(horizontal)
        random_crop(28, 4)
    }
    train {
        backend = torch
        epochs = 10
        early_stopping(patience=2)
    }
}
# the end
"""


def without_spans(node: object) -> object:
    """An AST dump with everything positional left out."""
    if isinstance(node, dict):
        return {k: without_spans(v) for k, v in node.items() if k not in _SPAN_KEYS}
    if isinstance(node, list):
        return [without_spans(v) for v in node]
    return node


def same_ast(a: str, b: str) -> bool:
    return without_spans(parse(a).model_dump()) == without_spans(parse(b).model_dump())


def test_canonical_layout():
    assert format_source(MESSY, "messy.spec") == CANONICAL


def test_canonical_text_is_a_fixed_point():
    assert format_source(CANONICAL) == CANONICAL


def test_formatting_keeps_the_ast():
    assert same_ast(MESSY, CANONICAL)


@pytest.mark.parametrize(("text", "expected"), [
    ("let a = 1e-3", "let a = 1e-3"),
    ("let a = 1E3", "let a = 1E3"),
    ("let a = 0.50", "let a = 0.50"),
    ("let a = 10.", "let a = 10."),
    ("let a = -  2.5", "let a = -2.5"),
    ("let a = - -1", "let a = 1"),             # the parser folds the signs into the number
    ("let a = -(-b)", "let a = --b"),
    ("let a = x - -1", "let a = x - -1"),
    ("let a = (a - b) - c", "let a = a - b - c"),
    ("let a = a - (b - c)", "let a = a - (b - c)"),
    ("let a = a / (b * c)", "let a = a / (b * c)"),
    ("let a = (a * b) / c", "let a = a * b / c"),
    ("let a = -(a + b) * 2", "let a = -(a + b) * 2"),
    ("let a = [ 1,2 , [3,] ]", "let a = [1, 2, [3]]"),
    ("let a = [ ]", "let a = []"),
    (r'let a = "q\"uote \\ back\nline"', r'let a = "q\"uote \\ back\nline"'),
    (r'let a = "\/\u0041"', 'let a = "/A"'),
    ("let a = true\nlet b = none", "let a = true\nlet b = none"),
])
def test_expressions(text, expected):
    formatted = format_source(text)
    assert formatted == expected + "\n"
    assert same_ast(text, formatted)


def test_top_level_items_are_separated_by_one_blank_line():
    text = 'import "a.spec"\nimport "b.spec"\nlet a = 1\n\n\n\nlet b = 2\nlet c = 3\n' \
           "block x() {\n    relu()\n}\nmodel m {\n    input x: float[1]\n    layers {\n" \
           "        x()\n    }\n}\n"
    assert format_source(text) == (
        'import "a.spec"\nimport "b.spec"\n\nlet a = 1\n\nlet b = 2\nlet c = 3\n\n'
        "block x() {\n    relu()\n}\n\nmodel m {\n    input x: float[1]\n    layers {\n"
        "        x()\n    }\n}\n")


def test_blank_lines_inside_are_kept_once_but_not_after_an_opening_brace():
    text = ("model m {\n\n\n    input x: float[1]\n\n\n    layers {\n\n        relu()\n\n"
            "    }\n\n}\n")
    assert format_source(text) == \
        "model m {\n    input x: float[1]\n\n    layers {\n        relu()\n    }\n}\n"


def test_one_statement_per_line():
    text = "model m { input x: float[4] layers { dense(8) relu() dense(1) } loss mse() }"
    assert format_source(text) == (
        "model m {\n    input x: float[4]\n    layers {\n        dense(8)\n        relu()\n"
        "        dense(1)\n    }\n    loss mse()\n}\n")


def test_bare_metrics_and_train_call_settings_keep_their_form():
    text = ("model m {\n    input x: float[4]\n    layers {\n        dense(1)\n    }\n"
            "    metrics accuracy, precision()\n    train {\n        checkpoint(every=2)\n"
            "        early_stopping = early_stopping()\n    }\n}\n")
    assert format_source(text) == text


def test_names_that_are_python_keywords_are_left_alone():
    text = ("model m {\n    input class: float[4]\n    graph {\n"
            "        lambda = class -> dense(4)\n        torch = lambda -> relu()\n    }\n"
            "    output torch\n}\n")
    assert format_source(text) == text


def test_comment_only_file():
    assert format_source("# nothing yet\n\n\n# really\n") == "# nothing yet\n\n# really\n"
    assert format_source("") == ""


def test_comments_inside_a_multiline_statement_move_before_it():
    text = "let a = [\n    1,  # one\n    # two\n    2,\n]\n"
    assert format_source(text) == "# two\nlet a = [1, 2]  # one\n"


def test_syntax_errors_are_reported_not_formatted():
    with pytest.raises(SpecError):
        format_source("model m {\n")


def test_format_file(tmp_path):
    path = tmp_path / "x.spec"
    path.write_text("let  a=1\n", encoding="utf-8")
    assert format_file(path) == "let a = 1\n"


SPEC_FILES = sorted(p for folder in ("specs", "tests") for p in (ROOT / folder).rglob("*.spec"))


def _parses(path: Path) -> bool:
    try:
        parse(path.read_text(encoding="utf-8"))
    except SpecError:
        return False
    return True


@pytest.mark.parametrize("path", [p for p in SPEC_FILES if _parses(p)],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_every_spec_formats_idempotently_to_the_same_ast(path):
    text = path.read_text(encoding="utf-8")
    once = format_source(text, str(path))
    assert format_source(once, str(path)) == once
    assert same_ast(text, once)
    assert comment_words(text) == comment_words(once)


_TOKEN = re.compile(r'#[^\n]*|"(?:[^"\\\n]|\\.)*"|->|//|[A-Za-z_]\w*'
                    r"|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|\S")


def comment_words(text: str) -> list[str]:
    """The words of every comment: trailing comments of one statement may be joined."""
    return sorted(word for *_, comment in parse(text).comments for word in comment.split())


def scrambled(text: str, rng: random.Random) -> str:
    """`text`'s tokens (comments dropped) with random spaces, newlines, blank lines and new
    comments between them: the same program in a terrible layout."""
    out = []
    for token in _TOKEN.findall(text):
        if token.startswith("#"):
            continue
        roll = rng.random()
        gap = (" " * rng.randint(1, 3) if roll < 0.75 else "\n" if roll < 0.85
               else "\n\n\n" if roll < 0.9 else f"  # note {rng.randint(0, 99)}\n")
        out.append(token + gap)
    return "".join(out)


@pytest.mark.parametrize("path", [p for p in SPEC_FILES if _parses(p)][:12],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_any_layout_formats_idempotently_to_the_same_ast(path):
    rng = random.Random(path.name)
    text = path.read_text(encoding="utf-8")
    for _ in range(5):
        messy = scrambled(text, rng)
        once = format_source(messy)
        assert format_source(once) == once, messy
        assert same_ast(messy, once), messy
        assert comment_words(messy) == comment_words(once), messy


# Characters that str.splitlines() takes for line ends; in a spec only `\n` ends a line, so in
# a comment they are text like any other.
_LINE_BREAKS_OF_PYTHON = ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"]


@pytest.mark.parametrize("char", _LINE_BREAKS_OF_PYTHON, ids=lambda c: f"U+{ord(c):04X}")
def test_comments_keep_every_character(char):
    text = (f"# top{char}one\nmodel m {{  # head{char}two\n    input x: float[4]\n"
            f"    # inside{char}three\n    layers {{\n        dense(1)  # tail{char}four{char}\n"
            f"    }}\n}}\n")
    once = format_source(text)
    for comment in (f"# top{char}one", f"# head{char}two", f"# inside{char}three",
                    f"# tail{char}four{char}"):
        assert comment in once, repr(once)
    assert format_source(once) == once
    assert same_ast(text, once)
    assert [c for *_, c in parse(once).comments] == [c for *_, c in parse(text).comments]


def test_windows_line_ends_keep_comments_whole():
    text = "model m {  # head\r\n    input x: float[4]\r\n    layers { dense(1) }  # tail\r\n}\r\n"
    once = format_source(text)
    assert "# head\n" in once and "# tail\n" in once and "\r" not in once
    assert format_source(once) == once


def test_shared_layers_keep_their_place_among_the_bindings():
    messy = (
        "model m {\n  input l: float[4]\n  input r: float[4]\n  graph {\n"
        "    let enc=dense( 8 )   # one set of weights\n"
        "    a = l->enc\n"
        "    let head = dense(2)\n"
        "    b = r -> enc ->relu()\n"
        "    y = add(a,b) -> head\n  }\n  output y\n}\n"
    )
    canonical = (
        "model m {\n    input l: float[4]\n    input r: float[4]\n    graph {\n"
        "        let enc = dense(8)  # one set of weights\n"
        "        a = l -> enc\n"
        "        let head = dense(2)\n"
        "        b = r -> enc -> relu()\n"
        "        y = add(a, b) -> head\n    }\n    output y\n}\n"
    )
    assert format_source(messy) == canonical
    assert format_source(canonical) == canonical
    assert same_ast(messy, canonical)


def test_a_binding_of_several_names_keeps_them_in_order():
    messy = ("model m {\n  input x: float[7, 3]\n  graph {\n"
             "    seq ,h,c=x->lstm(4,return_state=true)\n    y = add(seq, h, c)\n  }\n"
             "  output y\n}\n")
    canonical = ("model m {\n    input x: float[7, 3]\n    graph {\n"
                 "        seq, h, c = x -> lstm(4, return_state=true)\n"
                 "        y = add(seq, h, c)\n    }\n    output y\n}\n")
    assert format_source(messy) == canonical
    assert format_source(canonical) == canonical
    assert same_ast(messy, canonical)
