"""What a first-time user tripped over (issue 17), walked in real Chromium against gunicorn and the workers: run-form
errors beside their fields, overfitting and the best checkpoint, chart settings in the URL, PR links and folded
training text, search and filters, messages, curation history, statistics, downloads, playground, System page, the
encode limit, and the PR list and run page at 800 px."""

from __future__ import annotations

import math
import re

import pytest
from playwright.sync_api import expect

from corpus.models import FetchJob, PullRequest, Repository
from corpus.records import FileRecord, PRRecord
from corpus.services import curation, ingest
from tests.factories import OVERFIT_EVALS, OVERFIT_TRAIN, add_curve, make_export_with_file, make_lineage
from tests.training.support import make_dataset
from training.hrm.config import preset
from training.models import TrainingRun

pytestmark = pytest.mark.e2e

RED = "rgb(179, 38, 30)"  # --bad
GO = "package web\n\nfunc handle() int {\n\treturn 1\n}\n"


def _run(dataset, name: str, family: str) -> TrainingRun:
    config = preset(family, "tiny", vocab_size=700).to_dict()
    return TrainingRun.objects.create(
        name=name, dataset=dataset, family=family, preset="tiny", status="finished", config=config, max_steps=2000
    )


def _pr(number: int, title: str, *, go: bool = True, source_url: str = "") -> PRRecord:
    after = GO.replace("return 1", f"return {number + 1}")
    path = "web/handler.go" if go else "docs/notes.md"
    return PRRecord(
        "acme/web",
        number,
        title,
        body="It panicked when the config was empty.",
        author="ana",
        files=[FileRecord(path, additions=1, deletions=1, before=GO, after=after, patch="@@ -1 +1 @@\n-a\n+b")],
        source_url=source_url,
    )


def _no_page_scroll(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def test_training_workflow(operator_page, live_stack, dataset_files):
    page, url = operator_page, live_stack.url
    dataset = make_dataset(dataset_files, name="first-ds")
    overfit = add_curve(
        _run(dataset, "overfit-gpt", "gpt"), train=OVERFIT_TRAIN, evals=OVERFIT_EVALS, checkpoints=[100, 250, 2000]
    )
    healthy_train = [(step, 3.0 * math.exp(-step / 300) + 0.2) for step in range(10, 2001, 10)]
    healthy = add_curve(
        _run(dataset, "healthy-hrm", "hrm"), train=healthy_train, evals=[(s, v + 0.1) for s, v in healthy_train[::20]]
    )

    # The runs list: a smoothed loss, labelled so, and the overfitting run flagged.
    page.goto(url + "/runs/")
    expect(page.locator("#runs thead")).to_contain_text("smoothed")
    row = page.locator(f"tr[data-run='{overfit.pk}']")
    expect(row.locator(".overfit-badge")).to_have_text("overfitting")
    expect(page.locator(f"tr[data-run='{healthy.pk}'] .overfit-badge")).to_have_count(0)
    assert float(row.locator("td.num").nth(1).inner_text()) < 2.0  # not the 6.72 spike of the last step

    # "Compare selected" with nothing ticked: a message on the list, not a 404 page.
    page.click("#compare-button")
    expect(page.locator(".messages")).to_contain_text("Tick the runs to compare first")
    assert page.url.rstrip("/").endswith("/runs")

    # The run page says it is overfitting, and the export form picks the best checkpoint, showing each val loss.
    page.goto(url + overfit.get_absolute_url())
    expect(page.locator("#overfitting-notice")).to_contain_text("step 250")
    expect(page.locator("#export-step")).to_have_value("250")
    expect(page.locator("#export-step option[value='2000']")).to_contain_text("val loss 7.6200")
    expect(page.locator("#checkpoints tr.best")).to_contain_text("best")

    # Chart settings come from the URL and go back into it; log ticks below 1 read as numbers.
    page.goto(url + healthy.get_absolute_url() + "?log=1&x=tokens&smooth=0.8")
    expect(page.locator("#log-y")).to_be_checked()
    expect(page.locator("#x-axis")).to_have_value("tokens")
    expect(page.locator("#smoothing-value")).to_have_text("0.80")
    page.select_option("#x-axis", "elapsed")
    page.wait_for_url(re.compile(r"x=elapsed"))
    page.reload()
    expect(page.locator("#x-axis")).to_have_value("elapsed")
    page.wait_for_function("() => document.querySelectorAll('#chart-loss .ytick text').length > 2")
    ticks = page.evaluate("() => [...document.querySelectorAll('#chart-loss .ytick text')].map((t) => t.textContent)")
    assert any(tick.startswith("0.") for tick in ticks), ticks

    # The new-run form: five mistakes at once, each in red beside its own field (browser)...
    page.goto(url + "/runs/new/")
    page.select_option("#id_dataset", label="first-ds")
    mistakes = {
        "train__learning_rate": "-0.001",
        "model__dropout": "1.5",
        "train__batch_size": "-3",
        "train__max_steps": "0",
        "model__n_head": "5",
    }
    for field, value in mistakes.items():
        page.fill(f"#id_{field}", value)
    page.click("#start-run")
    expect(page.locator("#client-error-summary")).to_contain_text("5 fields need a change")
    for field in mistakes:
        error = page.locator(f"[data-setting={field}] ul.errorlist li")
        expect(error).to_be_visible()
        assert error.evaluate("el => getComputedStyle(el).color") == RED
    assert page.url.endswith("/runs/new/")
    # ... and on the server, when the browser's checks are bypassed.
    page.evaluate("document.getElementById('run-form').submit()")
    page.wait_for_load_state()
    expect(page.locator("#form-error-summary")).to_contain_text("5 fields need a change")
    expect(page.locator("[data-setting=train__learning_rate] ul.errorlist")).to_contain_text("positive")
    expect(page.locator("[data-setting=model__n_head] ul.errorlist")).to_contain_text("divisible by n_head")
    expect(page.locator("[data-setting=model__dropout] ul.errorlist")).to_contain_text("below 1")

    # The clone form of a gpt run hides the hrm-only settings; choosing hrm shows them.
    page.goto(url + f"/runs/new/?clone={overfit.pk}")
    expect(page.locator("[data-setting=model__h_cycles]")).to_be_hidden()
    expect(page.locator("[data-setting=train__planner_lr_multiplier]")).to_be_hidden()
    expect(page.locator("[data-setting=model__n_layer]")).to_be_visible()
    page.select_option("#id_family", "hrm")
    expect(page.locator("[data-setting=model__h_cycles]")).to_be_visible()


def test_corpus_pages(operator_page, live_stack):
    page, url = operator_page, live_stack.url
    repo = Repository.objects.create(full_name="acme/web", license_spdx="MIT")
    store = ingest.store_pull_request
    store(repository=repo, record=_pr(1, "Fix nil pointer in handler", source_url="https://github.com/acme/web/pull/1"))
    first = PullRequest.objects.get(number=1)
    store(repository=repo, record=_pr(2, "Guard the nil pointer dereference"))
    store(repository=repo, record=_pr(3, "Add rate limiting"))
    job = FetchJob.objects.create(kind="git", targets=["/srv/web"], status="finished")
    store(repository=repo, record=_pr(4, "Update the notes", go=False), fetch_job=job)
    assert not PullRequest.objects.get(number=4).included  # no Go change: the quality rules leave it out
    curation.record_automatic_exclusions(fetch_job=job)

    # Search: "nil-pointer" finds what "nil pointer" finds.
    page.goto(url + "/corpus/pulls/?q=nil+pointer")
    expect(page.locator("#pullrequests tbody tr")).to_have_count(2)
    page.goto(url + "/corpus/pulls/?q=nil-pointer")
    expect(page.locator("#pullrequests tbody tr")).to_have_count(2)

    # A minimum above the maximum, and a size that is not a number, say so beside their fields.
    page.goto(url + "/corpus/pulls/?min_chars=500&max_chars=100")
    problem = page.locator("#filter-problem-max_chars")
    expect(problem).to_contain_text("nothing can match")
    assert problem.evaluate("el => getComputedStyle(el).color") == RED
    page.goto(url + "/corpus/pulls/?min_chars=lots")
    expect(page.locator("#filter-problems")).to_contain_text("needs a whole number")

    # The PR page links to the real PR and keeps its training text folded until asked.
    page.goto(url + first.get_absolute_url())
    expect(page.locator("#pr-link")).to_have_attribute("href", "https://github.com/acme/web/pull/1")
    expect(page.locator("#training-text")).to_have_count(0)
    page.click("#training-text-box summary")
    expect(page.locator("#training-text")).to_contain_text("<PR_TITLE> Fix nil pointer in handler")

    # Adding a repository that is there already says so; a bad line is quoted whole.
    page.goto(url + "/corpus/add/")
    page.fill("#id_names", "acme/web")
    page.uncheck("#id_fetch_now")
    page.click("#add-names button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("acme/web was already in the corpus.")
    page.goto(url + "/corpus/add/")
    page.fill("#id_names", "not a repo")
    page.click("#add-names button[type=submit]")
    expect(page.locator(".errorlist")).to_contain_text("“not a repo” is not a GitHub repository")

    # Curation history: the automatic exclusion is there, and every entry names its pull requests.
    page.goto(url + "/corpus/curation/")
    automatic = page.locator("#curation tbody tr", has_text="automatic")
    expect(automatic).to_contain_text("acme/web#4")
    expect(automatic).to_contain_text("no Go changes")

    # Statistics: bars, no licence chart, PRs per month, lengths on a log axis, reasons for exclusion.
    page.goto(url + "/corpus/stats/?scope=all")
    page.wait_for_function("() => document.getElementById('chart-length').layout")
    types = page.evaluate(
        "() => ['chart-category', 'chart-syntax', 'chart-intent'].map((id) => document.getElementById(id).data[0].type)"
    )
    assert types == ["bar", "bar", "bar"]
    expect(page.locator("#chart-license")).to_have_count(0)
    assert page.evaluate("() => document.getElementById('chart-length').layout.xaxis.type") == "log"
    expect(page.locator("#chart-months")).to_be_visible()
    assert "quality: no Go changes" in page.evaluate("() => document.getElementById('chart-exclusions').data[0].y")


def test_models_system_and_tokenizer(operator_page, live_stack, tmp_path):
    page, url = operator_page, live_stack.url
    export = make_export_with_file(make_lineage("dl"), b"GGUF" + bytes(1000))

    # The model page names the runtimes and what was verified; the download is named after the model.
    page.goto(url + export.get_absolute_url())
    expect(page.locator("#runtime-support")).to_contain_text("llama-cpp-python 0.3.36")
    expect(page.locator("#runtime-support")).to_contain_text("Ollama")
    with page.expect_download() as download:
        page.click("#files a")
    assert download.value.suggested_filename == "hrgc-run-dl-step10-q8_0.gguf"

    # The playground warns that this checkpoint is barely trained, and has a Stop button for generating.
    page.goto(url + "/models/playground/")
    expect(page.locator("#training-hint")).to_contain_text("Barely trained")
    expect(page.locator("#stop-generation")).to_have_count(1)

    # An encode request above the upload limit is answered in words the page shows.
    page.goto(url + export.run.dataset.tokenizer.get_absolute_url())
    page.evaluate("document.getElementById('encode-text').value = 'x'.repeat(3 * 1024 * 1024)")
    page.click("#encode-button")
    expect(page.locator("#encode-summary")).to_contain_text("takes at most 2.6 MB")

    # The System page: uptimes in units, the whole workers table, the answering worker marked.
    # The clusters publish their state every few seconds after they start: look again until they are listed.
    for _ in range(30):
        page.goto(url + "/system/")
        if page.locator("#clusters tbody tr").count():
            break
        page.wait_for_timeout(1000)
    expect(page.locator("#clusters tbody tr").first).to_be_visible()
    uptime = page.locator("#clusters tbody tr td").last.inner_text()
    assert re.fullmatch(r"\d+ (s|min|h|d)( \d+ (s|min|h))?", uptime), uptime
    assert page.evaluate(
        "() => { const c = document.getElementById('workers'); return c.scrollWidth <= c.clientWidth; }"
    )
    page.click("#check-workers")
    expect(page.locator("#check-result.ok")).to_be_visible(timeout=30_000)
    assert not re.search(r"\d\d:\d\d:\d\d\.\d", page.locator("#check-result").inner_text())
    # A worker recycled just before the check answers under a PID the page learns on a refresh (up to 12 s).
    expect(page.locator(".worker-pid.answered")).to_have_count(1, timeout=20_000)


def test_pull_requests_and_run_page_fit_800px(operator_page, live_stack, dataset_files):
    page, url = operator_page, live_stack.url
    repo = Repository.objects.create(full_name="a-rather-long-organisation/with-a-long-repository-name")
    for number in range(1, 6):
        record = _pr(number, f"Refactor the request router so that {number} long titles wrap instead of overflowing")
        ingest.store_pull_request(repository=repo, record=record)
    run = add_curve(
        _run(make_dataset(dataset_files, name="narrow-ds"), "narrow-run", "hrm"),
        train=OVERFIT_TRAIN,
        evals=OVERFIT_EVALS,
        checkpoints=[100, 250, 2000],
    )
    page.set_viewport_size({"width": 800, "height": 900})
    page.goto(url + "/corpus/pulls/")
    expect(page.locator("#pullrequests tbody tr")).to_have_count(5)
    assert _no_page_scroll(page)
    page.goto(url + run.get_absolute_url())
    page.wait_for_function("() => document.getElementById('chart-loss').data")
    assert _no_page_scroll(page)


def test_a_worker_recycled_before_the_check_is_marked_once_the_page_learns_its_pid(operator_page, live_stack):
    """django-q2 replaces a worker after 50 tasks: the answer can come from a PID the rendered table lacks.
    Here the check's answer names PID 999999, which the System page lists from its second reading on."""
    page, url = operator_page, live_stack.url
    page.goto(url + "/system/")
    for _ in range(30):  # the clusters publish their state every few seconds after they start
        if page.locator("#clusters tbody tr").count():
            break
        page.wait_for_timeout(1000)
        page.goto(url + "/system/")
    host = page.locator("#clusters tbody tr").first.get_attribute("data-host")
    answer = {"pid": 999999, "host": host, "worker": f"{host}:999999", "at": "now", "database": "PostgreSQL"}
    page.route(
        "**/system/check-workers/recycled/",
        lambda route: route.fulfill(json={"done": True, "success": True, "result": answer, "seconds": 0.1}),
    )
    # The page as the server renders it now, and as it renders once the recycled worker's PID is published.
    rendered = page.request.get(url + "/system/?check=recycled").text()
    published = rendered.replace(
        '<span class="worker-pid"',
        '<span class="worker-pid" data-pid="999999">999999</span>, <span class="worker-pid"',
        1,
    )
    readings = []

    def system_page(route):
        readings.append(route.request.url)
        route.fulfill(
            status=200, content_type="text/html; charset=utf-8", body=rendered if len(readings) == 1 else published
        )

    page.route("**/system/?check=recycled", system_page)
    page.goto(url + "/system/?check=recycled")
    expect(page.locator("#check-result.ok")).to_be_visible()
    expect(page.locator(".worker-pid.answered")).to_have_count(1, timeout=20_000)
    expect(page.locator(".worker-pid.answered")).to_have_text("999999 ✓ answered")
    assert len(readings) >= 2
