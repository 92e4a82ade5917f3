"""Compare families on real PostgreSQL: the runs it queues (matched size, equal tokens, same seeds), and how
it waits on them."""

from __future__ import annotations

import pytest
from django.urls import reverse

from evaluation import comparisons
from evaluation.models import Comparison
from hrgc_site.errors import ActionRefused
from tests.evaluation.board_support import make_evaluation, make_suite
from tests.training.support import make_dataset

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(settings, tmp_path, dataset_files):
    settings.DATA_DIR = tmp_path
    return make_dataset(dataset_files)


def test_parse_seeds():
    assert comparisons.parse_seeds("1, 2,3") == [1, 2, 3] and comparisons.parse_seeds("7") == [7]
    for bad, message in (
        ("", "at least one"),
        ("1,1", "each seed once"),
        ("a", "whole numbers"),
        ("1,2,3,4,5,6", "at most"),
        ("-1", "zero or positive"),
    ):
        with pytest.raises(ActionRefused, match=message):
            comparisons.parse_seeds(bad)


def test_a_comparison_queues_matched_runs_per_seed(dataset, operator_user):
    suite = make_suite("suite-cmp", dataset=dataset)
    comparison = comparisons.start_comparison(
        dataset=dataset, preset_name="tiny", seeds=[1, 2], tokens=40_000, suite=suite, user=operator_user
    )
    rows = comparisons.comparison_runs(comparison)
    assert [(row["seed"], row["run"].family) for row in rows] == [(1, "hrm"), (1, "gpt"), (2, "hrm"), (2, "gpt")]
    runs = [row["run"] for row in rows]
    assert {run.status for run in runs} == {"queued"} and {run.dataset_id for run in runs} == {dataset.pk}
    budgets = {run.max_steps * run.tokens_per_step for run in runs}
    assert budgets == {comparison.tokens} and abs(comparison.tokens - 40_000) <= runs[0].tokens_per_step
    hrm, gpt = runs[0].parameter_count, runs[1].parameter_count
    assert abs(gpt - hrm) / hrm <= 0.03 and comparison.parameters == {"hrm": hrm, "gpt": gpt}
    assert [run.config["train"]["seed"] for run in runs] == [1, 1, 2, 2]
    assert comparison.suite == suite and comparison.state == "training"


def test_it_waits_on_its_runs_and_says_which_need_a_person(dataset, operator_user):
    suite = make_suite("suite-wait", dataset=dataset)
    comparison = comparisons.start_comparison(
        dataset=dataset, preset_name="tiny", seeds=[5], tokens=20_000, suite=suite, user=operator_user
    )
    comparisons.advance(comparison)
    assert comparison.state == "training" and comparison.message == "training: 0 of 2 runs finished"
    hrm = comparison.runs.get(family="hrm")
    hrm.status = "stopped"
    hrm.save()
    comparisons.run_ended(hrm.pk)
    comparison.refresh_from_db()
    assert (
        comparison.state == "training" and "resume it to go on" in comparison.message and hrm.name in comparison.message
    )


def test_bad_requests_are_refused(dataset, operator_user):
    with pytest.raises(ActionRefused, match="less than one step"):
        comparisons.start_comparison(
            dataset=dataset, preset_name="tiny", seeds=[1], tokens=10, suite=make_suite("s1", dataset=dataset)
        )
    dataset.status = "running"
    dataset.save()
    with pytest.raises(ActionRefused, match="finished dataset"):
        comparisons.start_comparison(dataset=dataset, preset_name="tiny", seeds=[1], tokens=40_000)
    assert not Comparison.objects.exists()


def test_the_dataset_page_offers_it_to_operators_and_the_form_starts_it(dataset, operator_client):
    page = operator_client.get(reverse("training:dataset", args=[dataset.pk])).content.decode()
    assert reverse("evaluation:compare", args=[dataset.pk]) in page
    suite = make_suite("suite-form", dataset=dataset)
    form = operator_client.get(reverse("evaluation:compare", args=[dataset.pk]))
    assert form.status_code == 200 and form.context["form"].initial["tokens"] == 300 * 8 * 256
    bad = operator_client.post(
        reverse("evaluation:compare", args=[dataset.pk]),
        {
            "preset": "tiny",
            "seeds": "1,1",
            "tokens": 20_000,
            "suite": suite.pk,
            "task_count": 3,
            "max_attempts": 2,
            "max_tokens": 64,
        },
    )
    assert bad.status_code == 400 and "each seed once" in bad.content.decode()
    answer = operator_client.post(
        reverse("evaluation:compare", args=[dataset.pk]),
        {
            "preset": "tiny",
            "seeds": "1,2",
            "tokens": 20_000,
            "suite": suite.pk,
            "task_count": 3,
            "max_attempts": 2,
            "max_tokens": 64,
        },
    )
    comparison = Comparison.objects.get()
    assert answer.status_code == 302 and answer["Location"] == comparison.get_absolute_url()
    assert comparison.eval_settings == {"max_attempts": 2, "max_tokens": 64}
    assert comparison.runs.count() == 4
    shown = operator_client.get(comparison.get_absolute_url()).content.decode()
    assert "training: 0 of 4 runs finished" in shown and "compare" in shown


def test_finished_runs_take_their_evaluations_and_the_verdict_has_mean_and_spread(dataset, operator_user):
    from training.models import Checkpoint

    suite = make_suite("suite-verdict", dataset=dataset)
    comparison = comparisons.start_comparison(
        dataset=dataset, preset_name="tiny", seeds=[1, 2], tokens=20_000, suite=suite, user=operator_user
    )
    losses = {("hrm", 1): 2.0, ("hrm", 2): 3.0, ("gpt", 1): 4.0, ("gpt", 2): 4.0}
    for row in comparisons.comparison_runs(comparison):
        run = row["run"]
        run.status, run.step = "finished", run.max_steps
        run.save()
        Checkpoint.objects.create(run=run, step=run.max_steps, path="/nowhere.pt")
        make_evaluation(suite, run, step=run.max_steps, metrics={"code_loss": losses[(run.family, row["seed"])]})
    comparisons.run_ended(comparison.runs.first().pk)
    comparison.refresh_from_db()
    assert comparison.state == "finished" and comparison.evaluations.count() == 4
    rows = {row["metric"]: row for row in comparison.verdict["rows"]}
    loss = rows["code_loss"]
    assert loss["winner"] == "hrm" and loss["hrm"]["mean"] == 2.5 and loss["gpt"]["spread"] == 0.0
    assert loss["hrm"]["spread"] == pytest.approx(0.5**0.5) and not loss["within_spread"]
    assert rows["exact_match"]["winner"] is None  # measured by neither
    assert comparison.verdict["wins"] == {"hrm": 1, "gpt": 0, "tie": 0} and "hrm wins 1" in comparison.message
