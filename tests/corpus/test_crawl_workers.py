"""A crawl shared by two workers of a real django-q2 cluster: each repository is fetched once, and the
repository of a helper killed with -9 is taken over after the heartbeat timeout, resuming from its
saved cursor and its clone. Real HTTP (the GitHub-shaped server), real git, real PostgreSQL."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import pytest

from corpus.github.server import GitHubShapedServer
from corpus.models import CrawlRepository, GitHubSettings, PullRequest, Repository
from corpus.sample.story import sample_story
from corpus.services import fetch_jobs
from corpus.services.repositories import clones_root
from hrgc_site.models import JobStatus
from tests.commands import command_env, spawn, stop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
TOKEN = "crawl-token-1"


def _pid(worker: str) -> int:
    return int(worker.split("#", 1)[0].rsplit(":", 1)[1])


def _go_pulls(pulls) -> int:
    return sum(1 for p in pulls if p.merged_at and any(f.path.endswith(".go") for f in p.files))


def test_two_workers_share_a_crawl_and_a_killed_helpers_repository_is_taken_over(tmp_path, settings, operator_client):
    settings.DATA_DIR = tmp_path / "data"
    story = sample_story()
    names = [repo.full_name for repo, _ in story]
    with GitHubShapedServer(story, token=TOKEN, git_root=tmp_path / "served") as server:
        config = GitHubSettings.load()
        config.api_url, config.token = server.base_url, TOKEN
        config.save()
        server.faults.delay = 0.25  # slow enough that both workers are busy at once, and one can be killed mid-way
        env = command_env(
            tmp_path / "data",
            HRGC_WORKERS="2",
            GITHUB_CRAWL_WORKERS="2",
            GITHUB_GRAPHQL_PAGE_SIZE="2",
            GITHUB_TOKEN="",
            HRGC_GITHUB_ALLOWED_HOSTS="127.0.0.1",
            SECRET_KEY=settings.SECRET_KEY,  # the queue's tasks are signed with it
        )
        log = tmp_path / "qcluster.log"
        cluster = spawn("qcluster", env=env, log=log)
        try:
            job = fetch_jobs.create_fetch_job(kind="github", targets=names)  # queued at once (autocommit)
            killed = cursor = None
            deadline = time.monotonic() + 240
            while killed is None:
                assert time.monotonic() < deadline, f"no helper caught mid-repository:\n{log.read_text()}"
                assert cluster.poll() is None, log.read_text()
                job.refresh_from_db()
                owner = job.worker and int(job.worker.rsplit(":", 1)[1])
                for row in CrawlRepository.objects.filter(job=job, state=CrawlRepository.State.WORKING):
                    repository = Repository.objects.filter(full_name=row.target).first()
                    if owner and _pid(row.worker) != owner and repository and repository.pulls_cursor:
                        os.kill(_pid(row.worker), signal.SIGKILL)  # the helper, between two pages
                        killed = row
                        break
                time.sleep(0.05)
            repository = Repository.objects.get(full_name=killed.target)
            cursor = repository.pulls_cursor
            packs = set((clones_root() / f"{killed.target}.git" / "objects" / "pack").glob("*.pack"))
            assert cursor and packs
            while True:  # the owner finishes its repositories, then takes the silent helper's over
                job.refresh_from_db()
                if job.status not in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.WAITING):
                    break
                assert time.monotonic() < deadline + 120, f"the crawl did not end:\n{log.read_text()}"
                assert cluster.poll() is None, log.read_text()
                time.sleep(0.2)
        finally:
            stop(cluster)
        graphql_log = list(server.graphql_log)

    assert job.status == JobStatus.FINISHED and not job.errors, (job.message, job.errors, log.read_text())
    rows = {row.target: row for row in CrawlRepository.objects.filter(job=job)}
    assert {row.state for row in rows.values()} == {CrawlRepository.State.DONE}
    assert rows[killed.target].claims == 2  # taken over once
    assert all(row.claims == 1 for name, row in rows.items() if name != killed.target), rows
    assert _pid(rows[killed.target].worker) == owner != _pid(killed.worker)  # two workers did the crawl

    # Every PR stored once, and each page of each repository asked for once: the taken-over repository
    # resumed after the last page its killed worker stored, with the clone that worker left.
    for repo, pulls in story:
        assert PullRequest.objects.filter(repository__full_name=repo.full_name).count() == _go_pulls(pulls)
    assert job.prs_new == sum(_go_pulls(pulls) for _, pulls in story)
    pages = [(v["owner"], v["name"], v["after"]) for v in graphql_log if "first" in v]
    repeated = [page for page, count in Counter(pages).items() if count > 1]
    owner_name = tuple(killed.target.split("/"))
    # At most the page the kill cut short is asked again.
    assert all(page[:2] == owner_name and page[2] == cursor for page in repeated), (repeated, cursor, pages)
    resumed = [after for o, n, after in pages if (o, n) == owner_name]
    assert cursor in resumed
    assert packs <= set((clones_root() / f"{killed.target}.git" / "objects" / "pack").glob("*.pack"))
    assert {entry["state"] for entry in job.repo_progress.values()} == {"done"}
    assert sum(entry["prs"] for entry in job.repo_progress.values()) == job.prs_new
    page = operator_client.get(job.get_absolute_url()).content.decode()
    for name in names:
        assert name in page
    assert f":{owner}<" in page  # the worker on each repository is shown
