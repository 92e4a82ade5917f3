"""GraphQL points shared through the database: two workers on one token never spend the same hour's points twice."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from corpus.budget import DatabaseBudget
from corpus.github.client import GitHubClient
from corpus.github.clones import GitRunner, ensure_clone
from corpus.github.fetch_graphql import fetch_merged_pulls, page_cost
from corpus.github.graphql import GraphQLClient
from corpus.github.server import GitHubShapedServer
from corpus.models import ApiBudget, PullRequest
from corpus.sample.story import sample_story
from tests.commands import command_env, spawn, stop

pytestmark = pytest.mark.django_db(transaction=True)


class Clock:
    """Seconds since the epoch that a waiting worker moves on (waits are instant; the hour passes)."""

    def __init__(self, start: float):
        self.now = start
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_reservations_never_overdraw_the_hour():
    clock = Clock(1_000_000.0)
    a = DatabaseBudget("https://api.github.com", "tok", now=clock)
    b = DatabaseBudget("https://api.github.com", "tok", now=clock)  # another worker, same token
    other = DatabaseBudget("https://api.github.com", "another", now=clock)
    a.observe(30, clock() + 3600)
    assert a.reserve(13) == 0 and b.reserve(13) == 0
    assert 0 < a.reserve(13) < 5  # 30 - 26 in flight: wait for those to settle, then look again
    assert other.reserve(13) == 0  # another token has its own hour
    a.settle(13, 13, 17, clock() + 3600)  # GitHub: 17 left; b's 13 still in flight
    assert 0 < b.reserve(13) < 5
    b.settle(13, 13, 4, clock() + 3600)
    assert a.reserve(13) > 3000  # 4 left and nothing in flight: wait for the reset
    assert a.reserve(4) == 0
    row = ApiBudget.objects.get(key=a.key)
    assert row.points_spent == 26 and row.reserved == 4 and row.remaining == 4
    clock.advance(3601)  # a new hour: unknown until one query finds out, meanwhile the others wait
    a.settle(4, 0, None, None)
    assert a.reserve(13) == 0 and 0 < b.reserve(13) < 5


def test_two_workers_share_one_tokens_points(tmp_path):
    story = sample_story()[:2]
    limit = 2 * page_cost(50) + 4  # enough for two pages and two probes an hour, not more
    clock = Clock(0)
    with GitHubShapedServer(story, git_root=tmp_path / "served", graphql_points=limit) as server:
        clock.advance(server.points.state()[1] - 3600)  # the budget's clock starts with the server's hour
        waits: list[str] = []
        results: dict[str, int] = {}
        errors: list[BaseException] = []

        def sleep(seconds: float) -> None:
            if seconds > 60:  # waiting for the reset: the hour passes, GitHub refills the points
                clock.advance(seconds)
                server.points.set_remaining(limit)
            else:
                clock.advance(seconds)

        def worker(full_name: str) -> None:
            try:
                rest = GitHubClient(server.base_url, sleep=sleep, on_wait=lambda s, r: waits.append(r))
                budget = DatabaseBudget(server.base_url, None, now=clock)
                gql = GraphQLClient(rest, budget=budget)
                runner = GitRunner(server.base_url)
                clone = ensure_clone(runner, tmp_path / "clones", full_name)
                stored = []
                for _ in range(2):  # twice over: the second pass needs the next hour's points
                    fetch_merged_pulls(gql, runner, clone, full_name, on_result=lambda r, n: r and stored.append(r))
                results[full_name] = len(stored)
            except BaseException as exc:  # noqa: BLE001 - reported by the test thread
                errors.append(exc)
            finally:
                connection.close()

        DatabaseBudget(server.base_url, None, now=clock).observe(limit, server.points.state()[1])
        threads = [threading.Thread(target=worker, args=(repo.full_name,)) for repo, _ in story]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors
        assert server.graphql_rate_limited == 0  # no query was sent that the hour could not pay for
        assert any("GraphQL points shared by the workers" in w for w in waits)
        assert sorted(results.values()) == sorted(
            2 * sum(1 for p in pulls if p.merged_at and any(f.path.endswith(".go") for f in p.files))
            for _, pulls in story
        )


def test_two_worker_processes_share_one_tokens_rest_requests(tmp_path):
    """Two `fetch_github` processes on one token, REST, against a window too small for both: neither
    sends a request the window cannot pay for (the server refuses none), and both store everything."""
    story = sample_story()[:2]
    limit = 30  # requests per 3-second window; the two repositories need several windows
    with GitHubShapedServer(story, token="rest-token", rate_limit=limit, rate_window=3) as server:
        env = command_env(
            tmp_path / "data", GITHUB_FETCH_METHOD="rest", GITHUB_TOKEN="", HRGC_GITHUB_ALLOWED_HOSTS="127.0.0.1"
        )
        processes = []
        for repo, _ in story:
            log = tmp_path / f"{repo.full_name.replace('/', '_')}.log"
            args = ("fetch_github", repo.full_name, "--api-url", server.base_url, "--token", "rest-token")
            processes.append((spawn(*args, env=env, log=log), log))
        try:
            for process, log in processes:
                process.wait(timeout=300)
                assert process.returncode == 0, log.read_text()
        finally:
            for process, _ in processes:
                stop(process)
        logs = "".join(log.read_text() for _, log in processes)
        assert server.rest_rate_limited == 0, logs  # not one request past the window's limit
        assert "REST requests shared by the workers" in logs  # they waited for each other's spending
        assert len(server.request_log) > 2 * limit  # the work needed more than one window
    for repo, pulls in story:
        go_pulls = {p.number for p in pulls if p.merged_at and any(f.path.endswith(".go") for f in p.files)}
        stored = set(PullRequest.objects.filter(repository__full_name=repo.full_name).values_list("number", flat=True))
        assert stored == go_pulls
    row = ApiBudget.objects.get(resource="core")
    assert row.reserved == 0 and row.points_spent > 2 * limit
