"""Shared by the fetch/import commands: run a job in the foreground, printing its progress, or queue it."""

from __future__ import annotations

from django.core.management.base import CommandError

from corpus.models import FetchJob
from corpus.services import fetch_jobs
from hrgc_site.jobs import enqueue, run_job
from hrgc_site.models import split_message


def run_or_enqueue(command, job: FetchJob, *, queue: bool, **options) -> None:
    if queue:
        enqueue(job, "corpus.tasks.run_fetch_job")
        command.stdout.write(f"queued fetch job #{job.pk}; a worker (manage.py qcluster) runs it")
        return
    shown: set[str] = set()

    def echo(line: str) -> None:
        shown.add(line)
        command.stdout.write(line)

    status = run_job(FetchJob, job.pk, lambda row: fetch_jobs.run_fetch(row, echo=echo, **options))
    job.refresh_from_db()
    for key, message in job.errors.items():
        if f"{key}: {message}" not in shown:  # a helper worker's error of a crawl, not printed as it happened
            command.stderr.write(f"  {key}: {message}")
    summary = f"fetch job #{job.pk} {status}: {split_message(job.message)[0]}"
    if status == "failed":
        raise CommandError(summary)
    command.stdout.write(summary)
