"""The two programs side by side: both models with the same weights, the same batches fed
to each, and what each computes compared (see specc.parity), with the loss, the optimizer
and the schedule of each program's own recipe.py.

Which module or layer holds a node, how it lays out its output and which activation its
program applies after it come from the generators' manifests (`Programs.transfer`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from specc import ir
from specc.backends.common.manifest import Manifest
from specc.backends.common.plan import has_regularization
from specc.parity.report import Check, Difference, compare
from specc.parity.transfer import Site, Transfer


@dataclass(frozen=True)
class Manifests:
    """Both programs' manifests, and the weight transfer between them."""

    torch: Manifest
    keras: Manifest
    weights: Transfer


@dataclass
class Programs:
    """Both generated programs: their model.py and recipe.py modules, and what their
    generators say the model.py files hold."""

    torch_model: ModuleType
    keras_model: ModuleType
    torch_recipe: ModuleType
    keras_recipe: ModuleType
    transfer: Manifests


class Comparison:
    """Both models, in float32 or float64, with the same weights, and the optimizer each
    program's recipe.py makes for its model."""

    def __init__(self, model: ir.Model, programs: Programs, steps: int, dtype: str,
                 copy_weights: Callable) -> None:
        """`copy_weights(transfer, net, keras_model)` makes the Keras model's weights
        PyTorch's."""
        import keras
        import tensorflow as tf
        import torch

        self.torch, self.tf, self.keras = torch, tf, keras
        self.model, self.programs, self.dtype = model, programs, dtype
        torch.manual_seed(model.train.seed)
        keras.utils.set_random_seed(model.train.seed)
        self.net = getattr(programs.torch_model, programs.transfer.torch.builder)().to(
            getattr(torch, dtype))
        keras.mixed_precision.set_global_policy(dtype)
        try:
            self.keras_model = getattr(programs.keras_model, programs.transfer.keras.builder)()
        finally:
            keras.mixed_precision.set_global_policy("float32")
        self.transfer = programs.transfer.weights
        copy_weights(self.transfer, self.net, self.keras_model)
        self.sites = self.transfer.sites
        self.torch_recipe, self.keras_recipe = programs.torch_recipe, programs.keras_recipe
        # A run of the spec's epochs of `steps` steps each, as the schedule sees it.
        self.steps_per_epoch, self.total_steps = steps, self.torch_recipe.epochs * steps
        self.torch_optimizer = self.torch_recipe.make_optimizer(self.net)
        self.keras_optimizer = self.keras_recipe.make_optimizer(self.keras_model)
        # compute_loss takes the model too where its layers add l1/l2 penalties.
        self.regularized = has_regularization(model)

    def cast(self, arrays: tuple) -> tuple:
        """Float arrays in this comparison's float type; token ids as they are."""
        return tuple(x.astype(self.dtype) if x.dtype.kind == "f" else x for x in arrays)

    # --- forward ------------------------------------------------------------------------

    def forward_check(self, title: str, inputs: tuple) -> list[Check]:
        """Layer by layer, then the outputs, in inference mode."""
        torch = self.torch
        per_tensor = self.dtype == "float32"  # rounding: see the module docstring
        captured: dict[str, object] = {}
        handles = []
        for site in self.sites:
            def keep(module, args, output, path: str = site.torch.name) -> None:
                # A shared layer's module runs once per use; Keras's `layer.output` is its
                # first call's, and so is the node's.
                captured.setdefault(path, output)

            handles.append(self.net.get_submodule(site.torch.name).register_forward_hook(keep))
        self.net.eval()
        try:
            with torch.no_grad():
                torch_outputs = self._torch_forward(inputs)
        finally:
            for handle in handles:
                handle.remove()
        names = [site.keras.name for site in self.sites]
        # A recurrent layer with return_state gives [output, *states]: its output is the node's.
        results = [self.keras_model.get_layer(n).output for n in names]
        probe = self.keras.Model(self.keras_model.input,
                                 [r[0] if isinstance(r, (list, tuple)) else r for r in results])
        keras_layers = probe(self._keras_inputs(inputs), training=False) if names else []
        if len(names) == 1:
            keras_layers = [keras_layers]  # a model of one output returns it bare
        layers = Check(f"{title}: layers")
        for site, keras_value in zip(self.sites, keras_layers, strict=True):
            value = self._torch_node_output(site, captured[site.torch.name])
            if value is None or tuple(value.shape) != tuple(keras_value.shape):
                continue  # the module's output is not the node's (a crop follows): skip it
            layers.differences.append(compare(site.torch.name, np.asarray(keras_value), value,
                                              per_tensor))
        outputs = Check(f"{title}: outputs")
        keras_outputs = self._keras_forward(inputs, training=False)
        labels = [self.model.graph.value(v).label for v in self.model.graph.outputs]
        for label, ours, theirs in zip(labels, keras_outputs, torch_outputs, strict=True):
            outputs.differences.append(compare(f"output {label}", np.asarray(ours),
                                               theirs.numpy(), per_tensor))
        return [layers, outputs]

    def _torch_node_output(self, site: Site, output) -> np.ndarray | None:
        """A hooked module's output as the node's output, channels-last, or None."""
        layer, held = site.node.layer, site.torch
        if isinstance(output, tuple):  # a recurrent layer: (sequence, final state)
            if getattr(layer, "return_sequences", False):
                output = output[0]
            elif getattr(layer, "return_state", False):  # the program's own helper
                output = self.programs.torch_model.with_states(output, every_step=False)[0]
            else:
                output = self.programs.torch_model.final_state(output)
        if held.activation_outside is not None:
            # The program's own expression, in its own model.py's names (F, torch).
            output = eval(held.activation_outside, vars(self.programs.torch_model), {"x": output})
        if held.layout == "first":
            output = output.permute(0, *range(2, output.dim()), 1)
        return output.detach().numpy()

    def _torch_forward(self, inputs: tuple) -> tuple:
        outputs = self.net(*(self.torch.from_numpy(x) for x in self.cast(inputs)))
        return outputs if isinstance(outputs, tuple) else (outputs,)

    def _keras_inputs(self, inputs: tuple):
        inputs = self.cast(inputs)
        return list(inputs) if len(inputs) > 1 else inputs[0]

    def _keras_forward(self, inputs: tuple, training: bool) -> tuple:
        outputs = self.keras_model(self._keras_inputs(inputs), training=training)
        return tuple(outputs) if isinstance(outputs, (list, tuple)) else (outputs,)

    # --- training steps -----------------------------------------------------------------

    def training_checks(self, batches: Sequence[tuple]) -> list[Check]:
        """A step per batch on both sides, gradients compared at each; then the weights.

        Both optimizers apply PyTorch's gradients (once compared): the weights then differ
        only where the update rules do. Were each side to apply its own, Adam would turn
        rounding in a gradient near zero (in the float32 loss) into a weight change of up
        to lr, since it divides by sqrt(v) + epsilon."""
        checks = []
        for step, (inputs, targets) in enumerate(batches):
            ours = self._keras_gradients(inputs, targets)
            theirs = self._in_keras_layout(self._torch_step(step, inputs, targets))
            checks.append(Check(f"gradients, step {step + 1} (float64)",
                                self._compare(ours, theirs)))
            self._keras_update(step, theirs)
        state = {k: v.detach().numpy() for k, v in self.net.state_dict().items()}
        weights = {layer.name: [np.asarray(w) for w in layer.weights]
                   for layer in self.keras_model.layers if layer.weights}
        checks.append(Check(f"weights after {len(batches)} steps (float64)",
                            self._compare(weights, self._in_keras_layout(state))))
        return checks

    def _torch_step(self, step: int, inputs: tuple, targets: tuple) -> dict[str, np.ndarray]:
        """train.py's step: forward, loss, backward, rate, clipping, optimizer step. Returns
        the gradients (before clipping) as a state dict holds weights; zeros where none."""
        torch, recipe = self.torch, self.torch_recipe
        self.net.train()
        outputs = self._torch_forward(inputs)
        loss = recipe.compute_loss(outputs, tuple(torch.from_numpy(y) for y in targets),
                                   *(self.net,) * self.regularized)
        loss.backward()
        gradients = {}
        for key, value in self.net.state_dict(keep_vars=True).items():
            grad = getattr(value, "grad", None)
            gradients[key] = np.zeros(value.shape) if grad is None else grad.numpy().copy()
        optimizer = self.torch_optimizer
        for group in optimizer.param_groups:
            group["lr"] = self._learning_rate(recipe, step)
        recipe.clip_gradients(self.net.parameters())
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return gradients

    def _keras_gradients(self, inputs: tuple, targets: tuple) -> dict[str, list]:
        """The gradients of train.py's loss in training mode, by layer name in get_weights
        order (None for the weights that do not train). The forward pass moves the batchnorm
        statistics, as PyTorch's does."""
        tf = self.tf
        trainable = self.keras_model.trainable_variables
        with tf.GradientTape() as tape:
            outputs = self._keras_forward(inputs, training=True)
            loss = self.keras_recipe.compute_loss(outputs, tuple(map(tf.constant, targets)),
                                                  *(self.keras_model,) * self.regularized)
        # An embedding's gradient comes as IndexedSlices (the rows looked up): made dense.
        gradients = {id(v): None if g is None else np.asarray(tf.convert_to_tensor(g))
                     for v, g in zip(trainable, tape.gradient(loss, trainable), strict=True)}
        return {layer.name: [gradients.get(id(w)) for w in layer.weights]
                for layer in self.keras_model.layers if layer.weights}

    def _keras_update(self, step: int, gradients: dict[str, list]) -> None:
        """train.py's optimizer step (rate, clipping, update) on gradients by layer name."""
        by_variable = {id(weight): value for name, values in gradients.items()
                       for weight, value in zip(self.keras_model.get_layer(name).weights,
                                                values, strict=True)}
        trainable = self.keras_model.trainable_variables
        optimizer = self.keras_optimizer
        optimizer.learning_rate = self._learning_rate(self.keras_recipe, step)
        optimizer.apply([self.tf.constant(by_variable[id(v)]) for v in trainable], trainable)

    def _learning_rate(self, recipe: ModuleType, step: int) -> float:
        """The rate of a recipe's schedule at `step` of the first epoch."""
        return recipe.learning_rate_at(0, step, self.steps_per_epoch, self.total_steps)

    def _in_keras_layout(self, state: dict[str, np.ndarray]) -> dict[str, list]:
        """A PyTorch state dict (of weights, or of their gradients) as Keras weights by
        layer name. A recurrent layer's frozen second bias has a zero gradient, so the
        gradient of Keras's one bias (the sum of PyTorch's two) is that of the first."""
        return self.transfer.to_keras(state)

    def _compare(self, ours: dict[str, list], theirs: dict[str, list]) -> list[Difference]:
        """Keras's values against PyTorch's, both by layer name; None in `ours` is skipped."""
        differences = []
        for name, references in theirs.items():
            weights = self.keras_model.get_layer(name).weights
            for weight, reference, value in zip(weights, references, ours[name], strict=True):
                if value is not None:
                    differences.append(compare(weight.path, value, reference))
        return differences
