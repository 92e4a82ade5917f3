"""The shape every background job's row shares: status, progress, heartbeat, cooperative cancel."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


def heartbeat_dead_after() -> timedelta:
    """A worker silent for this long is taken for dead (killed, OOM, machine gone)."""
    return timedelta(seconds=getattr(settings, "HRGC_HEARTBEAT_DEAD_AFTER", 90))


class JobStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    WAITING = "waiting", "waiting"  # e.g. for a GitHub rate-limit reset
    STOPPING = "stopping", "stopping"
    FINISHED = "finished", "finished"
    STOPPED = "stopped", "stopped"
    FAILED = "failed", "failed"
    DEAD = "dead", "dead"  # its worker vanished; may be resumed


ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.WAITING, JobStatus.STOPPING)


class BackgroundJob(models.Model):
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    message = models.TextField(blank=True, help_text="Last human-readable progress line or the reason it failed.")
    progress = models.FloatField(default=0.0, help_text="0..1 where the work can be measured.")
    cancel_requested = models.BooleanField(default=False)
    task_id = models.CharField(max_length=64, blank=True, help_text="django-q2 task id")
    worker = models.CharField(max_length=128, blank=True, help_text="host:pid of the worker running it")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def looks_dead(self) -> bool:
        """Running on paper, but its worker stopped beating: killed with -9, OOM, or a lost machine."""
        if self.status not in (JobStatus.RUNNING, JobStatus.WAITING, JobStatus.STOPPING):
            return False
        last = self.heartbeat_at or self.started_at
        return last is None or timezone.now() - last > heartbeat_dead_after()

    @property
    def duration(self) -> timedelta | None:
        if not self.started_at:
            return None
        return (self.finished_at or timezone.now()) - self.started_at
