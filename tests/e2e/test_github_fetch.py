"""In real Chromium with a real worker: point the dashboard at the GitHub-shaped server, add repositories
one by one, as a pasted list and from a search result, fetch them and watch the job finish."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from corpus.github.server import GitHubShapedServer
from corpus.models import FetchJob, PullRequest, Repository
from corpus.sample.story import sample_story

pytestmark = pytest.mark.e2e
TOKEN = "e2e-secret-token"


def go_prs(story, name: str) -> int:
    return sum(
        1
        for repo, prs in story
        if repo.full_name == name
        for pr in prs
        if any(f.path.endswith(".go") for f in pr.files)
    )


def wait_for_fetch(page) -> FetchJob:
    page.wait_for_url(re.compile(r"/corpus/fetches/\d+/$"))
    expect(page.locator("#job-status")).to_have_text("finished", timeout=120_000)
    return FetchJob.objects.get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1]))


def test_add_one_a_list_and_a_search_result_then_fetch(operator_page, live_stack):
    page, url = operator_page, live_stack.url
    story = sample_story()
    with GitHubShapedServer(story, token=TOKEN) as server:
        page.goto(url + "/corpus/add/")
        page.fill("#id_api_url", server.base_url)
        page.fill("#id_token", TOKEN)
        with page.expect_navigation():
            page.click("#settings button[type=submit]")
        expect(page.locator("#settings")).to_contain_text("A token is set.")
        assert TOKEN not in page.content()  # stored server-side, never shown again

        # One repository, fetched at once; the job page follows the worker live.
        page.fill("#add-names textarea", "hrgc-samples/kvstore")
        page.click("#add-names button[type=submit]")
        job = wait_for_fetch(page)
        assert job.prs_new == go_prs(story, "hrgc-samples/kvstore") and job.api_requests > 0

        # A pasted list with a bad line is refused with the line named, and nothing is added.
        page.goto(url + "/corpus/add/")
        page.fill("#add-names textarea", "hrgc-samples/httprouter-lite\nnot a/valid/name")
        page.click("#add-names button[type=submit]")
        expect(page.locator("#add-names")).to_contain_text("line 2")
        assert not Repository.objects.filter(full_name="hrgc-samples/httprouter-lite").exists()
        page.fill("#add-names textarea", "hrgc-samples/httprouter-lite\nhrgc-samples/missing-one")
        page.click("#add-names button[type=submit]")
        job = wait_for_fetch(page)
        assert Repository.objects.get(full_name="hrgc-samples/missing-one").state == "missing"
        expect(page.locator("body")).to_contain_text("hrgc-samples/missing-one")

        # A search result added in bulk.
        page.goto(url + "/corpus/add/?q=csv")
        expect(page.locator("#add-selected")).to_contain_text("hrgc-samples/csvtool")
        page.click("#add-selected button[type=submit]")
        wait_for_fetch(page)

    for repo, _ in story:
        stored = PullRequest.objects.filter(repository__full_name=repo.full_name).count()
        assert stored == go_prs(story, repo.full_name), repo.full_name
    page.goto(url + "/corpus/")
    expect(page.locator("#repositories")).to_contain_text("hrgc-samples/csvtool")
