"""The shape every background job's row shares: status, progress, heartbeat, cooperative cancel."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.urls import reverse
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


def split_message(message: str) -> tuple[str, str]:
    """A job's message as its first line, for the page, and the rest (a failure's traceback), for a <details>."""
    head, _, rest = (message or "").strip().partition("\n")
    return head.strip(), rest.strip()


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

    # The job card (templates/_job_card.html) shows every kind of job; these say what differs per kind.
    status_url_name = ""  # the URL name of the status endpoint that answers with the card; none: not polled
    card_id = "job"  # prefix of the card's element ids (job-status, job-message, ...)
    card_extra_template = ""  # the kind's own live lines inside the card (a fetch job's counters, say)
    dead_hint = "its worker stopped answering"  # beside the badge while the worker looks dead

    class Meta:
        abstract = True

    def get_status_url(self) -> str:
        return reverse(self.status_url_name, args=[self.pk]) if self.status_url_name else ""

    def status_payload(self) -> dict:
        """What the job card shows of this job: the page renders it, every status endpoint returns it."""
        head, rest = split_message(self.message)
        return {
            "id": self.pk,
            "status": self.status,
            "active": self.is_active,
            "looks_dead": self.looks_dead,
            "progress": self.progress,
            "percent": round(100 * min(max(self.progress or 0.0, 0.0), 1.0)),
            "message": head,
            "message_rest": rest,
            "duration": self.duration,
            "finished_at": self.finished_at,
        }

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
