"""Metrics per output (`metrics logits: accuracy, value: mae`) and the metrics computed over a
whole split: what the front end accepts, the names their values go under, and each mistake
as a check error at its place."""

from __future__ import annotations

from specc.backends.common.plan import metric_group_views
from specc.fmt import format_source
from specc.passes.training_check import metric_groups, monitor, monitorable

TWO_HEADS = """
model heads {
    input x: float[6]
    graph {
        h = x -> dense(8, activation=relu)
        logits = h -> dense(3)
        value = h -> dense(2)
    }
    output logits, value
    loss logits: cross_entropy(), value: mse()
    metrics METRICS
    data synthetic(n=40, validation=0.25)
    train {
        epochs = 1
    }
}
"""


def two_heads(metrics: str, train: str = "epochs = 1") -> str:
    return TWO_HEADS.replace("METRICS", metrics).replace("epochs = 1", train)


def column_of(checked, error, text: str) -> bool:
    """Whether `error` points at the first `text` on its line."""
    line = checked.source.splitlines()[error.span.line - 1]
    return error.span.column == line.index(text) + 1


def test_a_label_holds_until_the_next_one(check):
    model = check(two_heads("accuracy, logits: auc, confusion_matrix, value: r2, mae")).model
    assert [m.kind for m in model.metrics] == ["accuracy", "auc", "confusion_matrix", "r2",
                                               "mae"]
    assert model.metric_outputs == (None, "logits", "logits", "value", "value")
    groups = metric_groups(model)
    assert [(g.value.label, g.task, g.suffix, g.names()) for g in groups] == [
        ("logits", "classes", "", ["accuracy"]),
        ("logits", "classes", "_logits", ["auc_logits", "confusion_matrix_logits"]),
        ("value", "values", "_value", ["r2_value", "mae_value"]),
    ]
    # the labels of the value head are the second target; its output the second output
    views = metric_group_views(model)
    assert [(v.term.output_index, v.target_index) for v in views] == [(0, 0), (0, 0), (1, 1)]
    assert views[2].statistics == ("unit_sums", "absolute_error")


def test_the_monitor_may_name_an_output_s_metric_but_not_a_matrix(check):
    model = check(two_heads("logits: accuracy, confusion_matrix, value: rmse, r2",
                            "early_stopping(monitor=val_r2_value)")).model
    assert monitorable(model) == ["loss", "val_loss", "val_accuracy_logits", "val_rmse_value",
                                  "val_r2_value"]
    assert monitor(model) == ("val_r2_value", "max")
    model = check(two_heads("value: rmse", "early_stopping(monitor=val_rmse_value)")).model
    assert monitor(model) == ("val_rmse_value", "min")

    checked = check(two_heads("logits: confusion_matrix",
                              "early_stopping(monitor=val_confusion_matrix_logits)"))
    error = checked.error("early_stopping monitors a value this model does not report")
    assert "expected one of loss, val_loss, got 'val_confusion_matrix_logits'" in error.message
    assert column_of(checked, error, "val_confusion_matrix_logits")


def test_auc_of_the_precision_recall_curve_has_its_own_name(check):
    model = check(two_heads("auc, auc(curve=pr)")).model
    assert metric_groups(model)[0].names() == ["auc", "auc_pr"]
    checked = check(two_heads("auc_pr"))
    error = checked.error("unknown metric `auc_pr`")
    assert "auc(curve=pr)" in " ".join([error.message, *(n.message for n in error.notes)])


def test_metrics_of_an_output_that_does_not_exist(check):
    checked = check(two_heads("accuracy, score: mae"))
    error = checked.error("metrics for `score`, which is not an output with a loss")
    assert "expected one of logits, value, got score" in error.message
    assert error.span.line == checked.line("metrics accuracy")
    assert column_of(checked, error, "score")


def test_a_metric_that_does_not_fit_its_output_s_loss(check):
    checked = check(two_heads("logits: accuracy, r2, value: accuracy, balanced_accuracy"))
    on_logits = checked.error("metric r2 does not fit the cross_entropy loss on `logits`")
    assert column_of(checked, on_logits, "r2")
    on_value = checked.error("metric accuracy does not fit the mse loss on `value`")
    assert "expected one of mae, mape, mse, r2, rmse, got accuracy" in on_value.message
    assert column_of(checked, on_value, "accuracy, balanced")
    assert len(checked.errors) == 3  # balanced_accuracy on `value` too: all in one run


def test_a_metric_given_twice_for_one_output(check):
    checked = check(two_heads("logits: auc, accuracy, auc, value: auc(curve=pr)"))
    error = checked.error("metric `auc_logits` is given twice")
    assert column_of(checked, error, "auc, value")
    # a binary output takes the classification metrics but top_k_accuracy; regression none
    assert len(checked.errors) == 2
    checked.error("metric auc does not fit the mse loss on `value`")


def test_fmt_keeps_the_labels(tmp_path):
    text = two_heads("accuracy,logits:auc ,  confusion_matrix,value:r2,mae")
    formatted = format_source(text, str(tmp_path / "main.spec"))
    assert "    metrics accuracy, logits: auc, confusion_matrix, value: r2, mae\n" in formatted
