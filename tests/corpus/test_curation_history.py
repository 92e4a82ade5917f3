"""The curation history names the pull requests of each entry."""

from __future__ import annotations

import pytest
from django.urls import reverse

from corpus.models import PullRequest
from corpus.services import curation
from tests.corpus.test_views_corpus import corpus  # noqa: F401

pytestmark = pytest.mark.django_db


def test_a_history_entry_lists_its_pull_requests(viewer_client, corpus):  # noqa: F811
    curation.curate_pull_requests(
        pull_requests=PullRequest.objects.filter(repository__full_name="acme/web"), action="exclude", reason="toy"
    )
    page = viewer_client.get(reverse("corpus:curation")).content.decode()
    web1, web2 = corpus.get(number=1), corpus.get(number=2)
    assert f'href="{web1.get_absolute_url()}"' in page and "acme/web#1" in page and "acme/web#2" in page
    assert "acme/cli#3" not in page
    assert web2.title in page  # as the link's title


def test_a_big_entry_names_a_few_and_counts_the_rest(viewer_client, corpus, monkeypatch):  # noqa: F811
    from corpus import views

    monkeypatch.setattr(views, "HISTORY_PRS_SHOWN", 2)
    curation.curate_pull_requests(pull_requests=PullRequest.objects.all(), action="exclude", reason="all")
    page = viewer_client.get(reverse("corpus:curation")).content.decode()
    assert "and 1 more" in page
