"""A family comparison end to end without the browser, on real PostgreSQL: the training task trains both runs
and its end hook queues their evaluations; the evaluation task scores them and its end hook stores the verdict."""

from __future__ import annotations

import pytest

from evaluation import comparisons
from evaluation.models import Evaluation
from evaluation.services.suites import create_suite
from evaluation.tasks import evaluate_task
from tests.training.support import make_dataset
from training.tasks.runs import train_run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_runs_then_evaluations_then_the_verdict_with_nobody_watching(settings, tmp_path, dataset_files, operator_user):
    settings.DATA_DIR = tmp_path
    dataset = make_dataset(dataset_files)
    suite = create_suite(dataset=dataset, name="flow-suite", task_count=1)
    comparison = comparisons.start_comparison(
        dataset=dataset,
        preset_name="tiny",
        seeds=[3],
        tokens=4 * 2048,
        suite=suite,
        user=operator_user,
        eval_settings={"max_attempts": 2, "max_tokens": 32},
    )
    runs = list(comparison.runs.order_by("pk"))
    assert train_run(runs[0].pk) == "finished"
    comparison.refresh_from_db()
    assert comparison.state == "training" and comparison.message == "training: 1 of 2 runs finished"
    assert train_run(runs[1].pk) == "finished"
    comparison.refresh_from_db()
    assert comparison.state == "evaluating" and comparison.evaluations.count() == 2
    for evaluation in comparison.evaluations.order_by("pk"):
        assert evaluation.status == "queued" and evaluation.suite == suite
        assert evaluation.settings == {"max_attempts": 2, "max_tokens": 32}
        assert evaluate_task(evaluation.pk) == "finished"
    comparison.refresh_from_db()
    assert comparison.state == "finished"
    rows = {row["metric"]: row for row in comparison.verdict["rows"]}
    losses = {e.run.family: e.metrics["code_loss"] for e in Evaluation.objects.filter(comparisons=comparison)}
    assert rows["code_loss"]["hrm"]["mean"] == pytest.approx(losses["hrm"])
    assert rows["code_loss"]["gpt"]["mean"] == pytest.approx(losses["gpt"])
    assert rows["code_loss"]["winner"] == ("hrm" if losses["hrm"] < losses["gpt"] else "gpt")
