"""store_pull_request and the git import job: idempotent upserts, derived fields, duplicates."""

from __future__ import annotations

import dataclasses

import pytest

from corpus.models import Comment, FetchJob, FileChange, PullRequest, Repository, Source
from corpus.records import CommentRecord, FileRecord
from corpus.services import curation, dedupe, fetch_jobs, ingest
from hrgc_site.jobs import claim, finish
from hrgc_site.models import JobStatus
from tests.corpus.support import AFTER, BEFORE, store_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def repository():
    return Repository.objects.create(full_name="acme/store", license_spdx="MIT")


def test_store_is_an_idempotent_upsert(repository):
    assert ingest.store_pull_request(repository=repository, record=store_record()) == "new"
    assert ingest.store_pull_request(repository=repository, record=store_record()) == "unchanged"
    pr = PullRequest.objects.get()
    assert (pr.file_count, FileChange.objects.count(), Comment.objects.count()) == (3, 3, 2)
    assert pr.intent == "FIX" and pr.category in ("NAT", "MIX", "CODE") and pr.syntax_ok is True
    assert pr.serialized_chars > len(AFTER) and len(pr.content_hash) == 64 and pr.included

    edited = store_record(
        title="Fix empty key in Get (v2)", comments=[CommentRecord("issue", "bo", "edited", external_id="1")]
    )
    assert ingest.store_pull_request(repository=repository, record=edited) == "updated"
    assert PullRequest.objects.count() == 1
    assert list(Comment.objects.values_list("body", flat=True)) == ["edited"]
    vendored = FileChange.objects.get(path="vendor/x/y.go")
    assert vendored.is_vendored and vendored.is_go and not vendored.is_test
    binary = FileChange.objects.get(path="logo.png")
    assert binary.is_binary and binary.after_text is None


def test_search_vector_finds_title_body_comments_and_paths(repository):
    from corpus.selectors import filtered_pull_requests

    ingest.store_pull_request(repository=repository, record=store_record())
    for query in ("empty key", "crashed", "panic", "get.go", "store"):
        assert filtered_pull_requests({"q": query}).count() == 1, query
    assert filtered_pull_requests({"q": "kubernetes"}).count() == 0


def test_nul_bytes_and_undecodable_text_are_stored_cleanly(repository):
    record = store_record(body="bad\x00byte \udcff here")
    ingest.store_pull_request(repository=repository, record=record)
    assert PullRequest.objects.get().body == "bad\ufffdbyte \ufffd here"


def test_quality_exclusion_is_automatic_until_a_person_decides(repository):
    only_docs = store_record(number=8, files=[FileRecord("README.md", additions=1, patch="@@ -1 +1 @@\n+x\n")])
    ingest.store_pull_request(repository=repository, record=only_docs)
    pr = PullRequest.objects.get(number=8)
    assert not pr.included and pr.excluded_reason == "quality: no Go changes"
    curation.curate_pull_requests(pull_requests=PullRequest.objects.filter(pk=pr.pk), action="include")
    ingest.store_pull_request(repository=repository, record=dataclasses.replace(only_docs, body="edited"))
    assert PullRequest.objects.get(number=8).included


def test_dedupe_flags_exact_and_near_duplicates_and_never_deletes(repository):
    ingest.store_pull_request(repository=repository, record=store_record(number=1))
    ingest.store_pull_request(repository=repository, record=store_record(number=2, title="Backport: fix empty key"))
    near_after = AFTER.replace('"none"', '"none."')  # the same identifiers: a near duplicate for sure
    near = store_record(
        number=3,
        title="Fix empty key in Get",  # re-opened with one word changed: the same change, nearly
        files=[FileRecord("store/get.go", before=BEFORE, after=near_after, patch="@@ -1 +1 @@\n+x\n")],
    )
    ingest.store_pull_request(repository=repository, record=near)
    result = dedupe.dedupe_corpus()
    assert result["exact"] == 1 and result["near"] == 1
    first, second, third = PullRequest.objects.order_by("number")
    assert first.included and first.duplicate_of is None
    assert second.duplicate_of == first and second.excluded_reason == "exact duplicate of acme/store#1"
    assert not third.included and third.excluded_reason == "near duplicate of acme/store#1"
    assert PullRequest.objects.count() == 3


def _run(job: FetchJob):
    job = claim(FetchJob, job.pk)
    status, message = fetch_jobs.run_fetch(job)
    finish(job, status, message)  # as run_job does: the row ends, so it can be retried
    return status, message


def test_git_import_of_the_sample_is_complete_and_rerunnable(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    job = fetch_jobs.create_fetch_job(kind=Source.GIT, targets=[], build_sample=True, enqueue=False)
    status, message = _run(job)
    assert status == JobStatus.FINISHED, message
    job.refresh_from_db()
    assert Repository.objects.count() == 3 and job.repos_done == 3
    stored = PullRequest.objects.count()
    assert stored >= 30 and job.prs_new == stored and not job.errors
    assert set(Repository.objects.values_list("license_spdx", flat=True)) == {"MIT", "Apache-2.0", "BSD-3-Clause"}
    assert Repository.objects.filter(state=Repository.State.OK, source=Source.GIT).count() == 3

    again = fetch_jobs.retry_fetch_job(job=FetchJob.objects.get(pk=job.pk))
    FetchJob.objects.filter(pk=again.pk).update(status=JobStatus.QUEUED)
    status, _ = _run(again)
    again.refresh_from_db()
    assert status == JobStatus.FINISHED and again.prs_new == 0 and PullRequest.objects.count() == stored


def test_a_change_that_only_moves_a_function_is_left_out_with_its_reason(repository):
    # gin #3385 "Adjust the position of some functions": Go changed, no declaration did, the CODE section is empty.
    # It teaches nothing, and with no declarations duplicate detection has nothing to judge it on either.
    get, put = "func Get(k string) string {\n\treturn k\n}\n", "func Put(k string) {\n\t_ = k\n}\n"
    before, after = f"package store\n\n{get}\n{put}", f"package store\n\n{put}\n{get}"
    files = [FileRecord("store/get.go", before=before, after=after, additions=4, deletions=4)]
    record = store_record(number=9, files=files)
    ingest.store_pull_request(repository=repository, record=record)
    pr = PullRequest.objects.get(number=9)
    assert pr.content_hash == ""
    assert "no declaration changed (code moved or reformatted only)" in pr.quality_flags
    assert not pr.included and pr.excluded_reason == "quality: no declaration changed (code moved or reformatted only)"

    # A PR without Go of its own keeps only its own reason.
    only_docs = store_record(number=10, files=[FileRecord("README.md", additions=1, patch="@@ -1 +1 @@\n+x\n")])
    ingest.store_pull_request(repository=repository, record=only_docs)
    assert PullRequest.objects.get(number=10).quality_flags == ["no Go changes"]


def test_rejudging_flags_a_move_only_pr_stored_before_the_rule(repository):
    get, put = "func Get(k string) string {\n\treturn k\n}\n", "func Put(k string) {\n\t_ = k\n}\n"
    before, after = f"package store\n\n{get}\n{put}", f"package store\n\n{put}\n{get}"
    record = store_record(number=11, files=[FileRecord("store/get.go", before=before, after=after, additions=4)])
    ingest.store_pull_request(repository=repository, record=record)
    ingest.store_pull_request(repository=repository, record=store_record(number=12))
    # As an older version stored it: no such flag, included.
    PullRequest.objects.filter(number=11).update(quality_flags=[], included=True, excluded_reason="")

    counts = dedupe.rejudge_duplicates()
    moved, changed = PullRequest.objects.get(number=11), PullRequest.objects.get(number=12)
    assert counts["no_declaration"] == 1
    assert moved.quality_flags == ["no declaration changed (code moved or reformatted only)"] and not moved.included
    assert changed.included and "no declaration changed (code moved or reformatted only)" not in changed.quality_flags


def test_two_fixes_to_different_lines_of_one_long_function_are_not_near_duplicates(repository):
    # As gin's tree.go: #3460 (a loop index fix) was judged a near duplicate of #3201 (a comment typo) because
    # both edit getValue, whose 150 unchanged lines both records carried before and after.
    body = "".join(f'\tif key == "k{i}" {{\n\t\tcount += {i}\n\t}}\n' for i in range(60))
    base = f"package store\n\nfunc Count(key string) int {{\n\tcount := 0\n{body}\treturn count\n}}\n"
    typo = base.replace("count += 5\n", "count += 5 // five\n")
    loop = base.replace("count += 50\n", "count -= 50\n")
    for number, title, after in ((1, "Fix a typo in a comment", typo), (2, "fix(router): loop index bug", loop)):
        files = [FileRecord("store/count.go", before=base, after=after, additions=1, deletions=1)]
        ingest.store_pull_request(repository=repository, record=store_record(number=number, title=title, files=files))
    # The loop fix merged again on a branch where another line of the function differs: the same change.
    branch_base = base.replace("count += 20\n", "count += 21\n")
    again = [
        FileRecord("store/count.go", before=branch_base, after=branch_base.replace("count += 50\n", "count -= 50\n"))
    ]
    ingest.store_pull_request(
        repository=repository,
        record=store_record(number=3, title="fix(router): loop index bug (backport)", files=again),
    )

    dedupe.dedupe_corpus()
    prs = {pr.number: pr for pr in PullRequest.objects.all()}
    assert prs[1].included and prs[2].included and prs[2].duplicate_of is None
    assert prs[3].duplicate_of == prs[2] and prs[3].excluded_reason == "near duplicate of acme/store#2"
