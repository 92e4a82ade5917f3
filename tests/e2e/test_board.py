"""In real Chromium against gunicorn and real workers, on the sample corpus: Compare families from the dataset
page (an hrm and a gpt run, trained and evaluated by the workers, then the verdict), the leaderboard with both
models, and ten blind A/B ratings that give each model a Bradley–Terry score."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from evaluation.models import Comparison, Rating
from training.models import DatasetBuild

pytestmark = pytest.mark.e2e


def sample_dataset() -> DatasetBuild:
    """The sample corpus, snapshotted, tokenized and built in the foreground (the pipeline e2e clicks these)."""
    call_command("import_sample")
    call_command("snapshot", "create", "sample")
    call_command("train_tokenizer", "sample", "--vocab-size", "1000")
    call_command("build_dataset", "sample", "latest", "--name", "sample-data", "--seq-len", "512", "--processes", "1")
    return DatasetBuild.objects.get(name="sample-data")


def test_compare_families_leaderboard_and_ten_blind_ratings(operator_page, live_stack):
    page, url = operator_page, live_stack.url
    dataset = sample_dataset()

    page.goto(url + dataset.get_absolute_url())
    page.click("#compare-families")
    page.fill("#id_seeds", "1")
    page.fill("#id_tokens", str(8 * 8 * 256))  # 8 steps of the tiny preset
    page.fill("#id_task_count", "10")
    page.fill("#id_max_attempts", "2")
    page.fill("#id_max_tokens", "48")
    page.click("#compare-button")
    page.wait_for_url(re.compile(r"/evaluation/comparisons/\d+/$"))
    expect(page.locator("#comparison-runs tbody tr")).to_have_count(2)
    # The workers train both runs, then evaluate both; the page polls until the verdict is there.
    expect(page.locator("#comparison-state")).to_have_text("finished", timeout=900_000)
    comparison = Comparison.objects.get()
    assert comparison.runs.count() == 2 and comparison.evaluations.count() == 2
    assert {(e.settings["max_attempts"], e.settings["max_tokens"]) for e in comparison.evaluations.all()} == {(2, 48)}
    runs = {run.family: run for run in comparison.runs.all()}
    assert runs["hrm"].max_steps == runs["gpt"].max_steps == 8 and runs["hrm"].tokens == runs["gpt"].tokens
    expect(page.locator("#verdict tbody tr")).to_have_count(11)
    expect(page.locator("#verdict-summary")).to_contain_text("hrm wins")
    loss_row = page.locator("#verdict tr[data-metric=code_loss] td.winner")
    assert loss_row.inner_text().split()[0] in ("hrm", "gpt", "tie")

    page.click("header nav >> text=Leaderboard")
    expect(page.locator("#leaderboard tbody tr")).to_have_count(2)
    families = sorted(page.locator("#leaderboard tbody tr td:nth-child(2)").all_inner_texts())
    assert families == ["gpt", "hrm"]
    page.click("#leaderboard th[data-metric=perplexity] a")
    expect(page).to_have_url(re.compile(r"sort=perplexity"))
    expect(page.locator("#leaderboard td.metric[data-metric=code_loss]").first).not_to_have_text("—")

    page.click("#ratings-link")
    page.click("#rate-link")
    for count in range(10):
        expect(page.locator("#output-a")).to_be_visible()
        assert "-seed1" not in page.locator("#task").inner_text() + page.locator(".pair").inner_text()  # blind
        if count % 3 == 2:
            page.keyboard.press("t")  # the keys work too
        else:
            page.click("#choose-a" if count % 2 else "#choose-b")
        expect(page.locator(".messages")).to_contain_text("rating saved")
    assert Rating.objects.filter(user__username="otto").count() == 10

    page.goto(url + "/evaluation/ratings/")
    expect(page.locator("#ratings tbody tr")).to_have_count(2)
    counts = page.locator("#ratings td.count").all_inner_texts()
    assert counts == ["10", "10"]
    expect(page.locator("#method")).to_contain_text("Fisher-information standard error")
