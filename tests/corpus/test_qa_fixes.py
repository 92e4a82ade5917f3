"""Defects from the QA walk of the corpus pages, each pinned by a test that failed before its fix."""

from __future__ import annotations

import dataclasses
import socket
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from corpus.forms import CurationForm, GitImportForm, RepositoryNamesForm
from corpus.github.client import GitHubClient
from corpus.github.server import GitHubShapedServer
from corpus.models import (
    CurationEvent,
    FetchJob,
    PullRequest,
    Repository,
    Snapshot,
    Source,
)
from corpus.plans import extract_plan
from corpus.records import FileRecord, PRRecord
from corpus.sample.build_git import build_sample_repos
from corpus.sample.story import sample_story
from corpus.services import curation, fetch_jobs, ingest
from hrgc_site.jobs import claim, finish
from hrgc_site.models import JobStatus
from tests.static_files import page_script

GO_BEFORE = "package web\n\nfunc handle() int {\n\treturn 1\n}\n"


def _run(job: FetchJob, **options) -> tuple[FetchJob, str, str]:
    job = claim(FetchJob, job.pk)
    status, message = fetch_jobs.run_fetch(job, **options)
    finish(job, status, message)  # as run_job does
    job.refresh_from_db()
    return job, status, message


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def _story_pull(repo: str, number: int) -> PRRecord:
    for record, pulls in sample_story():
        if record.full_name == repo:
            return next(p for p in pulls if p.number == number)
    raise KeyError(repo)


def _as_git_import(pr: PRRecord) -> PRRecord:
    """What a git import sees of a PR: no labels, no discussion."""
    return dataclasses.replace(pr, labels=[], comments=[])


# --- 1. the sample import carries the story's labels and comments ----------------------------


@pytest.mark.django_db
def test_sample_import_attaches_labels_and_comments_but_a_plain_clone_import_does_not(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    clones = build_sample_repos(tmp_path / "sample-repos")
    plain = fetch_jobs.create_fetch_job(kind=Source.GIT, targets=[str(clones[0])], enqueue=False)
    _, status, message = _run(plain)
    assert status == JobStatus.FINISHED, message
    assert not PullRequest.objects.exclude(labels=[]).exists()
    assert not PullRequest.objects.filter(comment_count__gt=0).exists()

    sample = fetch_jobs.create_fetch_job(kind=Source.GIT, targets=[], build_sample=True, enqueue=False)
    job, status, message = _run(sample)
    assert status == JobStatus.FINISHED, message
    assert not job.errors
    story = _story_pull("hrgc-samples/kvstore", 2)
    pr = PullRequest.objects.get(repository__full_name="hrgc-samples/kvstore", number=2)
    assert pr.labels == story.labels == ["bug"]
    # The PRs the plain import stored first get their discussion too.
    assert pr.comments.count() == pr.comment_count == len(story.comments) > 0
    assert {c.body for c in pr.comments.all()} == {c.body for c in story.comments}
    with_comments = PullRequest.objects.filter(comment_count__gt=0).count()
    assert with_comments >= PullRequest.objects.count() // 2
    # Labels count towards the intent: every labelled sample PR has one.
    assert not PullRequest.objects.exclude(labels=[]).filter(intent="").exists()
    assert PullRequest.objects.filter(intent="OPTIMIZE").count() >= 5


# --- 2. intent patterns ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("repo", "number", "intent"),
    [
        ("hrgc-samples/csvtool", 16, "OPTIMIZE"),  # Preallocate column picks in select
        ("hrgc-samples/csvtool", 6, "OPTIMIZE"),  # Reuse record buffers while reading
        ("hrgc-samples/httprouter-lite", 8, "OPTIMIZE"),  # Skip the context allocation for routes without parameters
        ("hrgc-samples/kvstore", 16, "OPTIMIZE"),  # Preallocate the key slice in Keys
        ("hrgc-samples/kvstore", 5, "OPTIMIZE"),  # Use RWMutex ...; the body shows ns/op before and after
        ("hrgc-samples/kvstore", 6, "FIX"),  # Copy values in Get and Set to prevent data races
    ],
)
def test_sample_titles_give_their_intent_without_labels(repo, number, intent):
    assert extract_plan(_as_git_import(_story_pull(repo, number))).intent == intent


@pytest.mark.parametrize(
    "title",
    [
        "Avoid allocations in the hot path",
        "Reduce allocations when parsing headers",
        "Make Join faster",
        "Pre-allocate the output buffer",
        "Buffer reuse for the encoder",
        "Reuse byte buffers in the writer",
    ],
)
def test_optimisation_phrases(title):
    assert extract_plan(PRRecord("a/b", 1, title)).intent == "OPTIMIZE"


@pytest.mark.parametrize("title", ["Guard against data races in the cache", "Fix race conditions on close"])
def test_race_phrases_give_fix(title):
    assert extract_plan(PRRecord("a/b", 1, title)).intent == "FIX"


@pytest.mark.parametrize(
    ("title", "labels"),
    [
        ("Reuse the parser in Load", []),  # reusing code is not an optimisation by itself
        ("Skip expired keys in Len and Keys", []),  # no evidence either way
        ("Update Keys", ["bug", "performance"]),  # a tie stays a tie
    ],
)
def test_no_intent_without_evidence_or_on_a_tie(title, labels):
    assert extract_plan(PRRecord("a/b", 1, title, labels=labels)).intent is None


def test_fewer_sample_prs_lack_an_intent_without_labels():
    plans = [extract_plan(_as_git_import(p)) for _, pulls in sample_story() for p in pulls]
    assert sum(plan.intent is None for plan in plans) <= 8  # was 13
    assert sum(plan.intent == "OPTIMIZE" for plan in plans) >= 5


# --- 3. git import of something that is not a clone ------------------------------------------


@pytest.mark.django_db
def test_git_import_form_refuses_a_path_that_is_not_a_clone(tmp_path, settings):
    # Every refusal reads the same (issue 14, item 6): the form does not tell which paths exist.
    from corpus.forms import import_path_error

    settings.HRGC_IMPORT_ROOT = tmp_path
    (tmp_path / "plain").mkdir()
    missing = GitImportForm({"path": str(tmp_path / "nope")})
    assert not missing.is_valid() and missing.errors["path"] == [import_path_error()]
    plain = GitImportForm({"path": str(tmp_path / "plain")})
    assert not plain.is_valid() and plain.errors["path"] == [import_path_error()]
    clone = build_sample_repos(tmp_path / "clones")[0]
    (clone / "sub").mkdir()
    inside = GitImportForm({"path": str(clone / "sub")})
    assert not inside.is_valid() and inside.errors["path"] == [import_path_error()]
    good = GitImportForm({"path": str(clone)})
    assert good.is_valid(), good.errors


@pytest.mark.django_db
def test_import_view_queues_nothing_for_a_folder_that_is_not_a_clone(operator_client, tmp_path, settings):
    from corpus.forms import import_path_error

    settings.HRGC_IMPORT_ROOT = tmp_path.parent
    response = operator_client.post(reverse("corpus:import_git"), {"path": str(tmp_path)}, follow=True)
    assert not FetchJob.objects.exists()
    assert _messages(response) == [import_path_error()]


@pytest.mark.django_db
def test_a_git_import_whose_every_target_failed_ends_failed(tmp_path):
    job = fetch_jobs.create_fetch_job(kind=Source.GIT, targets=[str(tmp_path)], enqueue=False)
    job, status, message = _run(job)
    assert status == job.status == JobStatus.FAILED
    assert "every repository failed" in message and str(tmp_path) in job.errors


# --- 4. a GitHub fetch without network -------------------------------------------------------


def _quick_client(base_url: str) -> GitHubClient:
    return GitHubClient(base_url, None, max_retries=2, backoff_base=0.001, sleep=lambda seconds: None, timeout=5)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends: nothing listens there


@pytest.mark.django_db
def test_fetch_with_the_api_unreachable_records_each_repository_and_fails():
    base = f"http://127.0.0.1:{_closed_port()}"
    job = fetch_jobs.create_fetch_job(kind=Source.GITHUB, targets=["acme/one", "acme/two"], enqueue=False)
    job, status, message = _run(job, client=_quick_client(base))
    assert status == job.status == JobStatus.FAILED
    assert "Traceback" not in message and "\n" not in message and message.startswith("every repository failed")
    assert set(job.errors) == {"acme/one", "acme/two"}
    for error in job.errors.values():
        assert "gave up after 2 retries" in error and "connection error" in error and base in error
        assert "\n" not in error
    assert job.api_requests == 9  # 3 attempts at the crawl's GraphQL probe of both, then 3 per repository
    assert Repository.objects.get(full_name="acme/one").state == Repository.State.ERROR


@pytest.mark.django_db
@pytest.mark.parametrize("method, errors", [("rest", 3), ("graphql", 6)])
def test_a_repository_whose_requests_keep_failing_does_not_stop_the_others(settings, method, errors):
    settings.GITHUB_FETCH_METHOD = method
    story = sample_story()
    with GitHubShapedServer(story) as server:
        # The first repository's 3 attempts (through GraphQL, after the 3 of the crawl's probe of both).
        server.faults.update({"server_errors": errors})
        targets = ["hrgc-samples/kvstore", "hrgc-samples/csvtool"]
        job = fetch_jobs.create_fetch_job(kind=Source.GITHUB, targets=targets, enqueue=False)
        job, status, message = _run(job, client=_quick_client(server.base_url))
    assert status == JobStatus.FINISHED, message
    assert list(job.errors) == ["hrgc-samples/kvstore"] and "server error" in job.errors["hrgc-samples/kvstore"]
    assert PullRequest.objects.filter(repository__full_name="hrgc-samples/csvtool").exists()
    assert not PullRequest.objects.filter(repository__full_name="hrgc-samples/kvstore").exists()
    assert job.repos_done == 2 and job.api_requests >= 3 + PullRequest.objects.count()


# --- 5. job pages show a traceback folded away -----------------------------------------------

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


# --- fixtures for the page tests ---------------------------------------------------------------


def _pr(number: int, title: str) -> PRRecord:
    after = GO_BEFORE.replace("return 1", f"return {number + 1}")
    return PRRecord(
        "acme/web",
        number,
        title,
        author="ana",
        merged_at=datetime(2024, 3, number, tzinfo=UTC),
        files=[
            FileRecord(
                "web/handler.go",
                additions=3,
                deletions=2,
                before=GO_BEFORE,
                after=after,
                patch="@@ -3,3 +3,3 @@\n func handle() int {\n-\treturn 1\n+\treturn 2\n }",
            )
        ],
    )


@pytest.fixture
def corpus(db):
    web = Repository.objects.create(full_name="acme/web", license_spdx="MIT")
    for number, title in [(1, "Fix the handler crash"), (2, "Add rate limiting middleware")]:
        ingest.store_pull_request(repository=web, record=_pr(number, title))
    return PullRequest.objects.order_by("number")


# --- 6. input lengths ------------------------------------------------------------------------


def test_search_and_reason_inputs_have_a_maxlength(operator_client, corpus):
    page = operator_client.get(reverse("corpus:pullrequests")).content.decode()
    assert 'name="q"' in page and 'maxlength="300"' in page
    assert 'id="bulk-reason" placeholder="required to exclude" size="30" maxlength="500"' in page


def test_a_too_long_reason_gets_only_the_length_error(operator_client, corpus):
    form = CurationForm({"action": "exclude", "reason": "x" * 5000})
    assert not form.is_valid()
    errors = [e for errors in form.errors.values() for e in errors]
    assert len(errors) == 1 and "at most 500" in errors[0]
    response = operator_client.post(
        reverse("corpus:pullrequests_curate"),
        {"action": "exclude", "reason": "x" * 5000, "ids": [corpus[0].pk]},
        follow=True,
    )
    shown = " ".join(_messages(response))
    assert "at most 500" in shown and "Give a reason" not in shown


# --- 7. small UX -------------------------------------------------------------------------------


def test_messages_and_counts_are_pluralized(operator_client, corpus):
    response = operator_client.post(
        reverse("corpus:pullrequests_curate"),
        {"action": "exclude", "reason": "meh", "ids": [corpus[0].pk]},
        follow=True,
    )
    assert "1 pull request excluded." in _messages(response)[0]
    response = operator_client.post(reverse("corpus:add_names"), {"names": "acme/solo"}, follow=True)
    assert _messages(response) == ["Added 1 repository."]
    page = operator_client.get(corpus[1].get_absolute_url()).content.decode()
    assert "in 1 file, 0 comments" in page


def test_apply_with_no_rows_ticked_says_what_to_do(operator_client, corpus):
    response = operator_client.post(
        reverse("corpus:pullrequests_curate"), {"action": "exclude", "reason": "x"}, follow=True
    )
    assert _messages(response) == ["Tick some rows, or choose everything matching this filter."]
    assert not CurationEvent.objects.exists()


def test_including_included_rows_records_no_event(operator_client, corpus):
    ids = [pr.pk for pr in corpus]
    assert curation.curate_pull_requests(pull_requests=corpus, action="include") is None
    response = operator_client.post(
        reverse("corpus:pullrequests_curate"), {"action": "include", "ids": ids}, follow=True
    )
    assert not CurationEvent.objects.exists() and "already included" in _messages(response)[0]
    # Only the rows that change are in an event (and in its undo).
    curation.curate_pull_requests(pull_requests=corpus.filter(number=1), action="exclude", reason="meh")
    event = curation.curate_pull_requests(pull_requests=corpus, action="include")
    assert event.count == 1 and list(event.previous) == [str(corpus[0].pk)]


def test_a_bad_pasted_line_gives_one_error():
    form = RepositoryNamesForm({"names": "not a repo\nacme/ok\nbad"})
    assert not form.is_valid()
    assert [e.split(":")[0] for e in form.errors["names"]] == ["line 1", "line 3"]


def test_empty_filter_fields_are_dropped_from_the_url(viewer_client, corpus):
    url = reverse("corpus:pullrequests")
    response = viewer_client.get(url, {"q": "crash", "repo": "", "license": "", "intent": "", "min_chars": ""})
    assert response.status_code == 302 and response.url == f"{url}?q=crash"
    response = viewer_client.get(url, {"repo": "", "intent": ""})
    assert response.status_code == 302 and response.url == url
    assert viewer_client.get(url, {"q": "crash"}).status_code == 200


def test_curation_scope_and_snapshot_filter_read_decoded(operator_client, corpus):
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


def test_a_rejected_snapshot_form_keeps_what_was_typed(operator_client, corpus):
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


def test_stats_charts_show_whole_repository_names_and_integer_counts(viewer_client, corpus):
    page = viewer_client.get(reverse("corpus:stats")).content.decode()
    script = page_script(page, "js/corpus_stats.js")
    assert 'orientation: "h"' in script and "automargin: true" in script
    assert 'tickformat: ",d"' in script and "yaxis: counts(s.length.counts)" in script
