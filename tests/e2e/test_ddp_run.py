"""In real Chromium with the real training worker: a run on two processes (torchrun, gloo on CPU) started from the
new-run form trains with both ranks alive on its page, stops, resumes, finishes, and exports to GGUF from the
browser; the downloaded file is the one the export wrote and verified."""

from __future__ import annotations

import hashlib
import re

import pytest
from playwright.sync_api import expect

from models_registry.models import ExportedModel
from tests.e2e.test_runs import COMMON, TRAINING_TIMEOUT, wait_for_growth
from tests.llama import require_llama_cpp
from tests.training.support import make_dataset
from training.engine import load_checkpoint
from training.models import Checkpoint, MetricPoint, TrainingRun

pytestmark = pytest.mark.e2e

MAX_STEPS = 600  # about 30 s of steps on a quiet machine: the stop must land before the end


def rank_states(page) -> list[str]:
    """The State cell of each row of the ranks table, as the page shows it now."""
    return page.locator("#ranks tbody tr td:nth-child(5)").all_inner_texts()


def test_two_process_run_from_the_browser_trains_stops_resumes_and_exports(
    operator_page, live_stack, dataset_files, tmp_path
):
    require_llama_cpp()
    page, url = operator_page, live_stack.url
    dataset = make_dataset(dataset_files, name="ddp-e2e-ds")
    dataset.tokenizer.model_path = str(dataset.directory / "tokenizer.model")  # the export reads the tokenizer
    dataset.tokenizer.save()

    page.goto(url + "/runs/new/")
    page.select_option("#id_dataset", label="ddp-e2e-ds")
    page.select_option("#id_family", "gpt")
    page.select_option("#id_preset", "tiny")
    expect(page.locator("#id_model__n_layer")).to_have_value("2")
    expect(page.locator("#param-count")).to_have_text(re.compile(r"^\d[\d,]+$"), timeout=60_000)
    page.fill("#id_name", "ddp-e2e")
    settings = {
        **COMMON,
        "train__max_steps": str(MAX_STEPS),
        "train__save_steps": "100",
        "train__eval_steps": "100",
        "train__validation_frequency": "1000",  # no samples: this test is about the processes
        "train__batch_size": "4",
        "model__block_size": "64",
        "train__num_threads": "1",  # two ranks on a two-core machine
        "train__nproc_per_node": "2",
    }
    for field, value in settings.items():
        page.fill(f"#id_{field}", value)
    page.select_option("#id_train__device", "cpu")
    expect(page.locator("[data-setting=train__nproc_per_node].changed")).to_have_count(1)
    # Both processes train on batches of their own: the form counts a step's tokens over both.
    expect(page.locator("#param-note")).to_contain_text(f"{2 * 4 * 64} tokens per step")
    page.click("#start-run")
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    run_url = page.url
    run = TrainingRun.objects.get(name="ddp-e2e")
    assert run.config["train"]["nproc_per_node"] == 2 and run.tokens_per_step == 2 * 4 * 64

    # Training: the page's live feed shows both ranks running and the loss curve growing, without a reload.
    expect(page.locator("#run-status")).to_have_text("running", timeout=TRAINING_TIMEOUT)
    expect(page.locator("#ranks tbody tr")).to_have_count(2, timeout=TRAINING_TIMEOUT)
    page.wait_for_function(
        "() => [0, 1].every((rank) => { const row = document.getElementById('rank-' + rank);"
        " return row && row.querySelector('.badge.ok') && row.cells[3].textContent.trim() !== '—'; })",
        timeout=TRAINING_TIMEOUT,
    )
    wait_for_growth(page)
    expect(page.locator("#run-device")).to_contain_text("× 2 processes")

    page.click("#stop-run")
    expect(page.locator("#run-status")).to_have_text("stopped", timeout=60_000)
    run.refresh_from_db()
    stopped_step = run.step
    assert 0 < stopped_step < MAX_STEPS, "stopped too late to see a resume: raise MAX_STEPS"
    assert Checkpoint.objects.filter(run=run, step=stopped_step).exists()
    expect(page.locator("#checkpoints tbody tr").first).to_contain_text(f"{stopped_step:,}")
    assert rank_states(page) == ["stopped", "stopped"]

    page.click("#resume-run")
    expect(page.locator("#run-status")).to_have_text(re.compile("running|finished"), timeout=TRAINING_TIMEOUT)
    expect(page.locator("#run-status")).to_have_text("finished", timeout=2 * TRAINING_TIMEOUT)
    run.refresh_from_db()
    assert run.step == MAX_STEPS and run.resumes == 1
    assert run.tokens == MAX_STEPS * 2 * 4 * 64
    steps = list(MetricPoint.objects.filter(run=run, kind="train").values_list("step", flat=True))
    assert sorted(steps) == list(range(2, MAX_STEPS + 1, 2))  # none lost, none twice across the resume
    assert rank_states(page) == ["finished", "finished"]
    final = load_checkpoint(run.directory / "checkpoints" / f"step_{MAX_STEPS:07d}.pt")
    assert final["world_size"] == 2 and len(final["rng"]) == 2

    # Export the final checkpoint to GGUF from the run page, then download it.
    page.select_option("#export-step", str(MAX_STEPS))
    page.select_option("#export-form select[name=format]", "gguf")
    page.select_option("#export-form select[name=quant]", "q8_0")
    page.click("#export-button")
    page.wait_for_url(re.compile(r"/models/\d+/$"))
    page.wait_for_function(
        "!['queued','running'].includes(document.querySelector('#export-status').textContent)", timeout=120_000
    )
    page.wait_for_load_state()
    expect(page.locator("#export-status")).to_have_text("finished")
    expect(page.locator("#verification")).to_contain_text("Verified")
    export = ExportedModel.objects.get(run=run)
    assert export.architecture == "llama" and export.quant == "q8_0" and export.step == MAX_STEPS

    with page.expect_download() as download:
        page.click("#files a >> text=model.gguf")
    saved = tmp_path / "model.gguf"
    download.value.save_as(saved)
    data = saved.read_bytes()
    assert data[:4] == b"GGUF" and len(data) == export.files[0]["size"]
    assert hashlib.sha256(data).hexdigest() == export.files[0]["sha256"]

    page.goto(run_url)
    expect(page.locator("#exports")).to_contain_text("finished")
