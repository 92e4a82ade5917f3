"""The whole pipeline from a newcomer's chair, in real Chromium against gunicorn and real workers:
log in → import the sample corpus → search and exclude a PR → snapshot → tokenizer → dataset →
a tiny hrm run watched live → export GGUF → download it → ask the playground for a fix → log out."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from corpus.models import PullRequest, Snapshot
from models_registry.models import ExportedModel
from training.models import DatasetBuild, TokenizerVersion, TrainingRun

pytestmark = pytest.mark.e2e

JOB_MS = 180_000
STAGES: dict[str, float] = {}


class stage:
    """Times each step of the walk; the figures are printed at the end (pytest -s shows them)."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        self.started = time.monotonic()

    def __exit__(self, *exc):
        STAGES[self.name] = time.monotonic() - self.started


def wait_for_job(page, status_selector: str = "#job-status") -> None:
    page.wait_for_function(
        f"document.querySelector({status_selector!r}) && !['queued','running','waiting','stopping']"
        f".includes(document.querySelector({status_selector!r}).textContent.trim())",
        timeout=JOB_MS,
    )
    page.wait_for_load_state()
    expect(page.locator(status_selector)).to_have_text("finished")


def test_newcomer_reaches_a_downloaded_gguf_and_a_playground_answer(operator_page, live_stack, tmp_path):
    page, url = operator_page, live_stack.url
    started = time.monotonic()

    with stage("import sample corpus"):
        expect(page.locator("#next-step")).to_contain_text("sample corpus")
        page.click("#next-step a")
        page.click("#import-sample button")
        page.wait_for_url(re.compile(r"/corpus/fetches/\d+/$"))
        expect(page.locator("#job-status")).to_have_text("finished", timeout=JOB_MS)

    with stage("search and exclude"):
        page.goto(url + "/corpus/pulls/")
        page.fill("input[name=q]", "middleware")
        page.click("#filters button[type=submit]")
        page.locator("#pullrequests tbody a").first.click()
        title = page.locator("h1").inner_text()
        page.fill("#pr-curate input[name=reason]", "e2e: not representative")
        page.click("#pr-curate button")
        expect(page.locator("#curation")).to_contain_text("e2e: not representative")
        excluded = PullRequest.objects.get(excluded_reason="e2e: not representative")
        assert excluded.title in title

    with stage("snapshot"):
        page.goto(url + "/corpus/snapshots/")
        page.fill("#snapshot-form input[name=name]", "newcomer")
        page.click("#snapshot-form button")
        expect(page.locator("#snap-status")).to_have_text("finished", timeout=JOB_MS)
        snapshot = Snapshot.objects.get(name="newcomer")
        assert not snapshot.pull_requests.filter(pk=excluded.pk).exists()

    with stage("tokenizer"):
        page.click("header nav >> text=Tokenizers")
        page.select_option("#id_snapshot", str(snapshot.pk))
        page.fill("#id_name", "newcomer-tok")
        page.fill("#id_vocab_size", "1000")
        page.click("#train-button")
        page.wait_for_url("**/tokenizers/*/")
        wait_for_job(page)
        tokenizer = TokenizerVersion.objects.get(name="newcomer-tok")
        page.fill("#encode-text", "func handle(r *Request) {\n\tif r == nil {\n\t\treturn\n\t}\n}\n")
        page.click("#encode-button")
        expect(page.locator("#encode-summary")).to_contain_text("decodes back exactly")

    with stage("dataset"):
        page.click("header nav >> text=Datasets")
        page.select_option("#id_snapshot", str(snapshot.pk))
        page.select_option("#id_tokenizer", str(tokenizer.pk))
        page.fill("#id_name", "newcomer-data")
        page.fill("#id_seq_len", "256")
        page.click("#build-button")
        page.wait_for_url("**/datasets/*/")
        wait_for_job(page)
        assert DatasetBuild.objects.get(name="newcomer-data").train_tokens > 0

    with stage("tiny hrm run"):
        page.goto(url + "/runs/new/")
        page.select_option("#id_dataset", label="newcomer-data")
        page.select_option("#id_family", "hrm")
        page.select_option("#id_preset", "tiny")
        expect(page.locator("#param-count")).to_have_text(re.compile(r"^\d[\d,]+$"), timeout=60_000)
        page.fill("#id_name", "newcomer-hrm")
        for field, value in {
            "train__max_steps": "40",
            "train__logging_steps": "2",
            "train__eval_steps": "20",
            "train__save_steps": "20",
            "train__eval_iters": "2",
            "train__validation_frequency": "40",
            "train__sample_max_tokens": "16",
            "train__max_refinement_iterations": "1",
        }.items():
            page.fill(f"#id_{field}", value)
        page.click("#start-run")
        page.wait_for_url(re.compile(r"/runs/\d+/$"))
        # The chart gains points while the page stays loaded: the live feed, not a reload.
        page.wait_for_function(
            "() => { const el = document.getElementById('chart-loss');"
            " return el && el.data && el.data.some((t) => t.y && t.y.length >= 2); }",
            timeout=JOB_MS,
        )
        expect(page.locator("#run-status")).to_have_text("finished", timeout=JOB_MS)
        run = TrainingRun.objects.get(name="newcomer-hrm")
        assert run.step == 40 and run.checkpoints.exists()

    with stage("export GGUF"):
        page.reload()
        page.select_option("#export-form select[name=quant]", "q8_0")
        page.click("#export-button")
        page.wait_for_url(re.compile(r"/models/\d+/$"))
        wait_for_job(page, "#export-status")
        export = ExportedModel.objects.get(run=run)
        assert export.architecture == "hrm_text" and export.verified

    with stage("download"):
        with page.expect_download() as download:
            page.click("#files a >> text=model.gguf")
        saved = tmp_path / "model.gguf"
        download.value.save_as(saved)
        assert saved.read_bytes()[:4] == b"GGUF"
        assert saved.stat().st_size == next(f["size"] for f in export.files if f["name"] == "model.gguf")

    with stage("playground"):
        page.click("text=Try it in the playground")
        page.fill("#id_title", "Fix nil pointer in handler")
        page.fill("#id_max_code_tokens", "48")
        page.click("#generate")
        expect(page.locator("#final")).to_be_visible(timeout=JOB_MS)
        expect(page.locator("#final-verdict")).to_contain_text("iteration")
        assert page.locator("#iterations .iteration").count() >= 1

    page.click("header form button:has-text('Log out')")
    page.wait_for_url("**/accounts/login/")
    STAGES["total"] = time.monotonic() - started
    print("\nend-to-end wall time by stage (s): " + ", ".join(f"{k} {v:.1f}" for k, v in STAGES.items()))
