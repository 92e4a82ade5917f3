"""Glue between a job row and the worker running it: enqueue, claim, heartbeat, cancel, finish."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import contextmanager

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Model
from django.utils import timezone

from hrgc_site.models import JobStatus

log = logging.getLogger(__name__)


def heartbeat_seconds() -> float:
    return getattr(settings, "HRGC_HEARTBEAT_SECONDS", 10)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def enqueue(job: Model, func: str, *, cluster: str | None = None) -> str:
    """Queue `func(job.pk)` on the django-q2 cluster and remember the task id on the row."""
    from django_q.tasks import async_task

    options = {"task_name": f"{job._meta.model_name}-{job.pk}"}
    if cluster:
        options["cluster"] = cluster
    task_id = async_task(func, job.pk, q_options=options)
    type(job).objects.filter(pk=job.pk).update(task_id=task_id)
    job.task_id = task_id
    return task_id


def enqueue_on_commit(job: Model, func: str, *, cluster: str | None = None) -> None:
    """Queue the job once the transaction that wrote its row commits, so a worker never looks for a row
    it cannot see yet (and a rolled-back row is never queued)."""
    transaction.on_commit(lambda: enqueue(job, func, cluster=cluster))


def claim(model: type[Model], pk: int, *, allowed=(JobStatus.QUEUED,)):
    """Move a job to running with a conditional UPDATE, so two workers never run the same row."""
    now = timezone.now()
    claimed = model.objects.filter(pk=pk, status__in=allowed).update(
        status=JobStatus.RUNNING,
        worker=worker_name(),
        started_at=now,
        heartbeat_at=now,
        finished_at=None,
        message="started",
    )
    if not claimed:
        return None
    return model.objects.get(pk=pk)


class Progress:
    """Throttled writes of a job's counters; answers whether a cancel was asked for."""

    def __init__(self, job: Model, *, every: float = 1.0):
        self.job = job
        self.every = every
        self._last = 0.0
        self._pending: dict = {}
        self.cancel_requested = False

    def update(self, force: bool = False, **fields) -> bool:
        self._pending.update(fields)
        now = time.monotonic()
        if force or now - self._last >= self.every:
            self.flush()
        return self.cancel_requested

    def flush(self) -> None:
        model = type(self.job)
        fields = dict(self._pending, heartbeat_at=timezone.now())
        model.objects.filter(pk=self.job.pk).update(**fields)
        for key, value in fields.items():
            setattr(self.job, key, value)
        self._pending.clear()
        self._last = time.monotonic()
        self.cancel_requested = model.objects.filter(pk=self.job.pk, cancel_requested=True).exists()

    def should_stop(self) -> bool:
        self.update()
        return self.cancel_requested


@contextmanager
def heartbeat(job: Model, every: float | None = None):
    """Beat from a side thread while one long call (SentencePiece training, say) blocks the task."""
    stop = threading.Event()
    every = every or heartbeat_seconds()

    def beat():
        try:
            while not stop.wait(every):
                type(job).objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"heartbeat-{job.pk}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def finish(job: Model, status: str = JobStatus.FINISHED, message: str = "", **fields) -> None:
    # Only the worker that holds the row may end it: an old worker taken for dead whose run was
    # resumed elsewhere must not overwrite the new worker's state.
    type(job).objects.filter(pk=job.pk, worker=job.worker).update(
        status=status, message=message, finished_at=timezone.now(), heartbeat_at=timezone.now(), **fields
    )


def run_job(
    model: type[Model], pk: int, body: Callable[[Model], tuple[str, str] | None], *, allowed=(JobStatus.QUEUED,)
) -> str:
    """Claim the row, run `body(job)`, and record how it ended; a crash is stored, never lost.

    `body` returns (status, message) or None for finished."""
    if not connection.in_atomic_block:  # a worker's connection may have gone stale between tasks
        close_old_connections()
    job = claim(model, pk, allowed=allowed)
    if job is None:
        log.warning("%s %s was not queued; nothing to do", model.__name__, pk)
        return "skipped"
    try:
        with heartbeat(job):
            outcome = body(job)
    except Exception as exc:  # noqa: BLE001 - the row must say why the task died
        log.exception("%s %s failed", model.__name__, pk)
        reason = f"{type(exc).__name__}: {exc}"[:2000]
        finish(job, JobStatus.FAILED, f"{reason}\n\n{traceback.format_exc()[-4000:]}")
        return JobStatus.FAILED
    status, message = outcome or (JobStatus.FINISHED, "finished")
    finish(job, status, message)
    return status


def forget_queued_task(job: Model) -> int:
    """Delete the job's django-q2 queue row, so a task whose worker died is never handed out again."""
    if not job.task_id:
        return 0
    from django_q.models import OrmQ

    stale = [row.pk for row in OrmQ.objects.all() if row.task_id() == job.task_id]
    return OrmQ.objects.filter(pk__in=stale).delete()[0] if stale else 0


def mark_dead(job: Model) -> bool:
    """A job whose worker stopped beating becomes `dead`; its queue row goes, so it never runs twice."""
    silent_since = job.heartbeat_at or job.started_at
    when = f" since {silent_since:%Y-%m-%d %H:%M:%S} UTC" if silent_since else ""
    updated = (
        type(job)
        .objects.filter(pk=job.pk, status=job.status, heartbeat_at=job.heartbeat_at)
        .update(
            status=JobStatus.DEAD,
            finished_at=timezone.now(),
            message=f"worker {job.worker or '?'} silent{when}; run it again to continue where it stopped",
        )
    )
    if updated:
        forget_queued_task(job)
        log.warning("%s %s marked dead: worker %s silent", type(job).__name__, job.pk, job.worker)
    return bool(updated)


def settle_if_dead(job: Model) -> Model:
    """Pages that poll a job call this: a job whose worker went silent is marked dead, so the page
    stops waiting for it and offers what to do next."""
    if job.looks_dead and mark_dead(job):
        job.refresh_from_db()
    return job
