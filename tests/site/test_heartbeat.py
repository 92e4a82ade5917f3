"""A worker's heartbeat survives a database hiccup, and a worker that no longer owns its job stops writing."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.utils import timezone

from corpus.models import FetchJob
from hrgc_site.jobs import OwnershipLost, Progress, claim, heartbeat, mark_dead, ownership_lost, run_job
from hrgc_site.models import JobStatus

# The heartbeat thread has its own connection: rows must be committed for it to see them.
pytestmark = pytest.mark.django_db(transaction=True)


def _claimed() -> FetchJob:
    job = FetchJob.objects.create(targets=["acme/widgets"])
    return claim(FetchJob, job.pk)


def _beat_after(job: FetchJob, since, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        beat = FetchJob.objects.values_list("heartbeat_at", flat=True).get(pk=job.pk)
        if beat > since:
            return beat
        time.sleep(0.05)
    raise AssertionError("no heartbeat")


def _taken_by_another_worker(job: FetchJob) -> None:
    """What a retry elsewhere does: the row is marked dead, then claimed again by another worker."""
    FetchJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, worker="other-host:7", started_at=timezone.now(), message="the new worker's"
    )


def test_the_heartbeat_survives_its_connection_being_cut():
    job = _claimed()
    with heartbeat(job, every=0.1):
        first = _beat_after(job, job.heartbeat_at)
        # Cut every other session on the test database: the heartbeat thread's connection goes with them.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            assert cursor.fetchone()[0] >= 1
        after_cut = _beat_after(job, first)
        _beat_after(job, after_cut)  # and it keeps beating
    assert not ownership_lost(job)


def test_progress_writes_stop_once_another_worker_owns_the_job():
    job = _claimed()
    progress = Progress(job)
    progress.update(force=True, repos_done=1)
    _taken_by_another_worker(job)
    with pytest.raises(OwnershipLost):
        progress.update(force=True, repos_done=2)
    row = FetchJob.objects.get(pk=job.pk)
    assert row.repos_done == 1 and row.worker == "other-host:7" and row.message == "the new worker's"
    with pytest.raises(OwnershipLost):  # and it keeps refusing, like a cancel that stays asked for
        progress.should_stop()


def test_the_heartbeat_signals_lost_ownership_when_the_job_is_marked_dead():
    job = _claimed()
    progress = Progress(job)
    with heartbeat(job, every=0.1):
        job.refresh_from_db()
        assert mark_dead(job)
        deadline = time.monotonic() + 20
        while not ownership_lost(job) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ownership_lost(job)
        with pytest.raises(OwnershipLost):
            progress.should_stop()
    assert FetchJob.objects.get(pk=job.pk).status == JobStatus.DEAD


def test_a_worker_whose_job_was_retried_elsewhere_stops_and_overwrites_nothing(tmp_path):
    job = FetchJob.objects.create(targets=["acme/widgets"])
    written = []

    def body(row):
        progress = Progress(row, every=0)
        for step in range(1, 50):
            if step == 3:
                _taken_by_another_worker(row)
            if progress.update(repos_done=step):
                return JobStatus.STOPPED, "cancelled"
            path = tmp_path / f"part-{step}"
            path.write_text("data")
            written.append(path.name)
        return JobStatus.FINISHED, "finished"

    assert run_job(FetchJob, job.pk, body) == "lost"
    row = FetchJob.objects.get(pk=job.pk)
    assert written == ["part-1", "part-2"]
    assert row.status == JobStatus.RUNNING and row.worker == "other-host:7" and row.message == "the new worker's"
    assert row.repos_done == 2 and row.finished_at is None


def test_a_training_run_that_lost_its_worker_writes_no_more_rows():
    from tests.factories import make_lineage
    from training.models import RunLogLine, TrainingRun
    from training.tasks.runs import RunRecorder

    run = make_lineage("lost")
    TrainingRun.objects.filter(pk=run.pk).update(status=JobStatus.QUEUED)
    run = claim(TrainingRun, run.pk)
    recorder = RunRecorder(run)
    recorder.report("log", {"message": "before"})
    TrainingRun.objects.filter(pk=run.pk).update(worker="other-host:7", started_at=timezone.now())
    with pytest.raises(OwnershipLost):
        recorder.progress.update(force=True)
    with pytest.raises(OwnershipLost):
        recorder.report("log", {"message": "after"})
    with pytest.raises(OwnershipLost):
        recorder.report("metrics", {"step": 1, "loss": 1.0, "tokens": 10, "elapsed": 1.0})
    assert list(RunLogLine.objects.filter(run=run).values_list("message", flat=True)) == ["before"]
