"""GitHubClient against the GitHub-shaped server over loopback: paging, ETags, rate limits, every fault."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta

import pytest

from corpus.github.client import (
    GitHubClient,
    MalformedResponse,
    NotFound,
    RetriesExhausted,
    TokenRejected,
)
from corpus.github.server import GitHubShapedServer
from corpus.records import PRRecord, RepoRecord

T0 = datetime(2024, 5, 1, tzinfo=UTC)
STORY = [
    (
        RepoRecord("acme/widgets", license_spdx="MIT", stars=10),
        [PRRecord("acme/widgets", n, f"PR {n}", merged_at=T0 + timedelta(days=n)) for n in range(1, 6)],
    ),
]


class RecordingSleep:
    """Stands in for time.sleep: remembers each wait and optionally really sleeps (for real resets)."""

    def __init__(self, real: bool = False):
        self.calls: list[float] = []
        self.real = real

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.real:
            time.sleep(seconds)


@pytest.fixture()
def server():
    with GitHubShapedServer(STORY, token="secret", per_page_max=2) as running:
        yield running


def _client(server, sleep=None, **options) -> GitHubClient:
    return GitHubClient(server.base_url, "secret", sleep=sleep or RecordingSleep(), **options)


def test_paginate_follows_next_links_across_pages(server):
    client = _client(server)
    numbers = [pr["number"] for pr in client.paginate("/repos/acme/widgets/pulls", {"state": "closed"})]
    assert sorted(numbers) == [1, 2, 3, 4, 5]
    assert client.requests_made == 3  # 2 + 2 + 1 per page
    assert client.rate_limit_remaining == 4997


def test_not_modified_answer_is_free_and_says_so(server):
    client = _client(server)
    first = client.get_json("/repos/acme/widgets")
    again = client.get_json("/repos/acme/widgets", etag=first.etag)
    assert again.not_modified and again.data is None and again.etag == first.etag
    assert client.requests_made == 2
    assert client.rate_limit_remaining == 4999 == server.faults.rate_limit_remaining


def test_burst_of_server_errors_is_retried_with_bounded_jittered_backoff(server):
    sleep = RecordingSleep()
    client = _client(server, sleep, backoff_base=0.5, backoff_cap=1.0)
    server.faults.server_errors = 3
    assert client.get_json("/repos/acme/widgets").data["full_name"] == "acme/widgets"
    assert len(sleep.calls) == 3 and all(0 <= s <= 1.0 for s in sleep.calls)
    assert client.requests_made == 4


def test_server_errors_past_max_retries_give_up_with_a_message(server):
    client = _client(server, max_retries=2)
    server.faults.server_errors = 10
    with pytest.raises(RetriesExhausted, match="gave up after 2 retries; last: server error 50"):
        client.get_json("/repos/acme/widgets")
    assert client.requests_made == 3


def test_secondary_limit_waits_exactly_as_retry_after_says(server):
    sleep, reported = RecordingSleep(), []
    client = _client(server, sleep, on_wait=lambda seconds, reason: reported.append(reason))
    server.faults.secondary_limit, server.faults.retry_after = 2, 7
    assert client.get_json("/repos/acme/widgets").status == 200
    assert sleep.calls == [7.0, 7.0]
    assert all("secondary rate limit" in reason for reason in reported)


def test_secondary_limit_without_retry_after_backs_off_from_a_minute(server):
    sleep = RecordingSleep()
    client = _client(server, sleep)
    server.faults.secondary_limit, server.faults.retry_after = 2, None
    assert client.get_json("/repos/acme/widgets").status == 200
    assert sleep.calls == [60.0, 120.0]


def test_spent_primary_limit_waits_until_reset_and_reports_it(server):
    sleep, reported = RecordingSleep(real=True), []
    client = _client(server, sleep, on_wait=lambda seconds, reason: reported.append((seconds, reason)))
    server.faults.rate_limit_remaining = 0
    started = time.monotonic()
    assert client.get_json("/repos/acme/widgets").status == 200
    assert len(reported) == 1
    seconds, reason = reported[0]
    assert reason.startswith("rate limit: waiting until ") and len(reason.rsplit(" ", 1)[1]) == 5  # HH:MM
    assert 0 < seconds <= 2 + 1  # reset is at most 2 s ahead (whole seconds), plus one second of slack
    assert time.monotonic() - started < 4
    assert client.rate_limit_remaining == 4999


def test_rejected_or_revoked_token_raises_at_once(server):
    wrong = GitHubClient(server.base_url, "nope", sleep=RecordingSleep())
    with pytest.raises(TokenRejected, match="token rejected"):
        wrong.get_json("/repos/acme/widgets")
    assert wrong.requests_made == 1
    client = _client(server)
    server.faults.revoke_token = True
    with pytest.raises(TokenRejected):
        list(client.paginate("/repos/acme/widgets/pulls", {"state": "closed"}))


def test_missing_repository_raises_not_found(server):
    with pytest.raises(NotFound, match="acme/vanished"):
        _client(server).get_json("/repos/acme/vanished")


def test_invalid_json_raises_malformed_response(server):
    server.faults.malformed = 1
    with pytest.raises(MalformedResponse, match="not valid JSON"):
        _client(server).get_json("/repos/acme/widgets")


def test_list_endpoint_answering_an_object_is_malformed(server):
    with pytest.raises(MalformedResponse, match="expected a JSON list"):
        list(_client(server).paginate("/repos/acme/widgets"))


def test_connection_refused_is_retried_then_given_up():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleep = RecordingSleep()
    client = GitHubClient(f"http://127.0.0.1:{port}", sleep=sleep, max_retries=3, backoff_base=0.01)
    with pytest.raises(RetriesExhausted, match="connection error"):
        client.get_json("/rate_limit")
    assert len(sleep.calls) == 3 and client.requests_made == 4


def test_links_outside_the_api_are_not_followed(server):
    with pytest.raises(MalformedResponse, match="refusing to follow"):
        _client(server).get_json("https://example.com/repos/acme/widgets")
