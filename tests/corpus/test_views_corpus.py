"""Corpus pages: filters, search, sorting, detail, curation, settings, and that viewers cannot write."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from corpus.forms import CurationForm
from corpus.models import (
    CurationEvent,
    FetchJob,
    GitHubSettings,
    PullRequest,
    Repository,
    Snapshot,
)
from corpus.services import curation, fetch_jobs, ingest
from tests.corpus.support import flashed, handler_pr
from tests.static_files import page_script

pytestmark = pytest.mark.django_db


def _titles(response) -> list[str]:
    return [pr.title for pr in response.context["object_list"]]


def test_filters_search_and_sorting(viewer_client, corpus):
    url = reverse("corpus:pullrequests")
    assert _titles(viewer_client.get(url)) == ["Broken code", "Add rate limiting middleware", "Fix the handler crash"]
    assert _titles(viewer_client.get(url, {"sort": "number"}))[0] == "Fix the handler crash"
    assert _titles(viewer_client.get(url, {"q": "crash"})) == ["Fix the handler crash"]
    assert _titles(viewer_client.get(url, {"q": "panicked"})) == ["Fix the handler crash"]
    assert len(_titles(viewer_client.get(url, {"q": "handler.go"}))) == 3
    assert _titles(viewer_client.get(url, {"repo": "acme/cli"})) == ["Broken code"]
    assert _titles(viewer_client.get(url, {"license": "MIT", "syntax": "ok"})) == [
        "Add rate limiting middleware",
        "Fix the handler crash",
    ]
    assert _titles(viewer_client.get(url, {"syntax": "error"})) == ["Broken code"]
    assert _titles(viewer_client.get(url, {"merged_from": "2024-03-02", "merged_to": "2024-03-06"})) == [
        "Add rate limiting middleware"
    ]
    fix = corpus.get(number=1)
    assert fix.intent == "FIX"
    assert "Fix the handler crash" in _titles(viewer_client.get(url, {"intent": "FIX"}))
    none = viewer_client.get(url, {"intent": "none"})
    assert all(not pr.intent for pr in none.context["object_list"])
    big = viewer_client.get(url, {"min_chars": 10**7, "category": "CODE"})
    assert _titles(big) == [] and b"No pull request matches" in big.content
    assert viewer_client.get(url, {"min_chars": "abc", "merged_from": "nope"}).status_code == 200


def test_pull_request_page_shows_diff_plan_comments_and_training_text(viewer_client, corpus):
    pr = corpus.get(number=1)
    page = viewer_client.get(pr.get_absolute_url()).content.decode()
    assert '<div class="add">+\treturn 2</div>' in page and '<div class="hunk">@@ -3,3 +3,3 @@' in page
    assert "Why two?" in page and "web/handler.go:4" in page
    assert "&lt;INTENT:FIX&gt;" in page  # the plan
    # The training text is folded and loaded on demand from its own URL: the page itself stays small.
    assert 'id="training-text-box"' in page and "&lt;SYNTAX_OK&gt;" not in page
    text = viewer_client.get(reverse("corpus:pullrequest_training_text", args=[pr.pk])).content.decode()
    assert 'class="sec-plan"' in text and 'class="sec-code"' in text and "&lt;SYNTAX_OK&gt; true" in text
    assert "<html" not in text  # a fragment, not a page
    broken = viewer_client.get(corpus.get(number=3).get_absolute_url()).content.decode()
    assert "web/handler.go:" in broken and 'id="syntax-errors"><li class="bad small">' in broken


def test_bulk_exclude_with_reason_then_undo(operator_client, corpus):
    url = reverse("corpus:pullrequests_curate")
    missing = operator_client.post(url, {"action": "exclude", "reason": "", "ids": [corpus[0].pk]})
    assert missing.status_code == 302 and PullRequest.objects.filter(included=False).count() == 0
    operator_client.post(
        url, {"action": "exclude", "reason": "toy change", "all_matching": "1", "filter_query": "repo=acme%2Fweb"}
    )
    assert set(PullRequest.objects.filter(included=False).values_list("number", flat=True)) == {1, 2}
    event = CurationEvent.objects.get()
    assert event.scope == "filter: repo=acme%2Fweb" and event.user.username == "otto"
    history = operator_client.get(reverse("corpus:curation")).content.decode()
    assert "toy change" in history and "Undo" in history
    operator_client.post(reverse("corpus:curation_undo", args=[event.pk]))
    assert PullRequest.objects.filter(included=False).count() == 0
    operator_client.post(
        reverse("corpus:pullrequest_curate", args=[corpus[2].pk]), {"action": "exclude", "reason": "broken"}
    )
    assert PullRequest.objects.get(number=3).excluded_reason == "broken"


def test_viewers_get_403_on_every_post(viewer_client, corpus):
    pr, repo = corpus[0], corpus[0].repository
    job = FetchJob.objects.create(targets=["acme/web"])
    event = curation.curate_pull_requests(pull_requests=PullRequest.objects.all(), action="exclude", reason="x")
    posts = [
        reverse("corpus:add_names"),
        reverse("corpus:add_selected"),
        reverse("corpus:import_git"),
        reverse("corpus:import_sample"),
        reverse("corpus:settings"),
        reverse("corpus:pullrequests_curate"),
        reverse("corpus:pullrequest_curate", args=[pr.pk]),
        reverse("corpus:curation_undo", args=[event.pk]),
        reverse("corpus:repository_fetch", args=[repo.pk]),
        reverse("corpus:repository_curate", args=[repo.pk]),
        reverse("corpus:fetchjob_cancel", args=[job.pk]),
        reverse("corpus:fetchjob_retry", args=[job.pk]),
        reverse("corpus:snapshot_create"),
    ]
    for url in posts:
        assert viewer_client.post(url, {"action": "exclude", "reason": "x", "names": "a/b"}).status_code == 403, url
    assert "Operators only" in viewer_client.get(reverse("corpus:add")).content.decode()
    assert FetchJob.objects.count() == 1 and Snapshot.objects.count() == 0


def test_posts_need_a_csrf_token(operator_user, corpus):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator_user)
    response = client.post(reverse("corpus:import_sample"))
    assert response.status_code == 403 and FetchJob.objects.count() == 0


def test_add_names_validates_each_line_and_queues_a_fetch(operator_client):
    bad = operator_client.post(reverse("corpus:add_names"), {"names": "acme/web\nnot a repo!\n", "fetch_now": "on"})
    assert bad.status_code == 400 and "line 2:" in bad.content.decode() and Repository.objects.count() == 0
    ok = operator_client.post(
        reverse("corpus:add_names"), {"names": "acme/web\nhttps://github.com/acme/cli, acme/web", "fetch_now": "on"}
    )
    job = FetchJob.objects.get()
    assert ok.status_code == 302 and ok.url == job.get_absolute_url()
    assert job.targets == ["acme/web", "acme/cli"] and Repository.objects.count() == 2


def test_settings_token_is_write_only(operator_client):
    operator_client.post(
        reverse("corpus:settings"),
        {
            "api_url": "http://127.0.0.1:9/",
            "token": "s3cr3t-token",
            "allowed_licenses": "MIT, Apache-2.0",
            "go_only": "on",
        },
    )
    row = GitHubSettings.load()
    assert row.token == "s3cr3t-token" and row.allowed_licenses == "MIT,Apache-2.0"
    page = operator_client.get(reverse("corpus:add")).content.decode()
    assert "s3cr3t-token" not in page and "A token is set." in page
    operator_client.post(
        reverse("corpus:settings"), {"api_url": "http://127.0.0.1:9", "token": "", "allowed_licenses": "MIT"}
    )
    assert GitHubSettings.load().token == "s3cr3t-token"  # a blank token keeps the stored one
    # A new API URL does not inherit it: the token was entered for the old one.
    response = operator_client.post(
        reverse("corpus:settings"), {"api_url": "", "token": "", "allowed_licenses": "MIT"}, follow=True
    )
    assert GitHubSettings.load().token == "" and "The stored token was removed" in response.content.decode()


def test_fetch_job_progress_card_and_cancel(operator_client):
    from django.utils import timezone

    job = FetchJob.objects.create(
        targets=["acme/web"],
        status="running",
        prs_new=4,
        errors={"a/b": "not found"},
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
    )
    card = operator_client.get(reverse("corpus:fetchjob_progress", args=[job.pk])).content.decode()
    assert '<span id="c-prs_new">4</span>' in card and "<tr><td>a/b</td><td>not found</td></tr>" in card
    assert 'id="job-status">running<' in card and 'id="job-dead"' not in card
    operator_client.post(reverse("corpus:fetchjob_cancel", args=[job.pk]))
    job.refresh_from_db()
    assert job.cancel_requested and job.status == "stopping"


def test_stats_and_snapshot_pages(operator_client, corpus):
    stats = operator_client.get(reverse("corpus:stats"))
    assert stats.context["stats"]["totals"]["prs"] == 3
    assert stats.context["stats"]["repos"]["labels"] == ["acme/web", "acme/cli"]
    assert sum(stats.context["stats"]["length"]["counts"]) == 3 and b"plotly.min.js" in stats.content
    response = operator_client.post(
        reverse("corpus:snapshot_create"), {"name": "web-only", "use_filter": "on", "filter_query": "repo=acme%2Fweb"}
    )
    snapshot = Snapshot.objects.get()
    assert response.url == snapshot.get_absolute_url() and snapshot.filter == {"repo": "acme/web"}
    again = operator_client.post(reverse("corpus:snapshot_create"), {"name": "web-only"})
    assert again.status_code == 400 and Snapshot.objects.count() == 1
    assert "exists already" in again.content.decode()


def test_cancel_reaches_a_job_a_worker_claimed_after_the_page_was_read(operator_client):
    job = FetchJob.objects.create(targets=["acme/web"], status="queued")
    stale = FetchJob.objects.get(pk=job.pk)
    FetchJob.objects.filter(pk=job.pk).update(status="running")  # a worker claims it meanwhile
    fetch_jobs.cancel_job(job=stale)
    job.refresh_from_db()
    assert job.cancel_requested and job.status == "stopping"


def test_retry_is_refused_while_the_job_still_runs(operator_client):
    job = FetchJob.objects.create(targets=["acme/web"], status="running", heartbeat_at=timezone.now())
    response = operator_client.post(reverse("corpus:fetchjob_retry", args=[job.pk]), follow=True)
    assert FetchJob.objects.count() == 1 and "wait until it ends" in response.content.decode()
    FetchJob.objects.filter(pk=job.pk).update(status="failed")
    operator_client.post(reverse("corpus:fetchjob_retry", args=[job.pk]))
    assert FetchJob.objects.filter(retry_of=job).count() == 1


def test_pull_request_page_lists_curation_events_without_loading_their_previous_states(viewer_client, corpus):
    pr = corpus[0]
    curation.curate_pull_requests(pull_requests=PullRequest.objects.all(), action="exclude", reason="bulk")
    events = viewer_client.get(pr.get_absolute_url()).context["events"]
    assert [e.reason for e in events] == ["bulk"] and "previous" in events[0].get_deferred_fields()


@pytest.mark.django_db
def test_import_view_queues_nothing_for_a_folder_that_is_not_a_clone(operator_client, tmp_path, settings):
    from corpus.forms import import_path_error

    settings.HRGC_IMPORT_ROOT = tmp_path.parent
    response = operator_client.post(reverse("corpus:import_git"), {"path": str(tmp_path)}, follow=True)
    assert not FetchJob.objects.exists()
    assert flashed(response) == [import_path_error()]


TRACEBACK_MESSAGE = (
    "RuntimeError: boom\n\nTraceback (most recent call last):\n"
    '  File "corpus/services.py", line 1, in run\nRuntimeError: boom'
)


@pytest.mark.django_db
def test_fetch_job_page_shows_the_first_line_and_folds_the_traceback(viewer_client):
    job = FetchJob.objects.create(targets=["acme/web"], status="failed", message=TRACEBACK_MESSAGE)
    page = viewer_client.get(job.get_absolute_url()).content.decode()
    assert '<p id="job-message" class="bad">RuntimeError: boom</p>' in page
    assert "<details" in page and page.index("Traceback") > page.index("<details")


@pytest.mark.django_db
def test_snapshot_page_shows_the_first_line_and_folds_the_traceback(viewer_client):
    snapshot = Snapshot.objects.create(name="s1", status="failed", message=TRACEBACK_MESSAGE)
    page = viewer_client.get(snapshot.get_absolute_url()).content.decode()
    assert '<p id="snap-message" class="bad">RuntimeError: boom</p>' in page
    assert '<details id="snap-traceback"' in page
    assert page.index("Traceback") > page.index("<details")


@pytest.fixture
def two_prs(db):
    """Two stored PRs of acme/web."""
    web = Repository.objects.create(full_name="acme/web", license_spdx="MIT")
    for number, title in [(1, "Fix the handler crash"), (2, "Add rate limiting middleware")]:
        ingest.store_pull_request(repository=web, record=handler_pr(number, title))
    return PullRequest.objects.order_by("number")


def test_search_and_reason_inputs_have_a_maxlength(operator_client, two_prs):
    page = operator_client.get(reverse("corpus:pullrequests")).content.decode()
    assert 'name="q"' in page and 'maxlength="300"' in page
    assert 'id="bulk-reason" placeholder="required to exclude" size="30" maxlength="500"' in page


def test_a_too_long_reason_gets_only_the_length_error(operator_client, two_prs):
    form = CurationForm({"action": "exclude", "reason": "x" * 5000})
    assert not form.is_valid()
    errors = [e for errors in form.errors.values() for e in errors]
    assert len(errors) == 1 and "at most 500" in errors[0]
    response = operator_client.post(
        reverse("corpus:pullrequests_curate"),
        {"action": "exclude", "reason": "x" * 5000, "ids": [two_prs[0].pk]},
        follow=True,
    )
    shown = " ".join(flashed(response))
    assert "at most 500" in shown and "Give a reason" not in shown


def test_messages_and_counts_are_pluralized(operator_client, two_prs):
    response = operator_client.post(
        reverse("corpus:pullrequests_curate"),
        {"action": "exclude", "reason": "meh", "ids": [two_prs[0].pk]},
        follow=True,
    )
    assert "1 pull request excluded." in flashed(response)[0]
    response = operator_client.post(reverse("corpus:add_names"), {"names": "acme/solo"}, follow=True)
    assert flashed(response) == ["Added 1 repository."]
    page = operator_client.get(two_prs[1].get_absolute_url()).content.decode()
    assert "in 1 file, 0 comments" in page


def test_apply_with_no_rows_ticked_says_what_to_do(operator_client, two_prs):
    response = operator_client.post(
        reverse("corpus:pullrequests_curate"), {"action": "exclude", "reason": "x"}, follow=True
    )
    assert flashed(response) == ["Tick some rows, or choose everything matching this filter."]
    assert not CurationEvent.objects.exists()


def test_including_included_rows_records_no_event(operator_client, two_prs):
    ids = [pr.pk for pr in two_prs]
    assert curation.curate_pull_requests(pull_requests=two_prs, action="include") is None
    response = operator_client.post(
        reverse("corpus:pullrequests_curate"), {"action": "include", "ids": ids}, follow=True
    )
    assert not CurationEvent.objects.exists() and "already included" in flashed(response)[0]
    # Only the rows that change are in an event (and in its undo).
    curation.curate_pull_requests(pull_requests=two_prs.filter(number=1), action="exclude", reason="meh")
    event = curation.curate_pull_requests(pull_requests=two_prs, action="include")
    assert event.count == 1 and list(event.previous) == [str(two_prs[0].pk)]


def test_empty_filter_fields_are_dropped_from_the_url(viewer_client, two_prs):
    url = reverse("corpus:pullrequests")
    response = viewer_client.get(url, {"q": "crash", "repo": "", "license": "", "intent": "", "min_chars": ""})
    assert response.status_code == 302 and response.url == f"{url}?q=crash"
    response = viewer_client.get(url, {"repo": "", "intent": ""})
    assert response.status_code == 302 and response.url == url
    assert viewer_client.get(url, {"q": "crash"}).status_code == 200


def test_curation_scope_and_snapshot_filter_read_decoded(operator_client, two_prs):
    query = "q=handler+crash&repo=acme%2Fweb"
    operator_client.post(
        reverse("corpus:pullrequests_curate"),
        {"action": "exclude", "reason": "meh", "all_matching": "1", "filter_query": query},
    )
    page = operator_client.get(reverse("corpus:curation")).content.decode()
    assert "filter: search “handler crash”, repository acme/web" in page and "acme%2Fweb" not in page
    snapshot = Snapshot.objects.create(name="web", filter={"repo": "acme/web", "q": "handler"})
    page = operator_client.get(snapshot.get_absolute_url()).content.decode()
    assert "search “handler”, repository acme/web</a>" in page


def test_a_finished_job_offers_fetch_again_and_a_failed_one_retry(operator_client):
    finished = FetchJob.objects.create(targets=["acme/web"], status="finished", message="done")
    failed = FetchJob.objects.create(targets=["acme/web"], status="failed", message="broke")
    page = operator_client.get(finished.get_absolute_url()).content.decode()
    assert 'id="retry">Fetch again</button>' in page
    page = operator_client.get(failed.get_absolute_url()).content.decode()
    assert 'id="retry">Retry</button>' in page


def test_a_rejected_snapshot_form_keeps_what_was_typed(operator_client, two_prs):
    Snapshot.objects.create(name="taken")
    response = operator_client.post(
        reverse("corpus:snapshot_create"),
        {"name": "taken", "description": "my notes", "use_filter": "on", "filter_query": "repo=acme%2Fweb"},
    )
    page = response.content.decode()
    assert response.status_code == 400 and "exists already" in page
    assert 'value="taken"' in page and "my notes" in page and "only PRs matching repository acme/web" in page
    response = operator_client.post(reverse("corpus:snapshot_create"), {"name": "bad name!"})
    assert response.status_code == 400 and 'value="bad name!"' in response.content.decode()
    assert Snapshot.objects.count() == 1


def test_stats_charts_show_whole_repository_names_and_integer_counts(viewer_client, two_prs):
    page = viewer_client.get(reverse("corpus:stats")).content.decode()
    script = page_script(page, "js/corpus_stats.js")
    assert 'orientation: "h"' in script and "automargin: true" in script
    assert 'tickformat: ",d"' in script and "yaxis: counts(s.length.counts)" in script


def test_exclusion_reasons_count_every_duplicate_kind_as_one_bar(db):
    from corpus.models import PullRequest, Repository
    from corpus.selectors import exclusion_reasons

    repository = Repository.objects.create(full_name="acme/store")
    reasons = ["near duplicate of acme/store#1", "near duplicate of acme/store#2", "exact duplicate of acme/store#3"]
    reasons += ["quality: no Go changes", "quality: no Go changes"]
    for number, reason in enumerate(reasons, start=10):
        PullRequest.objects.create(repository=repository, number=number, included=False, excluded_reason=reason)
    assert exclusion_reasons() == {
        "labels": ["near duplicate", "quality: no Go changes", "exact duplicate"],
        "values": [2, 2, 1],
    }
