"""django-q2 entry points: each claims its row and runs the service that does the work."""

from __future__ import annotations

from corpus.models import FetchJob, Snapshot
from corpus.services import fetch_jobs, snapshots
from hrgc_site.jobs import Progress, run_job


def run_fetch_job(job_id: int) -> str:
    return run_job(FetchJob, job_id, lambda job: fetch_jobs.run_fetch(job, helpers=True))


def run_crawl_helper(job_id: int) -> str:
    """A second (third, …) worker on a crawl: it takes repositories the others have not (crawl rows)."""
    from django.db import close_old_connections

    close_old_connections()
    return fetch_jobs.help_crawl(job_id)


def run_snapshot(snapshot_id: int) -> str:
    return run_job(
        Snapshot, snapshot_id, lambda snapshot: snapshots.write_snapshot(snapshot, progress=Progress(snapshot))
    )


def rejudge_duplicates_task() -> str:
    """The corpus page's "Re-judge duplicates" button: the same work as `manage.py rejudge_duplicates`."""
    from corpus.services.dedupe import rejudge_duplicates

    counts = rejudge_duplicates()
    return f"{counts['near']} near duplicates, {counts['came_back']} came back"
