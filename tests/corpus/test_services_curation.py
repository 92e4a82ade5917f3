"""Curation events with undo, repository exclusion, and frozen snapshots whose file matches their hash."""

from __future__ import annotations

import json

import pytest

from corpus.models import CurationEvent, FetchJob, PullRequest, Repository, Snapshot
from corpus.records import SerializedRecord
from corpus.selectors import (
    filtered_pull_requests,
    pull_request_record,
    serialized_record,
)
from corpus.services import curation, fetch_jobs, snapshots
from hrgc_site.errors import ActionRefused, Invalid
from hrgc_site.jobs import claim
from hrgc_site.models import JobStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def corpus(settings, tmp_path, django_db_blocker):
    settings.DATA_DIR = tmp_path
    job = fetch_jobs.create_fetch_job(kind="git", targets=[], build_sample=True, enqueue=False)
    status, message = fetch_jobs.run_fetch(claim(FetchJob, job.pk))
    assert status == JobStatus.FINISHED, message
    return PullRequest.objects.filter(included=True)


def test_exclude_needs_a_reason_and_undo_restores_each_previous_state(corpus, operator_user):
    kv = PullRequest.objects.filter(repository__full_name="hrgc-samples/kvstore")
    with pytest.raises(ActionRefused, match="why"):
        curation.curate_pull_requests(pull_requests=kv, action="exclude", reason=" ")
    first = kv.filter(included=True).order_by("number").first()
    was_included = set(kv.filter(included=True).values_list("pk", flat=True))
    curation.curate_pull_requests(pull_requests=kv.filter(pk=first.pk), action="exclude", reason="typo fix only")
    event = curation.curate_pull_requests(
        pull_requests=kv, action="exclude", reason="too small", user=operator_user, scope="repo=hrgc-samples/kvstore"
    )
    assert event.count == kv.count() and event.user == operator_user
    assert set(kv.values_list("excluded_reason", flat=True)) == {"too small"}

    curation.undo_curation(event=event, user=operator_user)
    first.refresh_from_db()
    assert not first.included and first.excluded_reason == "typo fix only"
    assert set(kv.filter(included=True).values_list("pk", flat=True)) == was_included - {first.pk}
    event.refresh_from_db()
    assert event.undone_by == operator_user and event.undone_at
    with pytest.raises(ActionRefused, match="already undone"):
        curation.undo_curation(event=event)
    # Besides these two, only the import's automatic exclusions have an entry (written by the rules). Judged
    # on the change, the sample corpus has no near duplicates and no blocked PRs, so the rules excluded none.
    assert CurationEvent.objects.exclude(scope__startswith="automatic rules").count() == 2
    assert PullRequest.objects.filter(included=False, curated_at=None).count() == 0
    assert not CurationEvent.objects.filter(scope__startswith="automatic rules").exists()


def test_an_excluded_repository_leaves_the_training_set(corpus):
    repository = Repository.objects.get(full_name="hrgc-samples/csvtool")
    before = filtered_pull_requests({}, force_included=True).count()
    curation.set_repository_included(repository=repository, included=False, reason="not idiomatic")
    after = filtered_pull_requests({}, force_included=True)
    assert after.count() < before and not after.filter(repository=repository).exists()


def test_snapshot_is_frozen_hashed_and_read_back_as_records(corpus):
    snapshot = snapshots.create_snapshot(name="first", description="all", enqueue=False)
    status, message = snapshots.write_snapshot(claim(Snapshot, snapshot.pk))
    assert status == JobStatus.FINISHED, message
    snapshot.refresh_from_db()
    included = filtered_pull_requests({}, force_included=True)
    assert snapshot.pr_count == included.count() == snapshot.pull_requests.count() > 0
    assert snapshots.snapshot_file_sha256(snapshot.file_path) == snapshot.sha256
    assert snapshot.repo_count == 3 and snapshot.no_intent_count == included.filter(intent="").count()

    records = list(snapshots.iter_snapshot_records(snapshot))
    assert len(records) == snapshot.pr_count and sum(len(r.text) for _, r in records) == snapshot.chars
    _, record = records[0]
    assert isinstance(record, SerializedRecord) and record.spans[0].start == 0
    assert record.spans[-1].end == len(record.text)
    with open(snapshot.file_path, encoding="utf-8") as handle:
        first = json.loads(handle.readline())
    pr = PullRequest.objects.get(repository__full_name=first["repo"], number=first["number"])
    assert serialized_record(pull_request_record(pr)).text == first["text"] == record.text

    # Later curation changes neither the frozen set nor the file.
    curation.curate_pull_requests(pull_requests=PullRequest.objects.all(), action="exclude", reason="gone")
    snapshot.refresh_from_db()
    assert snapshot.pull_requests.count() == snapshot.pr_count
    assert snapshots.snapshot_file_sha256(snapshot.file_path) == snapshot.sha256


def test_snapshot_with_a_filter_and_a_bad_name(corpus):
    with pytest.raises(Invalid):
        snapshots.create_snapshot(name="../evil", enqueue=False)
    snapshot = snapshots.create_snapshot(name="kv", filters={"repo": "hrgc-samples/kvstore"}, enqueue=False)
    snapshots.write_snapshot(claim(Snapshot, snapshot.pk))
    snapshot.refresh_from_db()
    assert {repo for repo, _ in snapshots.iter_snapshot_records(snapshot)} == {"hrgc-samples/kvstore"}
