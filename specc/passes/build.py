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
from specc.layers.base import Layer, ParamCount, Shape, fmt_shape
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
class _SharedLayer:
    """A graph's `let name = call`: its layer, bound once, and its first use once made."""

    declared: ast.SharedLayer
    layer: Layer | None  # None: its call failed (reported)
    first: ir.LayerNode | None = None
    first_input: Shape | None = None
    first_span: Span | None = None
    uses: int = 0


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
            verb = "merges" if layer_cls.named_inputs[1] is None else "takes"
            raise SpecError.at(
                call.name_span,
                f"`{call.name}` {verb} named tensors: write "
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
            state_shapes = layer.state_shapes(shapes)
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
        states = []
        for index, state_shape in enumerate(state_shapes):
            state_id = f"{node_id}_{layer.state_names[index]}"  # never a node id (no number)
            self.used_ids.add(state_id)
            states.append(ir.Value.model_construct(
                id=state_id, label=state_id, shape=tuple(state_shape), dtype="float32"))
        self.nodes.append(
            ir.LayerNode.model_construct(
                id=node_id,
                layer=layer,
                inputs=tuple(v.id for v in inputs),
                output=output,
                params=params,
                flops=flops,
                span=span,
                sharing=None,  # given, not defaulted: model_construct resolves defaults slowly
                states=tuple(states),
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
                if self._unbound_states(call.span, slot, None):
                    slot = POISON
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
        later |= {name.name: name.span for b in body.bindings for name in b.more}
        for value in inputs:
            self.used_ids.add(value.id)
        shared = self._shared_layers(body, [*names, *later])

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
                last = index == len(steps) - 1
                label = binding.target if last else None
                if isinstance(step, ast.Name):
                    slot = self._apply_shared(shared, step, slot, label, step.name in names)
                else:
                    step, initial = self._initial_states(step, resolve_name)
                    slot = self.apply(step, [slot, *initial], label)
                if self._unbound_states(step.span, slot, binding if last else None):
                    slot = POISON
            states = self._states(binding, slot)
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
            for name, state in zip(binding.more, states, strict=True):
                names[name.name] = state
                bound_at[name.name] = name.span
                uses.setdefault(id(state), 0)

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
        for entry in shared.values():
            if entry.uses == 0:
                declared = entry.declared
                self.report(
                    Diagnostic(
                        f"shared layer `{declared.name}` is never used (expected a step "
                        f"`-> {declared.name}` in a chain)",
                        declared.name_span,
                        "warning",
                    )
                )
        if any(isinstance(o, _Poison) for o in outputs):
            return None
        return outputs  # type: ignore[return-value]

    # --- several results (`seq, h, c = x -> lstm(32, return_state=true)`) ---------------

    def _initial_states(self, call: ast.Call, resolve_name) -> tuple[ast.Call, list[Slot]]:
        """A recurrent call's `initial_state=[h, c]`: the call without it, and the tensors it
        names, which the layer reads after its input (their shapes are the catalog's to
        check). Calls of other kinds keep the keyword, for `bind` to refuse."""
        given = [k for k in call.keywords if k.name == "initial_state"]
        kind = LAYERS.get(call.name)
        if not given or call.name in self.scope.blocks or kind is None or not kind.state_names:
            return call, []
        (keyword,) = given[:1]
        rest = call.model_copy(update={"keywords": [k for k in call.keywords if k is not keyword]})
        value = keyword.value
        items = value.items if isinstance(value, ast.ListExpr) else [value]
        names = [item for item in items if isinstance(item, ast.Name)]
        problem = None
        if call.repeat is not None:
            problem = (f"initial_state starts one layer (got `{call.name}(...) * N`)", call.span)
        elif not items or len(names) != len(items):
            wrong = next((item for item in items if not isinstance(item, ast.Name)), value)
            problem = (
                "initial_state takes the names of the tensors the layer starts from (expected "
                f"e.g. `initial_state=[{', '.join(kind.state_names)}]`, got "
                f"{'an empty list' if not items else type(wrong).__name__.lower()})",
                wrong.span,
            )
        if problem is not None:
            self.report(Diagnostic(*problem))
            return rest, [POISON]
        return rest, [resolve_name(name) for name in names]

    def _unbound_states(self, span: Span, slot: Slot, binding: ast.Binding | None) -> bool:
        """Whether the node just made gives states that nothing binds (reported): a layer
        with return_state must end a chain whose binding names them."""
        node = self.nodes[-1] if self.nodes and isinstance(slot, ir.Value) else None
        if not isinstance(node, ir.LayerNode) or not node.states or node.output.id != slot.id:
            return False
        if binding is not None and binding.more:
            return False
        results = _results(node)
        self.report(
            Diagnostic(
                f"`{node.layer.kind}` with return_state=true gives {len(results)} results "
                f"({', '.join(results)}) (expected a graph binding that names each, as in "
                f"`{', '.join(results)} = x -> {node.layer.kind}(...)`, at the end of its chain; "
                "got a step that binds only its output)",
                span,
            )
        )
        return True

    def _states(self, binding: ast.Binding, slot: Slot) -> list[Slot]:
        """The values bound to the binding's further names: the final states of the layer
        that ends its chain, named after them."""
        more = binding.more
        if not more:
            return []
        seen = {binding.target: binding.target_span}
        for name in more:
            if name.name in seen:
                self.report(Diagnostic(f"`{name.name}` is bound twice in one binding", name.span))
                return [POISON] * len(more)
            seen[name.name] = name.span
        if isinstance(slot, _Poison):
            return [POISON] * len(more)
        node = self.nodes[-1] if self.nodes and binding.steps else None
        states = node.states if isinstance(node, ir.LayerNode) and node.output.id == slot.id else ()
        if len(states) != len(more):
            if states:
                got = f"`{node.layer.kind}` gives {len(states) + 1}: " + ", ".join(_results(node))
            else:
                what = node.layer.kind if isinstance(node, ir.LayerNode) else (
                    node.block if node is not None else binding.source.name)
                got = f"`{what}` gives one result"
            self.report(
                Diagnostic(
                    f"{len(more) + 1} names bound to one chain (expected as many names as "
                    "results of its last layer: a recurrent layer with return_state=true gives "
                    f"its output and final states; got {got})",
                    more[0].span,
                )
            )
            return [POISON] * len(more)
        named = tuple(
            state.model_copy(update={"label": name.name})
            for state, name in zip(states, more, strict=True)
        )
        self.nodes[-1] = node.model_copy(update={"states": named})
        return list(named)

    # --- shared layers (`let name = call` in a graph) -------------------------------------

    def _shared_layers(self, body: ast.GraphBody, tensors: list[str]) -> dict[str, _SharedLayer]:
        """The graph's shared layers by name, each call bound to its layer (a block cannot be
        shared: each use of a block is a graph of its own)."""
        found: dict[str, _SharedLayer] = {}
        for declared in body.shared:
            name, call = declared.name, declared.call
            if name in found:
                self.report(
                    Diagnostic(
                        f"shared layer `{name}` is declared twice (expected one `let {name}` "
                        "in a graph)",
                        declared.name_span,
                    ).with_note("first declared here", found[name].declared.name_span)
                )
                continue
            if name in tensors:
                self.report(
                    Diagnostic(
                        f"`{name}` names both a shared layer and a tensor of this graph "
                        "(expected a name of its own for the layer)",
                        declared.name_span,
                    )
                )
            layer: Layer | None = None
            if call.name in self.scope.blocks:
                self.report(
                    Diagnostic(
                        f"`let {name}` shares a layer (got block `{call.name}`: expected a "
                        "layer call such as `dense(64)`; share the layers inside the block "
                        "one by one)",
                        call.name_span,
                    )
                )
            else:
                try:
                    layer = self._layer(call)
                except SpecError as error:
                    self.report_all(error)
            if layer is not None and layer.moves_state:
                self.report(
                    Diagnostic(
                        f"`{call.name}` cannot be shared: training moves its running "
                        "statistics at each use, in an order the frameworks do not agree on "
                        f"(expected a layer without such state; got `{call.name}`: apply a "
                        "`batchnorm()` of its own after each use)",
                        call.name_span,
                    )
                )
                layer = None
            found[name] = _SharedLayer(declared, layer)
        return found

    def _apply_shared(
        self,
        shared: dict[str, _SharedLayer],
        ref: ast.Name,
        value: Slot,
        label: str | None,
        is_tensor: bool = False,
    ) -> Slot:
        """Apply the shared layer `ref` names to `value`: its first use is a layer node as any
        other; a later one must take the same features (the same weights serve it), and is a
        node that reuses the first's weights."""
        entry = shared.get(ref.name)
        if entry is None:
            what = (f"`{ref.name}` is a tensor, not a layer: a step applies a layer"
                    if is_tensor else f"unknown layer `{ref.name}`")
            self.report(
                Diagnostic(
                    f"{what}{suggest(ref.name, list(shared))} (expected "
                    "a call such as `relu()`, or a layer that this graph shares"
                    + (f": {_listed(shared)})" if shared else
                       f", declared first: `let {ref.name} = dense(64)`)"),
                    ref.span,
                )
            )
            return POISON
        entry.uses += 1
        if isinstance(value, _Poison) or entry.layer is None:
            return POISON
        first = entry.first
        if first is not None and entry.first_input is not None and entry.first_span is not None:
            before, now = entry.first_input, value.shape
            if len(before) != len(now) or before[-1] != now[-1]:
                self.report(
                    Diagnostic(
                        f"shared layer `{ref.name}` takes {fmt_shape(now)} here, but "
                        f"{fmt_shape(before)} at its first use, line {entry.first_span.line}"
                        f" (expected the same rank and last dimension at every use: one set "
                        f"of weights serves them all; got {fmt_shape(now)})",
                        ref.span,
                    ).with_note(f"the first use of `{ref.name}`", entry.first_span)
                )
                return POISON
        output = self.add_layer(entry.layer, [value], ref.span, label)
        if isinstance(output, _Poison):
            return POISON
        node = self.nodes[-1]
        assert isinstance(node, ir.LayerNode) and node.output.id == output.id
        if first is None:
            entry.first, entry.first_input, entry.first_span = node, value.shape, ref.span
            sharing = ir.Sharing.model_construct(name=ref.name, first=node.id)
            self.nodes[-1] = node.model_copy(update={"sharing": sharing})
        else:
            sharing = ir.Sharing.model_construct(name=ref.name, first=first.id)
            none = dict.fromkeys(node.params, ParamCount())
            self.nodes[-1] = node.model_copy(update={"sharing": sharing, "params": none})
        return output

    def _merge(self, call: ast.Call, resolve_name) -> Slot:
        """A chain that starts with a layer of named tensors: a merge (`add(a, b)`) or a
        layer of several inputs (`attention(query, value, use_scale=true)`). The leading
        names, as many as the layer takes, are its tensors; the arguments after them bind
        to the layer's own, in order."""
        layer_cls = LAYERS.get(call.name)
        if call.name in self.scope.blocks or layer_cls is None or layer_cls.named_inputs is None:
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
        fewest, most = layer_cls.named_inputs
        tensors = list(itertools.takewhile(lambda arg: isinstance(arg, ast.Name), call.args))
        tensors = tensors if most is None else tensors[:most]
        rest = call.args[len(tensors) :]
        if most is None and rest:  # a merge takes tensors only
            arg = rest[0]
            self.report(
                Diagnostic(
                    f"`{call.name}` takes names of tensors (got {type(arg).__name__.lower()})",
                    arg.span,
                )
            )
            return POISON
        inputs: list[Slot] = [resolve_name(arg) for arg in tensors]
        if len(inputs) < fewest:
            self.report(Diagnostic(_named_inputs_message(call.name, fewest, most, len(inputs)),
                                   call.span))
            return POISON
        if any(isinstance(i, _Poison) for i in inputs):
            return POISON
        try:
            arguments = evaluate_call(call.model_copy(update={"args": rest}), self.env)
            layer = bind(layer_cls, arguments, "layer")
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


def _named_inputs_message(name: str, fewest: int, most: int | None, got: int) -> str:
    if most is None:  # a merge
        return f"`{name}` merges two or more tensors (got {got})"
    expected = str(fewest) if fewest == most else f"{fewest} to {most}"
    return (f"`{name}` takes named tensors first, e.g. `{name}(a, b)` "
            f"(expected {expected}, got {got})")


def _results(node: ir.LayerNode) -> list[str]:
    """The results of a layer that gives states, as a binding would name them."""
    return ["output", *node.layer.state_names]


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
