"""The database itself keeps ratings honest: a pair is stored ordered, and rated once per person and task."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from evaluation.models import Rating
from tests.evaluation.board_support import make_evaluation, make_suite
from training.models import TrainingRun


@pytest.mark.django_db
def test_a_pair_is_stored_ordered_and_rated_once_per_person_and_task(viewer_user):
    suite = make_suite()
    one = make_evaluation(suite, suite.dataset.runs.get())
    other_run = TrainingRun.objects.create(name="run-other", dataset=suite.dataset, family="hrm", status="finished")
    other = make_evaluation(suite, other_run)
    task = suite.tasks.first()
    Rating.objects.create(user=viewer_user, first=one, second=other, task=task, outcome="tie")
    with pytest.raises(IntegrityError), transaction.atomic():
        Rating.objects.create(user=viewer_user, first=one, second=other, task=task, outcome="first")
    with pytest.raises(IntegrityError), transaction.atomic():
        Rating.objects.create(user=viewer_user, first=other, second=one, task=task, outcome="first")
    Rating.objects.create(user=viewer_user, first=one, second=other, task=suite.tasks.last(), outcome="first")
    assert Rating.objects.count() == 2


@pytest.mark.django_db
def test_a_result_with_nul_characters_is_stored_once_cleaned():
    """An untrained model can write a NUL byte; the evaluation job stores its result through clean_json."""
    from corpus.services.ingest import clean_json
    from evaluation.models import TaskResult

    suite = make_suite("suite-nul", tasks=1)
    evaluation = make_evaluation(suite, suite.dataset.runs.get(), outputs=["x"])
    row = {"output": "func f() {\x00}", "attempts": [{"code": "\x00", "errors": ["bad \x00"]}]}
    TaskResult.objects.filter(evaluation=evaluation).update(**clean_json(row))
    stored = TaskResult.objects.get(evaluation=evaluation)
    assert stored.output == "func f() {\ufffd}" and stored.attempts[0]["errors"] == ["bad \ufffd"]
