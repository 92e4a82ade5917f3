"""GraphQL + git against the GitHub-shaped server: the same records as REST, for a fraction of the calls.

Real loopback HTTP, real `git http-backend`, real clones; the faults are the server's own."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from corpus.github.client import GitHubClient, RetriesExhausted, graphql_endpoint
from corpus.github.clones import GitFailed, GitRunner, drop_clone, ensure_clone
from corpus.github.fetch import fetch_pull_requests, list_merged_pulls
from corpus.github.fetch_graphql import PAGE_QUERY, fetch_merged_pulls, probe_repository
from corpus.github.githost import default_style
from corpus.github.graphql import GraphQLClient, GraphQLUnavailable
from corpus.github.graphql_server import QueryRefused, prepare
from corpus.github.server import GitHubShapedServer
from corpus.records import CommentRecord, FileRecord, PRRecord, RepoRecord

T0 = datetime(2024, 6, 1, tzinfo=UTC)
REPO = "acme/widgets"
TOKEN = "s3cret-token"


def _pr(number: int, files: list[FileRecord], *, merged: bool = True, comments=(), labels=("bug",)) -> PRRecord:
    day = T0 + timedelta(days=number)
    return PRRecord(
        REPO,
        number,
        f"PR {number}",
        body=f"why {number}",
        author="ana",
        created_at=day,
        merged_at=day + timedelta(hours=1) if merged else None,
        labels=list(labels),
        files=files,
        comments=list(comments),
    )


def _go(path, before, after, status="modified", previous_path=""):
    return FileRecord(path, status=status, before=before, after=after, previous_path=previous_path)


PULLS = [
    _pr(
        1,
        [_go("main.go", "package main\n", "package main\n\nfunc A() {}\n"), FileRecord("README.md", patch="+hi")],
        comments=[
            CommentRecord("issue", "bo", "looks good", created_at=T0, external_id="11"),
            CommentRecord(
                "review_comment", "cy", "rename this", created_at=T0, path="main.go", line=3, external_id="12"
            ),
            CommentRecord("review", "cy", "one nit", created_at=T0, external_id="13"),
            CommentRecord("review", "dee", "", created_at=T0, external_id="14"),
        ],
    ),
    _pr(2, [FileRecord("docs/guide.md", status="added", patch="+guide")]),  # no Go: skipped
    _pr(3, [_go("main.go", "package main\n\nfunc A() {}\n", "package main\n\nfunc B() {}\n")], merged=False),
    _pr(
        4,
        [
            _go("new.go", None, "package fresh\n", "added"),
            _go("util.go", "package util\n", None, "removed"),
            _go("main.go", "package main\n\nfunc A() {}\n", "package main\n\nfunc A() { println() }\n"),
        ],
        labels=("feature", "go"),
    ),
    _pr(5, [_go("renamed.go", "package old\n\nvar X = 1\n", "package old\n\nvar X = 1\n", "renamed", "old.go")]),
    _pr(6, [_go("blob.go", "package blob\n", "GIF89a\x00\x01\x02")]),
    _pr(7, [_go("main.go", "package main\n\nfunc A() { println() }\n", "package main\n")]),
]
STORY = [(RepoRecord(REPO, license_spdx="MIT", stars=300, description="widgets"), PULLS)]


@pytest.fixture()
def server(tmp_path):
    with GitHubShapedServer(STORY, token=TOKEN, git_root=tmp_path / "served") as running:
        yield running


def _clients(server, **options):
    waits = []
    rest = GitHubClient(
        server.base_url,
        TOKEN,
        sleep=lambda seconds: None,
        on_wait=lambda seconds, reason: waits.append(reason),
        **options,
    )
    return rest, GraphQLClient(rest), waits


def _graphql_records(server, tmp_path, gql, *, runner=None, **options):
    runner = runner or GitRunner(server.base_url, TOKEN, sleep=lambda seconds: None)
    clone = ensure_clone(runner, tmp_path / "clones", REPO)
    records, skipped = {}, []
    outcome = fetch_merged_pulls(
        gql,
        runner,
        clone,
        REPO,
        on_result=lambda record, node: records.__setitem__(record.number, record) if record else skipped.append(node),
        **options,
    )
    return records, outcome, clone


def _rest_records(server):
    client = GitHubClient(server.base_url, TOKEN, sleep=lambda seconds: None)
    summaries, _ = list_merged_pulls(client, REPO)
    records = {}
    fetch_pull_requests(client, REPO, summaries, on_result=lambda r, s: r and records.__setitem__(r.number, r))
    return records


def test_git_host_is_derived_from_the_api_base_unless_set():
    from corpus.github.clones import git_url_for

    assert git_url_for("https://api.github.com") == "https://github.com"
    assert git_url_for("https://ghe.example.com/api/v3") == "https://ghe.example.com"
    assert git_url_for("http://127.0.0.1:8765/") == "http://127.0.0.1:8765"
    assert git_url_for("https://api.github.com", "https://mirror.example.com/") == "https://mirror.example.com"


def test_graphql_endpoint_is_derived_from_the_api_base():
    assert graphql_endpoint("https://api.github.com") == "https://api.github.com/graphql"
    assert graphql_endpoint("https://ghe.example.com/api/v3/") == "https://ghe.example.com/api/graphql"
    assert graphql_endpoint("http://127.0.0.1:8765") == "http://127.0.0.1:8765/graphql"


def test_merge_squash_and_rebase_read_through_graphql_and_git_equal_rest(server, tmp_path):
    rest = _rest_records(server)
    _, gql, _ = _clients(server)
    records, outcome, clone = _graphql_records(server, tmp_path, gql)
    assert clone.partial and outcome.complete and not outcome.failed
    assert sorted(records) == sorted(rest) == [1, 4, 5, 6, 7]
    styles = {pr.number: default_style(i) for i, pr in enumerate(p for p in PULLS if p.merged_at)}
    assert {styles[n] for n in records} == {"merge", "squash", "rebase"}
    for number in rest:
        assert dataclasses.asdict(records[number]) == dataclasses.asdict(rest[number]), number
    first = records[1]
    assert [c.kind for c in first.comments] == ["issue", "review_comment", "review"]  # a bare approval is left out
    assert records[4].labels == ["feature", "go"]
    assert {f.path: f.status for f in records[4].files} == {
        "new.go": "added",
        "util.go": "removed",
        "main.go": "modified",
    }
    assert records[5].files[0].previous_path == "old.go" and records[5].files[0].status == "renamed"
    assert records[6].files[0].is_binary and records[6].files[0].after is None
    # One page of GraphQL instead of a handful of REST requests per PR; the token reached git.
    assert gql.queries_made == 1 and gql.points_spent == 13
    assert server.git_requests >= 2 and all(a and a.startswith("Basic ") for a in server.git_authorizations)


def test_points_are_counted_as_github_counts_them():
    _, cost, nodes = prepare(PAGE_QUERY, {"owner": "a", "name": "b", "first": 50, "after": None})
    assert cost == 13  # (1 + 50 * 5 + 50 * 20) / 100, rounded
    assert nodes == 50 + 50 * (20 + 50 + 30 + 20 + 100) + 50 * 20 * 30
    with pytest.raises(QueryRefused, match="must provide a `first` or `last`"):
        prepare('query { rateLimit { cost } repository(owner: "a", name: "b") { pullRequests { totalCount } } }', {})
    with pytest.raises(QueryRefused, match="exceeds the `first` limit of 100"):
        prepare(PAGE_QUERY, {"owner": "a", "name": "b", "first": 101})
    with pytest.raises(QueryRefused, match="Cannot query field"):
        prepare("query { rateLimit { cost } viewer { login } }", {})


def test_probe_reads_the_repository_and_its_newest_update_for_one_point(server):
    _, gql, _ = _clients(server)
    probe = probe_repository(gql, REPO)
    assert probe.repo.license_spdx == "MIT" and probe.merged_total == 6
    assert probe.newest_update == PULLS[-1].merged_at
    assert gql.points_spent == 1 and gql.remaining == 4999


def test_known_pulls_and_the_incremental_mark_are_not_read_again(server, tmp_path):
    _, gql, _ = _clients(server)
    records, _, _ = _graphql_records(server, tmp_path, gql)
    known = {n: r.merged_at for n, r in records.items()}
    again, outcome, _ = _graphql_records(server, tmp_path / "b", gql, known=known)
    assert again == {} and outcome.known == 5
    since, outcome, _ = _graphql_records(server, tmp_path / "c", gql, updated_since=PULLS[-2].merged_at)
    assert sorted(since) == [6, 7] and outcome.complete


def test_pages_resume_from_a_cursor(server, tmp_path):
    _, gql, _ = _clients(server)
    cursors = []
    first, outcome, _ = _graphql_records(
        server,
        tmp_path,
        gql,
        page_size=2,
        should_stop=lambda: len(cursors) >= 1,
        on_page=lambda c, o: cursors.append(c),
    )
    assert outcome.stopped and sorted(first) == [6, 7]
    rest, outcome, _ = _graphql_records(server, tmp_path, gql, page_size=2, after=cursors[0])
    assert sorted(rest) == [1, 4, 5] and outcome.complete


def test_502_bursts_and_secondary_limits_on_graphql_are_retried(server, tmp_path):
    _, gql, waits = _clients(server, max_retries=6)
    server.faults.update({"server_errors": 2, "secondary_limit": 1, "retry_after": 1})
    records, outcome, _ = _graphql_records(server, tmp_path, gql)
    assert sorted(records) == [1, 4, 5, 6, 7] and not outcome.failed
    assert sum("server error 502" in w for w in waits) == 2
    assert sum("secondary rate limit: retrying after 1 s" in w for w in waits) == 1


def test_errors_array_with_partial_data_refetches_the_broken_pull(server, tmp_path):
    rest = _rest_records(server)
    _, gql, _ = _clients(server)
    server.faults.graphql_errors = 1
    records, outcome, _ = _graphql_records(server, tmp_path, gql)
    assert not outcome.failed and gql.queries_made == 2  # the page lost a PR node to the error: asked again
    assert {n: dataclasses.asdict(r) for n, r in records.items()} == {n: dataclasses.asdict(r) for n, r in rest.items()}


def test_errors_that_persist_fail_only_that_pull(server, tmp_path):
    _, gql, _ = _clients(server)
    server.faults.graphql_errors = 3  # the page and both of its retries
    errors = []
    records, outcome, _ = _graphql_records(server, tmp_path, gql, on_error=lambda node, exc: errors.append(exc))
    assert len(outcome.failed) == 1 and len(records) == 4 and "came back empty" in str(errors[0])
    assert "Something went wrong" in outcome.failed[0][1]


def test_graphql_points_pace_the_client_until_the_reset(tmp_path):
    with GitHubShapedServer(STORY, git_root=tmp_path / "served", graphql_points=20) as server:
        rest = GitHubClient(server.base_url, on_wait=lambda s, r: waits.append((s, r)), sleep=lambda s: refill())
        waits = []

        def refill():
            server.points.set_remaining(20)

        gql = GraphQLClient(rest)
        gql.query(PAGE_QUERY, {"owner": "acme", "name": "widgets", "first": 50})
        assert gql.remaining == 7
        gql.query(PAGE_QUERY, {"owner": "acme", "name": "widgets", "first": 50})
        assert len(waits) == 1 and "GraphQL points" in waits[0][1] and waits[0][0] > 3000
        server.points.set_remaining(5)  # someone else spent the hour: GitHub answers RATE_LIMITED
        gql.remaining = None
        result = gql.query(PAGE_QUERY, {"owner": "acme", "name": "widgets", "first": 50})
        assert result.cost == 13 and len(waits) == 2 and "GraphQL points: 5 left" in waits[1][1]


def test_graphql_refused_is_reported_as_unavailable(server):
    _, gql, _ = _clients(server)
    server.faults.graphql_disabled = True
    with pytest.raises(GraphQLUnavailable):
        probe_repository(gql, REPO)


def test_a_clone_broken_mid_pack_and_git_502s_are_retried(server, tmp_path):
    waits = []
    runner = GitRunner(server.base_url, TOKEN, sleep=lambda s: None, on_wait=lambda s, r: waits.append(r))
    server.faults.update({"git_break_pack": 1, "git_server_errors": 1})
    _, gql, _ = _clients(server)
    records, _, clone = _graphql_records(server, tmp_path, gql, runner=runner)
    assert len(records) == 5 and len(waits) == 2
    assert any("502" in w for w in waits) and any("early EOF" in w or "RPC failed" in w for w in waits)
    assert not list(clone.path.parent.glob(".*partial-*"))  # no half clone left behind
    server.faults.git_server_errors = 10
    with pytest.raises(GitFailed):
        ensure_clone(GitRunner(server.base_url, TOKEN, sleep=lambda s: None, retries=1), tmp_path / "x", REPO)


def test_dumb_http_gives_a_full_clone_and_the_same_records(server, tmp_path):
    rest = _rest_records(server)
    server.faults.git_dumb = True
    _, gql, _ = _clients(server)
    records, _, clone = _graphql_records(server, tmp_path, gql)
    assert not clone.partial
    assert {n: dataclasses.asdict(r) for n, r in records.items()} == {n: dataclasses.asdict(r) for n, r in rest.items()}


def test_second_run_fetches_the_clone_and_a_wrong_token_is_refused(server, tmp_path):
    runner = GitRunner(server.base_url, TOKEN)
    first = ensure_clone(runner, tmp_path, REPO)
    again = ensure_clone(runner, tmp_path, REPO)
    assert first.created and not again.created and again.path == first.path
    assert drop_clone(tmp_path, REPO) > 0 and not first.path.exists()
    with pytest.raises(GitFailed) as failure:
        ensure_clone(GitRunner(server.base_url, "wrong", retries=0), tmp_path, REPO)
    assert "wrong" not in str(failure.value)


def test_token_header_is_scoped_to_the_git_host():
    env = GitRunner("https://git.example.com", "tok").env()
    keys = {env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"] for i in range(int(env["GIT_CONFIG_COUNT"]))}
    assert keys["http.https://git.example.com/.extraHeader"].startswith("Authorization: Basic ")
    assert keys["http.followRedirects"] == "false"
    assert GitRunner("https://git.example.com").protocols == ("https",)
    assert not any("extraHeader" in k and "git.example.com" not in k for k in keys)
    with pytest.raises(ValueError):
        GitRunner("file:///etc", "tok")


def test_retries_exhausted_on_graphql_names_post(server):
    rest, gql, _ = _clients(server, max_retries=1)
    server.faults.server_errors = 5
    with pytest.raises(RetriesExhausted, match="POST"):
        probe_repository(gql, REPO)


def test_a_base_that_other_merges_moved_past_reads_only_the_pull_requests_paths(server, tmp_path):
    """On GitHub a squash's base can predate other merges; their files' blobs are neither fetched nor read."""
    from corpus.github.clones import fetch_objects
    from corpus.gitimport import GitImportError, changed_blob_ids, changed_files

    runner = GitRunner(server.base_url, TOKEN)
    clone = ensure_clone(runner, tmp_path, REPO)
    by_number = {p.number: p for p in server.story[0][1]}
    stale_base, merge = by_number[1].base_commit, by_number[4].merge_commit  # #1 and the rest merged between
    with pytest.raises(GitImportError):
        changed_files(clone.path, stale_base, merge)  # the whole range needs blobs the clone lacks
    paths = {"new.go", "util.go"}
    fetch_objects(runner, clone, changed_blob_ids(clone.path, stale_base, merge, paths))
    files = changed_files(clone.path, stale_base, merge, only_paths=paths)
    assert {f.path: f.status for f in files} == {"new.go": "added", "util.go": "removed"}
    assert files[0].after == "package fresh\n" or files[1].after == "package fresh\n"


def test_a_search_past_the_1000_result_cap_is_sliced_by_stars():
    from corpus.github.crawl import search_sliced

    repos = [(RepoRecord(f"org{i // 100}/r{i}", license_spdx="MIT", stars=5000 - i), []) for i in range(2500)]
    with GitHubShapedServer(repos) as big:
        client = GitHubClient(big.base_url)
        found, total, note = search_sliced(client, "language:go", limit=2200)
        assert total == 2500 and len(found) == 2200 and not note
        assert len({r.full_name for r in found}) == 2200 and [r.stars for r in found] == sorted(
            (r.stars for r in found), reverse=True
        )
        assert client.requests_made < 30  # 100 a page, the boundary page asked again
        everything, _, _ = search_sliced(client, "language:go", limit=5000)
        assert len(everything) == 2500


def test_more_than_1000_repositories_with_one_star_count_are_sliced_by_date():
    from datetime import UTC, date, datetime, timedelta

    from corpus.github.crawl import search_sliced

    start = datetime(2015, 1, 1, tzinfo=UTC)
    same = [
        (RepoRecord(f"tie{i // 100}/r{i}", license_spdx="MIT", stars=7, pushed_at=start + timedelta(days=i // 3)), [])
        for i in range(2300)
    ]
    above = [(RepoRecord(f"top/r{i}", license_spdx="MIT", stars=100 + i, pushed_at=start), []) for i in range(600)]
    below = [(RepoRecord(f"low/r{i}", license_spdx="MIT", stars=i % 5, pushed_at=start), []) for i in range(300)]
    with GitHubShapedServer(above + same + below, rate_limit=100_000) as big:
        client = GitHubClient(big.base_url)
        found, total, note = search_sliced(client, "language:go", limit=10_000, today=date(2026, 1, 1))
    assert not note and total == 3200
    assert sorted(r.full_name for r in found) == sorted(r.full_name for r, _ in above + same + below)
    stars = [r.stars for r in found]
    assert stars == sorted(stars, reverse=True)  # the tie's slices come between the counts above and below it


def test_many_repositories_are_probed_fifty_to_a_query(server):
    from corpus.github.client import NotFound
    from corpus.github.fetch_graphql import probe_repositories

    _, gql, _ = _clients(server)
    found = probe_repositories(gql, [REPO, "acme/nope", REPO])
    assert found[REPO].merged_total == 6 and isinstance(found["acme/nope"], NotFound)
    assert gql.queries_made == 1 and gql.points_spent == 1
    probe_repositories(gql, [REPO, "acme/nope"], batch=1)
    assert gql.queries_made == 3


def test_a_repository_given_as_a_path_is_served_as_it_is(tmp_path):
    from corpus.github.githost import repository_story
    from corpus.sample.build_git import build_sample_repos

    path = build_sample_repos(tmp_path / "repos")[0]
    story = repository_story(path, "hrgc-samples/kvstore")
    with GitHubShapedServer(story, git_repositories={"hrgc-samples/kvstore": path}) as served:
        client = GitHubClient(served.base_url)
        summaries, _ = list_merged_pulls(client, "hrgc-samples/kvstore")
        rest = {}
        fetch_pull_requests(
            client, "hrgc-samples/kvstore", summaries, on_result=lambda r, s: rest.__setitem__(r.number, r)
        )
        runner = GitRunner(served.base_url)
        clone = ensure_clone(runner, tmp_path / "clones", "hrgc-samples/kvstore")
        records = {}
        fetch_merged_pulls(
            GraphQLClient(client),
            runner,
            clone,
            "hrgc-samples/kvstore",
            on_result=lambda r, n: records.__setitem__(r.number, r),
        )
    assert clone.partial and len(records) == len(story[0][1]) > 5
    assert {n: dataclasses.asdict(r) for n, r in records.items()} == {n: dataclasses.asdict(r) for n, r in rest.items()}
    assert {r.merge_commit for r in records.values()} == {p.merge_commit for p in story[0][1]}  # the clone's own
