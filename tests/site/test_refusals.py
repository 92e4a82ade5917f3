"""One refusal exception: a service's refusal becomes a message; any other error a service raises stays an error."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

import training.views.runs
from corpus.models import FetchJob, Source
from corpus.services import fetch_jobs
from hrgc_site.errors import ActionRefused, InUse, Invalid
from hrgc_site.models import JobStatus
from tests.factories import make_lineage
from training.services.runs import RunActionError

pytestmark = pytest.mark.django_db


def running_job() -> FetchJob:
    return FetchJob.objects.create(
        kind=Source.GITHUB, targets=["acme/web"], status=JobStatus.RUNNING, heartbeat_at=timezone.now()
    )


def flashed(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_every_refusal_is_an_action_refused_and_a_value_error_is_not():
    for refusal in (InUse, Invalid, RunActionError):
        assert issubclass(refusal, ActionRefused)
    assert not issubclass(ValueError, ActionRefused) and not issubclass(ActionRefused, ValueError)


def test_a_refusal_is_said_in_a_message(operator_client):
    job = running_job()
    response = operator_client.post(reverse("corpus:fetchjob_retry", args=[job.pk]))
    assert response.status_code == 302
    assert any("cancel it or wait until it ends" in message for message in flashed(response))
    assert FetchJob.objects.count() == 1


def test_a_value_error_from_a_service_is_not_turned_into_a_message(operator_client, monkeypatch):
    def broken(**kwargs):
        raise ValueError("a bug, not a refusal")

    monkeypatch.setattr(fetch_jobs, "retry_fetch_job", broken)
    job = running_job()
    with pytest.raises(ValueError, match="a bug, not a refusal"):
        operator_client.post(reverse("corpus:fetchjob_retry", args=[job.pk]))


def test_a_run_refusal_is_a_message_and_a_value_error_is_not(operator_client, monkeypatch):
    run = make_lineage()  # a finished run: stopping it is refused
    response = operator_client.post(reverse("training:run_stop", args=[run.pk]))
    assert any("only queued or running runs can be stopped" in message for message in flashed(response))

    def broken(run):
        raise ValueError("a bug in request_stop")

    monkeypatch.setattr(training.views.runs, "request_stop", broken)
    with pytest.raises(ValueError, match="a bug in request_stop"):
        operator_client.post(reverse("training:run_stop", args=[run.pk]))
