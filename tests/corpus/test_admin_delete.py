"""Deleting a repository or a pull request that a frozen snapshot lists is refused, in the admin and below it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import ProtectedError
from django.urls import reverse

from corpus.models import PullRequest, Repository, Snapshot


@pytest.fixture
def admin_client(client, db):
    client.force_login(User.objects.create_superuser("root", password="root-pass-1"))
    return client


def _repository(name: str, numbers=(1, 2)) -> Repository:
    repo = Repository.objects.create(full_name=name)
    for number in numbers:
        PullRequest.objects.create(repository=repo, number=number, title=f"change {number}")
    return repo


def test_the_admin_refuses_to_delete_a_repository_a_snapshot_lists(admin_client):
    repo = _repository("acme/listed")
    snapshot = Snapshot.objects.create(name="frozen", status="finished", pr_count=1)
    snapshot.pull_requests.add(repo.pull_requests.get(number=1))

    url = reverse("admin:corpus_repository_delete", args=[repo.pk])
    page = admin_client.get(url).content.decode()
    assert "frozen snapshot frozen" in page and "Delete those snapshots first" in page
    answer = admin_client.post(url, {"post": "yes"})
    assert answer.status_code == 200  # the refusal page, not a redirect to the list
    assert Repository.objects.filter(pk=repo.pk).exists() and repo.pull_requests.count() == 2
    assert snapshot.pull_requests.count() == 1

    # The bulk action refuses too.
    changelist = reverse("admin:corpus_repository_changelist")
    answer = admin_client.post(changelist, {"action": "delete_selected", "_selected_action": [repo.pk], "post": "yes"})
    assert Repository.objects.filter(pk=repo.pk).exists()
    assert "frozen snapshot frozen" in answer.content.decode()

    pr_url = reverse("admin:corpus_pullrequest_delete", args=[repo.pull_requests.get(number=1).pk])
    admin_client.post(pr_url, {"post": "yes"})
    assert snapshot.pull_requests.count() == 1


def test_below_the_admin_the_delete_raises_and_changes_nothing(db):
    repo = _repository("acme/listed")
    snapshot = Snapshot.objects.create(name="frozen", status="finished")
    snapshot.pull_requests.add(*repo.pull_requests.all())
    with pytest.raises(ProtectedError, match="frozen"), transaction.atomic():
        repo.delete()
    assert repo.pull_requests.count() == 2 and snapshot.pull_requests.count() == 2


def test_a_repository_no_snapshot_lists_is_deleted(admin_client):
    repo = _repository("acme/free")
    listed = _repository("acme/other", numbers=(9,))
    Snapshot.objects.create(name="frozen", status="finished").pull_requests.add(listed.pull_requests.get())
    answer = admin_client.post(reverse("admin:corpus_repository_delete", args=[repo.pk]), {"post": "yes"})
    assert answer.status_code == 302
    assert not Repository.objects.filter(pk=repo.pk).exists() and not PullRequest.objects.filter(repository=repo.pk)
    assert Repository.objects.filter(pk=listed.pk).exists()
