"""Binding a call's arguments to a kind's Pydantic model, with errors at the argument.

One mechanism serves layers, losses, optimizers, schedules, metrics, data sources,
augmentations and `train` calls: positional arguments fill fields in declaration order,
keywords fill fields by name, Pydantic validates, and every failure is reported at the span
of the argument it concerns, in the form `what (expected …, got …)`.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from typing import Any

from pydantic import BaseModel, ValidationError

from specc.errors import Diagnostic, Span, SpecError
from specc.passes.evaluate import Arg, CallValue, Word, show

# Fields whose value is itself a call of some registry: field name -> (what, registry).
NestedRegistries = dict[str, tuple[str, dict[str, type[BaseModel]]]]


# Beyond this many candidates (names bound in a huge graph) no suggestion is looked for:
# finding one costs time in proportion to them, at every unknown name.
_MOST_SUGGESTION_CANDIDATES = 1000


def argument_names(cls: type[BaseModel]) -> list[str]:
    return [name for name in cls.model_fields if name != "kind"]


def suggest(name: str, candidates: list[str], hints: dict[str, str] | None = None) -> str:
    """` (did you mean `x`?)` or an empty string."""
    folded_hints = {key.lower(): value for key, value in (hints or {}).items()}
    if name.lower() in folded_hints:
        return f" (did you mean `{folded_hints[name.lower()]}`?)"
    if len(candidates) > _MOST_SUGGESTION_CANDIDATES:
        return ""
    # Case aside (`Dense`, `LSTM`): the spec's names are lower case, the frameworks' classes not.
    by_folded = {candidate.lower(): candidate for candidate in candidates}
    if name.lower() in by_folded:
        return f" (did you mean `{by_folded[name.lower()]}`?)"
    close = difflib.get_close_matches(name.lower(), list(by_folded), n=1, cutoff=0.6)
    return f" (did you mean `{by_folded[close[0]]}`?)" if close else ""


def lookup(
    registry: dict[str, Any],
    name: str,
    span: Span,
    what: str,
    hints: dict[str, str] | None = None,
    notes: dict[str, str] | None = None,
) -> Any:
    """The kind called `name`, or a SpecError listing what exists. `hints` maps names other
    frameworks use to the registry's; `notes` says what to tell a user who types a name that
    has no counterpart here (rather than suggest the nearest spelling)."""
    if name in registry:
        return registry[name]
    if notes and name in notes:
        hint = f" ({notes[name]})"
    else:
        hint = suggest(name, list(registry), {k: v for k, v in (hints or {}).items()
                                              if v in registry})
    known = ", ".join(sorted(registry))
    raise SpecError.at(span, f"unknown {what} `{name}`{hint} (expected one of: {known})")


def _plain(value: object) -> object:
    """Evaluated values as Pydantic should see them: words as plain strings."""
    if isinstance(value, Word):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _message(error: dict[str, Any]) -> str:
    """Pydantic's message turned into the 'expected …' part of ours."""
    message: str = error["msg"]
    if error["type"] == "value_error":
        return message.removeprefix("Value error, ")
    if message.startswith("Input should be "):
        message = message.removeprefix("Input should be ")
    return message.replace("'", "`")


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def match_arguments(
    call: CallValue,
    names: list[str],
    what: str,
    noun: str,
    hints: dict[str, str] | None = None,
) -> tuple[dict[str, Arg], list[Diagnostic]]:
    """Pair a call's arguments with `names`: positional ones in order, then keywords by name.
    Returns the pairs and the problems (too many, unknown or repeated names)."""
    given: dict[str, Arg] = {}
    problems: list[Diagnostic] = []
    if len(call.args) > len(names):
        problems.append(
            Diagnostic(
                f"{what} `{call.name}` takes {plural(len(names), 'argument')} (expected "
                f"{', '.join(names) or 'none'}, got {len(call.args)})",
                call.args[len(names)].span,
            )
        )
    for name, arg in zip(names, call.args, strict=False):  # extras were reported above
        given[name] = arg
    for name, arg in call.keywords.items():
        where = arg.name_span or arg.span
        if name not in names:
            problems.append(
                Diagnostic(
                    f"{what} `{call.name}` has no {noun} `{name}`{suggest(name, names, hints)}"
                    f" (expected one of: {', '.join(names) or 'none'})",
                    where,
                )
            )
        elif name in given:
            problems.append(
                Diagnostic(
                    f"{noun} `{name}` of `{call.name}` is given twice, by position and by name",
                    where,
                )
            )
        else:
            given[name] = arg
    return given, problems


def bind(
    cls: type[BaseModel], call: CallValue, what: str, nested: NestedRegistries | None = None
) -> Any:
    """An instance of `cls` from `call`'s arguments; SpecError with every problem found."""
    nested = nested or {}
    fields = argument_names(cls)
    hints: dict[str, str] = getattr(cls, "hints", {}) or {}
    given, problems = match_arguments(call, fields, what, "argument", hints)

    values: dict[str, object] = {}
    for name, arg in given.items():
        if isinstance(arg.value, CallValue) and name in nested:
            nested_what, registry = nested[name]
            try:
                kind = lookup(registry, arg.value.name, arg.value.name_span, nested_what)
                values[name] = bind(kind, arg.value, nested_what)
            except SpecError as error:
                problems += error.diagnostics
        elif isinstance(arg.value, CallValue):
            problems.append(
                Diagnostic(
                    f"argument `{name}` of `{call.name}` takes a value, not "
                    f"a call (got `{arg.value.name}(...)`)",
                    arg.span,
                )
            )
        else:
            values[name] = _plain(arg.value)

    # The values given are validated even when some names were wrong, so that one run
    # reports every mistake of the call.
    try:
        instance = cls(**values)
    except ValidationError as error:
        # A misnamed argument leaves the field it was meant for missing: say it once.
        problems += _validation_diagnostics(error, call, what, given, report_missing=not problems)
    if problems:
        raise SpecError(problems)
    return instance


def _validation_diagnostics(
    error: ValidationError, call: CallValue, what: str, given: dict[str, Arg], report_missing: bool
) -> list[Diagnostic]:
    by_field: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        by_field[field].append(item)
    diagnostics = []
    for field, items in by_field.items():
        arg = given.get(field)
        span = arg.span if arg else call.span
        if field and items[0]["type"] == "missing":
            if not report_missing:
                continue
            diagnostics.append(
                Diagnostic(f"{what} `{call.name}` is missing its argument `{field}`", call.span)
            )
            continue
        custom = [_message(i) for i in items if i["type"] == "value_error"]
        if custom:
            text = custom[0]
            prefix = f"`{call.name}`: " if not field else f"`{call.name}` argument `{field}`: "
            diagnostics.append(Diagnostic(prefix + text, span))
            continue
        expected = " or ".join(dict.fromkeys(_message(i) for i in items))
        got = show(arg.value) if arg else "nothing"
        diagnostics.append(
            Diagnostic(
                f"invalid argument `{field}` of {what} `{call.name}` (expected {expected}, "
                f"got {got})",
                span,
            )
        )
    return diagnostics
