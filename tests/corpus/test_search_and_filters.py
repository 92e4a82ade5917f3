"""Search reads punctuation as a person means it; a filter value that cannot be used says so."""

from __future__ import annotations

import pytest
from django.urls import reverse

from corpus import search, selectors
from corpus.models import Repository
from corpus.services import ingest
from tests.corpus.support import page_pr

pytestmark = pytest.mark.django_db


@pytest.fixture
def nil_prs():
    repo = Repository.objects.create(full_name="acme/web", license_spdx="MIT")
    ingest.store_pull_request(repository=repo, record=page_pr("acme/web", 1, "Fix nil pointer in handler", day=1))
    ingest.store_pull_request(
        repository=repo, record=page_pr("acme/web", 2, "Guard the nil pointer dereference", day=2)
    )
    ingest.store_pull_request(repository=repo, record=page_pr("acme/web", 3, "Add rate limiting", day=3))
    return repo


def _found(query: str) -> set[int]:
    return set(selectors.filtered_pull_requests({"q": query}).values_list("number", flat=True))


def test_a_hyphenated_search_finds_what_the_spaced_one_finds(nil_prs):
    assert _found("nil pointer") == {1, 2}
    assert _found("nil-pointer") == {1, 2}
    assert _found("nil‐pointer") == {1, 2}  # a typographic hyphen too
    # websearch syntax keeps working: a leading minus still excludes.
    assert _found("nil -guard") == {1}


def test_normalize_search_only_touches_joining_hyphens():
    assert search.normalize_search("nil-pointer -flaky") == "nil pointer -flaky"
    assert search.normalize_search('"rate-limit" or x') == '"rate limit" or x'


def test_filter_problems_name_each_bad_value():
    problems = selectors.filter_problems({"min_chars": "abc", "max_chars": "-4", "merged_from": "yesterday"})
    assert "whole number" in problems["min_chars"] and "“abc”" in problems["min_chars"]
    assert "whole number" in problems["max_chars"]
    assert "YYYY-MM-DD" in problems["merged_from"]
    assert selectors.filter_problems({"min_chars": "500", "max_chars": "100"}) == {
        "max_chars": "chars ≥ 500 is above chars ≤ 100: nothing can match"
    }
    assert (
        "after merged to"
        in selectors.filter_problems({"merged_from": "2024-05-01", "merged_to": "2024-01-01"})["merged_to"]
    )
    assert selectors.filter_problems({"min_chars": "10", "max_chars": "10"}) == {}


def test_the_list_shows_filter_problems_beside_their_fields(viewer_client, nil_prs):
    response = viewer_client.get(reverse("corpus:pullrequests"), {"min_chars": "500", "max_chars": "100"})
    page = response.content.decode()
    assert response.context["filter_problems"] == {"max_chars": "chars ≥ 500 is above chars ≤ 100: nothing can match"}
    assert 'id="filter-problem-max_chars"' in page and "nothing can match" in page
    response = viewer_client.get(reverse("corpus:pullrequests"), {"min_chars": "many"})
    assert "needs a whole number" in response.content.decode()


def test_a_pull_request_number_finds_that_pull_request(db):
    from corpus.models import Repository
    from corpus.selectors import filtered_pull_requests
    from corpus.services import ingest
    from tests.corpus.support import store_record

    repository = Repository.objects.create(full_name="acme/store", license_spdx="MIT")
    ingest.store_pull_request(repository=repository, record=store_record(number=4010))
    ingest.store_pull_request(repository=repository, record=store_record(number=12, title="Other change"))
    for query in ("4010", "#4010", " #4010 "):
        assert list(filtered_pull_requests({"q": query}).values_list("number", flat=True)) == [4010], query
    assert filtered_pull_requests({"q": "99999999999999"}).count() == 0
