"""MinHash signatures stored at ingest: kept while the code is unchanged, and dedupe_corpus gives the old results."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import numpy as np
import pytest

from corpus import quality
from corpus.models import FetchJob, PullRequest, Repository, Source
from corpus.records import FileRecord
from corpus.selectors import pull_request_record
from corpus.services import curation, dedupe, fetch_jobs, ingest
from hrgc_site.jobs import claim, finish
from hrgc_site.models import JobStatus
from tests.corpus.support import AFTER, BEFORE, store_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def repository():
    return Repository.objects.create(full_name="acme/store", license_spdx="MIT")


@pytest.fixture
def counted(monkeypatch):
    """Counts the MinHash computations services makes."""
    calls = []
    real = quality.minhash_signature

    def counting(text):
        calls.append(text)
        return real(text)

    monkeypatch.setattr(quality, "minhash_signature", counting)
    return calls


def _stored_text(pr: PullRequest) -> str:
    return dedupe.dedupe_text(pull_request_record(pr, with_comments=False))


def _expected_signature(pr: PullRequest) -> bytes:
    values = quality.minhash_signature(_stored_text(pr))
    return b"" if values is None else np.asarray(values, dtype="<u4").tobytes()


def test_signature_is_stored_at_ingest(repository):
    ingest.store_pull_request(repository=repository, record=store_record())
    pr = PullRequest.objects.get()
    assert len(pr.minhash_signature) == quality.NUM_PERM * 4
    assert bytes(pr.minhash_signature) == _expected_signature(pr)
    assert pr.minhash_text_hash == quality.content_hash(_stored_text(pr))
    values = np.frombuffer(pr.minhash_signature, dtype="<u4")
    assert values.tolist() == quality.minhash_signature(_stored_text(pr))
    assert quality.signature_minhash(values).jaccard(quality.minhash(_stored_text(pr))) == 1.0

    docs_only = store_record(number=8, files=[FileRecord("README.md", additions=1, patch="@@ -1 +1 @@\n+x\n")])
    ingest.store_pull_request(repository=repository, record=docs_only)
    assert bytes(PullRequest.objects.get(number=8).minhash_signature) == b""  # no identifiers: nothing to hash


def test_unchanged_code_does_not_recompute(repository, counted):
    ingest.store_pull_request(repository=repository, record=store_record())
    assert len(counted) == 1
    before = PullRequest.objects.get()

    assert ingest.store_pull_request(repository=repository, record=store_record()) == "unchanged"
    edited = store_record(body="other words", labels=["bug", "backport"])
    assert ingest.store_pull_request(repository=repository, record=edited) == "updated"
    dedupe.dedupe_corpus()
    assert len(counted) == 1
    # The changed lines are what is judged, not the title: a new title keeps the signature, a new line does not.
    retitled = store_record(title="Fix empty key in Get (v2)", body="other words", labels=["bug", "backport"])
    ingest.store_pull_request(repository=repository, record=retitled)
    assert len(counted) == 1
    changed = AFTER.replace('"none"', '"empty"')
    rewritten = store_record(
        title="Fix empty key in Get (v2)", files=[FileRecord("store/get.go", before=BEFORE, after=changed)]
    )
    ingest.store_pull_request(repository=repository, record=rewritten)
    assert len(counted) == 2
    PullRequest.objects.update(minhash_signature=before.minhash_signature, minhash_text_hash=before.minhash_text_hash)
    after = PullRequest.objects.get()
    assert bytes(after.minhash_signature) == bytes(before.minhash_signature)
    assert after.minhash_text_hash == before.minhash_text_hash


def test_changed_code_gets_a_new_signature(repository, counted):
    ingest.store_pull_request(repository=repository, record=store_record())
    old = PullRequest.objects.get()
    changed = AFTER.replace("return k\n}", "return strings.ToUpper(k) + suffix(k, len(k))\n}")
    record = store_record(files=[FileRecord("store/get.go", before=BEFORE, after=changed, patch="@@ -1 +1 @@\n+x\n")])
    assert ingest.store_pull_request(repository=repository, record=record) == "updated"
    assert len(counted) == 2
    new = PullRequest.objects.get()
    assert bytes(new.minhash_signature) != bytes(old.minhash_signature)
    assert bytes(new.minhash_signature) == _expected_signature(new)
    assert new.minhash_text_hash != old.minhash_text_hash


def _run(job: FetchJob):
    job = claim(FetchJob, job.pk)
    status, message = fetch_jobs.run_fetch(job)
    finish(job, status, message)
    return status, message


def _old_dedupe_plan() -> dict[int, tuple[int, str]]:
    """What dedupe_corpus decided before signatures were stored: texts re-read and re-hashed every time."""
    rows = list(
        PullRequest.objects.exclude(content_hash="").order_by("merged_at", "id").values_list("id", "content_hash")
    )
    exact, kept_by_hash = {}, {}
    for pk, digest in rows:
        kept = kept_by_hash.setdefault(digest, pk)
        if kept != pk:
            exact[pk] = kept
    distinct = [pk for pk, _ in rows if pk not in exact]
    texts = {
        pr.pk: _stored_text(pr)
        for pr in PullRequest.objects.filter(pk__in=distinct).select_related("repository").prefetch_related("files")
    }
    near = quality.near_duplicates({pk: texts[pk] for pk in distinct if texts.get(pk)})
    name = {pr.pk: f"{pr.repository.full_name}#{pr.number}" for pr in PullRequest.objects.select_related("repository")}
    plan = {pk: (kept, f"exact duplicate of {name[kept]}") for pk, kept in exact.items()}
    plan.update({pk: (kept, f"near duplicate of {name[kept]}") for pk, kept in near.items()})
    return plan


def _state() -> dict[int, tuple]:
    return {
        pk: rest
        for pk, *rest in PullRequest.objects.values_list(
            "id", "duplicate_of", "duplicate_reason", "included", "excluded_reason", "curated_at"
        )
    }


def test_dedupe_of_the_sample_matches_the_old_path(settings, tmp_path, counted):
    settings.DATA_DIR = tmp_path
    job = fetch_jobs.create_fetch_job(kind=Source.GIT, targets=[], build_sample=True, enqueue=False)
    status, message = _run(job)
    assert status == JobStatus.FINISHED, message
    sample = list(
        PullRequest.objects.exclude(content_hash="")
        .select_related("repository")
        .prefetch_related("files")
        .order_by("merged_at", "id")
    )
    assert len(counted) == PullRequest.objects.count() >= 30  # one hash per PR, at ingest only

    # Copies of sample PRs in a fork, merged later: exact copies, and copies with a line changed.
    fork = Repository.objects.create(full_name="someone/fork", license_spdx="MIT")
    for number, pr in enumerate(sample[::3], start=1):
        record = dataclasses.replace(
            pull_request_record(pr, with_comments=False),
            repo=fork.full_name,
            number=number,
            merged_at=pr.merged_at + timedelta(days=400),
        )
        if number % 2:
            files = list(record.files)
            code = next(i for i, f in enumerate(files) if f.after and f.path.endswith(".go"))
            files[code] = dataclasses.replace(files[code], after=files[code].after + "\n// backported by the fork\n")
            record = dataclasses.replace(record, files=files)
        ingest.store_pull_request(repository=fork, record=record)
    # A person let one copy in on purpose before dedupe ran: that stays.
    curated = PullRequest.objects.get(repository=fork, number=2)
    for action, reason in (("exclude", "checking the fork"), ("include", "")):
        curation.curate_pull_requests(
            pull_requests=PullRequest.objects.filter(pk=curated.pk), action=action, reason=reason
        )

    calls_before_dedupe = len(counted)
    expected = _old_dedupe_plan()
    result = dedupe.dedupe_corpus()
    assert len(counted) == calls_before_dedupe  # every signature came from the database
    assert result["exact"] >= 1 and result["near"] >= 1
    assert {
        pk: (pr.duplicate_of_id, pr.duplicate_reason)
        for pk, pr in PullRequest.objects.in_bulk().items()
        if pr.duplicate_of_id
    } == expected
    for pr in PullRequest.objects.filter(pk__in=expected):
        if pr.pk == curated.pk:
            assert pr.included and pr.duplicate_reason  # flagged, but the person's decision stands
        else:
            assert not pr.included and pr.excluded_reason == expected[pr.pk][1]
    state = _state()

    # Rows from before signatures were stored: dedupe computes the missing ones, keeps them, same results.
    stored = dict(PullRequest.objects.values_list("id", "minhash_signature"))
    PullRequest.objects.update(minhash_signature=None, minhash_text_hash="")
    assert dedupe.dedupe_corpus()["changed"] == 0
    assert _state() == state
    exact = {pk for pk, (_, reason) in expected.items() if reason.startswith("exact")}
    distinct = set(PullRequest.objects.exclude(content_hash="").values_list("id", flat=True)) - exact
    refilled = {
        pk: bytes(sig) for pk, sig in PullRequest.objects.values_list("id", "minhash_signature") if sig is not None
    }
    assert refilled == {pk: bytes(stored[pk]) for pk in distinct}  # the same values ingest stored
    recomputed = len(counted)
    assert dedupe.dedupe_corpus()["changed"] == 0 and len(counted) == recomputed
    assert PullRequest.objects.count() == len(state)  # never deletes
