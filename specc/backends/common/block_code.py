"""One definition per spec block: the code of a block's uses, written once, with the values
that differ between the uses as its parameters.

A backend writes the code of each distinct use of a block as it writes any code, with
concrete numbers, keeping every keyword argument that has a default (`keeping_defaults` in
`code.py`), so that the uses line up token by token. `share` then compares them: where the
uses of one block differ only in literals, each literal that differs becomes a parameter of
one definition (`ConvBn(in_channels, filters, stride)`), named after the block's own
parameter when it carries that parameter's values, else after the argument it fills
(`in_channels`); literals that agree stay literals. Uses whose code differs in anything else
(a layer count, a shape-dependent branch) are split into variants, a definition each.

A repeated call (`call * N`) is written once too, as a loop: `repeated_call` finds its nodes.

Nothing here knows a framework: a backend passes its code as sections of source lines and
the names of the positional parameters of the calls it writes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from specc import ir
from specc.backends.common.code import DEFAULT_MARKER, lit
from specc.backends.naming import Namer

# Tokens of generated source, in the order they are tried. A kept default (code.py's
# DEFAULT_MARKER) is one token.
_TOKEN = re.compile(
    r"""(?P<marker>\x01[^\x03]*\x03)
    |(?P<fstring>[fF]"(?:[^"\\]|\\.)*"|[fF]'(?:[^'\\]|\\.)*')
    |(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    |(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    |(?P<name>[A-Za-z_]\w*)
    |(?P<space>\s+)
    |(?P<op>.)""",
    re.VERBOSE,
)
_LITERAL_NAMES = frozenset({"True", "False", "None"})
_SHAPE = re.compile(r"\(B(?:, [^()]*)?\)")  # a shape comment: (B, 8, 8, 16)


@dataclass(frozen=True)
class Token:
    kind: str  # "literal", "marker" (a kept default), "name", "op", "space"
    text: str

    @property
    def key(self) -> str:
        """What must agree between uses for them to share code: all but a literal's value."""
        if self.kind == "literal":
            return "\0literal"
        if self.kind == "marker":
            return "\0" + self.text.split("=", 1)[0]
        return self.text


def tokens(source: str) -> list[Token]:
    """`source` as tokens, a tuple or list of numbers (`(0, 1, 0, 1)`, `[3, 3]`) as one
    literal: its length belongs to the value (a padding's), not to the code's structure."""
    raw: list[Token] = []
    for match in _TOKEN.finditer(source):
        kind = match.lastgroup or "op"
        text = match.group(0)
        if kind in ("number", "string") or (kind == "name" and text in _LITERAL_NAMES):
            kind = "literal"
        elif kind == "fstring":
            kind = "name"  # a layer name built from the block's name prefix: fixed text
        raw.append(Token(kind, text))
    return _group_number_sequences(raw)


def _group_number_sequences(raw: list[Token]) -> list[Token]:
    out: list[Token] = []
    index = 0
    while index < len(raw):
        token = raw[index]
        previous = next((t for t in reversed(out) if t.kind != "space"), None)
        opens_value = previous is None or not (
            previous.kind in ("name", "literal", "marker") or previous.text in (")", "]")
        )
        if token.text in ("(", "[") and opens_value:
            end = _number_sequence_end(raw, index)
            if end is not None:
                out.append(Token("literal", "".join(t.text for t in raw[index : end + 1])))
                index = end + 1
                continue
        out.append(token)
        index += 1
    return out


def _number_sequence_end(raw: list[Token], start: int) -> int | None:
    """The index of the bracket closing a bracketed sequence of numbers at `start`, if it is one."""
    closing = ")" if raw[start].text == "(" else "]"
    expect_number, count = True, 0
    for index in range(start + 1, len(raw)):
        token = raw[index]
        if token.kind == "space" or (token.text == "-" and expect_number):
            continue
        if token.text == closing:
            return index if count else None
        if expect_number and token.kind == "literal" and token.text[0].isdigit():
            expect_number, count = False, count + 1
        elif not expect_number and token.text == ",":
            expect_number = True
        else:
            return None
    return None


@dataclass
class Use:
    """One distinct use of a block, as its backend wrote it."""

    sections: Sequence[Sequence[str]]  # source lines, in sections the backend spells apart
    comments: Sequence[str]  # text beside the code (shape comments, the docstring)
    args: Mapping[str, object]  # the block's arguments at this use


@dataclass
class Definition:
    """The shared code of some uses of one block."""

    members: list[int]  # the indices of the uses it serves, in order
    params: list[str] = field(default_factory=list)
    arguments: list[dict[str, str]] = field(default_factory=list)  # per member: param → source
    # Per section, its lines; `spell` of `render` writes a parameter where the uses differ.
    _sections: list[list[list[Token | str]]] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)

    def render(self, section: int, spell: Callable[[str], str] = str) -> list[str]:
        """The lines of `section`, each parameter written as `spell(name)`."""
        return [
            "".join(t.text if isinstance(t, Token) else spell(t) for t in line)
            for line in self._sections[section]
        ]

    def used_in(self, section: int) -> list[str]:
        """The parameters that `section` uses, in order of appearance."""
        found = [t for line in self._sections[section] for t in line if isinstance(t, str)]
        return list(dict.fromkeys(found))


def share(
    uses: Sequence[Use],
    positional: Mapping[str, Sequence[str]],
    reserved: frozenset[str] = frozenset(),
) -> list[Definition]:
    """The definitions that serve `uses` (the distinct uses of one block), in order of their
    first member; one, unless the uses differ in more than their literals.

    `positional` names the positional parameters of the calls the code makes (`nn.Conv2d` →
    `in_channels`, `out_channels`), for parameters that are not the block's own; `reserved`
    lists names a parameter may not take."""
    parsed = [[[tokens(line) for line in section] for section in use.sections] for use in uses]
    variants: dict[tuple, list[int]] = {}
    for index, sections in enumerate(parsed):
        key = tuple(tuple(tuple(t.key for t in line) for line in s) for s in sections)
        variants.setdefault(key, []).append(index)
    return [_define(members, uses, parsed, positional, reserved) for members in variants.values()]


def _define(members, uses, parsed, positional, reserved) -> Definition:
    first = parsed[members[0]]
    namer = Namer(reserved)
    by_values: dict[tuple[str, ...], str] = {}  # a parameter's values at the members → its name
    sections: list[list[list[Token | str]]] = []
    for s, section in enumerate(first):
        lines = []
        for n, line in enumerate(section):
            calls: list[list] = []  # the calls open at this point: [callee, argument index]
            out: list[Token | str] = []
            for t, token in enumerate(line):
                values = [parsed[m][s][n][t] for m in members]
                _follow_calls(calls, line, t)
                if token.kind == "marker":
                    out += _shared_marker(values, uses, members, calls, namer, by_values)
                elif token.kind == "literal" and len({v.text for v in values}) > 1:
                    vector = tuple(v.text for v in values)
                    context = _context_name(line, t, calls, positional)
                    out.append(_parameter(vector, context, uses, members, namer, by_values))
                else:
                    out.append(token)
            lines.append(_drop_marker_commas(out))
        sections.append(lines)
    params = list(dict.fromkeys(p for s in sections for line in s for p in line
                                if isinstance(p, str)))
    values = {name: vector for vector, name in by_values.items()}
    arguments = [{p: values[p][i] for p in params} for i in range(len(members))]
    comments = [_shared_comment([uses[m].comments[c] for m in members], values, params)
                for c in range(len(uses[members[0]].comments))]
    return Definition(members, params, arguments, sections, comments)


def _follow_calls(calls: list[list], line: list[Token], index: int) -> None:
    """Keep `calls` (callee, argument index) up to date before `line[index]`."""
    if index == 0:
        return
    token = line[index - 1]
    if token.text == "(":
        callee = _callee(line, index - 1)
        calls.append([callee, 0])
    elif token.text in ("[", "{"):
        calls.append(["", 0])
    elif token.text in (")", "]", "}") and calls:
        calls.pop()
    elif token.text == "," and calls:
        calls[-1][1] += 1


def _callee(line: list[Token], opening: int) -> str:
    """The dotted name before the parenthesis at `opening` (`nn.Conv2d`), or ""."""
    parts: list[str] = []
    index = opening - 1
    while index >= 0 and (line[index].kind == "name" or line[index].text == "."):
        parts.append(line[index].text)
        index -= 1
    return "".join(reversed(parts))


def _context_name(line: list[Token], index: int, calls, positional) -> str:
    """What a literal at `line[index]` is to the code around it: the keyword it is given to,
    else the positional parameter of the call it is an argument of."""
    before = [t for t in line[:index] if t.kind != "space"]
    if len(before) >= 2 and before[-1].text == "=" and before[-2].kind == "name":
        return before[-2].text
    if calls:
        callee, position = calls[-1]
        names = positional.get(callee, ())
        if position < len(names):
            return names[position]
    return "value"


def _parameter(vector, context, uses, members, namer, by_values) -> str:
    """The parameter with values `vector` at the members: the block's own parameter when it
    has those values, else a new one named after `context`."""
    if vector in by_values:
        return by_values[vector]
    own = [
        name for name in uses[members[0]].args
        if tuple(_literal(uses[m].args[name]) for m in members) == vector
    ]
    name = namer.name(own[0] if own else context)
    by_values[vector] = name
    return name


def _literal(value: object) -> str:
    return lit(tuple(value) if isinstance(value, list) else value)


def _shared_marker(values, uses, members, calls, namer, by_values) -> list[Token | str]:
    """A kept default shared by the members: left out when every member has the default, a
    literal when they agree, a parameter where they differ."""
    groups = [DEFAULT_MARKER.fullmatch(v.text) for v in values]
    key = groups[0].group(1)  # type: ignore[union-attr]
    written = [g.group(2) for g in groups]  # type: ignore[union-attr]
    defaults = [g.group(3) for g in groups]  # type: ignore[union-attr]
    if all(w == d for w, d in zip(written, defaults, strict=True)):
        return [Token("dropped", "")]
    if len(set(written)) == 1:
        return [Token("literal", f"{key}={written[0]}")]
    return [Token("name", f"{key}="), _parameter(tuple(written), key, uses, members, namer,
                                                   by_values)]


def _drop_marker_commas(line: list[Token | str]) -> list[Token | str]:
    """`line` without its dropped defaults and the comma that separated each."""
    out: list[Token | str] = []
    skip_comma = False
    for token in line:
        if isinstance(token, Token) and token.kind == "dropped":
            # The comma before it goes; if it opened the argument list, the one after.
            while out and isinstance(out[-1], Token) and out[-1].kind == "space":
                out.pop()
            if out and isinstance(out[-1], Token) and out[-1].text == ",":
                out.pop()
            else:
                skip_comma = True
            continue
        if skip_comma and isinstance(token, Token) and token.text in (",", " "):
            if token.text == " ":
                skip_comma = False
            continue
        skip_comma = False
        out.append(token)
    return out


def _shared_comment(texts: Sequence[str], values: Mapping[str, tuple[str, ...]],
                    params: Sequence[str]) -> str:
    """A comment that holds for every member: a number that differs between them is the
    parameter with those values, else `?`; shapes of different ranks are `(B, ...)`, and a
    comment whose words differ even so is left out."""
    parsed = [tokens(text) for text in texts]
    if len({tuple(t.key for t in p) for p in parsed}) > 1:
        shapeless = {_SHAPE.sub("(B, ...)", text) for text in texts}
        return shapeless.pop() if len(shapeless) == 1 else ""
    names = {values[p]: p for p in params}
    out = []
    for index, token in enumerate(parsed[0]):
        vector = tuple(p[index].text for p in parsed)
        if len(set(vector)) == 1:
            out.append(token.text)
        else:
            out.append(names.get(vector, "?"))
    return "".join(out)


def repeated_call(nodes: Sequence[ir.Node], start: int) -> list[ir.Node]:
    """The nodes of one repeated call (`call * N`) starting at `nodes[start]`: it and those
    after it that come from the same call (the same span) and each read the one before."""
    run = [nodes[start]]
    for node in nodes[start + 1 :]:
        if node.span != run[0].span or node.inputs != (run[-1].output.id,):
            break
        run.append(node)
    return run
