"""Training sections checked against the rest of the model: each mistake is a check error at
its own place (not a compile error at 1:1), and all of them come out of one run."""

from __future__ import annotations

from specc.passes.training_check import metric_task, monitor, plateau_monitor, splits

IMAGE_CLASSIFIER = """
model m {
    input image: float[8, 8, 1]
    layers {
        flatten()
        dense(10)
    }
    loss cross_entropy()
    optimizer adam()
    metrics accuracy
    data digits(validation=0.1, test=0.2)
    augment {
        random_flip(horizontal)
    }
    train {
        epochs = 2
    }
}
"""


def column_of(checked, error, text: str) -> bool:
    """Whether `error` points at the first `text` on its line."""
    line = checked.source.splitlines()[error.span.line - 1]
    return error.span.column == line.index(text) + 1


def test_a_metric_that_does_not_fit_the_loss(check):
    checked = check(IMAGE_CLASSIFIER.replace("loss cross_entropy()", "loss mse()")
                    .replace("dense(10)", "dense(64)"))
    error = checked.error("metric accuracy does not fit the mse loss on `dense_1`")
    assert "expected one of mae, mape, mse, r2, rmse, got accuracy" in error.message
    assert error.span.line == checked.line("metrics accuracy")
    assert column_of(checked, error, "accuracy")


def test_a_monitor_that_cannot_exist_without_validation(check):
    checked = check(IMAGE_CLASSIFIER.replace("validation=0.1, ", "").replace(
        "epochs = 2", "early_stopping(monitor=val_accuracy)"))
    error = checked.error("early_stopping monitors a value", "no validation split")
    assert "expected one of loss, got 'val_accuracy'" in error.message
    assert error.span.line == checked.line("early_stopping")
    assert column_of(checked, error, "val_accuracy")


def test_an_unknown_monitor(check):
    checked = check(IMAGE_CLASSIFIER.replace(
        "epochs = 2", "early_stopping(monitor=val_f1)"))
    error = checked.error("early_stopping monitors a value this model does not report")
    assert "expected one of loss, val_loss, val_accuracy, got 'val_f1'" in error.message
    assert column_of(checked, error, "val_f1")


def test_an_unknown_plateau_monitor(check):
    checked = check(IMAGE_CLASSIFIER.replace(
        "adam()", "adam(schedule=plateau(patience=2, monitor=val_acc))"))
    error = checked.error("the plateau schedule monitors a value this model does not report")
    assert "expected one of loss, val_loss, val_accuracy, got 'val_acc'" in error.message
    assert error.span.line == checked.line("optimizer adam")
    assert column_of(checked, error, "val_acc")


def test_a_plateau_monitor_that_cannot_exist_without_validation(check):
    checked = check(IMAGE_CLASSIFIER.replace("validation=0.1, ", "").replace(
        "adam()", "adam(schedule=plateau(monitor=val_accuracy))"))
    error = checked.error("the plateau schedule monitors a value", "no validation split")
    assert "expected one of loss, got 'val_accuracy'" in error.message
    assert column_of(checked, error, "val_accuracy")


def test_the_plateau_monitor_and_its_mode(check):
    def watched(schedule: str, text: str = IMAGE_CLASSIFIER):
        return plateau_monitor(check(text.replace("adam()", f"adam(schedule={schedule})")).model)

    assert watched("plateau()") == ("val_loss", "min")
    assert watched("plateau(monitor=val_accuracy)") == ("val_accuracy", "max")
    assert watched("plateau(monitor=loss)") == ("loss", "min")
    assert watched("cosine()") is None
    # without validation data the default val_loss means the training loss, as for best.pt
    assert watched("plateau()", IMAGE_CLASSIFIER.replace("validation=0.1, ", "")) == \
        ("loss", "min")


def test_a_random_crop_that_does_not_cut_back_to_the_input(check):
    checked = check(IMAGE_CLASSIFIER.replace("random_flip(horizontal)",
                                             "random_crop(10, padding=2)"))
    error = checked.error("random_crop must cut windows of the input's height and width")
    assert "expected [8, 8], got [10, 10]" in error.message
    assert error.span.line == checked.line("random_crop")
    assert column_of(checked, error, "10")


def test_training_sections_without_a_loss(check):
    checked = check(IMAGE_CLASSIFIER.replace("    loss cross_entropy()\n", "")
                    .replace("    metrics accuracy\n", ""))
    error = checked.error("model `m` has a `optimizer` section but no `loss` to train with")
    assert error.span.line == checked.line("model m")
    assert column_of(checked, error, "m {")


def test_an_architecture_alone_needs_no_loss(check):
    checked = check("""
    model m {
        input x: float[4]
        layers {
            dense(3)
        }
    }
    """)
    assert not checked.errors
    assert checked.model.losses == ()


def test_every_such_mistake_in_one_run(check):
    checked = check(IMAGE_CLASSIFIER.replace("metrics accuracy", "metrics accuracy, mae")
                    .replace("random_flip(horizontal)", "random_crop(6)")
                    .replace("epochs = 2", "early_stopping(monitor=val_precision)"))
    messages = [d.message for d in checked.errors]
    assert len(messages) == 3, messages
    assert checked.error("metric mae").span.line == checked.line("metrics accuracy, mae")
    assert checked.error("random_crop").span.line == checked.line("random_crop")
    assert checked.error("early_stopping").span.line == checked.line("early_stopping")


def test_what_the_generators_read(check):
    model = check(IMAGE_CLASSIFIER.replace(
        "epochs = 2", "early_stopping(monitor=val_accuracy)")).model
    assert metric_task(model) == "classes"
    assert splits(model) == (True, True)
    assert monitor(model) == ("val_accuracy", "max")
    no_validation = check(IMAGE_CLASSIFIER.replace("validation=0.1, ", "")).model
    assert monitor(no_validation) == ("loss", "min")


RESIDUAL = """
block res(n) {
    h = in -> dense(n, activation=relu) -> dense(n)
    out = add(in, h) -> relu()
}

model m {
    input x: float[6]
    graph {
        first = x -> dense(8) -> batchnorm()
        mid = first -> res(8)
        logits = mid -> dense(3)
    }
    output logits
    loss cross_entropy()
    train {
        freeze = FROZEN
    }
}
"""


def frozen(check, names: str):
    return check(RESIDUAL.replace("FROZEN", names))


def test_freeze_takes_ids_graph_names_blocks_and_dotted_names(check):
    assert frozen(check, "[dense_1]").model.frozen == (("dense_1",),)
    assert frozen(check, "[first]").model.frozen == (("batchnorm_1",),)
    assert frozen(check, "[mid]").model.frozen == (("res_1", "add_1"), ("res_1", "dense_1"),
                                                   ("res_1", "dense_2"), ("res_1", "relu_1"))
    assert frozen(check, '["res_1.h"]').model.frozen == (("res_1", "dense_2"),)
    assert frozen(check, '["res_1.dense_1"]').model.frozen == (("res_1", "dense_1"),)


def test_frozen_weights_count_as_non_trainable(check):
    from specc.report import model_table

    model = frozen(check, '[dense_1, "res_1.dense_2"]').model
    counts = model.graph.params["torch"]
    # the batchnorm's scale and shift train; its moving statistics never do
    assert (counts.trainable, counts.non_trainable) == (16 + 72 + 27, 56 + 72 + 16)
    table = model_table(model)
    marked = [line.strip().split("  ")[0] for line in table.splitlines() if "(frozen)" in line]
    assert marked == ["dense_1", "h = dense_2"]
    assert model.memory.gradients == 4 * counts.trainable


def test_an_unknown_layer_to_freeze(check):
    checked = frozen(check, "[dense_1, dens_2, nothing_like_it]")
    errors = [d for d in checked.errors if "freeze names no layer" in d.message]
    assert len(errors) == 2
    assert "got 'dens_2') (did you mean `dense_2`?)" in errors[0].message
    assert "expected a layer name as `specc check` shows it" in errors[1].message
    assert "did you mean" not in errors[1].message
    assert errors[0].span.line == checked.line("freeze =")
    assert column_of(checked, errors[0], "dens_2")
    assert column_of(checked, errors[1], "nothing_like_it")


def test_freezing_everything_leaves_nothing_to_train(check):
    checked = frozen(check, "[first, dense_1, mid, logits]")
    error = checked.error("freeze leaves no weights to train")
    assert error.span.line == checked.line("freeze =")


def test_init_from_names_a_checkpoint_of_the_model_s_backend(check):
    def checked(path: str):
        return check(IMAGE_CLASSIFIER.replace("epochs = 2",
                                              f'epochs = 2\n        init_from = "{path}"'))

    assert not checked("runs/first").errors  # a run directory
    assert checked("runs/first/checkpoints/epoch-0002.pt").model.train.init_from == \
        "runs/first/checkpoints/epoch-0002.pt"
    wrong = checked("runs/first/checkpoints/best.npz")
    error = wrong.error("init_from names no checkpoint of the torch program")
    assert "expected a .pt file, or a run directory, got 'runs/first/checkpoints/best.npz'" \
        in error.message
    assert column_of(wrong, error, '"runs')
