"""The GitHub fetch job against the GitHub-shaped server over real HTTP: 404, licence, 401, incremental, resume."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time

import pytest

from corpus.github.client import GitHubClient
from corpus.github.server import GitHubShapedServer
from corpus.models import (
    FetchJob,
    GitHubSettings,
    PullRequest,
    Repository,
    Source,
)
from corpus.records import RepoRecord
from corpus.sample.build_git import build_sample_repos
from corpus.sample.story import sample_story
from corpus.services import fetch_jobs
from hrgc_site.jobs import claim, finish
from hrgc_site.models import JobStatus
from tests.corpus.support import run_fetch_job, story_pull

pytestmark = pytest.mark.django_db(transaction=True)  # the REST pool threads use their own connections
TOKEN = "test-token-1"
SAMPLES = ["hrgc-samples/kvstore", "hrgc-samples/httprouter-lite", "hrgc-samples/csvtool"]


def _story():
    story = sample_story()
    _, pulls = story[0]
    unlicensed = RepoRecord("acme/unlicensed", license_spdx="NOASSERTION", provenance="x")
    story.append((unlicensed, [dataclasses.replace(p, repo="acme/unlicensed") for p in pulls[:2]]))
    return story


@pytest.fixture
def server():
    with GitHubShapedServer(_story(), token=TOKEN, per_page_max=5) as running:
        settings = GitHubSettings.load()
        settings.api_url, settings.token = running.base_url, TOKEN
        settings.save()
        yield running


def _run(targets, **options) -> tuple[FetchJob, str, str]:
    job = fetch_jobs.create_fetch_job(kind="github", targets=targets, enqueue=False)
    job = claim(FetchJob, job.pk)
    status, message = fetch_jobs.run_fetch(job, **options)
    finish(job, status, message)  # as run_job does: the row ends, so it can be retried
    job.refresh_from_db()
    return job, status, message


def _story_counts() -> int:
    return sum(len(pulls) for repo, pulls in sample_story())


def test_fetch_stores_every_go_pr_and_reports_bad_repositories(server):
    job, status, message = _run([*SAMPLES, "hrgc-samples/nope", "acme/unlicensed", "not a name"])
    assert status == JobStatus.FINISHED, message
    assert Repository.objects.get(full_name="hrgc-samples/nope").state == Repository.State.MISSING
    unlicensed = Repository.objects.get(full_name="acme/unlicensed")
    assert unlicensed.state == Repository.State.LICENSE and "licence NOASSERTION" in unlicensed.state_message
    assert not PullRequest.objects.filter(repository=unlicensed).exists()
    assert set(job.errors) == {"hrgc-samples/nope", "acme/unlicensed", "not a name"}
    assert "404" in job.errors["hrgc-samples/nope"] and "owner/name" in job.errors["not a name"]
    stored = PullRequest.objects.count()
    assert stored == job.prs_new and job.prs_new + job.prs_skipped == _story_counts()
    assert job.api_requests > stored and job.rate_limit_remaining is not None and job.repos_done == 6
    pr = PullRequest.objects.filter(repository__full_name=SAMPLES[0]).order_by("number").first()
    assert pr.files.filter(is_go=True, after_text__isnull=False).exists() and pr.source_url

    # Incremental: the second fetch asks only what changed (a 304 on each list) and stores nothing new.
    before = len(server.request_log)
    again, status, _ = _run(SAMPLES)
    assert status == JobStatus.FINISHED and again.prs_new == 0 and PullRequest.objects.count() == stored
    assert len(server.request_log) - before <= 2 * len(SAMPLES)


def test_a_rejected_token_fails_the_job_with_a_clear_message(server):
    settings = GitHubSettings.load()
    settings.token = "wrong"
    settings.save()
    _, status, message = _run(SAMPLES)
    assert status == JobStatus.FAILED and message.startswith("token rejected")
    assert PullRequest.objects.count() == 0


def test_an_interrupted_fetch_retried_ends_complete_without_duplicates(server):
    # Revoke the token part-way (as a killed worker would, the job stops mid-repository), then retry.
    def revoke_after_some_requests():
        while len(server.request_log) < 40:
            time.sleep(0.005)
        server.faults.revoke_token = True

    watcher = threading.Thread(target=revoke_after_some_requests, daemon=True)
    watcher.start()
    first, status, _ = _run(SAMPLES)
    watcher.join(timeout=10)
    assert status == JobStatus.FAILED
    partial = PullRequest.objects.count()
    assert 0 < partial < _story_counts()

    server.faults.revoke_token = False
    retry = fetch_jobs.retry_fetch_job(job=first)
    retry = claim(FetchJob, retry.pk)
    status, message = fetch_jobs.run_fetch(retry)
    retry.refresh_from_db()
    assert status == JobStatus.FINISHED, message
    total = PullRequest.objects.count()
    assert total == retry.prs_new + partial and retry.prs_skipped >= partial
    numbers = list(PullRequest.objects.values_list("repository__full_name", "number"))
    assert len(numbers) == len(set(numbers)) and retry.retry_of_id == first.pk


def test_server_errors_and_secondary_limits_are_waited_out(server):
    server.faults.update({"server_errors": 3, "secondary_limit": 2, "retry_after": 1})
    job, status, message = _run(SAMPLES[:1])
    assert status == JobStatus.FINISHED, message
    assert job.prs_new + job.prs_skipped == len(sample_story()[0][1]) and not job.errors


def test_sample_import_attaches_labels_and_comments_but_a_plain_clone_import_does_not(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    clones = build_sample_repos(tmp_path / "sample-repos")
    plain = fetch_jobs.create_fetch_job(kind=Source.GIT, targets=[str(clones[0])], enqueue=False)
    _, status, message = run_fetch_job(plain)
    assert status == JobStatus.FINISHED, message
    assert not PullRequest.objects.exclude(labels=[]).exists()
    assert not PullRequest.objects.filter(comment_count__gt=0).exists()

    sample = fetch_jobs.create_fetch_job(kind=Source.GIT, targets=[], build_sample=True, enqueue=False)
    job, status, message = run_fetch_job(sample)
    assert status == JobStatus.FINISHED, message
    assert not job.errors
    story = story_pull("hrgc-samples/kvstore", 2)
    pr = PullRequest.objects.get(repository__full_name="hrgc-samples/kvstore", number=2)
    assert pr.labels == story.labels == ["bug"]
    # The PRs the plain import stored first get their discussion too.
    assert pr.comments.count() == pr.comment_count == len(story.comments) > 0
    assert {c.body for c in pr.comments.all()} == {c.body for c in story.comments}
    with_comments = PullRequest.objects.filter(comment_count__gt=0).count()
    assert with_comments >= PullRequest.objects.count() // 2
    # Labels count towards the intent: every labelled sample PR has one.
    assert not PullRequest.objects.exclude(labels=[]).filter(intent="").exists()
    assert PullRequest.objects.filter(intent="OPTIMIZE").count() >= 5


def test_a_git_import_whose_every_target_failed_ends_failed(tmp_path):
    job = fetch_jobs.create_fetch_job(kind=Source.GIT, targets=[str(tmp_path)], enqueue=False)
    job, status, message = run_fetch_job(job)
    assert status == job.status == JobStatus.FAILED
    assert "every repository failed" in message and str(tmp_path) in job.errors


def _quick_client(base_url: str) -> GitHubClient:
    return GitHubClient(base_url, None, max_retries=2, backoff_base=0.001, sleep=lambda seconds: None, timeout=5)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends: nothing listens there


def test_fetch_with_the_api_unreachable_records_each_repository_and_fails():
    base = f"http://127.0.0.1:{_closed_port()}"
    job = fetch_jobs.create_fetch_job(kind=Source.GITHUB, targets=["acme/one", "acme/two"], enqueue=False)
    job, status, message = run_fetch_job(job, client=_quick_client(base))
    assert status == job.status == JobStatus.FAILED
    assert "Traceback" not in message and "\n" not in message and message.startswith("every repository failed")
    assert set(job.errors) == {"acme/one", "acme/two"}
    for error in job.errors.values():
        assert "gave up after 2 retries" in error and "connection error" in error and base in error
        assert "\n" not in error
    assert job.api_requests == 9  # 3 attempts at the crawl's GraphQL probe of both, then 3 per repository
    assert Repository.objects.get(full_name="acme/one").state == Repository.State.ERROR


@pytest.mark.parametrize("method, errors", [("rest", 3), ("graphql", 6)])
def test_a_repository_whose_requests_keep_failing_does_not_stop_the_others(settings, method, errors):
    settings.GITHUB_FETCH_METHOD = method
    story = sample_story()
    with GitHubShapedServer(story) as server:
        # The first repository's 3 attempts (through GraphQL, after the 3 of the crawl's probe of both).
        server.faults.update({"server_errors": errors})
        targets = ["hrgc-samples/kvstore", "hrgc-samples/csvtool"]
        job = fetch_jobs.create_fetch_job(kind=Source.GITHUB, targets=targets, enqueue=False)
        job, status, message = run_fetch_job(job, client=_quick_client(server.base_url))
    assert status == JobStatus.FINISHED, message
    assert list(job.errors) == ["hrgc-samples/kvstore"] and "server error" in job.errors["hrgc-samples/kvstore"]
    assert PullRequest.objects.filter(repository__full_name="hrgc-samples/csvtool").exists()
    assert not PullRequest.objects.filter(repository__full_name="hrgc-samples/kvstore").exists()
    assert job.repos_done == 2 and job.api_requests >= 3 + PullRequest.objects.count()
