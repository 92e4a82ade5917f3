"""A crawl's repositories shared by several workers: claim rows, their heartbeats, and helper workers.

Every GitHub fetch job has one CrawlRepository row per target. The worker that claimed the job (its
owner) and the helpers it queues each take the next queued row in turn (SELECT … FOR UPDATE SKIP
LOCKED), so no repository is fetched by two workers at once. A worker beats on its row from a side
thread; a row whose worker went silent for HRGC_HEARTBEAT_DEAD_AFTER is taken over by the next worker
that looks, and its fetch resumes from the repository's saved cursor and clone. The owner ends the job
once every row is done; helpers end when nothing is left to take. Counters go to the job row as
increments, so every worker's work adds up there."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from corpus.models import CrawlRepository, FetchJob
from hrgc_site.jobs import heartbeat_seconds
from hrgc_site.models import heartbeat_dead_after

log = logging.getLogger(__name__)
FINAL = (CrawlRepository.State.DONE, CrawlRepository.State.FAILED, CrawlRepository.State.STOPPED)


def ensure_rows(job: FetchJob) -> None:
    """One queued row per target (a job that already has them keeps them)."""
    rows = [CrawlRepository(job=job, position=i, target=t) for i, t in enumerate(job.targets)]
    CrawlRepository.objects.bulk_create(rows, ignore_conflicts=True)


def claim_next(job: FetchJob, worker: str) -> CrawlRepository | None:
    """The next queued row, or one whose worker went silent, now this worker's; None when there is none."""
    stale = timezone.now() - heartbeat_dead_after()
    with transaction.atomic():
        row = (
            CrawlRepository.objects.select_for_update(skip_locked=True)
            .filter(job=job)
            .filter(
                Q(state=CrawlRepository.State.QUEUED) | Q(state=CrawlRepository.State.WORKING, heartbeat_at__lt=stale)
            )
            .order_by("position")
            .first()
        )
        if row is None:
            return None
        if row.state == CrawlRepository.State.WORKING:
            log.warning("fetch #%s: %s taken over from silent worker %s", job.pk, row.target, row.worker)
        now = timezone.now()
        row.state, row.worker, row.claimed_at, row.heartbeat_at = CrawlRepository.State.WORKING, worker, now, now
        row.claims += 1
        row.save(update_fields=["state", "worker", "claimed_at", "heartbeat_at", "claims"])
        return row


def release(row: CrawlRepository, state: str, worker: str) -> bool:
    """This worker is done with the row (done, failed, stopped, or queued again); False if it was not its own."""
    return bool(
        CrawlRepository.objects.filter(pk=row.pk, worker=worker, state=CrawlRepository.State.WORKING).update(
            state=state, finished_at=timezone.now() if state in FINAL else None, heartbeat_at=timezone.now()
        )
    )


def unfinished(job: FetchJob) -> int:
    return CrawlRepository.objects.filter(job=job).exclude(state__in=FINAL).count()


def queued_targets(job: FetchJob) -> list[str]:
    return list(
        CrawlRepository.objects.filter(job=job, state=CrawlRepository.State.QUEUED)
        .order_by("position")
        .values_list("target", flat=True)
    )


@contextmanager
def beating(row: CrawlRepository, worker: str) -> Iterator[threading.Event]:
    """Beat on the row from a side thread while the worker is on it; the event is set if another took it."""
    stop, lost = threading.Event(), threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(heartbeat_seconds()):
                try:
                    owned = CrawlRepository.objects.filter(
                        pk=row.pk, worker=worker, state=CrawlRepository.State.WORKING
                    ).update(heartbeat_at=timezone.now())
                except Exception:  # noqa: BLE001 - a database hiccup must not end the beating
                    log.warning("heartbeat of crawl row %s failed; retrying", row.pk, exc_info=True)
                    connection.close()
                    continue
                if not owned:
                    lost.set()
                    return
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"crawl-row-{row.pk}", daemon=True)
    thread.start()
    try:
        yield lost
    finally:
        stop.set()
        thread.join(timeout=5)


def add_to_job(job_id: int, counts: dict[str, int], errors: dict[str, str], repo_progress: dict, **absolute) -> None:
    """Add this worker's counts since its last write to the job row, and merge its errors and rows."""
    from django.db.models import F

    fields = {key: F(key) + value for key, value in counts.items() if value}
    if errors:
        fields["errors"] = RawSQL("errors || %s::jsonb", [json.dumps(errors)])
    if repo_progress:
        fields["repo_progress"] = RawSQL("repo_progress || %s::jsonb", [json.dumps(repo_progress)])
    fields.update(absolute)
    if fields:
        FetchJob.objects.filter(pk=job_id).update(**fields)


def helpers_wanted(job: FetchJob) -> int:
    """How many helper workers a crawl asks for besides its owner (GITHUB_CRAWL_WORKERS in all)."""
    return max(0, min(settings.GITHUB_CRAWL_WORKERS, len(job.targets)) - 1)


def enqueue_helpers(job: FetchJob) -> int:
    """Queue the helpers on the worker cluster; each joins the crawl when a worker picks it up."""
    from django_q.tasks import async_task

    count = helpers_wanted(job)
    for index in range(count):
        async_task(
            "corpus.tasks.run_crawl_helper", job.pk, q_options={"task_name": f"fetchjob-{job.pk}-helper-{index + 1}"}
        )
    return count


def seed_repo_progress(job: FetchJob, targets: list[str], *, method: str) -> None:
    """A queued line on the crawl page for each repository no worker has written yet."""
    from corpus.services.repositories import validate_repository_name

    seed = {}
    for target in targets:
        try:
            name = validate_repository_name(target)
        except Exception:  # noqa: BLE001, S112 - a bad name gets its error line when its turn comes
            continue
        seed[name] = {"state": "queued", "prs": 0, "points": 0, "requests": 0, "git_bytes": 0, "method": method}
    if seed:
        FetchJob.objects.filter(pk=job.pk).update(
            repo_progress=RawSQL("%s::jsonb || repo_progress", [json.dumps(seed)])
        )
