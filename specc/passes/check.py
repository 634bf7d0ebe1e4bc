"""The whole front half: spec file → `ir.Program` plus every diagnostic found.

    parse → resolve (imports, constants, blocks) → per model: inputs, body (build), outputs,
    training sections (bind) → warnings and the data check

Each model section is checked independently, so a mistake in the loss does not hide one in
the layers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from specc import ast, ir
from specc.errors import Diagnostic, Diagnostics, Span, SpecError
from specc.limits import MAX_NESTING, path_problem
from specc.memory import oversize_warning
from specc.passes.bind import bind, lookup
from specc.passes.build import Expansion, GraphBuilder, build_inputs
from specc.passes.evaluate import Arg, CallValue, Env, evaluate, evaluate_call
from specc.passes.resolve import resolve
from specc.passes.training_check import check_training, freeze_layers
from specc.syntax import parse, parse_file
from specc.training import (
    AUGMENTATIONS,
    FRAMEWORK_NAMES,
    FRAMEWORK_NOTES,
    LOSSES,
    METRICS,
    OPTIMIZERS,
    SCHEDULES,
    TRAIN_CALLS,
    Adam,
    TrainConfig,
)

# Outputs squashed by these are probabilities, not logits.
_PROBABILITY_ACTIVATIONS = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid",
                            "categorical_cross_entropy": "softmax", "binary_focal": "sigmoid",
                            "categorical_focal": "softmax"}


@dataclass
class CheckResult:
    program: ir.Program | None  # None when errors prevented building it
    diagnostics: Diagnostics


def check_file(path: str | Path) -> CheckResult:
    """Check one spec file; never raises SpecError."""
    try:
        return _check(lambda: parse_file(path), parse_file)
    except RecursionError:  # the limit of nesting is checked first; this is the last resort
        return _too_deep(path)


def check_source(
    text: str, path: str | Path, parse_import: Callable[[Path, Span], ast.File] = parse_file
) -> CheckResult:
    """Check `text` as the contents of the file at `path` (an editor's unsaved buffer); never
    raises SpecError. `parse_import` reads each imported file: `specc lsp` reuses its parses."""
    try:
        return _check(lambda: parse(text, str(path)), parse_import)
    except RecursionError:
        return _too_deep(path)


def check_parsed(
    file: ast.File, parse_import: Callable[[Path, Span], ast.File] = parse_file
) -> CheckResult:
    """Check a file already parsed (`specc lsp` reuses the parses of the parts of a file
    that did not change); never raises SpecError."""
    try:
        return _check(lambda: file, parse_import)
    except RecursionError:
        return _too_deep(file.path)


def _too_deep(path: str | Path) -> CheckResult:
    diags = Diagnostics()
    diags.error(
        None,
        f"{path}: blocks or expressions nest too deeply to check (expected at most "
        f"{MAX_NESTING} levels, the limit of nesting)",
    )
    return CheckResult(None, diags)


def _check(
    read: Callable[[], ast.File], parse_import: Callable[[Path, Span], ast.File]
) -> CheckResult:
    diags = Diagnostics()
    try:
        file = read()
    except SpecError as error:
        diags.extend(error.diagnostics)
        return CheckResult(None, diags)
    scope = resolve(file, diags, parse_import=parse_import)
    expansion = Expansion()  # the layers of all the file's models count against one limit
    models = []
    names: dict[str, ast.Model] = {}
    for model in file.models:
        if model.name in names:
            diags.items.append(
                Diagnostic(f"model `{model.name}` is defined twice", model.name_span).with_note(
                    "first defined here", names[model.name].name_span
                )
            )
            continue
        names[model.name] = model
        built = check_model(model, scope.constants, scope, diags, file.path, expansion)
        if built is not None:
            models.append(built)
    if not file.models:
        diags.error(None, f"{file.path}: no model found (expected `model NAME {{ ... }}`)")
    program = (
        None if diags.errors else ir.Program.model_construct(file=file.path, models=tuple(models))
    )
    return CheckResult(program, diags)


def check_model(
    model: ast.Model,
    env: Env,
    scope,
    diags: Diagnostics,
    file: str,
    expansion: Expansion | None = None,
) -> ir.Model | None:
    errors_before = len(diags.errors)
    inputs = build_inputs(model, env, diags)
    builder = GraphBuilder(
        scope,
        diags,
        env,
        input_spans={item.name: item.span for item in model.inputs},
        expansion=expansion or Expansion(),
    )
    outputs: list[ir.Value] | None = None
    if model.body is None:
        diags.error(model.name_span, f"model `{model.name}` has no `layers` or `graph` section")
    elif isinstance(model.body, ast.GraphBody) and not model.outputs:
        diags.error(
            model.body.span,
            "a `graph` needs an `output` line naming its result(s) (expected e.g. `output logits`)",
        )
    elif isinstance(model.body, ast.SequenceBody) and model.outputs:
        diags.error(
            model.outputs[0].span,
            "`output` is only used with `graph` (a `layers` sequence outputs its last line)",
        )
    elif inputs and len(inputs) == len(model.inputs):
        outputs = builder.build_body(model.body, inputs, output_names=model.outputs)

    losses = _losses(model, outputs, env, diags)
    optimizer = (
        _bind_one(
            model.optimizer,
            env,
            diags,
            OPTIMIZERS,
            "optimizer",
            {"schedule": ("schedule", SCHEDULES)},
        )
        if model.optimizer
        else Adam()
    )
    metrics = [_bind_one(call, env, diags, METRICS, "metric") for call in model.metrics]
    augment = [_bind_one(call, env, diags, AUGMENTATIONS, "augmentation") for call in model.augment]
    train = _train_config(model, env, diags)
    data = _data(model, env, diags, file)

    if len(diags.errors) > errors_before or outputs is None:
        return None
    nodes, frozen = freeze_layers(model, tuple(builder.nodes), train.freeze, diags)
    graph = ir.Graph.model_construct(
        inputs=tuple(inputs), nodes=nodes, outputs=tuple(o.id for o in outputs)
    )
    built = ir.Model.model_construct(
        name=model.name,
        graph=graph,
        losses=tuple(losses),
        optimizer=optimizer,
        metrics=tuple(metrics),
        metric_outputs=tuple(name and name.name for name in model.metric_outputs),
        data=data,
        augment=tuple(augment),
        train=train,
        file=file,
        span=model.span,
        frozen=frozen,
    )
    _warn_probabilities_into_logit_loss(built, diags)
    check_training(model, built, diags)
    oversize = oversize_warning(built)
    if oversize is not None:
        diags.items.append(oversize)
    if data is not None:
        from specc.passes.data_check import check_data

        diags.extend(check_data(built))
    if len(diags.errors) > errors_before:
        return None
    return built


def _bind_one(call: ast.Call, env: Env, diags: Diagnostics, registry, what: str, nested=None):
    try:
        kind = lookup(registry, call.name, call.name_span, what, FRAMEWORK_NAMES,
                      FRAMEWORK_NOTES)
        return bind(kind, evaluate_call(call, env), what, nested)
    except SpecError as error:
        diags.extend(error.diagnostics)
        return None


def _losses(
    model: ast.Model, outputs: list[ir.Value] | None, env: Env, diags: Diagnostics
) -> list[ir.LossTerm]:
    terms: list[ir.LossTerm] = []
    by_label = {v.label: v for v in outputs or []}
    for term in model.losses:
        loss = _bind_one(term.call, env, diags, LOSSES, "loss")
        if loss is None or outputs is None:
            continue
        if term.output is None:
            if len(outputs) != 1:
                diags.error(
                    term.span,
                    f"the model has {len(outputs)} outputs: give a loss per "
                    f"output (expected e.g. `loss {outputs[0].label}: ...`)",
                )
                continue
            target = outputs[0]
        elif term.output not in by_label:
            diags.error(
                term.span,
                f"loss for `{term.output}`, which is not an output "
                f"(expected one of: {', '.join(by_label)})",
            )
            continue
        else:
            target = by_label[term.output]
        terms.append(ir.LossTerm.model_construct(output=target.id, loss=loss, span=term.span))
    if outputs and model.losses and len(terms) == len(model.losses):
        missing = [v.label for v in outputs if v.id not in {t.output for t in terms}]
        if missing:
            diags.error(
                model.losses[0].span,
                f"no loss for output{'s' if len(missing) > 1 else ''}"
                f" {', '.join(missing)} (expected a loss per output)",
            )
    return terms


def _train_config(model: ast.Model, env: Env, diags: Diagnostics) -> TrainConfig:
    keywords: dict[str, Arg] = {}
    for setting in model.settings:
        if setting.key in keywords:
            diags.error(setting.span, f"train setting `{setting.key}` is given twice")
            continue
        try:
            keywords[setting.key] = Arg(
                evaluate(setting.value, env), setting.value.span, setting.span
            )
        except SpecError as error:
            diags.extend(error.diagnostics)
    nested = {key: ("train setting", {key: cls}) for key, cls in TRAIN_CALLS.items()}
    span = model.settings[0].span if model.settings else model.name_span
    try:
        return bind(TrainConfig, CallValue("train", [], keywords, span, span), "section", nested)
    except SpecError as error:
        diags.extend(error.diagnostics)
        return TrainConfig()


def _data(model: ast.Model, env: Env, diags: Diagnostics, file: str) -> ir.DataSource | None:
    if model.data is None:
        return None
    from specc.data_sources import DATA_SOURCES

    source = _bind_one(model.data, env, diags, DATA_SOURCES, "data source")
    if source is None:
        return None
    if source.reads_file:
        problem = path_problem(source.path)
        if problem is not None:
            diags.error(_argument_span(model.data, "path"), f"the data path {problem}")
            return None
    return ir.DataSource.model_construct(
        source=source, spec_dir=str(Path(file).resolve().parent), span=model.data.span
    )


def _argument_span(call: ast.Call, name: str) -> Span:
    """Where the argument `name` of `call` is written: by keyword, else the first position."""
    for keyword in call.keywords:
        if keyword.name == name:
            return keyword.value.span
    return call.args[0].span if call.args else call.span


def _warn_probabilities_into_logit_loss(model: ir.Model, diags: Diagnostics) -> None:
    producers = {node.output.id: node for node in model.graph.nodes}
    for term in model.losses:
        squash = _PROBABILITY_ACTIVATIONS.get(term.loss.kind)
        if squash is None or not getattr(term.loss, "from_logits", False):
            continue
        node = producers.get(term.output)
        layer = getattr(node, "layer", None)
        if layer is not None and (
            layer.kind == squash or getattr(layer, "activation", None) == squash
        ):
            diags.warning(
                term.span,
                f"`{term.loss.kind}` expects logits but the output "
                f"already goes through {squash} (expected "
                f"from_logits=false, or drop the {squash})",
            )
