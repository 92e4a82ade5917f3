"""The home page: the pipeline at a glance and the jobs running now."""

from __future__ import annotations

import pytest
from django.urls import reverse

from corpus.models import FetchJob

pytestmark = pytest.mark.django_db


def test_running_jobs_show_their_progress_as_a_percentage(viewer_client):
    FetchJob.objects.create(targets=["acme/web"], status="running", progress=0.45)
    page = viewer_client.get(reverse("home")).content.decode()
    assert "45%" in page
