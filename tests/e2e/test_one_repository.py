"""One repository is enough, in real Chromium: import a generated git history (22 small PRs to different
functions of one 3,000-line Go file and a backport), read a record that holds only the changed function,
snapshot, tokenizer, a dataset with a validation split by merge time, and a tiny run that trains on it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

from corpus.models import PullRequest, Snapshot
from tests.go_fixtures import ledger_repository
from training.models import DatasetBuild, TokenizerVersion, TrainingRun

pytestmark = pytest.mark.e2e

JOB_MS = 240_000


def wait_finished(page, selector: str = "#job-status") -> None:
    page.wait_for_function(
        f"document.querySelector({selector!r}) && !['queued','running','waiting','stopping']"
        f".includes(document.querySelector({selector!r}).textContent.trim())",
        timeout=JOB_MS,
    )
    page.wait_for_load_state()
    expect(page.locator(selector)).to_have_text("finished")


def test_a_one_repository_corpus_trains_from_the_browser(operator_page, live_stack, tmp_path):
    page, url = operator_page, live_stack.url
    # The browser imports only from below the import root.
    clone = Path(settings.HRGC_IMPORT_ROOT) / f"{tmp_path.name}-ledger"
    info = ledger_repository(clone)

    page.goto(url + "/corpus/add/")
    page.fill("#import-git input[name=path]", str(clone))
    page.fill("#import-git input[name=repo]", "acme/ledger")
    page.click("#import-git button")
    page.wait_for_url(re.compile(r"/corpus/fetches/\d+/$"))
    expect(page.locator("#job-status")).to_have_text("finished", timeout=JOB_MS)
    assert PullRequest.objects.count() == 23

    # Only the backport is a duplicate; PRs to other functions of the same file are not.
    page.goto(url + "/corpus/pulls/?included=no")
    expect(page.locator("#pullrequests tbody tr")).to_have_count(1)
    expect(page.locator("#pullrequests tbody")).to_contain_text("duplicate of acme/ledger#5")

    # A record holds the changed function, before and after, and not the rest of the file.
    name = info["names"][7]
    page.goto(url + f"/corpus/pulls/?q={name}")
    page.locator("#pullrequests tbody a").first.click()
    expect(page.locator("#plan")).to_contain_text(f"<TARGET:func> {name}() in ledger.go")
    page.click("#training-text-box summary")
    text = page.locator("#training-text")
    expect(text).to_contain_text(f"func {name}(")
    other = info["names"][8]
    assert f"// {other} folds" not in text.inner_text()

    page.goto(url + "/corpus/snapshots/")
    page.fill("#snapshot-form input[name=name]", "ledger")
    page.click("#snapshot-form button")
    expect(page.locator("#snap-status")).to_have_text("finished", timeout=JOB_MS)

    snapshot = Snapshot.objects.get(name="ledger")
    page.click("header nav >> text=Tokenizers")
    page.select_option("#id_snapshot", str(snapshot.pk))
    page.fill("#id_name", "ledger-tok")
    page.fill("#id_vocab_size", "600")
    page.click("#train-button")
    page.wait_for_url("**/tokenizers/*/")
    wait_finished(page)

    page.click("header nav >> text=Datasets")
    page.select_option("#id_snapshot", str(snapshot.pk))
    page.select_option("#id_tokenizer", str(TokenizerVersion.objects.get(name="ledger-tok").pk))
    page.fill("#id_name", "ledger-data")
    page.click("#build-button")
    page.wait_for_url("**/datasets/*/")
    wait_finished(page)
    expect(page.locator("#split")).to_contain_text("Validation split by merge time")
    expect(page.locator("#stat-prs")).to_contain_text("22 (21 train · 1 val)")
    assert DatasetBuild.objects.get(name="ledger-data").val_tokens > 0

    page.goto(url + "/runs/new/")
    page.select_option("#id_dataset", label="ledger-data")
    page.select_option("#id_family", "hrm")
    page.select_option("#id_preset", "tiny")
    expect(page.locator("#param-count")).to_have_text(re.compile(r"^\d[\d,]+$"), timeout=60_000)
    page.fill("#id_name", "ledger-hrm")
    for field, value in {
        "train__max_steps": "6",
        "train__logging_steps": "2",
        "train__eval_steps": "3",
        "train__save_steps": "6",
        "train__eval_iters": "1",
        "train__validation_frequency": "100",
        "train__sample_max_tokens": "8",
        "train__max_refinement_iterations": "1",
    }.items():
        page.fill(f"#id_{field}", value)
    page.click("#start-run")
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    expect(page.locator("#run-status")).to_have_text("finished", timeout=JOB_MS)
    run = TrainingRun.objects.get(name="ledger-hrm")
    assert run.step == 6 and run.last_val_loss is not None
