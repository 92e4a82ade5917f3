"""Blind human judgements: which pair to show next, recording a choice, and the Bradley–Terry scores.

A pair is two evaluations (two models on one suite) plus one task of that suite; one person rates it once
(the Rating model's unique constraint). The page shows the two outputs in a random order as A and B and
carries them in a signed token, so neither the page nor a crafted POST can swap in another pair."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from django.core import signing
from django.db import IntegrityError, transaction

from evaluation import ratings
from evaluation.leaderboard import latest_evaluations, model_label
from evaluation.models import EvalSuite, EvalTask, Evaluation, Rating, TaskResult
from hrgc_site.errors import ActionRefused
from hrgc_site.models import JobStatus

SALT = "evaluation.rate"
CHOICES = ("a", "b", "tie")


class RatingRefused(ActionRefused):
    """A judgement that cannot be stored: rated already, a stale or forged pair."""


@dataclass(frozen=True)
class Shown:
    """One blind pair as the page shows it: the task and outputs A and B."""

    task: EvalTask
    a: TaskResult
    b: TaskResult
    token: str  # signed (task, a, b) evaluation ids


def suites_to_rate():
    """Suites with at least two finished evaluations, newest first."""
    return [s for s in EvalSuite.objects.order_by("-created_at") if len(latest_evaluations(s)) >= 2]


def _rated(user, suite: EvalSuite) -> set[tuple[int, int, int]]:
    return set(Rating.objects.filter(user=user, task__suite=suite).values_list("first_id", "second_id", "task_id"))


def _open_pairs(user, suite: EvalSuite) -> list[tuple[int, int, int]]:
    """(first, second, task) of `suite` whose two outputs exist and which the user has not rated."""
    evaluations = [e.pk for e in latest_evaluations(suite)]
    answered: dict[int, list[int]] = {}
    for evaluation_id, task_id in TaskResult.objects.filter(evaluation__in=evaluations).values_list(
        "evaluation_id", "task_id"
    ):
        answered.setdefault(task_id, []).append(evaluation_id)
    rated = _rated(user, suite)
    return [
        (first, second, task_id)
        for task_id, ids in answered.items()
        for first, second in itertools.combinations(sorted(ids), 2)
        if (first, second, task_id) not in rated
    ]


def next_pair(user, suite: EvalSuite, rng: random.Random | None = None) -> Shown | None:
    """A random pair of `suite` the user has not rated, both outputs present; None when none is left."""
    rng = rng or random.Random()
    open_pairs = _open_pairs(user, suite)
    if not open_pairs:
        return None
    first, second, task_id = rng.choice(open_pairs)
    a, b = (first, second) if rng.random() < 0.5 else (second, first)
    results = {
        r.evaluation_id: r
        for r in TaskResult.objects.filter(task_id=task_id, evaluation_id__in=(a, b)).select_related("task")
    }
    return Shown(
        task=results[a].task,
        a=results[a],
        b=results[b],
        token=signing.dumps({"task": task_id, "a": a, "b": b}, salt=SALT),
    )


def remaining(user, suite: EvalSuite) -> int:
    """Pairs of `suite` (two evaluations that both answered a task) the user has not rated yet."""
    return len(_open_pairs(user, suite))


def record_rating(*, user, token: str, choice: str) -> Rating:
    """Store the user's choice ("a", "b" or "tie") for the pair the signed token names."""
    if choice not in CHOICES:
        raise RatingRefused("pick A, B or tie")
    try:
        shown = signing.loads(token, salt=SALT)
        task_id, a_id, b_id = int(shown["task"]), int(shown["a"]), int(shown["b"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise RatingRefused("this pair could not be read; rate the one shown now") from None
    task = EvalTask.objects.filter(pk=task_id).first()
    pair = list(Evaluation.objects.filter(pk__in=(a_id, b_id), status=JobStatus.FINISHED))
    if task is None or len(pair) != 2 or a_id == b_id or any(e.suite_id != task.suite_id for e in pair):
        raise RatingRefused("these outputs are no longer there to rate (an evaluation or task was deleted)")
    first, second = sorted((a_id, b_id))
    # The outcome is stored in the ordered pair's terms, whichever side the page showed each on.
    if choice == "tie":
        outcome = Rating.Outcome.TIE
    else:
        winner = a_id if choice == "a" else b_id
        outcome = Rating.Outcome.FIRST if winner == first else Rating.Outcome.SECOND
    try:
        with transaction.atomic():
            return Rating.objects.create(user=user, first_id=first, second_id=second, task=task, outcome=outcome)
    except IntegrityError:
        raise RatingRefused(
            "you have already rated these two models on this task; each person rates a pair once"
        ) from None


@dataclass(frozen=True)
class ScoreRow:
    evaluation: Evaluation
    label: str
    score: ratings.Score


def scores(suite: EvalSuite) -> list[ScoreRow]:
    """Each rated evaluation of `suite` with its Bradley–Terry score and interval, best first."""
    value = {Rating.Outcome.FIRST: 1.0, Rating.Outcome.SECOND: 0.0, Rating.Outcome.TIE: 0.5}
    games = [
        (first, second, value[outcome])
        for first, second, outcome in Rating.objects.filter(task__suite=suite).values_list(
            "first_id", "second_id", "outcome"
        )
    ]
    fitted = ratings.bradley_terry(games)
    evaluations = Evaluation.objects.select_related("run", "exported_model").in_bulk([s.model for s in fitted])
    return [ScoreRow(evaluations[s.model], model_label(evaluations[s.model]), s) for s in fitted]
