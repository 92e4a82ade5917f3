"""Fetching repositories and merged PRs through the real client from the GitHub-shaped server."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from corpus.github.client import GitHubClient, TokenRejected
from corpus.github.fetch import (
    fetch_pull_request,
    fetch_pull_requests,
    fetch_repository,
    list_merged_pulls,
    search_repositories,
    validate_full_name,
)
from corpus.github.server import GitHubShapedServer
from corpus.records import CommentRecord, FileRecord, PRRecord, RepoRecord

T0 = datetime(2024, 6, 1, tzinfo=UTC)
REPO = "acme/widgets"


def _pr(number: int, files: list[FileRecord], *, merged: bool = True, comments=()) -> PRRecord:
    day = T0 + timedelta(days=number)
    return PRRecord(
        REPO,
        number,
        f"PR {number}",
        body="why",
        author="ana",
        created_at=day,
        merged_at=day + timedelta(hours=1) if merged else None,
        labels=["bug"],
        files=files,
        comments=list(comments),
    )


def _go(path: str, before: str | None, after: str | None, status: str = "modified", patch: str = "@@ -1 +1 @@"):
    return FileRecord(path, status=status, additions=1, deletions=1, patch=patch, before=before, after=after)


README = FileRecord("README.md", additions=1, patch="@@ -1 +1 @@\n-old\n+new")
PULLS = [
    _pr(
        1,
        [_go("main.go", "package main\n", "package main // v2\n"), README],
        comments=[
            CommentRecord("issue", "bo", "looks good", created_at=T0, external_id="11"),
            CommentRecord(
                "review_comment",
                "cy",
                "rename this",
                created_at=T0,
                path="main.go",
                line=1,
                diff_hunk="@@ -1 +1 @@",
                external_id="12",
            ),
            CommentRecord("review", "cy", "one nit", created_at=T0, external_id="13"),
            CommentRecord("review", "dee", "", created_at=T0, external_id="14"),  # a bare approval
        ],
    ),
    _pr(2, [README]),
    _pr(3, [_go("main.go", "package main\n", "package gone\n")], merged=False),
    _pr(4, [_go("new.go", None, "package fresh\n", "added"), _go("old.go", "package old\n", None, "removed")]),
    _pr(
        5,
        [
            _go("enc.go", "package enc\n", "package enc // caf\udce9\n"),
            _go("blob.go", "package blob\n", "GIF89a\x00\x01\x02", patch=""),
        ],
    ),
    _pr(6, [_go("big.go", "package big\n", "package big\n// " + "é" * 300, patch="+" + "x" * 2999)]),
]
STORY = [
    (RepoRecord(REPO, license_spdx="MIT", stars=300, description="widgets"), PULLS),
    (RepoRecord("acme/gadgets", license_spdx="", stars=20, description="gadgets"), []),
]


@pytest.fixture()
def server():
    with GitHubShapedServer(STORY, per_page_max=2) as running:
        yield running


@pytest.fixture()
def client(server):
    return GitHubClient(server.base_url, sleep=lambda seconds: None)


def _summary(client, number):
    return client.get_json(f"/repos/{REPO}/pulls/{number}").data


def test_validate_full_name_accepts_names_and_urls_and_explains_bad_ones():
    assert validate_full_name(" golang/go ") == "golang/go"
    assert validate_full_name("https://github.com/spf13/cobra.git") == "spf13/cobra"
    for bad in ("golang", "a/b/c", "-bad/x", "owner/..", "owner/na me", ""):
        with pytest.raises(ValueError, match="expected owner/name|only dots"):
            validate_full_name(bad)


def test_fetch_repository_maps_license_and_null_license(client):
    widgets = fetch_repository(client, REPO)
    assert (widgets.license_spdx, widgets.stars, widgets.source) == ("MIT", 300, "github")
    assert widgets.provenance.endswith(f"/repos/{REPO}")
    assert fetch_repository(client, "acme/gadgets").license_spdx == ""


def test_search_keeps_only_allowed_licences_when_asked(client):
    assert [r.full_name for r in search_repositories(client, "language:go")] == [REPO, "acme/gadgets"]
    assert [r.full_name for r in search_repositories(client, "language:go", allowed_licenses={"MIT"})] == [REPO]
    assert len(search_repositories(client, "language:go", limit=1)) == 1


def test_list_merged_pulls_keeps_merged_only_and_a_repeat_costs_a_free_304(server, client):
    pulls, etag = list_merged_pulls(client, REPO)
    assert [p["number"] for p in pulls] == [6, 5, 4, 2, 1]  # #3 was closed without merging
    remaining = server.faults.rate_limit_remaining
    again, same_etag = list_merged_pulls(client, REPO, etag=etag)
    assert again == [] and same_etag == etag
    assert server.faults.rate_limit_remaining == remaining


def test_incremental_listing_stops_at_the_first_older_pull(client):
    since = T0 + timedelta(days=5, hours=12)
    pulls, _ = list_merged_pulls(client, REPO, updated_since=since)
    assert [p["number"] for p in pulls] == [6]
    assert client.requests_made == 1  # the first page already reached older PRs


def test_fetch_pull_request_spends_files_three_discussion_and_two_content_requests(client):
    summary = _summary(client, 1)
    spent = client.requests_made
    record = fetch_pull_request(client, REPO, summary)
    assert client.requests_made - spent == 6
    main = record.files[0]
    assert (main.before, main.after) == ("package main\n", "package main // v2\n")
    assert record.files[1].before is None  # not Go: no contents fetched
    assert [(c.kind, c.body) for c in record.comments] == [
        ("issue", "looks good"),
        ("review_comment", "rename this"),
        ("review", "one nit"),
    ]
    assert record.comments[1].path == "main.go" and record.comments[1].line == 1
    assert (record.author, record.labels, record.merged_at) == ("ana", ["bug"], T0 + timedelta(days=1, hours=1))


def test_pull_request_without_go_changes_is_skipped_after_one_request(client):
    summary = _summary(client, 2)
    spent = client.requests_made
    assert fetch_pull_request(client, REPO, summary) is None
    assert client.requests_made - spent == 1
    kept = fetch_pull_request(client, REPO, summary, go_only=False)
    assert kept.files[0].path == "README.md" and client.requests_made - spent == 1 + 4


def test_added_file_has_no_before_and_removed_file_no_after(client):
    record = fetch_pull_request(client, REPO, _summary(client, 4))
    added, removed = record.files
    assert (added.before, added.after) == (None, "package fresh\n")
    assert (removed.before, removed.after) == ("package old\n", None)


def test_non_utf8_text_is_replaced_and_binary_content_is_flagged(client):
    enc, blob = fetch_pull_request(client, REPO, _summary(client, 5)).files
    assert enc.after == "package enc // caf\ufffd\n" and not enc.is_binary
    assert blob.is_binary and blob.before is None and blob.after is None


def test_oversize_patch_and_file_are_truncated_at_the_cap(client):
    big = fetch_pull_request(client, REPO, _summary(client, 6), max_patch_bytes=1000).files[0]
    assert len(big.patch) == 1000 and big.truncated_at == 1000
    assert big.after.endswith("é" * 300)
    cut = fetch_pull_request(client, REPO, _summary(client, 6), max_file_bytes=102).files[0]
    assert cut.truncated_at == 102 and len(cut.after.encode()) <= 102
    assert cut.after.endswith("é") and "\ufffd" not in cut.after  # no half character at the cut


def _many_story(count: int) -> list:
    pulls = [_pr(n, [_go(f"f{n}.go", f"package p{n}\n", f"package q{n}\n")]) for n in range(1, count + 1)]
    return [(RepoRecord(REPO), pulls)]


def test_concurrent_fetch_delivers_every_pull_once_with_four_in_flight():
    with GitHubShapedServer(_many_story(12)) as server:
        client = GitHubClient(server.base_url)
        summaries, _ = list_merged_pulls(client, REPO)
        server.faults.delay = 0.02
        delivered, threads = [], set()

        def on_result(record, summary):
            delivered.append(record.number)
            threads.add(threading.get_ident())

        outcome = fetch_pull_requests(client, REPO, summaries, on_result=on_result, concurrency=4)
    assert sorted(delivered) == list(range(1, 13)) and outcome.fetched == 12 and not outcome.failed
    assert threads == {threading.get_ident()}  # results come back on the caller's thread
    files_requests = [p for p in server.request_log if p.endswith("/files")]
    assert sorted(files_requests) == sorted(f"/repos/{REPO}/pulls/{n}/files" for n in range(1, 13))
    assert 2 <= server.max_in_flight <= 4


def test_one_failing_pull_is_reported_and_the_rest_delivered(client):
    summaries = [_summary(client, 1), {**_summary(client, 1), "number": 999}, _summary(client, 2)]
    delivered, errors = [], []
    outcome = fetch_pull_requests(
        client,
        REPO,
        summaries,
        on_result=lambda r, s: delivered.append(s["number"]),
        on_error=lambda s, exc: errors.append((s["number"], type(exc).__name__)),
    )
    assert sorted(delivered) == [1, 2] and errors == [(999, "NotFound")]
    assert (outcome.fetched, outcome.skipped, outcome.failed[0][0]) == (1, 1, 999)


def test_revoked_token_aborts_the_batch(server, client):
    summaries = [_summary(client, n) for n in (1, 4, 5)]
    server.faults.revoke_token = True
    with pytest.raises(TokenRejected):
        fetch_pull_requests(client, REPO, summaries, on_result=lambda r, s: None)


def test_should_stop_ends_the_batch_between_pulls(client):
    summaries = [_summary(client, n) for n in (1, 4, 5, 6)]
    delivered = []
    outcome = fetch_pull_requests(
        client,
        REPO,
        summaries,
        concurrency=1,
        should_stop=lambda: len(delivered) >= 2,
        on_result=lambda r, s: delivered.append(s["number"]),
    )
    assert delivered == [1, 4] and outcome.stopped


def test_search_results_carry_the_last_push():
    from corpus.github.client import GitHubClient
    from corpus.github.fetch import search_repositories
    from corpus.github.server import GitHubShapedServer
    from corpus.sample.story import sample_story

    story = sample_story()
    with GitHubShapedServer(story) as server:
        found = search_repositories(GitHubClient(server.base_url), "kvstore")
    last_merge = max(pr.merged_at for repo, prs in story if repo.full_name == "hrgc-samples/kvstore" for pr in prs)
    assert [r.full_name for r in found] == ["hrgc-samples/kvstore"]
    assert found[0].pushed_at == last_merge
