"""Undoing an old curation event never overwrites a later decision on the same pull requests."""

from __future__ import annotations

import pytest
from django.urls import reverse

from corpus.models import CurationEvent, PullRequest, Repository
from corpus.services import curation
from hrgc_site.errors import ActionRefused


@pytest.fixture
def pulls(db):
    repo = Repository.objects.create(full_name="acme/undo")
    return [PullRequest.objects.create(repository=repo, number=n, title=f"change {n}") for n in (1, 2, 3)]


def _state(pr):
    pr.refresh_from_db()
    return pr.included, pr.excluded_reason


def test_undoing_an_old_event_skips_the_prs_a_later_event_decided(pulls):
    everything = PullRequest.objects.filter(pk__in=[pr.pk for pr in pulls])
    old = curation.curate_pull_requests(pull_requests=everything, action="exclude", reason="too small")
    later = curation.curate_pull_requests(pull_requests=everything.filter(pk=pulls[0].pk), action="include")

    result = curation.undo_curation(event=old)
    assert result == (2, 1)
    assert _state(pulls[0]) == (True, "")  # the later decision stands
    assert _state(pulls[1]) == _state(pulls[2]) == (True, "")  # back to before the old event

    # Undoing in reverse order goes all the way back.
    old2 = curation.curate_pull_requests(pull_requests=everything, action="exclude", reason="noise")
    later2 = curation.curate_pull_requests(
        pull_requests=everything.filter(pk=pulls[1].pk), action="exclude", reason="vendored"
    )
    assert curation.undo_curation(event=later2) == (1, 0)
    assert _state(pulls[1]) == (False, "noise")
    assert curation.undo_curation(event=old2) == (3, 0)
    assert all(_state(pr) == (True, "") for pr in pulls)
    assert later.undone_at is None


def test_an_event_whose_prs_were_all_decided_again_is_not_undone(pulls):
    one = PullRequest.objects.filter(pk=pulls[0].pk)
    old = curation.curate_pull_requests(pull_requests=one, action="exclude", reason="too small")
    curation.curate_pull_requests(pull_requests=one, action="exclude", reason="generated code")
    with pytest.raises(ActionRefused, match="curated again since"):
        curation.undo_curation(event=old)
    old.refresh_from_db()
    assert old.undone_at is None and _state(pulls[0]) == (False, "generated code")


def test_the_undo_page_says_how_many_were_skipped(operator_client, pulls):
    everything = PullRequest.objects.filter(pk__in=[pr.pk for pr in pulls])
    old = curation.curate_pull_requests(pull_requests=everything, action="exclude", reason="too small")
    curation.curate_pull_requests(pull_requests=everything.filter(pk=pulls[2].pk), action="include")
    page = operator_client.post(reverse("corpus:curation_undo", args=[old.pk]), follow=True).content.decode()
    assert "Undone: 2 pull requests are back to their previous state." in page
    assert "1 pull request was skipped" in page
    assert CurationEvent.objects.get(pk=old.pk).undone_at is not None
