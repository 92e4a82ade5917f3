"""The fetch job through GraphQL + git against the GitHub-shaped server: real HTTP, real git, real Postgres.

Same records as REST, one call per unchanged repository, REST when GraphQL is refused, resume after
kill -9 from the saved cursor and the clone, disk use and dropping a clone on the repository page."""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest
from django.urls import reverse

from corpus.github.server import GitHubShapedServer
from corpus.models import FetchJob, GitHubSettings, PullRequest, Repository
from corpus.sample.story import sample_story
from corpus.services import fetch_jobs
from corpus.services.repositories import clones_root
from hrgc_site.jobs import claim, finish
from hrgc_site.models import JobStatus
from tests.commands import command_env, spawn, stop

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN = "graphql-token-1"
SAMPLES = ["hrgc-samples/kvstore", "hrgc-samples/httprouter-lite", "hrgc-samples/csvtool"]


@pytest.fixture
def server(tmp_path, settings):
    settings.DATA_DIR = tmp_path / "data"
    with GitHubShapedServer(sample_story(), token=TOKEN, git_root=tmp_path / "served") as running:
        config = GitHubSettings.load()
        config.api_url, config.token = running.base_url, TOKEN
        config.save()
        yield running


def _run(targets, **options) -> tuple[FetchJob, str, str]:
    job = fetch_jobs.create_fetch_job(kind="github", targets=targets, enqueue=False)
    job = claim(FetchJob, job.pk)
    status, message = fetch_jobs.run_fetch(job, **options)
    finish(job, status, message)
    job.refresh_from_db()
    return job, status, message


def _stored() -> dict:
    """Every stored PR as comparable data: the record fields, files with texts, and comments."""
    out = {}
    for pr in PullRequest.objects.prefetch_related("files", "comments").select_related("repository"):
        files = sorted(
            (f.path, f.status, f.previous_path, f.before_text, f.after_text, f.patch, f.additions, f.deletions)
            for f in pr.files.all()
        )
        comments = sorted((c.kind, c.author, c.body, c.path, c.line) for c in pr.comments.all())
        out[(pr.repository.full_name, pr.number)] = (
            pr.title, pr.body, pr.author, pr.merged_at, pr.base_commit, pr.merge_commit, pr.labels, files, comments
        )  # fmt: skip
    return out


def test_graphql_and_git_store_what_rest_stores_and_an_unchanged_refetch_costs_one_call(server, settings):
    settings.GITHUB_FETCH_METHOD = "rest"
    job, status, message = _run(SAMPLES)
    assert status == JobStatus.FINISHED and job.method == "REST", message
    through_rest, rest_requests = _stored(), job.api_requests
    PullRequest.objects.all().delete()
    Repository.objects.all().delete()

    settings.GITHUB_FETCH_METHOD = "graphql"
    job, status, message = _run(SAMPLES)
    assert status == JobStatus.FINISHED and job.method == "GraphQL + git", message
    assert _stored() == through_rest
    assert job.graphql_points > 0 and job.git_bytes > 0 and job.api_requests < rest_requests / 10
    assert {row["state"] for row in job.repo_progress.values()} == {"done"}
    assert sum(row["prs"] for row in job.repo_progress.values()) == job.prs_new
    repository = Repository.objects.get(full_name=SAMPLES[0])
    assert repository.clone_partial and repository.clone_bytes > 0 and not repository.pulls_cursor

    queries, git, rest_log = server.graphql_queries, server.git_requests, len(server.request_log)
    again, status, _ = _run(SAMPLES)
    assert status == JobStatus.FINISHED and again.prs_new == 0
    assert server.graphql_queries - queries == 1  # one probe for all three repositories
    assert server.git_requests == git  # the clones are not even fetched
    assert len(server.request_log) - rest_log == 1  # that query, nothing else
    assert {row["state"] for row in again.repo_progress.values()} == {"unchanged"}


def test_rest_takes_over_when_graphql_is_refused_and_says_so(server):
    server.faults.graphql_disabled = True
    job, status, message = _run(SAMPLES[:1])
    assert status == JobStatus.FINISHED, message
    assert job.method.startswith("REST (GraphQL refused (404)")
    assert job.prs_new > 0 and job.graphql_points == 0


def test_a_repository_without_a_clone_goes_through_rest(tmp_path, settings):
    settings.DATA_DIR = tmp_path / "data"
    with GitHubShapedServer(sample_story(), token=TOKEN) as plain:  # serves no git
        config = GitHubSettings.load()
        config.api_url, config.token = plain.base_url, TOKEN
        config.save()
        job, status, message = _run(SAMPLES[:1])
    assert status == JobStatus.FINISHED, message
    assert job.method.startswith("GraphQL + git; REST for 1 repositories (clone failed")
    assert job.prs_new > 0 and job.repo_progress[SAMPLES[0]]["method"] == "REST"


def test_faults_are_waited_out_in_the_job(server):
    server.faults.update({"server_errors": 2, "secondary_limit": 1, "retry_after": 1, "graphql_errors": 1})
    server.faults.update({"git_server_errors": 1, "git_break_pack": 1})
    job, status, message = _run(SAMPLES[:1])
    assert status == JobStatus.FINISHED and not job.errors, (message, job.errors)
    assert job.method == "GraphQL + git" and job.prs_new == sum(
        1 for p in sample_story()[0][1] if any(f.path.endswith(".go") for f in p.files)
    )


def test_kill_9_mid_repository_then_resume_from_the_cursor_and_the_clone(server, tmp_path, settings):
    server.faults.delay = 0.3  # slow enough to be killed between pages
    env = command_env(
        tmp_path / "data", GITHUB_GRAPHQL_PAGE_SIZE="2", GITHUB_TOKEN="", HRGC_GITHUB_ALLOWED_HOSTS="127.0.0.1"
    )
    name = SAMPLES[0]
    log = tmp_path / "fetch.log"
    process = spawn("fetch_github", name, "--api-url", server.base_url, "--token", TOKEN, env=env, log=log)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            repository = Repository.objects.filter(full_name=name).first()
            if repository is not None and repository.pulls_cursor and repository.pull_requests.count() >= 2:
                break
            assert process.poll() is None, log.read_text()
            time.sleep(0.05)
        else:
            raise AssertionError(f"no page stored in time:\n{log.read_text()}")
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        stop(process)
    repository.refresh_from_db()
    cursor, kept = repository.pulls_cursor, repository.pull_requests.count()
    assert cursor and 0 < kept
    server.faults.delay = 0
    queries_before = len(server.graphql_log)
    settings.GITHUB_GRAPHQL_PAGE_SIZE = 2  # DATA_DIR is the killed worker's: its clone is fetched, not made again
    packs = set((clones_root() / "hrgc-samples" / "kvstore.git" / "objects" / "pack").glob("*.pack"))
    assert packs
    job, status, message = _run([name])
    assert status == JobStatus.FINISHED, message
    resumed = [v for v in server.graphql_log[queries_before:] if "first" in v]
    assert resumed[0]["after"] == cursor  # the first page asked for is the one after the last stored
    total = repository.pull_requests.count()
    go_pulls = sum(1 for p in sample_story()[0][1] if any(f.path.endswith(".go") for f in p.files))
    assert total == go_pulls and job.prs_new == go_pulls - kept
    numbers = list(repository.pull_requests.values_list("number", flat=True))
    assert len(numbers) == len(set(numbers))
    repository.refresh_from_db()
    assert not repository.pulls_cursor and repository.pulls_updated_since is not None
    assert packs <= set((clones_root() / "hrgc-samples" / "kvstore.git" / "objects" / "pack").glob("*.pack"))


def test_repository_page_shows_the_clone_and_drops_it(server, operator_client):
    _run(SAMPLES[:1])
    repository = Repository.objects.get(full_name=SAMPLES[0])
    page = operator_client.get(repository.get_absolute_url()).content.decode()
    assert "partial: blobs fetched as needed" in page and "Drop the clone" in page
    response = operator_client.post(reverse("corpus:repository_drop_clone", args=[repository.pk]), follow=True)
    assert "freed" in response.content.decode()
    repository.refresh_from_db()
    assert repository.clone_bytes is None
    assert not (clones_root() / "hrgc-samples" / "kvstore.git").exists()


def test_a_search_queues_one_crawl_whose_page_shows_each_repository(server, operator_client):
    response = operator_client.post(reverse("corpus:add_search"), {"q": "language:go", "limit": "10"})
    job = FetchJob.objects.get()
    assert response.status_code == 302 and response["Location"] == job.get_absolute_url()
    assert sorted(job.targets) == sorted(SAMPLES) and job.status == JobStatus.QUEUED
    job = claim(FetchJob, job.pk)
    status, message = fetch_jobs.run_fetch(job)
    finish(job, status, message)
    page = operator_client.get(job.get_absolute_url()).content.decode()
    assert 'id="job-repositories"' in page and "GraphQL + git" in page
    for name in SAMPLES:
        assert name in page


def test_github_git_url_goes_with_its_api_and_gets_the_token_only_there(server, tmp_path, settings):
    with GitHubShapedServer(sample_story(), token=TOKEN, git_root=tmp_path / "mirror") as mirror:
        settings.GITHUB_API_URL, settings.GITHUB_GIT_URL = server.base_url, mirror.base_url
        job, status, message = _run(SAMPLES[:1])
        assert status == JobStatus.FINISHED and job.method == "GraphQL + git", message
        assert mirror.git_requests > 0 and server.git_requests == 0  # cloned from the configured git host
        assert all(a and a.startswith("Basic ") for a in mirror.git_authorizations)

        # A job on another API does not send that API's token to the configured git host.
        settings.GITHUB_API_URL = "https://api.github.com"
        clones = mirror.git_requests
        Repository.objects.all().delete()
        shutil.rmtree(clones_root() / "hrgc-samples")
        job, status, message = _run(SAMPLES[:1])
        assert status == JobStatus.FINISHED, message
        assert mirror.git_requests == clones and server.git_requests > 0


def test_a_clone_in_use_by_a_fetch_cannot_be_dropped_until_the_fetch_is_gone(server, tmp_path, operator_client):
    server.faults.delay = 0.5  # a fetch slow enough to be caught using its clone
    env = command_env(
        tmp_path / "data", GITHUB_GRAPHQL_PAGE_SIZE="2", GITHUB_TOKEN="", HRGC_GITHUB_ALLOWED_HOSTS="127.0.0.1"
    )
    name = SAMPLES[0]
    clone = clones_root() / "hrgc-samples" / "kvstore.git"
    log = tmp_path / "fetch.log"
    process = spawn("fetch_github", name, "--api-url", server.base_url, "--token", TOKEN, env=env, log=log)
    try:
        deadline = time.monotonic() + 120
        while not Repository.objects.filter(full_name=name, clone_bytes__isnull=False).exists():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"no clone in time:\n{log.read_text()}"
            time.sleep(0.05)
        repository = Repository.objects.get(full_name=name)
        url = reverse("corpus:repository_drop_clone", args=[repository.pk])
        page = operator_client.post(url, follow=True).content.decode()
        assert "is in use by a running fetch" in page and "freed" not in page
        assert (clone / "HEAD").is_file()
        os.kill(process.pid, signal.SIGKILL)  # a killed fetch holds nothing: its lock went with its connection
        process.wait(timeout=30)
    finally:
        stop(process)
    page = operator_client.post(url, follow=True).content.decode()
    assert "freed" in page and not clone.exists()


def test_a_fetch_waits_for_a_drop_under_way_then_clones_afresh(server):
    import threading

    from corpus.clone_locks import clone_for_dropping

    name = SAMPLES[0]
    outcome: dict = {}

    def fetch() -> None:
        try:
            outcome["job"] = _run([name])
        finally:
            from django.db import connection

            connection.close()

    with clone_for_dropping(name):  # a drop deleting the clone right now
        thread = threading.Thread(target=fetch)
        thread.start()
        deadline = time.monotonic() + 60
        while server.graphql_queries == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        thread.join(timeout=3)
        assert thread.is_alive() and server.git_requests == 0  # probed, then waiting: no git while the drop runs
    thread.join(timeout=120)
    job, status, message = outcome["job"]
    assert status == JobStatus.FINISHED and job.prs_new > 0 and server.git_requests > 0, message
    assert (clones_root() / "hrgc-samples" / "kvstore.git" / "HEAD").is_file()
