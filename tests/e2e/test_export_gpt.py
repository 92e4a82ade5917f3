"""In real Chromium with a real worker: export a trained tiny gpt run to GGUF F16 from its run page, download
it, resume a cut download with HTTP Range, and ask the playground (llama.cpp) for a fix."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from models_registry.models import ExportedModel
from tests.llama import require_llama_cpp
from tests.training.support import FAST, make_dataset
from training.models import TrainingRun

pytestmark = pytest.mark.e2e


def test_export_download_resume_and_playground(operator_page, live_stack, dataset_files, tmp_path):
    require_llama_cpp()
    page, url = operator_page, live_stack.url
    dataset = make_dataset(dataset_files, name="gpt-export-ds")
    tokenizer = dataset.tokenizer
    tokenizer.model_path = str(dataset.directory / "tokenizer.model")
    tokenizer.save()
    settings = [arg for key, value in FAST.items() for arg in ("--set", f"{key}={value}")]
    call_command("train", dataset.name, "--family", "gpt", "--preset", "tiny", "--name", "gpt-export", *settings)
    run = TrainingRun.objects.get(name="gpt-export")

    page.goto(url + run.get_absolute_url())
    page.select_option("#export-form select[name=quant]", "f16")
    page.click("#export-button")
    page.wait_for_url(re.compile(r"/models/\d+/$"))
    page.wait_for_function(
        "!['queued','running'].includes(document.querySelector('#export-status').textContent)", timeout=120_000
    )
    page.wait_for_load_state()
    expect(page.locator("#export-status")).to_have_text("finished")
    expect(page.locator("#verification")).to_contain_text("Verified")
    export = ExportedModel.objects.get(run=run)
    assert export.architecture == "llama" and export.quant == "f16"

    with page.expect_download() as download:
        page.click("#files a >> text=model.gguf")
    whole = tmp_path / "model.gguf"
    download.value.save_as(whole)
    data = whole.read_bytes()
    assert data[:4] == b"GGUF" and len(data) == export.files[0]["size"]

    # A download cut after 100 kB resumes from there with the browser's session.
    link = page.locator("#files a >> text=model.gguf").get_attribute("href")
    first = page.request.get(url + link, headers={"Range": "bytes=0-99999"})
    assert first.status == 206 and len(first.body()) == 100_000
    rest = page.request.get(url + link, headers={"Range": "bytes=100000-", "If-Range": first.headers["etag"]})
    assert rest.status == 206
    assert rest.headers["content-range"] == f"bytes 100000-{len(data) - 1}/{len(data)}"
    assert first.body() + rest.body() == data

    page.click("text=Try it in the playground")
    page.fill("#id_title", "Fix nil pointer in handler")
    page.fill("#id_max_code_tokens", "32")
    page.fill("#id_max_iterations", "2")
    page.click("#generate")
    expect(page.locator("#final")).to_be_visible(timeout=120_000)
    assert 1 <= page.locator("#iterations .iteration").count() <= 2
    expect(page.locator("#iterations .verdict").first).to_have_class(re.compile(r"\b(ok|bad)\b"))

    # A tiny model is barely trained and the page says so; Stop cuts a long generation off and says so too.
    expect(page.locator("#training-hint")).to_contain_text("Barely trained")
    page.fill("#id_max_code_tokens", "2048")
    page.fill("#id_max_iterations", "5")
    page.click("#generate")
    page.click("#stop-generation")
    expect(page.locator("#final-verdict")).to_contain_text("Stopped")
    expect(page.locator("#generate")).to_be_enabled()
    expect(page.locator("#stop-generation")).to_be_hidden()
