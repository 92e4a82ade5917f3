"""The curation history names the pull requests of each entry."""

from __future__ import annotations

import pytest
from django.urls import reverse

from corpus.models import PullRequest
from corpus.services import curation

pytestmark = pytest.mark.django_db


def test_a_history_entry_lists_its_pull_requests(viewer_client, corpus):
    curation.curate_pull_requests(
        pull_requests=PullRequest.objects.filter(repository__full_name="acme/web"), action="exclude", reason="toy"
    )
    page = viewer_client.get(reverse("corpus:curation")).content.decode()
    web1, web2 = corpus.get(number=1), corpus.get(number=2)
    assert f'href="{web1.get_absolute_url()}"' in page and "acme/web#1" in page and "acme/web#2" in page
    assert "acme/cli#3" not in page
    assert web2.title in page  # as the link's title


def test_a_big_entry_names_a_few_and_counts_the_rest(viewer_client, corpus, monkeypatch):
    from corpus import views

    monkeypatch.setattr(views, "HISTORY_PRS_SHOWN", 2)
    curation.curate_pull_requests(pull_requests=PullRequest.objects.all(), action="exclude", reason="all")
    page = viewer_client.get(reverse("corpus:curation")).content.decode()
    assert "and 1 more" in page


def _notes_only_pr(number: int):
    from corpus.records import FileRecord, PRRecord

    return PRRecord(
        "acme/web",
        number,
        "Update the notes",
        files=[FileRecord("docs/notes.md", additions=1, deletions=1, before="a\n", after="b\n", patch="@@\n-a\n+b")],
    )


def test_automatic_exclusions_of_a_job_are_one_history_entry(viewer_client, corpus):
    from corpus.models import CurationEvent, FetchJob, Repository
    from corpus.services import ingest

    job = FetchJob.objects.create(kind="git", targets=["/srv/web"], status="finished")
    web = Repository.objects.get(full_name="acme/web")
    ingest.store_pull_request(repository=web, record=_notes_only_pr(10), fetch_job=job)
    ingest.store_pull_request(repository=web, record=_notes_only_pr(11), fetch_job=job)
    event = curation.record_automatic_exclusions(fetch_job=job)
    assert event.user is None and event.count == 2 and event.scope.startswith("automatic rules")
    assert event.reason == "quality: no Go changes ×2"
    page = viewer_client.get(reverse("corpus:curation")).content.decode()
    assert "acme/web#10" in page and "acme/web#11" in page and "automatic" in page
    # Nothing more to record for the same job; a job that excluded nothing writes no entry.
    assert CurationEvent.objects.count() == 1
    assert curation.record_automatic_exclusions(fetch_job=FetchJob.objects.create(kind="git", targets=[])) is None


def test_undoing_an_automatic_exclusion_includes_for_good(corpus):
    from corpus.models import FetchJob, Repository
    from corpus.services import ingest

    job = FetchJob.objects.create(kind="git", targets=["/srv/web"], status="finished")
    web = Repository.objects.get(full_name="acme/web")
    ingest.store_pull_request(repository=web, record=_notes_only_pr(10), fetch_job=job)
    event = curation.record_automatic_exclusions(fetch_job=job)
    assert curation.undo_curation(event=event).restored == 1
    pr = PullRequest.objects.get(number=10)
    assert pr.included and pr.curated_at is not None  # a person's decision now: the rules leave it alone
    ingest.store_pull_request(repository=web, record=_notes_only_pr(10), fetch_job=job)
    assert PullRequest.objects.get(number=10).included
