"""Helpers the corpus tests share (fixtures live in conftest.py): records to ingest, git in a test repository."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from corpus.gitimport import clean_git_environ
from corpus.models import (
    FetchJob,
)
from corpus.records import CommentRecord, FileRecord, PRRecord
from corpus.sample.story import sample_story
from corpus.services import fetch_jobs
from hrgc_site.jobs import claim, finish

BEFORE = "package store\n\nfunc Get(k string) string {\n\treturn k\n}\n"
AFTER = 'package store\n\n// Get returns the value.\nfunc Get(k string) string {\n\tif k == "" {\n\t\treturn "none"\n\t}\n\treturn k\n}\n'


def store_record(number: int = 7, **changes) -> PRRecord:
    record = PRRecord(
        repo="acme/store",
        number=number,
        title="Fix empty key in Get",
        body="Get crashed on an empty key.",
        author="ana",
        created_at=datetime(2024, 5, 1, tzinfo=UTC),
        merged_at=datetime(2024, 5, 2, tzinfo=UTC),
        labels=["bug"],
        files=[
            FileRecord(
                "store/get.go", additions=4, deletions=0, patch="@@ -1,3 +1,6 @@\n+// Get\n", before=BEFORE, after=AFTER
            ),
            FileRecord(
                "vendor/x/y.go", additions=1, patch="@@ -0,0 +1 @@\n+package y\n", status="added", after="package y\n"
            ),
            FileRecord("logo.png", is_binary=True),
        ],
        comments=[
            CommentRecord("issue", "bo", "Thanks, this fixes the panic.", external_id="1"),
            CommentRecord(
                "review_comment",
                "cy",
                "nit: comment",
                path="store/get.go",
                line=3,
                diff_hunk="@@ -1 +1 @@",
                external_id="2",
            ),
        ],
    )
    return dataclasses.replace(record, **changes)


GO_BEFORE = "package web\n\nfunc handle() int {\n\treturn 1\n}\n"


def page_pr(
    repo: str,
    number: int,
    title: str,
    body: str = "",
    after: str | None = None,
    day: int = 1,
    *,
    changed: tuple[int, int] = (1, 1),
    review: bool = True,
) -> PRRecord:
    """A merged PR changing web/handler.go (`changed` = additions, deletions), with one review comment
    unless `review` is False."""
    after = after or GO_BEFORE.replace("return 1", f"return {number + 1}")
    comments = [
        CommentRecord(
            "review_comment",
            "bo",
            "Why two?",
            path="web/handler.go",
            line=4,
            diff_hunk="@@ -3,3 +3,3 @@\n-\treturn 1\n+\treturn 2",
            external_id=str(number),
        )
    ]
    return PRRecord(
        repo,
        number,
        title,
        body=body,
        author="ana",
        merged_at=datetime(2024, 3, day, tzinfo=UTC),
        files=[
            FileRecord(
                "web/handler.go",
                additions=changed[0],
                deletions=changed[1],
                before=GO_BEFORE,
                after=after,
                patch="@@ -3,3 +3,3 @@\n func handle() int {\n-\treturn 1\n+\treturn 2\n }",
            )
        ],
        comments=comments if review else [],
    )


def git(path: Path, *args: str, date: str = "2024-01-02T03:04:05+00:00", author: str = "dev") -> str:
    env = {
        **clean_git_environ(),
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_DATE": date,
        "GIT_COMMITTER_DATE": date,
    }
    command = [
        "git",
        "-C",
        str(path),
        "-c",
        f"user.name={author}",
        "-c",
        f"user.email={author}@example.com",
        "-c",
        "commit.gpgsign=false",
        *args,
    ]
    return subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout


def run_fetch_job(job: FetchJob, **options) -> tuple[FetchJob, str, str]:
    job = claim(FetchJob, job.pk)
    status, message = fetch_jobs.run_fetch(job, **options)
    finish(job, status, message)  # as run_job does
    job.refresh_from_db()
    return job, status, message


def flashed(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def story_pull(repo: str, number: int) -> PRRecord:
    for record, pulls in sample_story():
        if record.full_name == repo:
            return next(p for p in pulls if p.number == number)
    raise KeyError(repo)


def as_git_import(pr: PRRecord) -> PRRecord:
    """What a git import sees of a PR: no labels, no discussion."""
    return dataclasses.replace(pr, labels=[], comments=[])


def handler_pr(number: int, title: str) -> PRRecord:
    """A PR of acme/web merged on March `number`, without discussion."""
    return page_pr("acme/web", number, title, day=number, changed=(3, 2), review=False)
