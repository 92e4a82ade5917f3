"""Every status endpoint answers with the job card (templates/_job_card.html), the same HTML its page shows."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from corpus.models import FetchJob, Snapshot
from hrgc_site.models import JobStatus, split_message
from models_registry.models import ExportedModel
from tests.factories import make_lineage

LISTS = {"tokenizer": "training:tokenizers", "dataset": "training:datasets"}
TRACEBACK = 'RuntimeError: boom\n\nTraceback (most recent call last):\n  File "x.py", line 1\nRuntimeError: boom'


@pytest.fixture(autouse=True)
def _patient_heartbeat(settings):
    """The test settings take a worker silent for 10 s for dead; a slow machine must not turn these jobs dead."""
    settings.HRGC_HEARTBEAT_DEAD_AFTER = 3600


def _jobs() -> dict[str, object]:
    """One job of every kind that has a status endpoint, all running at 40 % with a two-line message."""
    run = make_lineage("card")
    dataset, tokenizer = run.dataset, run.dataset.tokenizer
    jobs = {
        "fetch": FetchJob.objects.create(targets=["acme/web"], prs_new=7, errors={"acme/web#3": "no patch"}),
        "snapshot": Snapshot.objects.create(name="card-snap"),
        "tokenizer": tokenizer,
        "dataset": dataset,
        "export": ExportedModel.objects.create(run=run, step=10),
    }
    now = timezone.now()
    for job in jobs.values():
        type(job).objects.filter(pk=job.pk).update(
            status=JobStatus.RUNNING,
            progress=0.4,
            message="tokenizing 4 of 10\nsecond line",
            started_at=now,
            heartbeat_at=now,
        )
        job.refresh_from_db()
    return jobs


def _card_id(job) -> str:
    return type(job).card_id


def _status(client, job, **headers):
    response = client.get(job.get_status_url(), **headers)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    return response


@pytest.mark.django_db
def test_every_status_endpoint_returns_the_card_with_state_progress_and_message(viewer_client):
    for kind, job in _jobs().items():
        fragment = _status(viewer_client, job).content.decode()
        p = _card_id(job)
        assert f'<span class="badge running" id="{p}-status">running</span>' in fragment, kind
        assert f'<div id="{p}-progress" style="width:40%"></div>' in fragment, kind
        assert f'<p id="{p}-message">tokenizing 4 of 10</p>' in fragment, kind
        assert "<pre>second line</pre>" in fragment, kind
        # An active job's card asks for itself again, adaptively: often while visible, rarely while hidden.
        assert f'hx-get="{job.get_status_url()}"' in fragment and "every 15s [document.hidden]" in fragment, kind
        assert "<html" not in fragment, kind


@pytest.mark.django_db
def test_the_page_renders_the_same_card_as_its_status_endpoint(viewer_client):
    for kind, job in _jobs().items():
        fragment = _status(viewer_client, job).content.decode()
        card = re.search(r'<div class="job-card".*?(?=\n</div>\n)', fragment, re.S).group(0)
        page = viewer_client.get(job.get_absolute_url()).content.decode()
        assert card in page, kind


@pytest.mark.django_db
def test_the_fetch_card_carries_the_live_counters_and_errors(viewer_client):
    job = _jobs()["fetch"]
    fragment = _status(viewer_client, job).content.decode()
    assert '<span id="c-prs_new">7</span>' in fragment
    assert "<tr><td>acme/web#3</td><td>no patch</td></tr>" in fragment


@pytest.mark.django_db
@pytest.mark.parametrize("status", [JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED])
def test_an_ended_job_renders_its_state_stops_polling_and_reloads_a_polling_page(viewer_client, status):
    for kind, job in _jobs().items():
        message = TRACEBACK if status == JobStatus.FAILED else "done: 12 records"
        type(job).objects.filter(pk=job.pk).update(status=status, message=message, finished_at=timezone.now())
        p = _card_id(job)
        plain = _status(viewer_client, job)
        fragment = plain.content.decode()
        assert f'<span class="badge {status}" id="{p}-status">{status}</span>' in fragment, kind
        assert "hx-get" not in fragment and f'id="{p}-progress"' not in fragment, kind
        assert "HX-Refresh" not in plain.headers, kind
        head, rest = split_message(message)
        if status == JobStatus.FAILED:
            assert f'<p id="{p}-message" class="bad">{head}</p>' in fragment, kind
            assert f'<details id="{p}-traceback"' in fragment and "Traceback (most recent call last)" in fragment
        else:
            assert f'<p id="{p}-message">{head}</p>' in fragment and "<details" not in fragment, kind
        # The page that polled it reloads, to show results and the actions that fit the new state.
        assert _status(viewer_client, job, HTTP_HX_REQUEST="true")["HX-Refresh"] == "true", kind


@pytest.mark.django_db
def test_a_running_job_does_not_reload_the_page(viewer_client):
    for kind, job in _jobs().items():
        assert "HX-Refresh" not in _status(viewer_client, job, HTTP_HX_REQUEST="true").headers, kind


@pytest.mark.django_db
def test_list_rows_poll_the_compact_card(viewer_client):
    jobs = _jobs()
    for kind in ("tokenizer", "dataset"):
        job = jobs[kind]
        response = viewer_client.get(job.get_status_url() + "?compact=1")
        fragment = response.content.decode()
        assert '<span class="badge running" data-role="status">running</span>' in fragment, kind
        assert "tokenizing 4 of 10" in fragment and "second line" not in fragment, kind
        assert f'hx-get="{job.get_status_url()}?compact=1"' in fragment, kind
        listing = viewer_client.get(reverse(LISTS[kind])).content
        assert f'hx-get="{job.get_status_url()}?compact=1"'.encode() in listing, kind


@pytest.mark.django_db
def test_a_silent_worker_is_settled_dead_by_the_poll(viewer_client):
    job = _jobs()["tokenizer"]
    silent = timezone.now() - timedelta(hours=2)
    type(job).objects.filter(pk=job.pk).update(heartbeat_at=silent, worker="gone:1")
    response = _status(viewer_client, job, HTTP_HX_REQUEST="true")
    assert '<span class="badge dead" id="job-status">dead</span>' in response.content.decode()
    assert response["HX-Refresh"] == "true"
