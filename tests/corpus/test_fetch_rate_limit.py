"""A spent primary rate limit shows on the job as "waiting until HH:MM", then the fetch goes on."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from corpus.github.server import GitHubShapedServer
from corpus.models import FetchJob, PullRequest
from corpus.sample.story import sample_story
from corpus.services import fetch_jobs
from hrgc_site.jobs import claim
from hrgc_site.models import JobStatus

pytestmark = pytest.mark.django_db(transaction=True)


def test_job_waits_for_the_rate_limit_reset_and_says_until_when():
    story = sample_story()[:1]
    with GitHubShapedServer(story) as server:
        job = fetch_jobs.create_fetch_job(
            kind="github", targets=[story[0][0].full_name], api_url=server.base_url, enqueue=False
        )
        job = claim(FetchJob, job.pk)
        server.faults.rate_limit_remaining = 0  # spent: resets a second or two ahead
        outcome = {}

        def fetch():
            try:
                outcome["result"] = fetch_jobs.run_fetch(job)
            finally:
                connection.close()

        worker = threading.Thread(target=fetch)
        worker.start()
        seen = None
        deadline = time.monotonic() + 30
        while worker.is_alive() and time.monotonic() < deadline:
            row = FetchJob.objects.get(pk=job.pk)
            if row.status == JobStatus.WAITING:
                seen = row
                break
            time.sleep(0.05)
        worker.join(timeout=120)

    assert seen is not None, "the job never showed it was waiting"
    assert seen.waiting_until is not None and seen.message.startswith("rate limit: waiting until ")
    status, message = outcome["result"]
    assert status == JobStatus.FINISHED, message
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING or job.waiting_until is None  # the wait is over
    go_prs = [pr for pr in story[0][1] if any(f.path.endswith(".go") for f in pr.files)]
    assert PullRequest.objects.count() == len(go_prs)
