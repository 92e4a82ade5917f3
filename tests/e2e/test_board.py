"""The issue's walk, in real Chromium against gunicorn and real workers, on the sample corpus: an operator
makes a suite from the dataset page, runs Compare families on it (an hrm and a gpt run, trained and evaluated
by the workers, then the verdict), evaluates one run's exported GGUF on the same suite from its model page,
reads the leaderboard with the three models, and rates ten blind A/B pairs that give each a Bradley–Terry
score."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from evaluation.models import Comparison, EvalSuite, Evaluation, Rating
from models_registry.models import ExportedModel
from tests.llama import require_llama_cpp
from training.models import DatasetBuild

pytestmark = pytest.mark.e2e


def sample_dataset() -> DatasetBuild:
    """The sample corpus, snapshotted, tokenized and built in the foreground (the pipeline e2e clicks these)."""
    call_command("import_sample")
    call_command("snapshot", "create", "sample")
    call_command("train_tokenizer", "sample", "--vocab-size", "1000")
    call_command("build_dataset", "sample", "latest", "--name", "sample-data", "--seq-len", "512", "--processes", "1")
    return DatasetBuild.objects.get(name="sample-data")


def test_suite_compare_families_gguf_leaderboard_and_ten_blind_ratings(operator_page, live_stack):
    page, url = operator_page, live_stack.url
    dataset = sample_dataset()

    # A suite first, from the dataset page: Compare families and the GGUF are evaluated on it.
    page.goto(url + dataset.get_absolute_url())
    page.click("#make-suite")
    page.fill("#suite-form input[name=name]", "walk-suite")
    page.fill("#suite-form input[name=task_count]", "10")
    page.click("#suite-create")
    page.wait_for_url(re.compile(r"/evaluation/suites/\d+/$"))
    suite = EvalSuite.objects.get(name="walk-suite")
    expect(page.locator("#suite-tasks tbody tr")).to_have_count(suite.task_count)

    page.goto(url + dataset.get_absolute_url())
    page.click("#compare-families")
    page.fill("#id_seeds", "1")
    page.fill("#id_tokens", str(8 * 8 * 256))  # 8 steps of the tiny preset
    page.select_option("#id_suite", str(suite.pk))
    page.fill("#id_max_attempts", "2")
    page.fill("#id_max_tokens", "48")
    page.click("#compare-button")
    page.wait_for_url(re.compile(r"/evaluation/comparisons/\d+/$"))
    expect(page.locator("#comparison-runs tbody tr")).to_have_count(2)
    # The workers train both runs, then evaluate both; the page polls until the verdict is there.
    expect(page.locator("#comparison-state")).to_have_text("finished", timeout=900_000)
    comparison = Comparison.objects.get()
    assert comparison.runs.count() == 2 and comparison.evaluations.count() == 2
    assert {evaluation.suite_id for evaluation in comparison.evaluations.all()} == {suite.pk}
    assert {(e.settings["max_attempts"], e.settings["max_tokens"]) for e in comparison.evaluations.all()} == {(2, 48)}
    runs = {run.family: run for run in comparison.runs.all()}
    assert runs["hrm"].max_steps == runs["gpt"].max_steps == 8 and runs["hrm"].tokens == runs["gpt"].tokens
    expect(page.locator("#verdict tbody tr")).to_have_count(11)
    expect(page.locator("#verdict-summary")).to_contain_text("hrm wins")
    loss_row = page.locator("#verdict tr[data-metric=code_loss] td.winner")
    assert loss_row.inner_text().split()[0] in ("hrm", "gpt", "tie")

    # The gpt run's export, evaluated through llama.cpp on the same suite from its model page.
    require_llama_cpp()
    call_command("export", runs["gpt"].name, "--format", "gguf", "--quant", "q8_0")
    model = ExportedModel.objects.get(run=runs["gpt"])
    page.goto(url + model.get_absolute_url())
    page.select_option("#evaluate-suite", str(suite.pk))
    page.fill("#evaluate-form input[name=max_attempts]", "2")
    page.fill("#evaluate-max-tokens", "48")
    page.click("#evaluate-button")
    page.wait_for_url(re.compile(r"/evaluation/\d+/$"))
    expect(page.locator("#evaluation-status")).to_have_text("finished", timeout=600_000)
    gguf = Evaluation.objects.get(exported_model=model)
    assert gguf.suite_id == suite.pk and gguf.results.count() == suite.task_count

    page.click("header nav >> text=Leaderboard")
    expect(page.locator("#leaderboard tbody tr")).to_have_count(3)
    families = sorted(page.locator("#leaderboard tbody tr td:nth-child(2)").all_inner_texts())
    assert families == ["gpt", "gpt", "hrm"]
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
    rows = page.locator("#ratings tbody tr")
    counts = [int(count) for count in page.locator("#ratings td.count").all_inner_texts()]
    assert rows.count() in (2, 3) and sum(counts) == 20  # each rating counts for both of its models
    expect(page.locator("#method")).to_contain_text("Fisher-information standard error")
