"""Adding repositories says what really happened, and quotes bad input as the person typed it, briefly."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from corpus.forms import RepositoryNamesForm, shorten
from corpus.models import Repository

pytestmark = pytest.mark.django_db


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_a_repository_already_there_is_not_added_again(operator_client):
    Repository.objects.create(full_name="acme/web")
    response = operator_client.post(reverse("corpus:add_names"), {"names": "acme/web"}, follow=True)
    assert _messages(response) == ["acme/web was already in the corpus."]
    response = operator_client.post(reverse("corpus:add_names"), {"names": "acme/web\nacme/new"}, follow=True)
    assert _messages(response) == ["Added 1 repository; acme/web was already in the corpus."]
    assert Repository.objects.count() == 2


def test_a_bad_line_is_reported_whole():
    form = RepositoryNamesForm({"names": "acme/web\nnot a repo"})
    assert not form.is_valid()
    assert form.errors["names"] == [
        "line 2: “not a repo” is not a GitHub repository: expected owner/name or a github.com URL, e.g. golang/go"
    ]


def test_a_huge_line_is_cut_in_the_message():
    form = RepositoryNamesForm({"names": "x" * 200_000})
    assert not form.is_valid()
    message = form.errors["names"][0]
    assert len(message) < 300 and "(200,000 characters)" in message


def test_a_line_of_several_good_names_still_adds_each():
    form = RepositoryNamesForm({"names": "acme/web, acme/cli acme/web"})
    assert form.is_valid() and form.cleaned_data["names"] == ["acme/web", "acme/cli"]


def test_shorten_keeps_short_text():
    assert shorten("  acme  ") == "acme"
    assert shorten("a" * 100, 10) == "aaaaaaaaaa… (100 characters)"
