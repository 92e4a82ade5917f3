"""In real Chromium with a real worker: train a tokenizer on a snapshot, try it, build a dataset, read it."""

from __future__ import annotations

import time

import pytest
from django.conf import settings

from tests.training.data_fixtures import make_snapshot
from training.models import DatasetBuild, TokenizerVersion

pytestmark = pytest.mark.e2e

JOB_TIMEOUT_MS = 120_000


def wait_until_finished(page) -> None:
    """The job card polls its status endpoint and reloads the page when the job ends."""
    page.wait_for_function(
        "document.querySelector('#job-status') && "
        "!['queued','running','waiting','stopping'].includes(document.querySelector('#job-status').textContent)",
        timeout=JOB_TIMEOUT_MS,
    )
    page.wait_for_load_state()
    assert page.locator("#job-status").inner_text() == "finished", page.locator("#job-message").inner_text()


def test_train_try_and_build_from_the_browser(operator_page, live_stack):
    page = operator_page
    stamp = time.strftime("%H%M%S")
    # The live stack's data directory is this process's DATA_DIR, so its worker reads this file.
    snapshot = make_snapshot(settings.DATA_DIR, name=f"e2e-snap-{stamp}")

    page.click("header nav >> text=Tokenizers")
    page.select_option("#id_snapshot", str(snapshot.pk))
    page.fill("#id_name", f"e2e-tok-{stamp}")
    page.fill("#id_vocab_size", "400")
    page.click("#train-button")
    page.wait_for_url("**/tokenizers/*/")
    assert page.locator("#job-status").inner_text() in ("queued", "running", "finished")
    wait_until_finished(page)
    tokenizer = TokenizerVersion.objects.get(name=f"e2e-tok-{stamp}")
    assert page.locator("#vocab-size").inner_text() == "400"
    assert float(page.locator("#cpt-code").inner_text()) == pytest.approx(tokenizer.chars_per_token_code, abs=0.01)
    assert page.locator("#snapshot-link").inner_text() == snapshot.name

    page.fill("#encode-text", "<PLAN>\n<STEP> <INTENT:FIX> guard nil\n</PLAN>\nfunc f() {\n\treturn nil\n}\n")
    page.click("#encode-button")
    page.locator("#encode-result .chip.special").first.wait_for()
    assert page.locator("#encode-result .chip.special").first.inner_text().startswith("<PLAN>")
    assert "decodes back exactly" in page.locator("#encode-summary").inner_text()
    assert page.locator("#encode-result .chip").count() > 10

    with page.expect_download() as download:
        page.click("#download-model")
    assert download.value.suggested_filename == f"e2e-tok-{stamp}.model"

    page.click("header nav >> text=Datasets")
    page.select_option("#id_snapshot", str(snapshot.pk))
    page.select_option("#id_tokenizer", str(tokenizer.pk))
    page.fill("#id_name", f"e2e-ds-{stamp}")
    assert page.locator("#id_processes").input_value() == "2"
    page.fill("#id_seq_len", "256")
    page.click("#build-button")
    page.wait_for_url("**/datasets/*/")
    wait_until_finished(page)
    dataset = DatasetBuild.objects.get(name=f"e2e-ds-{stamp}")
    train, val = dataset.stats["splits"]["train"], dataset.stats["splits"]["val"]
    assert page.locator("#stat-tokens").inner_text() == f"{train['tokens']:,} train · {val['tokens']:,} val"
    assert page.locator("#split-train li").count() == len(train["repos"]) > 0
    assert page.locator("#split-val li").count() == len(val["repos"]) > 0
    assert page.locator("#sample .sec-plan").count() > 0 and page.locator("#sample .sec-code").count() > 0
    assert "<PLAN>" in page.locator("#sample .sec-plan").first.inner_text()
    assert page.locator("#tokenizer-link").inner_text() == tokenizer.name
