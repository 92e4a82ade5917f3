"""The leaderboard: one row per model and suite (its latest finished evaluation), sorting, absent metrics, the
tokens chart's series, and the page's empty state."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from evaluation import leaderboard as board
from models_registry.models import ExportedModel
from tests.evaluation.board_support import make_evaluation, make_suite
from training.models import TrainingRun

pytestmark = pytest.mark.django_db


def finished(evaluation, minutes_ago: int):
    evaluation.finished_at = timezone.now() - timezone.timedelta(minutes=minutes_ago)
    evaluation.save()
    return evaluation


@pytest.fixture
def world():
    suite = make_suite("suite-a")
    run = suite.dataset.runs.get()
    TrainingRun.objects.filter(pk=run.pk).update(parameter_count=123_456)
    other = TrainingRun.objects.create(
        name="run-hrm", dataset=suite.dataset, family="hrm", status="finished", parent=run
    )
    export = ExportedModel.objects.create(run=run, step=20, format="gguf", quant="q8_0", status="finished")
    return {
        "suite": suite,
        "run": run,
        "other": other,
        "old": finished(make_evaluation(suite, run, step=20, tokens=2000, metrics={"code_loss": 9.0}), 30),
        "new": finished(
            make_evaluation(suite, run, step=20, tokens=2000, metrics={"code_loss": 2.0, "exact_match": 0.25}), 5
        ),
        "early": finished(make_evaluation(suite, run, step=10, tokens=1000, metrics={"code_loss": 3.0}), 10),
        "hrm": finished(make_evaluation(suite, other, step=20, tokens=2000, metrics={"code_loss": 2.5}), 10),
        "gguf": finished(make_evaluation(suite, run, step=20, tokens=2000, metrics={}, export=export), 8),
        "failed": make_evaluation(suite, other, step=30, metrics={"code_loss": 0.1}, status="failed"),
        "elsewhere": make_evaluation(make_suite("suite-b"), other, metrics={"code_loss": 0.5}),
    }


def test_one_row_per_model_its_latest_finished_evaluation(world):
    rows = board.leaderboard(world["suite"])
    assert {row.evaluation.pk for row in rows} == {world[k].pk for k in ("new", "early", "hrm", "gguf")}


def test_sorted_best_first_absent_last_and_reversible(world):
    rows = board.leaderboard(world["suite"], "code_loss")
    assert [row.evaluation.pk for row in rows] == [world[k].pk for k in ("new", "hrm", "early", "gguf")]
    rows = board.leaderboard(world["suite"], "code_loss", descending=True)
    assert [row.evaluation.pk for row in rows] == [world[k].pk for k in ("early", "hrm", "new", "gguf")]
    rows = board.leaderboard(world["suite"], "exact_match")  # higher is better; only one has it
    assert rows[0].evaluation.pk == world["new"].pk


def test_tokens_series_holds_runs_evaluated_at_several_steps(world):
    series = board.token_series(world["suite"])
    assert [s["run"] for s in series] == [world["run"].name]
    assert series[0]["tokens"] == [1000, 2000] and series[0]["metrics"]["code_loss"] == [3.0, 2.0]
    assert series[0]["metrics"]["vet_ok"] == [None, None]


def test_the_page_shows_rows_lineage_absent_metrics_and_sorts(world, viewer_client):
    page = viewer_client.get(reverse("evaluation:leaderboard"), {"suite": world["suite"].pk})
    html = page.content.decode()
    assert page.status_code == 200
    assert "123,456" in html and "2,000" in html  # parameters, training tokens
    assert "clone of" in html and "q8_0" in html and "export" in html
    assert "—" in html and "plotly.min.js" in html and "token-series" in html
    rows = page.context["rows"]
    assert [row.evaluation.pk for row in rows][0] == world["new"].pk
    assert html.count(f'href="{reverse("evaluation:evaluation", args=[world["new"].pk])}"') == 12  # name + 11 cells
    worst_first = viewer_client.get(
        reverse("evaluation:leaderboard"), {"suite": world["suite"].pk, "sort": "-code_loss"}
    )
    assert worst_first.context["rows"][0].evaluation.pk == world["early"].pk
    other = viewer_client.get(reverse("evaluation:leaderboard"), {"suite": world["elsewhere"].suite.pk})
    assert [row.evaluation.pk for row in other.context["rows"]] == [world["elsewhere"].pk]


def test_the_empty_leaderboard_says_how_to_evaluate(viewer_client):
    html = viewer_client.get(reverse("evaluation:leaderboard")).content.decode()
    assert "No evaluations yet" in html and "manage.py evaluate" in html
