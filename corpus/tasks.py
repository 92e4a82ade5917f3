"""django-q2 entry points: each claims its row and runs the service that does the work."""

from __future__ import annotations

from corpus import services
from corpus.models import FetchJob, Snapshot
from hrgc_site.jobs import Progress, run_job


def run_fetch_job(job_id: int) -> str:
    return run_job(FetchJob, job_id, services.run_fetch)


def run_snapshot(snapshot_id: int) -> str:
    return run_job(
        Snapshot, snapshot_id, lambda snapshot: services.write_snapshot(snapshot, progress=Progress(snapshot))
    )
