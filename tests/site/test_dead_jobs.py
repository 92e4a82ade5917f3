"""A job whose worker went silent is marked dead by the page that polls it, so the page stops waiting."""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from corpus.models import FetchJob
from hrgc_site.models import JobStatus


def test_polling_a_silent_fetch_job_marks_it_dead(viewer_client):
    silent = timezone.now() - timedelta(hours=1)
    job = FetchJob.objects.create(
        targets=["acme/widgets"], status=JobStatus.RUNNING, started_at=silent, heartbeat_at=silent, worker="gone-host:1"
    )
    card = viewer_client.get(reverse("corpus:fetchjob_progress", args=[job.pk])).content.decode()
    assert 'id="job-status">dead<' in card and 'data-active="0"' in card and "hx-get" not in card
    job.refresh_from_db()
    assert job.status == JobStatus.DEAD and "gone-host:1 silent" in job.message


def test_a_live_job_is_left_alone(viewer_client):
    job = FetchJob.objects.create(
        targets=["acme/widgets"], status=JobStatus.RUNNING, started_at=timezone.now(), heartbeat_at=timezone.now()
    )
    card = viewer_client.get(reverse("corpus:fetchjob_progress", args=[job.pk])).content.decode()
    assert 'id="job-status">running<' in card and 'data-active="1"' in card
