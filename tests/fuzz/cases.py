"""Fuzz cases for the front end, and how one is run and judged.

Two sources of cases, both driven by a `random.Random` (so that Hypothesis can drive it in
the tests, and a seed can in the long run):

- `generate(rng)`: a spec written from the grammar, with layers, blocks, constants, graphs
  and training sections drawn from the catalogs, filled with ordinary and extreme values,
  odd comments and layout;
- `mutate(seed_text, rng)`: one of the checked-in specs or error-corpus files with a few
  mutations (lines or tokens deleted, duplicated, swapped or replaced by extreme ones,
  truncation, deep nesting, huge repeats, bytes that are not UTF-8).

`run(data, folder)` checks and formats a case in this process through the command line's
entry function and returns what went wrong, if anything: an exit code other than 0 or 1, a
traceback, a case over the time bound, or a `specc fmt` that loses comment text or is not
idempotent.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from specc.cli import main
from specc.data_sources import DATA_SOURCES
from specc.errors import SpecError
from specc.layers import LAYERS
from specc.passes.bind import argument_names
from specc.syntax import parse
from specc.training import AUGMENTATIONS, LOSSES, METRICS, OPTIMIZERS, SCHEDULES

ROOT = Path(__file__).resolve().parents[2]
SEEDS = sorted([*(ROOT / "specs").glob("*.spec"), *(ROOT / "tests" / "errors" / "corpus").glob(
    "*.spec")])
# A case (check and fmt together) slower than this is a failure.
TIME_BOUND_S = 10.0

# --- values -------------------------------------------------------------------------------

_EXTREME_NUMBERS = [
    "0", "1", "-1", "2", "3", "16", "0.5", ".5", "1e-3", "1e999", "1e-999", "-0",
    "9223372036854775807", "9223372036854775808", "1" + "0" * 330, "1" + "0" * 5000,
    "1000000000", "100001", "4.", "1e308", "2e308",
]
_ODD_TEXT = [
    "", "x", "data/x.npz", "a" * 300, "\\u0000", "\\ud800", "\\udfff\\ud800", "\\n", "\\\\",
    '\\"', "é", "\u2028", "\x0c", "{{ x }}", '"""', "../../etc/passwd", "/dev/zero", "/tmp",
    "~", "a/" * 100,
]
_ODD_COMMENT_CHARS = ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\r",
                      "\t", "é", "#", '"', "\\", "\ufeff", "\u200b"]
_WORDS = ["relu", "same", "valid", "none", "true", "false", "horizontal", "softmax", "torch",
          "tensorflow", "auto", "cpu", "in", "out", "x", "h", "class", "lambda", "model",
          "layers", "input", "_", "__import__", "é"]


def _identifier(rng) -> str:
    return rng.choice(["x", "h", "y", "a", "b", "in", "out", "net", "block", "_m", "self",
                       "class", "n", "w" * rng.randint(1, 40)])


def _number(rng) -> str:
    if rng.random() < 0.7:
        return str(rng.choice([1, 2, 3, 4, 8, 10, 16, 32, 64, 128]))
    return rng.choice(_EXTREME_NUMBERS)


def _string(rng) -> str:
    return '"' + rng.choice(_ODD_TEXT) + '"'


def _expr(rng, depth: int = 0) -> str:
    roll = rng.random()
    if depth > 3 or roll < 0.35:
        return _number(rng)
    if roll < 0.5:
        return rng.choice(_WORDS)
    if roll < 0.6:
        return _string(rng)
    if roll < 0.75:
        op = rng.choice(["+", "-", "*", "/", "//"])
        return f"{_expr(rng, depth + 1)} {op} {_expr(rng, depth + 1)}"
    if roll < 0.8:
        return f"-{_expr(rng, depth + 1)}"
    if roll < 0.85:
        return f"({_expr(rng, depth + 1)})"
    if roll < 0.93:
        return "[" + ", ".join(_expr(rng, depth + 1) for _ in range(rng.randint(0, 3))) + "]"
    return _call(rng, rng.choice(list(SCHEDULES)), list(argument_names(SCHEDULES[
        rng.choice(list(SCHEDULES))])), depth + 1)


def _call(rng, name: str, names: list[str], depth: int = 0) -> str:
    """`name(...)` with a few positional arguments, then keywords mostly from `names`."""
    args = [_expr(rng, depth + 1) for _ in range(rng.randint(0, 2))]
    for _ in range(rng.randint(0, 2)):
        key = rng.choice(names) if names and rng.random() < 0.8 else _identifier(rng)
        args.append(f"{key}={_expr(rng, depth + 1)}")
    return f"{name}({', '.join(args)})"


def _layer(rng, blocks: list[str]) -> str:
    if blocks and rng.random() < 0.25:
        name = rng.choice(blocks)
        text = _call(rng, name, ["filters", "n", "k"])
    else:
        name = rng.choice(sorted(LAYERS)) if rng.random() < 0.95 else _identifier(rng)
        names = argument_names(LAYERS[name]) if name in LAYERS else []
        text = _call(rng, name, names)
    if rng.random() < 0.15:
        text += f" * {rng.choice(['2', '3', 'n', '0', '-1', '100000', '1000000000', '(2)'])}"
    return text


def _comment(rng) -> str:
    if rng.random() < 0.7:
        return ""
    body = "".join(rng.choice(_ODD_COMMENT_CHARS + list("ab c")) for _ in range(rng.randint(0, 8)))
    return f"  # {body}"


def _sequence(rng, blocks: list[str], indent: str) -> list[str]:
    return [indent + _layer(rng, blocks) + _comment(rng) for _ in range(rng.randint(0, 5))]


def _graph(rng, blocks: list[str], indent: str, sources: list[str]) -> tuple[list[str], str]:
    names = list(sources)
    lines = []
    target = names[0] if names else "h"
    for _ in range(rng.randint(1, 4)):
        target = rng.choice(["h", "y", "out", "logits", *names]) if rng.random() < 0.8 \
            else _identifier(rng)
        if len(names) >= 2 and rng.random() < 0.25:
            start = f"{rng.choice(['add', 'concat', 'multiply', 'average'])}(" \
                    f"{rng.choice(names)}, {rng.choice(names)})"
        else:
            start = rng.choice(names) if names else _identifier(rng)
        chain = " -> ".join([start, *(_layer(rng, blocks) for _ in range(rng.randint(0, 3)))])
        lines.append(f"{indent}{target} = {chain}{_comment(rng)}")
        names.append(target)
    return lines, target


# Layer lines that fit a vector `[n]` or an image `[h, w, c]`, for specs that mostly check:
# they reach shape inference, the cost report and, with --compile, the generators.
_VECTOR_LAYERS = ["dense({k})", "dense({k}, activation=relu)", "relu()", "gelu()", "tanh()",
                  "dropout(0.25)", "layernorm()", "batchnorm()", "identity()", "dense({k}) * 2",
                  "leaky_relu(slope=0.2)", "softmax()", "dense({k}, bias=false, l2=1e-4)"]
_IMAGE_LAYERS = ["conv2d({k}, 3, padding=same)", "conv2d({k}, 1)", "batchnorm()", "relu()",
                 "maxpool2d(2, padding=same)", "depthwise_conv2d(3, padding=same)",
                 "conv2d({k}, 3, padding=same, activation=relu) * 2", "upsample2d()",
                 "dropout(0.1)"]


def _plausible_model(rng) -> list[str]:
    """A model that `specc check` mostly accepts, with an odd value now and then."""
    def size() -> str:
        return _number(rng) if rng.random() < 0.05 else str(rng.choice([2, 4, 8, 16]))

    image = rng.random() < 0.4
    dims = f"{size()}, {size()}, {rng.choice([1, 3])}" if image else size()
    layers = [rng.choice(_IMAGE_LAYERS).format(k=size()) for _ in range(rng.randint(0, 3))]
    layers += ["flatten()"] if image else []
    layers += [rng.choice(_VECTOR_LAYERS).format(k=size()) for _ in range(rng.randint(0, 3))]
    classes = rng.choice([1, 2, 3, 10])
    layers.append(f"dense({classes})")
    loss = "mse()" if classes == 1 else rng.choice(["cross_entropy()",
                                                      "cross_entropy(label_smoothing=0.1)"])
    optimizer = rng.choice(["adam(lr=1e-3)", "sgd(lr=0.1, momentum=0.9)", "adamw()",
                            "rmsprop(schedule=cosine())", f"adam(lr={_number(rng)})"])
    return [
        f"model {_identifier(rng)} {{{_comment(rng)}",
        f"    input x: float[{dims}]",
        "    layers {",
        *(f"        {line}{_comment(rng)}" for line in layers),
        "    }",
        f"    loss {loss}",
        f"    optimizer {optimizer}",
        *(["    metrics accuracy"] if classes > 1 else []),
        f"    data synthetic({rng.choice([8, 64, 100])})",
        f"    train {{ epochs = {rng.choice([1, 2])}  batch_size = {rng.choice([4, 32])} }}",
        "}",
    ]


def generate(rng) -> str:
    """A spec written from the grammar: mostly well-formed, with values anywhere from
    ordinary to extreme. One in three is a model that mostly checks."""
    if rng.random() < 1 / 3:
        return "\n".join(_plausible_model(rng)) + "\n"
    lines: list[str] = []
    if rng.random() < 0.15:
        target = '"imports/shared.spec"' if rng.random() < 0.5 else _string(rng)
        lines.append(f"import {target}")
    for index in range(rng.randint(0, 3)):
        lines.append(f"let {rng.choice(['n', 'k', 'width', f'c{index}'])} = {_expr(rng)}"
                     + _comment(rng))
    blocks = []
    for index in range(rng.randint(0, 3)):
        name = rng.choice([f"b{index}", "conv_bn", "residual", *blocks]) if blocks \
            else f"b{index}"
        params = ", ".join(rng.choice(["filters", "n", "k=3", "n=2", "x"])
                           for _ in range(rng.randint(0, 2)))
        lines.append(f"block {name}({params}) {{{_comment(rng)}")
        if rng.random() < 0.6:
            lines += _sequence(rng, blocks + [name] * (rng.random() < 0.1), "    ")
        else:
            lines += _graph(rng, blocks, "    ", ["in"])[0]
            lines.append("    out = in -> identity()")
        lines.append("}")
        blocks.append(name)
    for _ in range(rng.choice([1, 1, 1, 2, 0])):
        lines.append(f"model {_identifier(rng)} {{{_comment(rng)}")
        inputs = []
        for _ in range(rng.choice([1, 1, 2, 0])):
            name = _identifier(rng)
            dims = ", ".join(rng.choice([_number(rng), "?", "n"])
                             for _ in range(rng.randint(0, 3)))
            dtype = rng.choice(["float", "float", "int", "str"])
            lines.append(f"    input {name}: {dtype}[{dims}]")
            inputs.append(name)
        if rng.random() < 0.6:
            lines.append("    layers {")
            lines += _sequence(rng, blocks, "        ")
            lines.append("    }")
        else:
            lines.append("    graph {")
            body, last = _graph(rng, blocks, "        ", inputs)
            lines += body
            lines.append("    }")
            lines.append(f"    output {last}")
        if rng.random() < 0.7:
            name = rng.choice(list(LOSSES))
            lines.append(f"    loss {_call(rng, name, argument_names(LOSSES[name]))}")
        if rng.random() < 0.6:
            name = rng.choice(list(OPTIMIZERS))
            lines.append(f"    optimizer {_call(rng, name, argument_names(OPTIMIZERS[name]))}")
        if rng.random() < 0.4:
            lines.append("    metrics " + ", ".join(rng.choice(list(METRICS))
                                                   for _ in range(rng.randint(1, 3))))
        if rng.random() < 0.4:
            name = rng.choice(list(DATA_SOURCES))
            lines.append(f"    data {_call(rng, name, argument_names(DATA_SOURCES[name]))}")
        if rng.random() < 0.2:
            name = rng.choice(list(AUGMENTATIONS))
            call = _call(rng, name, argument_names(AUGMENTATIONS[name]))
            lines.append(f"    augment {{ {call} }}")
        if rng.random() < 0.4:
            key = rng.choice(["epochs", "batch_size", "seed", "backend", "device", "precision",
                              "grad_clip", "compile", "nonsense"])
            lines.append(f"    train {{ {key} = {_expr(rng)} }}")
        lines.append("}")
    separator = rng.choice(["\n", "\n", "\n", "\r\n", "\n\n"])
    return separator.join(lines) + rng.choice(["\n", "", "\n\n"])


# --- mutations ----------------------------------------------------------------------------

_TOKEN = re.compile(r'#[^\n]*|"(?:[^"\\\n]|\\.)*"|->|//|[A-Za-z_]\w*'
                    r"|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|\S")
_INSERTIONS = [
    "{", "}", "(", ")", "[", "]", ",", "=", "->", "*", "?", ":", "-", "#", '"', "\\",
    "model", "layers", "graph", "block", "let", "import", "input", "output", "train",
    "in", "out", "* 1000000000", "* 100000", "dense(0)", "[" * 300, "(" * 300, "{" * 300,
    "- " * 300, "+ 1" * 300, "\u2028", "\x0c", "\x00", "\ud800", "é", "\ufeff",
    '"\\ud800"', '"\\u0000"', '"' + "a" * 300 + '"', *_EXTREME_NUMBERS,
]


def _mutate_once(text: str, rng) -> str:
    lines = text.split("\n")
    tokens = [(m.start(), m.end()) for m in _TOKEN.finditer(text)]
    operation = rng.randrange(12)
    if operation == 0 and lines:  # delete a line
        del lines[rng.randrange(len(lines))]
        return "\n".join(lines)
    if operation == 1 and lines:  # duplicate a line
        index = rng.randrange(len(lines))
        lines.insert(index, lines[index])
        return "\n".join(lines)
    if operation == 2 and len(lines) > 1:  # swap two lines
        a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[a], lines[b] = lines[b], lines[a]
        return "\n".join(lines)
    if operation == 3 and tokens:  # delete a token
        start, end = rng.choice(tokens)
        return text[:start] + text[end:]
    if operation == 4 and tokens:  # duplicate a token
        start, end = rng.choice(tokens)
        return text[:end] + " " + text[start:end] + text[end:]
    if operation == 5 and len(tokens) > 1:  # swap two tokens
        (a0, a1), (b0, b1) = sorted(rng.sample(tokens, 2))
        return text[:a0] + text[b0:b1] + text[a1:b0] + text[a0:a1] + text[b1:]
    if operation in (6, 7) and tokens:  # replace a token by an odd one
        start, end = rng.choice(tokens)
        return text[:start] + rng.choice(_INSERTIONS) + text[end:]
    if operation == 8:  # insert an odd token anywhere
        at = rng.randint(0, len(text))
        return text[:at] + " " + rng.choice(_INSERTIONS) + " " + text[at:]
    if operation == 9 and text:  # truncate
        return text[: rng.randrange(len(text))]
    if operation == 10 and tokens:  # a comment with odd characters
        _, end = rng.choice(tokens)
        odd = "".join(rng.choice(_ODD_COMMENT_CHARS) for _ in range(3))
        return text[:end] + f"  # one{odd}two" + text[end:]
    if operation == 11 and tokens:  # repeat a piece many times
        start, end = rng.choice(tokens)
        return text[:end] + (" " + text[start:end]) * rng.choice([50, 500, 5000]) + text[end:]
    return text


def mutate(text: str, rng) -> str | bytes:
    """`text` with one to four mutations; now and then as bytes that are not UTF-8."""
    for _ in range(rng.randint(1, 4)):
        text = _mutate_once(text, rng)
    if rng.random() < 0.05:
        data = text.encode("utf-8", "surrogatepass")
        at = rng.randint(0, len(data))
        return data[:at] + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80"]) + data[at:]
    return text


# --- running a case -----------------------------------------------------------------------


class CaseTimeout(BaseException):
    """Raised inside a case that runs past its bound (a BaseException: the CLI's handler of
    internal errors must not catch it)."""


@dataclass
class Outcome:
    seconds: float
    problem: str | None  # None when the case passed
    codes: tuple[int, ...] = ()


def prepare_folder(folder: Path) -> None:
    """A folder to run cases in, with what the seeds name next to them: the corpus's
    imported files and the example data."""
    for name, source in (("imports", ROOT / "tests" / "errors" / "corpus" / "imports"),
                         ("data", ROOT / "specs" / "data")):
        if not (folder / name).exists():
            shutil.copytree(source, folder / name)


def _main(argv: list[str], deadline: float) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()

    def expire(signum, frame):
        raise CaseTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(deadline - time.perf_counter(), 0.001))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return code, out.getvalue() + err.getvalue()


def _comment_characters(text: str) -> Counter:
    """The characters of every comment, but spaces: fmt may join the trailing comments of a
    statement that spanned lines, never drop a character."""
    return Counter(c for *_, body in parse(text).comments for c in body if c not in " \t")


def run(
    data: str | bytes, folder: Path, bound_s: float = TIME_BOUND_S, compile_too: bool = False
) -> Outcome:
    """Check and format one case in `folder` (and, with `compile_too`, compile what checks
    for both backends); what went wrong, if anything."""
    path = folder / "case.spec"
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    path.write_bytes(raw)
    started = time.perf_counter()
    deadline = started + bound_s
    codes: list[int] = []
    try:
        commands = [["check", str(path)]]
        if compile_too:
            commands += [["compile", str(path), "--backend", backend, "-o", str(folder / backend)]
                         for backend in ("torch", "tensorflow")]
        for argv in [*commands, ["fmt", str(path)]]:
            if argv[0] == "compile" and codes[0] != 0:
                continue
            code, output = _main(argv, deadline)
            codes.append(code)
            if code not in (0, 1) or "Traceback" in output or "internal error" in output:
                return Outcome(time.perf_counter() - started,
                               f"`specc {argv[0]}` exited {code}:\n{output[-4000:]}", tuple(codes))
        if codes[-1] == 0:  # formatted: it must keep comments and change nothing the 2nd time
            formatted = path.read_bytes().decode("utf-8")  # as written: no newline translation
            original = raw.decode("utf-8")
            try:
                kept = _comment_characters(formatted) == _comment_characters(original)
            except SpecError as error:
                return Outcome(time.perf_counter() - started,
                               f"fmt wrote a file that does not parse: {error}", tuple(codes))
            if not kept:
                return Outcome(time.perf_counter() - started, "fmt changed comment text",
                               tuple(codes))
            code, output = _main(["fmt", "--check", str(path)], deadline)
            codes.append(code)
            if code != 0:
                return Outcome(time.perf_counter() - started,
                               f"fmt is not idempotent:\n{output[-2000:]}", tuple(codes))
    except CaseTimeout:
        return Outcome(time.perf_counter() - started, f"over {bound_s:.0f} s", tuple(codes))
    return Outcome(time.perf_counter() - started, None, tuple(codes))
