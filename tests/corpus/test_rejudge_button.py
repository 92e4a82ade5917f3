"""The "Re-judge duplicates" button: operators queue it, the worker's task does it, viewers cannot."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django_q.models import OrmQ

from corpus.models import PullRequest, Repository
from corpus.services import ingest
from corpus.tasks import rejudge_duplicates_task
from tests.corpus.support import store_record

pytestmark = pytest.mark.django_db


def test_operator_queues_the_rejudging_and_the_task_lets_old_exclusions_back(
    operator_client, django_capture_on_commit_callbacks
):
    repository = Repository.objects.create(full_name="acme/store", license_spdx="MIT")
    ingest.store_pull_request(repository=repository, record=store_record(number=1))
    ingest.store_pull_request(repository=repository, record=store_record(number=2, title="Tidy Get"))
    first = PullRequest.objects.get(number=1)
    # Excluded by the old whole-file rule, which no longer holds (PR 2 is the same change: exact duplicate).
    PullRequest.objects.filter(number=2).update(
        duplicate_of=first, duplicate_reason="near duplicate of acme/store#1", included=False, excluded_reason="x"
    )
    ingest.store_pull_request(repository=repository, record=store_record(number=3, title="Other", files=[]))
    PullRequest.objects.filter(number=3).update(
        duplicate_of=first, duplicate_reason="near duplicate of acme/store#1", included=False, excluded_reason="x"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(reverse("corpus:rejudge"))
    assert response.status_code == 302 and response["Location"] == reverse("corpus:pullrequests")
    assert [task.func() for task in OrmQ.objects.all()] == ["corpus.tasks.rejudge_duplicates_task"]
    assert "came back" in rejudge_duplicates_task()
    two, three = PullRequest.objects.get(number=2), PullRequest.objects.get(number=3)
    assert two.excluded_reason == "exact duplicate of acme/store#1" and not two.included
    assert three.duplicate_of_id is None and three.excluded_reason == "quality: no Go changes"


def test_viewers_cannot_rejudge(viewer_client):
    assert viewer_client.post(reverse("corpus:rejudge")).status_code == 403
    assert not OrmQ.objects.exists()
