"""Fixtures the corpus tests share."""

from __future__ import annotations

import pytest

from corpus.models import PullRequest, Repository
from corpus.services import ingest
from tests.corpus.support import page_pr


@pytest.fixture
def corpus(db):
    """Three stored PRs in two repositories (acme/web, acme/cli), one of them with broken code."""
    web = Repository.objects.create(full_name="acme/web", license_spdx="MIT")
    cli = Repository.objects.create(full_name="acme/cli", license_spdx="Apache-2.0")
    ingest.store_pull_request(
        repository=web, record=page_pr("acme/web", 1, "Fix the handler crash", "It panicked.", day=1)
    )
    ingest.store_pull_request(repository=web, record=page_pr("acme/web", 2, "Add rate limiting middleware", day=5))
    ingest.store_pull_request(
        repository=cli, record=page_pr("acme/cli", 3, "Broken code", day=9, after="package web\nfunc handle( {\n")
    )
    return PullRequest.objects.order_by("number")
