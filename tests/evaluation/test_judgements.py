"""Blind ratings: which pair comes next, how a choice is stored, rating a pair twice, and the scores."""

from __future__ import annotations

import random

import pytest
from django.core import signing
from django.urls import reverse

from evaluation import judgements
from evaluation.judgements import SALT, RatingRefused
from evaluation.models import Rating
from tests.evaluation.board_support import make_evaluation, make_suite
from training.models import TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair():
    suite = make_suite("suite-r", tasks=3)
    run = suite.dataset.runs.get()
    rival = TrainingRun.objects.create(name="run-rival", dataset=suite.dataset, family="hrm", status="finished")
    outputs = [[f"func f{i}() {{ return {side} }}" for i in range(3)] for side in (1, 2)]
    return suite, make_evaluation(suite, run, outputs=outputs[0]), make_evaluation(suite, rival, outputs=outputs[1])


def token(task, a, b) -> str:
    return signing.dumps({"task": task.pk, "a": a.pk, "b": b.pk}, salt=SALT)


def test_each_pair_comes_once_then_nothing_is_left(pair, viewer_user):
    suite, one, other = pair
    rng = random.Random(0)
    seen = set()
    assert judgements.remaining(viewer_user, suite) == 3
    while (shown := judgements.next_pair(viewer_user, suite, rng)) is not None:
        assert {shown.a.evaluation_id, shown.b.evaluation_id} == {one.pk, other.pk}
        assert shown.a.task_id == shown.b.task_id == shown.task.pk
        seen.add(shown.task.pk)
        judgements.record_rating(user=viewer_user, token=shown.token, choice="tie")
    assert seen == set(suite.tasks.values_list("pk", flat=True))
    assert judgements.remaining(viewer_user, suite) == 0


def test_the_outcome_is_stored_in_the_ordered_pairs_terms(pair, viewer_user, operator_user):
    suite, one, other = pair
    task = suite.tasks.first()
    # Shown as (other, one): A is the second of the ordered pair.
    rating = judgements.record_rating(user=viewer_user, token=token(task, other, one), choice="a")
    assert (rating.first_id, rating.second_id, rating.outcome) == (one.pk, other.pk, "second")
    rating = judgements.record_rating(user=operator_user, token=token(task, one, other), choice="a")
    assert (rating.first_id, rating.second_id, rating.outcome) == (one.pk, other.pk, "first")


def test_rating_the_same_pair_twice_is_refused_whatever_the_order(pair, viewer_user):
    suite, one, other = pair
    task = suite.tasks.first()
    judgements.record_rating(user=viewer_user, token=token(task, one, other), choice="b")
    with pytest.raises(RatingRefused, match="already rated these two models on this task"):
        judgements.record_rating(user=viewer_user, token=token(task, other, one), choice="a")
    assert Rating.objects.count() == 1


def test_a_forged_token_or_a_bad_choice_is_refused(pair, viewer_user):
    suite, one, other = pair
    with pytest.raises(RatingRefused, match="could not be read"):
        judgements.record_rating(user=viewer_user, token="forged", choice="a")
    with pytest.raises(RatingRefused, match="pick A, B or tie"):
        judgements.record_rating(user=viewer_user, token=token(suite.tasks.first(), one, other), choice="x")
    elsewhere = make_suite("suite-other", tasks=1)
    with pytest.raises(RatingRefused, match="no longer there"):
        judgements.record_rating(user=viewer_user, token=token(elsewhere.tasks.first(), one, other), choice="a")
    assert not Rating.objects.exists()


def test_scores_rank_the_preferred_model_first_with_an_interval(pair, viewer_user, operator_user):
    suite, one, other = pair
    for user in (viewer_user, operator_user):
        for task in suite.tasks.all():
            judgements.record_rating(user=user, token=token(task, other, one), choice="a")
    rows = judgements.scores(suite)
    assert [row.evaluation.pk for row in rows] == [other.pk, one.pk]
    best = rows[0].score
    assert best.ratings == 6 and best.low < best.score < best.high


def test_a_viewer_rates_through_the_page_and_a_second_try_gets_a_message(pair, viewer_client):
    suite, one, other = pair
    page = viewer_client.get(reverse("evaluation:rate"), {"suite": suite.pk})
    shown = page.context["shown"]
    html = page.content.decode()
    assert shown.a.output in html and shown.b.output in html and "run-rival" not in html  # blind
    answer = viewer_client.post(
        reverse("evaluation:rate"), {"token": shown.token, "choice": "b", "suite": suite.pk}, follow=True
    )
    assert "rating saved" in answer.content.decode() and Rating.objects.count() == 1
    again = viewer_client.post(
        reverse("evaluation:rate"), {"token": shown.token, "choice": "a", "suite": suite.pk}, follow=True
    )
    assert "already rated" in again.content.decode() and Rating.objects.count() == 1
    scores = viewer_client.get(reverse("evaluation:ratings"), {"suite": suite.pk}).content.decode()
    assert "Fisher-information standard error" in scores and "run-rival" in scores
