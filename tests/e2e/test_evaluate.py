"""In real Chromium with a real worker: an operator makes a suite from a dataset, evaluates a trained tiny run
from its run page, watches the job card finish, reads the metrics and opens one task's attempts and diff."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from evaluation.models import EvalSuite, Evaluation
from models_registry.models import ExportedModel
from tests.llama import require_llama_cpp
from tests.training.support import FAST, make_dataset
from training.models import TrainingRun

pytestmark = pytest.mark.e2e


def evaluate_from_card(page, target_url: str, suite, *, max_attempts: int) -> None:
    """Evaluate the run or model at `target_url` on `suite` from its Evaluate card; wait until the job ends finished."""
    page.goto(target_url)
    page.select_option("#evaluate-suite", str(suite.pk))
    page.fill("#evaluate-form input[name=max_attempts]", str(max_attempts))
    page.fill("#evaluate-max-tokens", "8")
    page.click("#evaluate-button")
    page.wait_for_url(re.compile(r"/evaluation/\d+/$"))
    page.wait_for_function(
        "!['queued','running'].includes(document.querySelector('#evaluation-status').textContent)", timeout=240_000
    )
    page.wait_for_load_state()
    expect(page.locator("#evaluation-status")).to_have_text("finished")


def test_make_a_suite_and_evaluate_a_run_from_the_browser(operator_page, live_stack, dataset_files):
    page, url = operator_page, live_stack.url
    dataset = make_dataset(dataset_files, name="eval-e2e-ds")
    tokenizer = dataset.tokenizer
    tokenizer.model_path = str(dataset.directory / "tokenizer.model")
    tokenizer.save()
    settings = [arg for key, value in FAST.items() for arg in ("--set", f"{key}={value}")]
    call_command("train", dataset.name, "--family", "gpt", "--preset", "tiny", "--name", "gpt-eval", *settings)
    run = TrainingRun.objects.get(name="gpt-eval")

    # The run page has no suite to offer yet and links to the suite form with the run's dataset chosen.
    page.goto(url + run.get_absolute_url())
    expect(page.locator("#evaluate-no-suite")).to_be_visible()
    page.click("#evaluate-no-suite a")
    page.fill("#suite-form input[name=name]", "e2e-suite")
    page.fill("#suite-form input[name=task_count]", "2")
    page.click("#suite-create")
    page.wait_for_url(re.compile(r"/evaluation/suites/\d+/$"))
    suite = EvalSuite.objects.get(name="e2e-suite")
    expect(page.locator("#suite-task-count")).to_have_text("2")
    expect(page.locator("#suite-sha256")).to_have_text(suite.sha256)
    expect(page.locator("#suite-tasks tbody tr")).to_have_count(2)

    evaluate_from_card(page, url + run.get_absolute_url(), suite, max_attempts=2)
    evaluation = Evaluation.objects.get(suite=suite)
    assert evaluation.results.count() == 2 and evaluation.metrics["n_tasks"] == 2
    expect(page.locator("#evaluation-tasks")).to_have_text("2 of 2")
    expect(page.locator("#evaluation-metrics")).to_contain_text("code loss (nats/token)")
    expect(page.locator("#evaluation-metrics")).to_contain_text(f"{evaluation.metrics['code_loss']:.3f}")
    expect(page.locator("#evaluation-results tbody tr")).to_have_count(2)

    page.locator("#evaluation-results a.task-link").first.click()
    page.wait_for_url(re.compile(r"/evaluation/\d+/tasks/0/$"))
    expect(page.locator("#task-reference")).to_contain_text("func")
    expect(page.locator(".attempt").first).to_contain_text("Attempt 1")
    assert page.locator("#task-diff").count() + page.locator("#task-diff-none").count() == 1

    # The suite is in use now: its page lists the evaluation and offers no Delete.
    page.goto(url + suite.get_absolute_url())
    expect(page.locator("#suite-evaluations")).to_contain_text("finished")
    expect(page.locator("#suite-delete")).to_have_count(0)

    # The exported GGUF of the same checkpoint, evaluated from its model page through llama.cpp.
    require_llama_cpp()
    call_command("export", run.name, "--format", "gguf", "--quant", "q8_0")
    model = ExportedModel.objects.get(run=run)
    evaluate_from_card(page, url + model.get_absolute_url(), suite, max_attempts=1)
    expect(page.locator("#evaluation-backend")).to_have_text("GGUF (llama.cpp)")
    gguf = Evaluation.objects.get(exported_model=model)
    assert gguf.results.count() == 2 and gguf.metrics["code_loss"] is not None
