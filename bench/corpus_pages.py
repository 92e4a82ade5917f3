"""Server time of the corpus pages at scale: 100,000 PRs and 1,000,000 file changes of synthetic rows.

Usage: .venv/bin/python bench/corpus_pages.py [--prs 100000] [--files-per-pr 10] [--refill] [--repeat 5]
It uses its own database (HRGC_DB_NAME, default hrgc_bench) on the same server, so the dashboard's
data is untouched. Rows go in with COPY; a second run reuses them unless --refill."""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hrgc_site.settings")
os.environ.setdefault("HRGC_DB_NAME", "hrgc_bench")

WORDS = (
    "fix",
    "handler",
    "panic",
    "cache",
    "server",
    "client",
    "router",
    "middleware",
    "config",
    "timeout",
    "retry",
    "parse",
    "json",
    "yaml",
    "error",
    "context",
    "cancel",
    "deadline",
    "mutex",
    "goroutine",
    "channel",
    "buffer",
    "reader",
    "writer",
    "encode",
    "decode",
    "token",
    "limit",
    "metrics",
    "logging",
    "trace",
    "span",
    "queue",
    "worker",
    "pool",
    "batch",
    "flush",
    "sync",
    "atomic",
    "index",
    "lookup",
    "store",
)
CATEGORIES = ("NAT", "MIX", "CODE")
INTENTS = ("FIX", "ADD", "REFACTOR", "OPTIMIZE", "")
LICENSES = ("MIT", "Apache-2.0", "BSD-3-Clause", "GPL-3.0")


def ensure_database() -> None:
    import django
    from django.db import connection

    django.setup()
    name = connection.settings_dict["NAME"]
    with connection._nodb_cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def fill(prs: int, files_per_pr: int) -> None:
    from django.db import connection

    from corpus.models import FileChange, PullRequest, Repository

    rng = random.Random(7)
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE corpus_filechange, corpus_comment, corpus_pullrequest, corpus_snapshot_pull_requests,"
            " corpus_repository RESTART IDENTITY CASCADE"
        )
    repos = Repository.objects.bulk_create(
        Repository(full_name=f"bench/repo-{i:03d}", license_spdx=LICENSES[i % len(LICENSES)], stars=i * 10)
        for i in range(100)
    )
    t0 = datetime(2020, 1, 1, tzinfo=UTC)
    now = datetime.now(UTC)
    raw = connection.connection  # psycopg 3: COPY straight into the tables
    pr_columns = (
        "repository_id",
        "number",
        "title",
        "body",
        "author",
        "opened_at",
        "merged_at",
        "base_commit",
        "head_commit",
        "merge_commit",
        "labels",
        "category",
        "intent",
        "included",
        "excluded_reason",
        "quality_flags",
        "syntax_ok",
        "content_hash",
        "serialized_chars",
        "additions",
        "deletions",
        "file_count",
        "comment_count",
        "source_url",
        "fetched_at",
        "source_hash",
        "duplicate_reason",
    )
    with raw.cursor() as cursor:
        with cursor.copy(f"COPY {PullRequest._meta.db_table} ({', '.join(pr_columns)}) FROM STDIN") as copy:
            for i in range(prs):
                repo = repos[i % len(repos)]
                merged = t0 + timedelta(minutes=17 * i)
                included = rng.random() > 0.1
                copy.write_row(
                    (
                        repo.pk,
                        i // len(repos) + 1,
                        _sentence(rng, 7).capitalize(),
                        _sentence(rng, 40),
                        "bench",
                        merged - timedelta(days=1),
                        merged,
                        "a" * 40,
                        "b" * 40,
                        "c" * 40,
                        [],
                        rng.choice(CATEGORIES),
                        rng.choice(INTENTS),
                        included,
                        "" if included else "bench exclusion",
                        [],
                        rng.random() > 0.05,
                        f"{i:064x}",
                        rng.randint(500, 60_000),
                        rng.randint(1, 400),
                        rng.randint(0, 200),
                        files_per_pr,
                        0,
                        "",
                        now,
                        "",
                        "",
                    )
                )
        print(f"  {prs:,} pull requests copied in {time.monotonic() - started:.1f} s", flush=True)
        cursor.execute(f"SELECT min(id), max(id) FROM {PullRequest._meta.db_table}")
        first_id, last_id = cursor.fetchone()
        patch = "@@ -1,3 +1,4 @@\n func f() {\n-\treturn nil\n+\tif x == nil {\n+\t\treturn err\n+\t}\n }\n"
        file_columns = (
            "pull_request_id",
            "path",
            "previous_path",
            "status",
            "additions",
            "deletions",
            "patch",
            "is_go",
            "is_test",
            "is_vendored",
            "is_generated",
            "is_binary",
        )
        with cursor.copy(f"COPY {FileChange._meta.db_table} ({', '.join(file_columns)}) FROM STDIN") as copy:
            for pr_id in range(first_id, last_id + 1):
                for j in range(files_per_pr):
                    path = f"pkg/{WORDS[(pr_id + j) % len(WORDS)]}/file_{j}.go"
                    copy.write_row((pr_id, path, "", "modified", 3, 1, patch, True, j % 4 == 0, False, False, False))
        print(f"  {prs * files_per_pr:,} file changes copied in {time.monotonic() - started:.1f} s", flush=True)
        cursor.execute(
            f"UPDATE {PullRequest._meta.db_table} SET search_vector = "
            "setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', body), 'B')"
        )
        cursor.execute("VACUUM ANALYZE")  # sets the visibility map, so counts can be index-only
    raw.commit()
    print(f"  search vectors and ANALYZE done in {time.monotonic() - started:.1f} s", flush=True)


def measure(repeat: int) -> None:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from corpus.models import PullRequest

    user = User.objects.filter(username="bench").first() or User.objects.create_superuser("bench", password="bench")
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    pr = PullRequest.objects.order_by("-merged_at").first()
    pages = [
        ("PR list, newest first", "/corpus/pulls/"),
        ("PR list, page 100", "/corpus/pulls/?page=100"),
        ("PR list, filtered + sorted by size", "/corpus/pulls/?included=yes&category=MIX&intent=FIX&sort=-size"),
        ("search, common words", "/corpus/pulls/?q=handler+panic"),
        ("search, phrase + filter", '/corpus/pulls/?q="retry+timeout"&license=MIT'),
        ("PR page (10 files)", f"/corpus/pulls/{pr.pk}/"),
        ("repositories", "/corpus/"),
        ("statistics", "/corpus/stats/"),
    ]
    print(f"\n{'page':40} {'median ms':>10} {'min ms':>8} {'queries':>8}")
    for label, url in pages:
        times = []
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as queries:
                start = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - start) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{url} answered {response.status_code}")
        print(f"{label:40} {statistics.median(times):10.1f} {min(times):8.1f} {len(queries):8d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prs", type=int, default=100_000)
    parser.add_argument("--files-per-pr", type=int, default=10)
    parser.add_argument("--refill", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    ensure_database()
    from corpus.models import PullRequest

    have = PullRequest.objects.count()
    print(f"database {os.environ['HRGC_DB_NAME']}: {have:,} pull requests")
    if args.refill or have < args.prs:
        print(f"filling {args.prs:,} pull requests and {args.prs * args.files_per_pr:,} file changes")
        fill(args.prs, args.files_per_pr)
    measure(args.repeat)


if __name__ == "__main__":
    main()
