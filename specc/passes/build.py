"""AST model → IR model: expand blocks and repeats, bind arguments, infer shapes.

This is where a model acquires meaning. Walking the body in order, each call is either a
block (instantiated with its arguments into a nested graph) or a layer (its arguments bound
to the layer's Pydantic model, its output shape and parameter count computed). Problems are
collected, not raised: a failed node poisons only the values that depend on it, so one run
reports every independent mistake. Errors inside a block carry a note at each call site.

IR nodes are made with `model_construct` from parts that are already validated (layers by
`bind`, shapes by the layers themselves); tests validate the IR of every spec once.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from math import prod

from specc import ast, ir
from specc.backends.registry import BACKEND_NAMES
from specc.errors import Diagnostic, Diagnostics, ShapeError, Span, SpecError
from specc.layers import FRAMEWORK_LAYER_NAMES, LAYERS
from specc.layers.base import Layer, ParamCount
from specc.layers.masking import ALIASES, ATTENTION, output_masked
from specc.limits import MAX_COUNT, MAX_LAYERS, MAX_NESTING
from specc.passes.bind import bind, lookup, match_arguments, plural, suggest
from specc.passes.evaluate import CallValue, Env, evaluate, evaluate_call, evaluate_count, show
from specc.passes.resolve import Scope, calls_in

_DTYPES: dict[str, ir.DType] = {"float": "float32", "int": "int64"}
# The dtype a layer's `accepts` names, and what it is called in messages.
_ACCEPTS = {"float": ("float32",), "int": ("int64",), "any": ("float32", "int64")}
_DTYPE_WORDS = {"float32": "float", "int64": "int"}


class _Poison:
    """Stands for a value whose computation failed; uses of it report nothing more."""


POISON = _Poison()
Slot = ir.Value | _Poison


@dataclass
class _Frame:
    """A block being expanded, for the notes that point at its call sites."""

    block: str
    call_span: Span


@dataclass
class Expansion:
    """What the expansion of a file's models has built so far, shared by the builders of
    all their bodies and blocks: it stops at MAX_LAYERS, and before that where a call is
    sure to go past it. Counted per file, not per model, so that a file of many models of
    100,000 layers each is no way around the limit."""

    layers: int = 0
    stopped: bool = False  # the limit was reported: every later call only fails
    least_layers: dict[str, int] = field(default_factory=dict)  # by block, see below


@dataclass
class GraphBuilder:
    """Builds one `ir.Graph` (a model body or one block instantiation)."""

    scope: Scope
    diags: Diagnostics
    env: Env
    frames: tuple[_Frame, ...] = ()
    expansion: Expansion = field(default_factory=Expansion)
    nodes: list[ir.Node] = field(default_factory=list)
    used_ids: set[str] = field(default_factory=set)
    counters: dict[str, int] = field(default_factory=dict)
    input_spans: dict[str, Span] = field(default_factory=dict)  # where model inputs are declared
    # Masked values whose mask came through a transformer_encoder (see `add_layer`).
    encoded_masks: set[str] = field(default_factory=set)

    # --- reporting ------------------------------------------------------------------------

    def report(self, diagnostic: Diagnostic) -> None:
        for frame in reversed(self.frames):
            diagnostic = diagnostic.with_note(
                f"in block `{frame.block}`, used here", frame.call_span
            )
        self.diags.add_once(diagnostic)

    def report_all(self, error: SpecError) -> None:
        for diagnostic in error.diagnostics:
            self.report(diagnostic)

    def new_id(self, base: str) -> str:
        """A fresh node id: `base_N`, N counting the uses of `base`. Leading underscores are
        dropped (a block `__import__` gives `import___1`): generated code names attributes
        and layers after ids, and Python mangles `self.__x` while TensorFlow refuses a root
        name scope starting with `_`."""
        base = base.lstrip("_") or "block"
        while True:
            self.counters[base] = self.counters.get(base, 0) + 1
            candidate = f"{base}_{self.counters[base]}"
            if candidate not in self.used_ids:
                self.used_ids.add(candidate)
                return candidate

    # --- applying calls -------------------------------------------------------------------

    def apply(self, call: ast.Call, inputs: list[Slot], label: str | None = None) -> Slot:
        """Apply `call` (repeated if `call * N`) to `inputs`; the result's label is `label`
        when given (the name a graph binds it to), else the node id."""
        if self.expansion.stopped:
            return POISON
        if any(isinstance(i, _Poison) for i in inputs):
            self._check_arguments(call)
            return POISON
        times = 1
        if call.repeat is not None:
            try:
                times = evaluate_count(call.repeat, self.env, "the repeat count")
            except SpecError as error:
                self.report_all(error)
                return POISON
            if times > MAX_LAYERS:
                self.report(
                    Diagnostic(
                        f"the repeat count is {times:,} (expected at most {MAX_LAYERS:,}, the "
                        "limit of layers in a file)",
                        call.repeat.span,
                    )
                )
                return POISON
        per_call = self._least_layers(call.name) if call.name in self.scope.blocks else 1
        if self.expansion.layers + per_call * times > MAX_LAYERS:
            self._stop(call.span, per_call * times)
            return POISON
        result: Slot = POISON
        for index in range(times):
            result = self._apply_once(call, inputs, label if index == times - 1 else None)
            if isinstance(result, _Poison):
                return POISON
            inputs = [result]
        return result

    def _stop(self, span: Span, adding: int) -> None:
        self.expansion.stopped = True
        total = f"at least {self.expansion.layers + adding:,}" if adding else "more"
        self.report(
            Diagnostic(
                f"the models of this file expand to {total} layers, blocks and repeats "
                f"included (expected at most {MAX_LAYERS:,}, the limit of layers in a file)",
                span,
            )
        )

    def _least_layers(self, name: str) -> int:
        """A lower bound of the layers that one use of block `name` adds, known before
        expanding it: repeats count where they are constants (a block parameter counts as
        1). Blocks that double what they use, level after level, are stopped here rather
        than after building a hundred thousand layers. Computed without recursion, capped
        just past the limit (the exact figure can have thousands of digits)."""
        known = self.expansion.least_layers
        blocks = self.scope.blocks
        started: set[str] = set()
        stack = [name]
        while stack:
            current = stack[-1]
            if current in known:
                stack.pop()
                continue
            started.add(current)
            calls = calls_in(blocks[current])
            waiting = [
                c.name
                for c in calls
                if c.name in blocks and c.name not in known and c.name not in started
            ]
            if waiting:
                stack += waiting
                continue
            total = 0
            for call in calls:
                each = known.get(call.name, 1) if call.name in blocks else 1  # 1: recursive
                total = min(total + each * self._constant_repeat(call), MAX_LAYERS + 1)
            known[current] = max(total, 1)
            stack.pop()
        return known[name]

    def _constant_repeat(self, call: ast.Call) -> int:
        """N of `call * N` where N is a constant expression, else 1."""
        if call.repeat is None:
            return 1
        try:
            count = evaluate(call.repeat, self.scope.constants)
        except SpecError:
            return 1
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            return 1
        return min(count, MAX_LAYERS + 1)

    def _check_arguments(self, call: ast.Call) -> None:
        """Report the mistakes in a call's arguments alone, for a call whose input failed:
        they do not depend on the input, and one run should report them all."""
        try:
            if call.repeat is not None:
                evaluate_count(call.repeat, self.env, "the repeat count")
            if call.name in self.scope.blocks:
                _bind_block_args(
                    self.scope.blocks[call.name], evaluate_call(call, self.env), self.scope
                )
            else:
                self._layer(call)
        except SpecError as error:
            self.report_all(error)

    def _layer(self, call: ast.Call) -> Layer:
        """The layer a (non-block) call names, its arguments bound; raises SpecError."""
        layer_cls = lookup(LAYERS, call.name, call.name_span, "layer", FRAMEWORK_LAYER_NAMES)
        if layer_cls.arity == "many":
            raise SpecError.at(
                call.name_span,
                f"`{call.name}` merges named tensors: write "
                f"it as the start of a graph chain, e.g. `{call.name}(a, b)`",
            )
        return bind(layer_cls, evaluate_call(call, self.env), "layer")

    def _apply_once(self, call: ast.Call, inputs: list[ir.Value], label: str | None) -> Slot:
        if call.name in self.scope.blocks:
            return self._apply_block(self.scope.blocks[call.name], call, inputs, label)
        try:
            layer = self._layer(call)
        except SpecError as error:
            self.report_all(error)
            return POISON
        return self.add_layer(layer, inputs, call.span, label)

    def add_layer(
        self, layer: Layer, inputs: list[ir.Value], span: Span, label: str | None
    ) -> Slot:
        """Check dtypes and shapes of `layer` on `inputs` and append its node."""
        name = layer.kind
        for value in inputs:
            if value.dtype not in _ACCEPTS[layer.accepts]:
                self.report(
                    Diagnostic(
                        f"`{name}` cannot take `{value.label}` of type {_DTYPE_WORDS[value.dtype]} "
                        f"(expected {layer.accepts}, got {_DTYPE_WORDS[value.dtype]})",
                        span,
                    )
                )
                return POISON
        shapes = [v.shape for v in inputs]
        try:
            shape = layer.output_shape(shapes)
            params = {backend: layer.params(shapes, backend) for backend in BACKEND_NAMES}
            masked = output_masked(layer, shapes, [v.masked for v in inputs])
            encoded = masked and (
                layer.kind == "transformer_encoder"
                or any(v.id in self.encoded_masks for v in inputs)
            )
            if layer.kind in ATTENTION and any(v.id in self.encoded_masks for v in inputs):
                # Keras's attention reads no mask there: it would attend to the padding.
                raise ShapeError(
                    "cannot attend under a padding mask that came through a "
                    "transformer_encoder: Keras's MultiHeadAttention no longer sees it there "
                    "(expected a mask from the embedding through no encoder, got one through "
                    "an encoder)"
                )
        except ShapeError as error:
            self.report(Diagnostic(f"{name}: {error}", span))
            return POISON
        flops = layer.flops(shapes, shape)
        too_large = _beyond_count_limit(shape, params, flops)
        if too_large is not None:
            self.report(Diagnostic(f"{name}: {too_large}", span))
            return POISON
        if self.expansion.layers >= MAX_LAYERS:
            self._stop(span, 0)
            return POISON
        self.expansion.layers += 1
        node_id = self.new_id(name)
        if encoded:
            self.encoded_masks.add(node_id)
        dtype = inputs[0].dtype if layer.produces == "same" else "float32"
        output = ir.Value.model_construct(
            id=node_id, label=label or node_id, shape=tuple(shape), dtype=dtype, masked=masked
        )
        self.nodes.append(
            ir.LayerNode.model_construct(
                id=node_id,
                layer=layer,
                inputs=tuple(v.id for v in inputs),
                output=output,
                params=params,
                flops=flops,
                span=span,
            )
        )
        return output

    def _apply_block(
        self, block: ast.Block, call: ast.Call, inputs: list[ir.Value], label: str | None
    ) -> Slot:
        if any(frame.block == block.name for frame in self.frames):
            return POISON  # a recursive block: `resolve` has reported it; expanding never ends
        if len(self.frames) >= MAX_NESTING:
            self.report(
                Diagnostic(
                    f"blocks nest more than {MAX_NESTING} levels deep here (expected at most "
                    f"{MAX_NESTING}, the limit of nesting)",
                    call.span,
                )
            )
            return POISON
        if len(inputs) != 1:
            self.report(
                Diagnostic(f"block `{block.name}` takes one input (got {len(inputs)})", call.span)
            )
            return POISON
        if inputs[0].masked:
            self.report(
                Diagnostic(
                    f"block `{block.name}` cannot take the masked sequence "
                    f"`{inputs[0].label}`: a padding mask does not enter blocks (expected a "
                    "value without mask_zero padding, got a masked one)",
                    call.span,
                )
            )
            return POISON
        try:
            args = _bind_block_args(block, evaluate_call(call, self.env), self.scope)
        except SpecError as error:
            self.report_all(error)
            return POISON
        child = GraphBuilder(
            self.scope,
            self.diags,
            self.scope.constants.child(args),
            (*self.frames, _Frame(block.name, call.span)),
            self.expansion,
        )
        (value,) = inputs
        body_input = value.model_copy(update={"label": "in", "id": "in"})
        child.used_ids.add("in")
        outputs = child.build_body(block.body, [body_input], result_name="out")
        if outputs is None:
            return POISON
        if outputs[0].masked:
            self.report(
                Diagnostic(
                    f"block `{block.name}` returns a masked sequence: a padding mask does not "
                    "leave blocks (expected its output to have no mask_zero padding, got a "
                    "masked one)",
                    call.span,
                )
            )
            return POISON
        body = ir.Graph.model_construct(
            inputs=(body_input,), nodes=tuple(child.nodes), outputs=tuple(o.id for o in outputs)
        )
        node_id = self.new_id(block.name)
        output = ir.Value.model_construct(
            id=node_id, label=label or node_id, shape=outputs[0].shape, dtype=outputs[0].dtype
        )
        self.nodes.append(
            ir.BlockNode.model_construct(
                id=node_id,
                block=block.name,
                args=args,
                body=body,
                inputs=(value.id,),
                output=output,
                span=call.span,
            )
        )
        return output

    # --- bodies ---------------------------------------------------------------------------

    def build_body(
        self,
        body: ast.Body,
        inputs: list[ir.Value],
        result_name: str | None = None,
        output_names: list[ast.Name] | None = None,
    ) -> list[ir.Value] | None:
        """Build a sequence or graph body over `inputs`; the body's output values, or None
        when something failed (already reported)."""
        if isinstance(body, ast.SequenceBody):
            if len(inputs) != 1:
                self.report(
                    Diagnostic(
                        f"`layers` needs exactly one input (got {len(inputs)}: "
                        f"{', '.join(v.label for v in inputs)}); use `graph` for several",
                        body.span,
                    )
                )
                return None
            if not body.calls:
                self.report(Diagnostic("empty body (expected at least one layer)", body.span))
                return None
            slot: Slot = inputs[0]
            for call in body.calls:
                slot = self.apply(call, [slot])
            return None if isinstance(slot, _Poison) else [slot]
        outputs = self._build_graph(body, inputs, result_name, output_names)
        if outputs is not None:
            self._refuse_shared_attention_masks()
        return outputs

    def _refuse_shared_attention_masks(self) -> None:
        """Keras's MultiHeadAttention clears the mask of the tensor it attends over, so a
        masked value that attention reads can feed no other layer: that one would see the
        mask or not depending on which Keras ran first. A dropout or an identity returns
        its input tensor itself at inference, so their outputs count as the same value."""
        root: dict[str, str] = {}
        for node in self.nodes:
            aliasing = isinstance(node, ir.LayerNode) and node.layer.kind in ALIASES
            root[node.output.id] = root.get(node.inputs[0], node.inputs[0]) if aliasing \
                else node.output.id
        readers: dict[str, set[str]] = {}
        for node in self.nodes:
            for value_id in node.inputs:
                group = root.get(value_id, value_id)
                if root[node.output.id] != group:  # an alias is the value itself
                    readers.setdefault(group, set()).add(node.id)
        values = {node.output.id: node.output for node in self.nodes}
        for node in self.nodes:
            if not (isinstance(node, ir.LayerNode) and node.layer.kind in ATTENTION):
                continue
            group = root.get(node.inputs[0], node.inputs[0])
            value = values.get(group)
            if value is None or not value.masked or len(readers[group]) < 2:
                continue
            self.report(
                Diagnostic(
                    f"{node.layer.kind} cannot share the masked value `{value.label}` with "
                    "other layers: Keras's attention clears the mask of its input, and they "
                    f"would lose it (expected `{value.label}` to feed this layer only, got "
                    f"{len(readers[group])} layers)",
                    node.span,
                )
            )

    def _build_graph(
        self,
        body: ast.GraphBody,
        inputs: list[ir.Value],
        result_name: str | None,
        output_names: list[ast.Name] | None,
    ) -> list[ir.Value] | None:
        names: dict[str, Slot] = {v.label: v for v in inputs}
        bound_at: dict[str, Span] = {}
        uses: dict[int, int] = {id(v): 0 for v in inputs}
        later = {b.target: b.target_span for b in body.bindings}
        for value in inputs:
            self.used_ids.add(value.id)

        def resolve_name(ref: ast.Name) -> Slot:
            if ref.name in names:
                slot = names[ref.name]
                uses[id(slot)] = uses.get(id(slot), 0) + 1
                return slot
            if ref.name in later:
                self.report(
                    Diagnostic(
                        f"`{ref.name}` is used before it is bound (graphs are acyclic: a name can "
                        f"only use names bound above it; `{ref.name}` is bound at line "
                        f"{later[ref.name].line})",
                        ref.span,
                    )
                )
            else:
                hint = suggest(ref.name, list(names))
                self.report(
                    Diagnostic(
                        f"unknown name `{ref.name}`{hint} (expected one of: {_listed(names)})",
                        ref.span,
                    )
                )
            return POISON

        for binding in body.bindings:
            if isinstance(binding.source, ast.Name):
                slot = resolve_name(binding.source)
                steps = binding.steps
            else:
                slot = self._merge(binding.source, resolve_name)
                steps = binding.steps
            for index, step in enumerate(steps):
                is_last = index == len(steps) - 1
                slot = self.apply(step, [slot], binding.target if is_last else None)
            if isinstance(slot, ir.Value) and slot.label != binding.target:
                slot = self._relabel(slot, binding.target)
            previous = names.get(binding.target)
            # An input re-bound unused is reported below, as an input never used.
            if (
                isinstance(previous, ir.Value)
                and uses.get(id(previous), 0) == 0
                and binding.target in bound_at
            ):
                self.report(
                    Diagnostic(
                        f"`{binding.target}` is re-bound before it is used",
                        bound_at[binding.target],
                        "warning",
                    )
                )
            names[binding.target] = slot
            bound_at[binding.target] = binding.target_span
            uses.setdefault(id(slot), 0)

        if result_name is not None:  # a block: bind `out`
            if result_name not in names:
                self.report(
                    Diagnostic(
                        f"a graph block must bind `{result_name}` (expected `{result_name} = ...`)",
                        body.span,
                    )
                )
                return None
            uses[id(names[result_name])] = uses.get(id(names[result_name]), 0) + 1
            outputs: list[Slot] = [names[result_name]]
        else:
            outputs = [resolve_name(ref) for ref in output_names or []]

        for value in inputs:
            if uses.get(id(value), 0) == 0 and value.label != "in":
                self.report(
                    Diagnostic(
                        f"input `{value.label}` is never used", self.input_spans.get(value.label)
                    )
                )
        for name, slot in names.items():
            if isinstance(slot, ir.Value) and uses.get(id(slot), 0) == 0 and name in bound_at:
                self.report(
                    Diagnostic(f"`{name}` is bound but never used", bound_at[name], "warning")
                )
        if any(isinstance(o, _Poison) for o in outputs):
            return None
        return outputs  # type: ignore[return-value]

    def _merge(self, call: ast.Call, resolve_name) -> Slot:
        layer_cls = LAYERS.get(call.name)
        if call.name in self.scope.blocks or layer_cls is None or layer_cls.arity != "many":
            what = "block" if call.name in self.scope.blocks else "layer"
            if layer_cls is None and call.name not in self.scope.blocks:
                self.report(
                    Diagnostic(
                        f"a chain starts with a name or a merge such as `add(a, b)` (got "
                        f"unknown `{call.name}`"
                        f"{suggest(call.name, list(LAYERS), FRAMEWORK_LAYER_NAMES)})",
                        call.name_span,
                    )
                )
            else:
                self.report(
                    Diagnostic(
                        f"a chain starts with a name or a merge such as `add(a, b)` (got {what} "
                        f"`{call.name}`: write `x -> {call.name}(...)`)",
                        call.name_span,
                    )
                )
            return POISON
        inputs: list[Slot] = []
        for arg in call.args:
            if not isinstance(arg, ast.Name):
                self.report(
                    Diagnostic(
                        f"`{call.name}` takes names of tensors (got {type(arg).__name__.lower()})",
                        arg.span,
                    )
                )
                return POISON
            inputs.append(resolve_name(arg))
        if len(inputs) < 2:
            self.report(
                Diagnostic(
                    f"`{call.name}` merges two or more tensors (got {len(inputs)})", call.span
                )
            )
            return POISON
        if any(isinstance(i, _Poison) for i in inputs):
            return POISON
        try:
            keywords = CallValue(
                call.name,
                [],
                evaluate_call(call.model_copy(update={"args": []}), self.env).keywords,
                call.span,
                call.name_span,
            )
            layer = bind(layer_cls, keywords, "layer")
        except SpecError as error:
            self.report_all(error)
            return POISON
        return self.add_layer(layer, inputs, call.span, None)  # type: ignore[arg-type]

    def _relabel(self, value: ir.Value, label: str) -> ir.Value:
        """Give the value produced last a graph name (its node was labelled by id)."""
        relabelled = value.model_copy(update={"label": label})
        node = self.nodes[-1] if self.nodes else None
        if node is not None and node.output.id == value.id:
            self.nodes[-1] = node.model_copy(update={"output": relabelled})
            return relabelled
        return value  # an alias such as `b = a`: the tensor keeps its first name


def _listed(names, most: int = 20) -> str:
    """Names for a message, the first `most` of them: a graph may bind thousands."""
    shown = list(itertools.islice(names, most))
    more = len(names) - len(shown)
    return ", ".join(shown) + (f", … ({more} more)" if more > 0 else "")


def _beyond_count_limit(
    shape: tuple[int | None, ...], params: dict[str, ParamCount], flops: int | None
) -> str | None:
    """Why a layer is too large for any framework (a count beyond int64), or None."""
    elements = prod(d for d in shape if d is not None)
    counts = {
        "elements in its output": elements,
        "parameters": max(count.total for count in params.values()),
        "FLOPs": flops or 0,
    }
    for what, count in counts.items():
        if count > MAX_COUNT:
            return (
                f"too many {what} (expected at most 2**63 - 1 = {MAX_COUNT:,}, the limit of "
                f"counts, got a number of {count.bit_length()} bits)"
            )
    return None


def _bind_block_args(block: ast.Block, call: CallValue, scope: Scope) -> dict[str, object]:
    params = [p.name for p in block.params]
    given, problems = match_arguments(call, params, "block", "parameter")
    problems = [p.with_note("the block is defined here", block.span) for p in problems]
    values: dict[str, object] = {name: arg.value for name, arg in given.items()}
    for param in block.params:
        if param.name in values:
            continue
        if param.default is None:
            problems.append(
                Diagnostic(
                    f"block `{block.name}` is missing its argument `{param.name}` (expected "
                    f"{plural(len(params), 'argument')}: {', '.join(params)})",
                    call.span,
                ).with_note("the block is defined here", block.span)
            )
            continue
        try:
            values[param.name] = evaluate(param.default, scope.constants.child(values))
        except SpecError as error:
            problems += error.diagnostics
    if problems:
        raise SpecError(problems)
    return values


def build_inputs(model: ast.Model, env: Env, diags: Diagnostics) -> list[ir.Value]:
    inputs: list[ir.Value] = []
    seen: dict[str, Span] = {}
    for item in model.inputs:
        if item.name in seen:
            diags.items.append(
                Diagnostic(f"input `{item.name}` is declared twice", item.span).with_note(
                    "first declared here", seen[item.name]
                )
            )
            continue
        seen[item.name] = item.span
        if item.dtype not in _DTYPES:
            diags.error(
                item.dtype_span,
                f"unknown input type `{item.dtype}` (expected float or "
                f"int{suggest(item.dtype, list(_DTYPES))})",
            )
            continue
        dims: list[int | None] = []
        for dim in item.dims:
            if isinstance(dim, ast.Unknown):
                dims.append(None)
                continue
            try:
                value = evaluate(dim, env)
            except SpecError as error:
                diags.extend(error.diagnostics)
                break
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                diags.error(
                    dim.span, f"a dimension must be a positive integer or `?` (got {show(value)})"
                )
                break
            dims.append(value)
        else:
            if not dims:
                diags.error(
                    item.span,
                    "an input needs at least one dimension (expected e.g. float[4], got float[])",
                )
                continue
            inputs.append(
                ir.Value.model_construct(
                    id=item.name, label=item.name, shape=tuple(dims), dtype=_DTYPES[item.dtype]
                )
            )
    if not model.inputs:
        diags.error(
            model.name_span,
            f"model `{model.name}` has no input (expected e.g. `input x: float[4]`)",
        )
    return inputs
