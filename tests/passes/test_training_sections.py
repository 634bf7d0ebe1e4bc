"""Loss, optimizer, metrics and `train { }`: bound, validated, reported at the argument."""

from __future__ import annotations

CLASSIFIER = """
model m {{
    input x: float[4]
    layers {{
        dense(8, activation=relu)
        {last}
    }}
{sections}
}}
"""


def classifier(sections: str, last: str = "dense(3)") -> str:
    indented = "\n".join(f"    {line.strip()}" for line in sections.strip().splitlines())
    return CLASSIFIER.format(last=last, sections=indented)


def two_outputs(losses: str) -> str:
    return f"""
model m {{
    input x: float[4]
    graph {{
        h = x -> dense(8)
        logits = h -> dense(3)
        value = h -> dense(1)
    }}
    output logits, value
    {losses}
}}
"""


def test_sections_reach_the_ir(check):
    model = check(classifier("""
        loss cross_entropy(label_smoothing=0.1)
        optimizer sgd(lr=0.1, momentum=0.9, schedule=step(5, gamma=0.5))
        metrics accuracy, top_k_accuracy(k=2)
        train {
            backend = tensorflow
            epochs = 3
            batch_size = 16
            grad_clip = 1.0
            early_stopping(patience=2)
        }
    """)).model
    assert model.losses[0].loss.label_smoothing == 0.1
    assert (model.optimizer.kind, model.optimizer.momentum) == ("sgd", 0.9)
    assert (model.optimizer.schedule.kind, model.optimizer.schedule.every) == ("step", 5)
    assert [m.kind for m in model.metrics] == ["accuracy", "top_k_accuracy"]
    assert model.metrics[1].k == 2
    train = model.train
    assert (train.backend, train.epochs, train.batch_size, train.grad_clip) == \
        ("tensorflow", 3, 16, 1.0)
    assert train.early_stopping.patience == 2


def test_defaults_when_sections_are_left_out(check):
    model = check(classifier("")).model
    assert model.optimizer.kind == "adam" and model.optimizer.lr == 1e-3
    assert model.train.backend == "torch" and model.metrics == ()


def test_unknown_loss_suggests_one(check):
    checked = check(classifier("loss crossentropy()"))
    error = checked.error("unknown loss `crossentropy`")
    assert "did you mean `cross_entropy`?" in error.message
    assert error.span.line == checked.line("loss crossentropy")


def test_keras_argument_name_gets_a_hint(check):
    checked = check(classifier("optimizer adam(learning_rate=0.1)"))
    assert "did you mean `lr`?" in checked.error("has no argument `learning_rate`").message


def test_out_of_range_value_points_at_the_argument(check):
    checked = check(classifier("optimizer adam(lr=-1)"))
    error = checked.error("invalid argument `lr` of optimizer `adam`")
    assert "got -1" in error.message
    assert error.span.column == checked.source.splitlines()[error.span.line - 1].index("-1") + 1


def test_schedule_must_be_a_known_schedule(check):
    checked = check(classifier("optimizer sgd(schedule=cosinus())"))
    assert "did you mean `cosine`?" in checked.error("unknown schedule `cosinus`").message


def test_a_call_where_a_value_belongs(check):
    checked = check(classifier("optimizer sgd(lr=cosine())"))
    checked.error("argument `lr` of `sgd` takes a value, not a call")


def test_argument_given_twice(check):
    checked = check(classifier("optimizer sgd(0.1, lr=0.2)"))
    checked.error("argument `lr` of `sgd` is given twice, by position and by name")
    checked = check(classifier("optimizer sgd(lr=0.1, lr=0.2)"))
    checked.error("argument `lr` is given twice")


def test_metrics_bare_and_called(check):
    model = check(classifier("loss cross_entropy()\nmetrics accuracy, f1(), precision")).model
    assert [m.kind for m in model.metrics] == ["accuracy", "f1", "precision"]
    checked = check(classifier("metrics acuracy"))
    assert "did you mean `accuracy`?" in checked.error("unknown metric `acuracy`").message


def test_per_output_losses(check):
    model = check(two_outputs("loss logits: cross_entropy(), value: mse(weight=0.5)")).model
    by_output = {term.output: term.loss for term in model.losses}
    labels = {n.output.id: n.output.label for n in model.graph.nodes}
    assert {labels[k]: v.kind for k, v in by_output.items()} == \
        {"logits": "cross_entropy", "value": "mse"}
    assert [t.loss.weight for t in model.losses] == [1.0, 0.5]


def test_one_loss_for_two_outputs_is_an_error(check):
    checked = check(two_outputs("loss mse()"))
    checked.error("the model has 2 outputs: give a loss per output")


def test_a_loss_for_something_that_is_not_an_output(check):
    checked = check(two_outputs("loss logits: cross_entropy(), h: mse()"))
    checked.error("loss for `h`, which is not an output")


def test_an_output_without_a_loss(check):
    checked = check(two_outputs("loss logits: cross_entropy()"))
    checked.error("no loss for output value")


def test_softmax_into_a_from_logits_loss_warns(check):
    for last in ("softmax()", "dense(3, activation=softmax)"):
        checked = check(classifier("loss cross_entropy()", last=last))
        warning = checked.warning("`cross_entropy` expects logits")
        assert "from_logits=false" in warning.message
        assert warning.span.line == checked.line("loss cross_entropy")
        assert checked.program is not None
    checked = check(classifier("loss binary_cross_entropy()", last="dense(1, activation=sigmoid)"))
    checked.warning("already goes through sigmoid")


def test_no_warning_when_the_loss_expects_probabilities(check):
    checked = check(classifier("loss cross_entropy(from_logits=false)", last="softmax()"))
    assert checked.warnings == []
    checked = check(classifier("loss cross_entropy()"))
    assert checked.warnings == []


def test_train_settings_are_validated(check):
    checked = check(classifier("""
        train {
            backend = jax
            epochs = 0
            batch = 32
            device = "tpu"
            precision = fp8
        }
    """))
    assert "got `jax`" in checked.error("invalid argument `backend`").message
    checked.error("invalid argument `epochs`")
    assert "did you mean `batch_size`?" in checked.error("has no argument `batch`").message
    checked.error("`device`")
    checked.error("invalid argument `precision`")
    lines = sorted(d.span.line for d in checked.errors)
    assert lines == [checked.line(key) for key in ("jax", "epochs", "batch", "tpu", "fp8")]


def test_train_setting_given_twice(check):
    checked = check(classifier("train {\n epochs = 1\n epochs = 2\n}"))
    error = checked.error("train setting `epochs` is given twice")
    assert error.span.line == checked.line("epochs = 2")


def test_train_call_settings(check):
    model = check(classifier(
        'loss mse()\ntrain {\n checkpoint(every=2, keep=1)\n device = "cuda:1"\n}')).model
    assert (model.train.checkpoint.every, model.train.checkpoint.keep) == (2, 1)
    assert model.train.device == "cuda:1"
    checked = check(classifier("train {\n early_stopping(patience=-1)\n}"))
    checked.error("patience")


def test_every_section_is_checked_even_when_the_body_fails(check):
    checked = check(classifier("""
        loss mse2()
        optimizer adamm()
        metrics acuracy
        train {
            epochs = -1
        }
    """, last="dens(3)"))
    assert len(checked.errors) == 5


def test_every_framework_name_points_at_a_kind_specc_has():
    from specc.training import FRAMEWORK_NAMES, FRAMEWORK_NOTES, LOSSES, METRICS, OPTIMIZERS

    kinds = {*LOSSES, *METRICS, *OPTIMIZERS}
    assert set(FRAMEWORK_NAMES.values()) <= kinds
    assert not (set(FRAMEWORK_NAMES) | set(FRAMEWORK_NOTES)) & kinds  # none shadows a kind


def test_tensorboard_is_true_or_false_and_anything_else_is_located(check):
    def train_with(setting: str) -> str:
        return classifier(f"loss cross_entropy()\ntrain {{ {setting} }}")

    assert check(train_with("tensorboard = false")).model.train.tensorboard is False
    assert check(train_with("epochs = 2")).model.train.tensorboard is True
    for value in ("1", '"no"', "none"):
        checked = check(train_with(f"tensorboard = {value}"))
        error = checked.error("tensorboard", "expected a valid boolean")
        assert error.span.line == checked.line("tensorboard")
        line = checked.source.splitlines()[error.span.line - 1]
        assert error.span.column == line.index(value) + 1


def test_the_keras_losses_bind_with_their_defaults(check):
    model = check(two_outputs(
        "loss logits: categorical_focal(gamma=3), value: binary_focal(alpha=0.3)")).model
    focal, binary = (term.loss for term in model.losses)
    assert (focal.gamma, focal.alpha, focal.from_logits) == (3.0, 0.25, True)
    assert (binary.gamma, binary.alpha, binary.from_logits) == (2.0, 0.3, True)
    assert check(classifier("loss binary_focal(alpha=none)", last="dense(1)")).model \
        .losses[0].loss.alpha is None
    smoothed = check(classifier("loss categorical_cross_entropy(label_smoothing=0.2)")).model
    assert smoothed.losses[0].loss.label_smoothing == 0.2
    checked = check(classifier("loss binary_focal(alpha=1.5)", last="dense(1)"))
    error = checked.error("alpha")
    assert error.span.line == checked.line("loss binary_focal")


def test_the_keras_optimizers_bind_with_torch_s_defaults(check):
    nadam = check(classifier("loss cross_entropy()\noptimizer nadam()")).model.optimizer
    assert (nadam.lr, nadam.beta1, nadam.beta2, nadam.epsilon, nadam.weight_decay,
            nadam.momentum_decay) == (2e-3, 0.9, 0.999, 1e-8, 0.0, 4e-3)
    adamax = check(classifier("loss cross_entropy()\noptimizer adamax(beta2=0.99)")).model
    assert (adamax.optimizer.lr, adamax.optimizer.beta2) == (2e-3, 0.99)


def test_each_keras_loss_allows_the_metrics_of_its_task(check):
    assert check(classifier("loss categorical_cross_entropy()\nmetrics accuracy, "
                            "top_k_accuracy(k=2), f1")).program is not None
    assert check(classifier("loss hinge()\nmetrics accuracy, precision",
                            last="dense(1)")).program is not None
    checked = check(classifier("loss squared_hinge()\nmetrics top_k_accuracy", last="dense(1)"))
    assert ("expected one of accuracy, auc, balanced_accuracy, confusion_matrix, f1, mean_iou, "
            "precision, recall, got top_k_accuracy") in checked.error(
        "metric top_k_accuracy does not fit the squared_hinge loss").message
    checked = check(classifier("loss poisson()\nmetrics accuracy"))
    assert "expected one of mae, mape, mse, r2, rmse, got accuracy" in checked.error(
        "metric accuracy does not fit the poisson loss").message


def test_softmax_into_a_categorical_loss_that_expects_logits_warns(check):
    for loss in ("categorical_cross_entropy", "categorical_focal"):
        checked = check(classifier(f"loss {loss}()", last="softmax()"))
        assert "from_logits=false" in checked.warning(f"`{loss}` expects logits").message
    checked = check(classifier("loss binary_focal()", last="dense(1, activation=sigmoid)"))
    checked.warning("already goes through sigmoid")
