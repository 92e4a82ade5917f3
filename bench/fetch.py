"""Benchmark the PR fetcher against the local GitHub-shaped server: API requests per PR and PRs per second.

Run: .venv/bin/python bench/fetch.py [--prs 300] [--sample] [--latency 0.005]
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from corpus.github.client import GitHubClient
from corpus.github.fetch import fetch_pull_requests, list_merged_pulls
from corpus.github.server import GitHubShapedServer
from corpus.records import CommentRecord, FileRecord, PRRecord, RepoRecord

START = datetime(2024, 1, 1, tzinfo=UTC)


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


@dataclass
class Row:
    scenario: str
    merged: int
    kept: int
    failed: int
    requests: int
    waits: int
    seconds: float


def run(story, scenario: str, *, concurrency: int, latency: float, faults: bool) -> Row:
    server = GitHubShapedServer(story)
    base_url = server.start()
    server.faults.delay = latency
    stop_faults = threading.Event()
    if faults:
        threading.Thread(target=_inject_faults, args=(server, stop_faults), daemon=True).start()
    # Short back-off so the table measures the fetcher, not the default one-second base; more retries
    # than the default five, because a request can meet several of the injected bursts in a row.
    client = GitHubClient(base_url, backoff_base=0.05, backoff_cap=0.5, max_retries=10)
    merged = kept = failed = 0
    started = time.perf_counter()
    try:
        for repo, _ in story:
            summaries, _ = list_merged_pulls(client, repo.full_name)
            outcome = fetch_pull_requests(
                client, repo.full_name, summaries, concurrency=concurrency, on_result=lambda record, summary: None
            )
            merged += len(summaries)
            kept += outcome.fetched
            failed += len(outcome.failed)
    finally:
        stop_faults.set()
        server.stop()
    return Row(scenario, merged, kept, failed, client.requests_made, client.wait_count, time.perf_counter() - started)


def _inject_faults(server: GitHubShapedServer, stop: threading.Event) -> None:
    """A burst of 3 server errors every 0.3 s and a secondary limit (Retry-After: 1 s) every 2 s."""
    server.faults.retry_after = 1
    ticks = 0
    while not stop.wait(0.3):
        ticks += 1
        server.faults.server_errors = 3
        if ticks % 7 == 0:
            server.faults.secondary_limit = 1


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'scenario':<30}{'merged':>7}{'kept':>6}{'failed':>7}{'requests':>9}{'req/PR':>8}"
        f"{'waits':>7}{'seconds':>9}{'PRs/s':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        per_pr = r.requests / max(1, r.merged)
        print(
            f"{r.scenario:<30}{r.merged:>7}{r.kept:>6}{r.failed:>7}{r.requests:>9}{per_pr:>8.2f}"
            f"{r.waits:>7}{r.seconds:>9.2f}{r.merged / r.seconds:>8.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prs", type=int, default=300, help="size of the generated story")
    parser.add_argument("--sample", action="store_true", help="use corpus.sample's story instead")
    parser.add_argument("--latency", type=float, default=0.005, help="seconds the server adds to each answer")
    args = parser.parse_args()
    if args.sample:
        from corpus.sample.story import sample_story

        story = sample_story()
    else:
        story = generated_story(args.prs)
    print(
        f"story: {len(story)} repositories, {sum(len(p) for _, p in story)} PRs; "
        f"server latency {args.latency * 1000:.0f} ms per request\n"
    )
    rows = [
        run(story, "clean, 1 in flight", concurrency=1, latency=args.latency, faults=False),
        run(story, "clean, 4 in flight", concurrency=4, latency=args.latency, faults=False),
        run(story, "5xx + secondary, 4 in flight", concurrency=4, latency=args.latency, faults=True),
    ]
    print_table(rows)
    print(
        "\nreq/PR counts every request (list pages, 304s, retries) per merged PR; waits = back-offs and "
        "rate-limit sleeps."
    )


if __name__ == "__main__":
    main()
