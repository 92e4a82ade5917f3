"""Benchmark the PR fetchers against the local GitHub-shaped server: REST versus GraphQL + git, side by side.

Run: .venv/bin/python bench/fetch.py [--repo PATH | --prs 350 | --sample] [--latency 0.005] [--faults]

The story is served as REST, GraphQL and git (smart HTTP) by the same loopback server. With
--repo (default: the gin mirror when this machine has it) the story is a real repository's
merged PRs, read by the local-clone import, with a few generated comments per PR, and that
repository itself is what git serves.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from corpus.github.client import GitHubClient
from corpus.github.clones import GitRunner, ensure_clone
from corpus.github.fetch import fetch_pull_requests, list_merged_pulls
from corpus.github.fetch_graphql import fetch_merged_pulls, probe_repository
from corpus.github.graphql import GraphQLClient
from corpus.github.server import GitHubShapedServer
from corpus.records import CommentRecord, FileRecord, PRRecord, RepoRecord

START = datetime(2024, 1, 1, tzinfo=UTC)
GIN_MIRROR = Path("/work/.mirror/gin-gonic+gin/repo")
# One token's hourly budgets on github.com.
REST_PER_HOUR = 5000
POINTS_PER_HOUR = 5000


def generated_story(pull_count: int, seed: int = 7) -> list[tuple[RepoRecord, list[PRRecord]]]:
    """Three repositories sharing `pull_count` PRs: mostly Go changes, some docs-only, some unmerged."""
    rng = random.Random(seed)
    repos = [RepoRecord(f"bench/repo{i}", license_spdx="MIT", stars=100 * (i + 1)) for i in range(3)]
    pulls: dict[str, list[PRRecord]] = {r.full_name: [] for r in repos}
    for n in range(1, pull_count + 1):
        repo = repos[n % 3].full_name
        created = START + timedelta(hours=n)
        files = [_go_file(rng, f"pkg/file{n}_{k}.go") for k in range(rng.randint(1, 3))]
        if rng.random() < 0.1:
            files = []  # docs-only: skipped by the Go filter after one request
        files.append(FileRecord("README.md", additions=1, patch="@@ -1 +1 @@\n-a\n+b"))
        comments = [
            CommentRecord(kind, "reviewer", f"{kind} note {i}", created_at=created)
            for kind in ("issue", "review_comment", "review")
            for i in range(rng.randint(0, 2))
        ]
        merged = created + timedelta(minutes=30) if rng.random() < 0.9 else None
        pulls[repo].append(
            PRRecord(
                repo,
                n,
                f"Change {n}",
                body="Because.",
                author="dev",
                created_at=created,
                merged_at=merged,
                files=files,
                comments=comments,
            )
        )
    return [(repo, pulls[repo.full_name]) for repo in repos]


def _go_file(rng: random.Random, path: str) -> FileRecord:
    body = "\n".join(f"func f{i}() int {{ return {i} }}" for i in range(rng.randint(5, 60)))
    return FileRecord(
        path,
        additions=1,
        deletions=1,
        patch="@@ -1 +1 @@\n-x\n+y",
        before=f"package pkg\n\n{body}\n",
        after=f"package pkg\n\n{body}\n// changed\n",
    )


def repository_story(path: Path, seed: int = 7) -> list[tuple[RepoRecord, list[PRRecord]]]:
    """A real repository's merged PRs (local-clone import) with 0-5 generated comments each."""
    from corpus.gitimport import iter_pull_requests

    rng = random.Random(seed)
    name = "gin-gonic/gin" if path == GIN_MIRROR else f"local/{path.name}"
    pulls = []
    for pr in iter_pull_requests(path, name):
        created = pr.created_at or START
        pr.comments = [
            CommentRecord(kind, "reviewer", f"{kind} note {i} on #{pr.number}", created_at=created)
            for kind in ("issue", "review_comment", "review")
            for i in range(rng.randint(0, 2))
        ]
        pr.labels = ["bug"] if pr.number % 3 == 0 else []
        pulls.append(pr)
    return [(RepoRecord(name, license_spdx="MIT", stars=70000), pulls)]


@dataclass
class Row:
    method: str
    scenario: str
    merged: int
    kept: int
    failed: int
    requests: int
    points: int
    git_bytes: int
    waits: int
    seconds: float

    @property
    def per_hour(self) -> float:
        """PRs an hour for one token: the tighter of the API budgets and the measured speed."""
        limits = [self.merged / self.seconds * 3600]
        if self.method == "REST":
            limits.append(REST_PER_HOUR / max(1e-9, self.requests / self.merged))
        else:
            limits.append(POINTS_PER_HOUR / max(1e-9, self.points / self.merged))
        return min(limits)


def _serve(story, git_root: Path, latency: float, faults: bool, repositories: dict | None = None):
    """The story over REST and GraphQL, and as git: the given repositories as they are, else written by githost."""
    server = GitHubShapedServer(
        story, rate_limit=1_000_000, graphql_points=1_000_000, git_root=git_root, git_repositories=repositories
    )
    base_url = server.start()
    server.faults.delay = latency
    stop = threading.Event()
    if faults:
        threading.Thread(target=_inject_faults, args=(server, stop), daemon=True).start()
    return server, base_url, stop


def run_rest(server: GitHubShapedServer, base_url: str, scenario: str, *, concurrency: int) -> Row:
    # Short back-off so the table measures the fetcher, not the default one-second base; more retries
    # than the default five, because a request can meet several of the injected bursts in a row.
    client = GitHubClient(base_url, backoff_base=0.05, backoff_cap=0.5, max_retries=10)
    merged = kept = failed = 0
    started = time.perf_counter()
    for repo, _ in server.story:
        summaries, _ = list_merged_pulls(client, repo.full_name)
        outcome = fetch_pull_requests(
            client, repo.full_name, summaries, concurrency=concurrency, on_result=lambda record, summary: None
        )
        merged += len(summaries)
        kept += outcome.fetched
        failed += len(outcome.failed)
    seconds = time.perf_counter() - started
    return Row("REST", scenario, merged, kept, failed, client.requests_made, 0, 0, client.wait_count, seconds)


def run_graphql(server: GitHubShapedServer, base_url: str, scenario: str, clones: Path, marks: dict) -> Row:
    """Probe, clone (or fetch), then pages of 50 PRs; `marks` carries the incremental marks between runs."""
    client = GitHubClient(base_url, backoff_base=0.05, backoff_cap=0.5, max_retries=10)
    gql = GraphQLClient(client)
    runner = GitRunner(base_url, backoff=0.05, retries=10, sleep=time.sleep)
    git_before = server.git_bytes_served
    merged = kept = failed = 0
    started = time.perf_counter()
    for repo, _ in server.story:
        probe = probe_repository(gql, repo.full_name)
        mark = marks.get(repo.full_name)
        if mark is not None and probe.newest_update is not None and probe.newest_update <= mark:
            continue  # nothing merged or updated since the last run: one query spent
        clone = ensure_clone(runner, clones, repo.full_name)
        outcome = fetch_merged_pulls(
            gql, runner, clone, repo.full_name, updated_since=mark, on_result=lambda record, node: None
        )
        merged += outcome.fetched + outcome.skipped + len(outcome.failed)
        kept += outcome.fetched
        failed += len(outcome.failed)
        marks[repo.full_name] = probe.newest_update
    seconds = time.perf_counter() - started
    git_bytes = server.git_bytes_served - git_before
    merged_total = merged or sum(1 for _, pulls in server.story for p in pulls if p.merged_at)
    return Row(
        "GraphQL+git",
        scenario,
        merged_total,
        kept,
        failed,
        client.requests_made,
        gql.points_spent,
        git_bytes,
        client.wait_count,
        seconds,
    )


def _inject_faults(server: GitHubShapedServer, stop: threading.Event) -> None:
    """Every 2 s a burst of 3 API 502s; every 6 s a secondary limit (Retry-After: 1 s), a git 502 and a
    git pack cut off halfway; every 10 s a GraphQL answer with an `errors` array and partial data."""
    server.faults.retry_after = 1
    ticks = 0
    while not stop.wait(2.0):
        ticks += 1
        server.faults.server_errors = 3
        if ticks % 3 == 0:
            server.faults.update({"secondary_limit": 1, "git_server_errors": 1, "git_break_pack": 1})
        if ticks % 5 == 0:
            server.faults.graphql_errors = 1


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'method':<12}{'scenario':<24}{'merged':>7}{'kept':>6}{'failed':>7}{'requests':>9}{'req/PR':>8}"
        f"{'points':>7}{'pts/PR':>7}{'git KB':>8}{'git B/PR':>9}{'waits':>6}{'seconds':>8}{'PRs/s':>7}{'PRs/h/token':>12}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        merged = max(1, r.merged)
        print(
            f"{r.method:<12}{r.scenario:<24}{r.merged:>7}{r.kept:>6}{r.failed:>7}{r.requests:>9}"
            f"{r.requests / merged:>8.3f}{r.points:>7}{r.points / merged:>7.3f}{r.git_bytes / 1024:>8.0f}"
            f"{r.git_bytes / merged:>9.0f}{r.waits:>6}{r.seconds:>8.2f}"
            + (f"{r.merged / r.seconds:>7.1f}{r.per_hour:>12,.0f}" if r.kept else f"{'-':>7}{'-':>12}")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=None, help="a local clone whose merged PRs make the story")
    parser.add_argument("--prs", type=int, default=0, help="a generated story of this many PRs instead")
    parser.add_argument("--sample", action="store_true", help="use corpus.sample's story instead")
    parser.add_argument("--latency", type=float, default=0.005, help="seconds the server adds to each API answer")
    parser.add_argument("--faults", action="store_true", help="also run with 502 bursts and secondary limits")
    args = parser.parse_args()
    if args.sample:
        from corpus.sample.story import sample_story

        story, label = sample_story(), "the sample story"
        repositories = None
    elif args.prs or not (args.repo or GIN_MIRROR).exists():
        story, label = generated_story(args.prs or 350), f"a generated story of {args.prs or 350} PRs"
        repositories = None
    else:
        path = args.repo or GIN_MIRROR
        story, label = repository_story(path), f"{path}'s merged PRs that touch Go (its own history served as git)"
        repositories = {story[0][0].full_name: path}
    work = Path(tempfile.mkdtemp(prefix="bench-fetch-"))
    try:
        started = time.perf_counter()
        server, base_url, stop = _serve(story, work / "served", args.latency, faults=False, repositories=repositories)
        merged = sum(1 for _, pulls in server.story for p in pulls if p.merged_at)
        print(
            f"story: {label}: {len(story)} repositories, {merged} merged PRs (served as REST, GraphQL and git in "
            f"{time.perf_counter() - started:.1f} s); server latency {args.latency * 1000:.0f} ms per API answer\n"
        )
        marks: dict = {}
        rows = [
            run_rest(server, base_url, "first fetch, 4 in flight", concurrency=4),
            run_graphql(server, base_url, "first fetch (clone)", work / "clones", marks),
            run_graphql(server, base_url, "re-fetch, nothing new", work / "clones", marks),
        ]
        stop.set()
        if args.faults:
            server.faults.retry_after = 1
            threading.Thread(target=_inject_faults, args=(server, (stop := threading.Event())), daemon=True).start()
            rows += [
                run_rest(server, base_url, "5xx + secondary", concurrency=4),
                run_graphql(server, base_url, "5xx + secondary", work / "clones-faults", {}),
            ]
            stop.set()
        server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(rows)
    print(
        "\nrequests: every API request (list pages, 304s, retries, GraphQL queries) per merged PR; points: GraphQL "
        "points GitHub would charge; git B/PR: bytes the git host sent (clone, fetch, blob batches);\n"
        f"PRs/h/token: the lower of the measured speed and one token's budget ({REST_PER_HOUR} REST requests or "
        f"{POINTS_PER_HOUR} GraphQL points an hour). A re-fetch that finds nothing new costs one query per "
        "repository, however many PRs it holds."
    )


if __name__ == "__main__":
    main()
