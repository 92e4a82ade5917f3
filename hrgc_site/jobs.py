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
from django.db.models import Model, QuerySet
from django.utils import timezone

from hrgc_site.models import JobStatus

log = logging.getLogger(__name__)


def heartbeat_seconds() -> float:
    return getattr(settings, "HRGC_HEARTBEAT_SECONDS", 10)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def enqueue(job: Model, func: str, *, cluster: str | None = None) -> str:
    """Queue `func(job.pk)` on the django-q2 cluster (`hrgc` unless named) and remember the task id on the row."""
    from django_q.tasks import async_task

    # Named always: without a name django-q2 queues on the cluster of the process that asks, so a job queued by
    # a training worker (cluster `long`) would wait for a training worker.
    options = {"task_name": f"{job._meta.model_name}-{job.pk}", "cluster": cluster or settings.Q_CLUSTER["name"]}
    task_id = async_task(func, job.pk, q_options=options)
    type(job).objects.filter(pk=job.pk).update(task_id=task_id)
    job.task_id = task_id
    return task_id


def enqueue_on_commit(job: Model, func: str, *, cluster: str | None = None) -> None:
    """Queue the job once the transaction that wrote its row commits, so a worker never looks for a row
    it cannot see yet (and a rolled-back row is never queued)."""
    transaction.on_commit(lambda: enqueue(job, func, cluster=cluster))


# A worker still owns its job while the row is in one of these states and names its claim.
OWNED_STATUSES = (JobStatus.RUNNING, JobStatus.WAITING, JobStatus.STOPPING)


class OwnershipLost(BaseException):  # noqa: N818 - a signal, like KeyboardInterrupt, not an error to catch broadly
    """This worker no longer owns its job (taken for dead, retried or resumed elsewhere): it must stop writing.

    A BaseException, so the `except Exception` blocks that record a failure and carry on do not swallow it."""


def owned_rows(job: Model) -> QuerySet:
    """The job's row, only while this worker's claim holds: same worker, same claim time, still active."""
    return type(job).objects.filter(pk=job.pk, worker=job.worker, started_at=job.started_at, status__in=OWNED_STATUSES)


def _lost_event(job: Model) -> threading.Event:
    event = getattr(job, "_hrgc_ownership_lost", None)
    if event is None:
        event = threading.Event()
        job._hrgc_ownership_lost = event
    return event


def ownership_lost(job: Model) -> bool:
    return _lost_event(job).is_set()


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
    """Throttled writes of a job's counters; answers whether a cancel was asked for.

    Every write is conditional on this worker still owning the job: once it does not (the heartbeat
    thread saw it, or a write touched no row), `update`/`should_stop` raise OwnershipLost, so the
    loops that check for a cancel stop there, before writing another file or counter."""

    def __init__(self, job: Model, *, every: float = 1.0):
        self.job = job
        self.every = every
        self._last = 0.0
        self._pending: dict = {}
        self.cancel_requested = False

    def update(self, force: bool = False, **fields) -> bool:
        self.check_owner()
        self._pending.update(fields)
        now = time.monotonic()
        if force or now - self._last >= self.every:
            self.flush()
        return self.cancel_requested

    def flush(self) -> None:
        model = type(self.job)
        fields = dict(self._pending, heartbeat_at=timezone.now())
        if self.job.started_at is None:  # a job row run without claim() (some tests): no claim to check
            model.objects.filter(pk=self.job.pk).update(**fields)
        elif not owned_rows(self.job).update(**fields):
            _lost_event(self.job).set()
            self.check_owner()
        for key, value in fields.items():
            setattr(self.job, key, value)
        self._pending.clear()
        self._last = time.monotonic()
        self.cancel_requested = model.objects.filter(pk=self.job.pk, cancel_requested=True).exists()

    def should_stop(self) -> bool:
        self.update()
        return self.cancel_requested

    def check_owner(self) -> None:
        if ownership_lost(self.job):
            self.cancel_requested = True
            raise OwnershipLost(f"{type(self.job).__name__} {self.job.pk}: worker {self.job.worker} lost it")


@contextmanager
def heartbeat(job: Model, every: float | None = None):
    """Beat from a side thread while one long call (SentencePiece training, say) blocks the task.

    A database error does not end the beating: the thread drops its connection, retries sooner, and
    goes on (a job whose beat stops is taken for dead and may be retried beside a live worker). A beat
    that finds the row no longer this worker's sets the job's ownership-lost signal and ends."""
    stop = threading.Event()
    every = every or heartbeat_seconds()
    lost = _lost_event(job)

    def beat():
        delay = every
        try:
            while not stop.wait(delay):
                try:
                    owned = owned_rows(job).update(heartbeat_at=timezone.now())
                except Exception:  # noqa: BLE001 - the database went away for a moment; never die of it
                    log.warning("heartbeat of %s %s failed; retrying", type(job).__name__, job.pk, exc_info=True)
                    _drop_connection()
                    delay = min(every, 1.0)
                    continue
                delay = every
                if not owned:
                    log.warning(
                        "%s %s is no longer this worker's (%s); stopping", type(job).__name__, job.pk, job.worker
                    )
                    lost.set()
                    return
        finally:
            _drop_connection()

    thread = threading.Thread(target=beat, name=f"heartbeat-{job.pk}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def _drop_connection() -> None:
    try:
        connection.close()
    except Exception:  # noqa: BLE001 - a broken connection may fail to close; the next query opens a new one
        log.debug("closing a broken connection failed", exc_info=True)


def finish(job: Model, status: str = JobStatus.FINISHED, message: str = "", **fields) -> None:
    # Only the worker that holds the row may end it: an old worker taken for dead whose run was
    # resumed elsewhere must not overwrite the new worker's state.
    rows = owned_rows(job) if job.started_at is not None else type(job).objects.filter(pk=job.pk, worker=job.worker)
    rows.update(status=status, message=message, finished_at=timezone.now(), heartbeat_at=timezone.now(), **fields)


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
    except OwnershipLost:
        log.warning("%s %s: another worker owns it now; this one stopped without writing more", model.__name__, pk)
        return "lost"
    except Exception as exc:  # noqa: BLE001 - the row must say why the task died
        log.exception("%s %s failed", model.__name__, pk)
        reason = f"{type(exc).__name__}: {exc}"[:2000]
        finish(job, JobStatus.FAILED, f"{reason}\n\n{traceback.format_exc()[-4000:]}")
        return JobStatus.FAILED
    status, message = outcome or (JobStatus.FINISHED, "finished")
    if ownership_lost(job):
        log.warning("%s %s ended after another worker took it; its outcome is not recorded", model.__name__, pk)
        return "lost"
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
