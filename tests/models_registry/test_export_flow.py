"""Export from the command line and the run page: a real tiny run becomes a verified GGUF / safetensors
folder, registered, downloadable, and runnable in the playground through llama.cpp."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

from models_registry.models import ExportedModel
from tests.llama import require_llama_cpp
from tests.training.support import FAST, make_dataset
from training.models import TrainingRun

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def trained_run(dataset_files):
    dataset = make_dataset(dataset_files, name="export-ds")
    tokenizer = dataset.tokenizer
    tokenizer.model_path = str(dataset.directory / "tokenizer.model")
    tokenizer.save()
    settings = [arg for key, value in FAST.items() for arg in ("--set", f"{key}={value}")]
    call_command("train", dataset.name, "--family", "gpt", "--preset", "tiny", "--name", "export-run", *settings)
    run = TrainingRun.objects.get(name="export-run")
    assert run.status == "finished" and run.checkpoints.exists()
    return run


def test_export_command_writes_a_verified_gguf_that_downloads(trained_run, viewer_client):
    require_llama_cpp()
    call_command("export", "latest", "--format", "gguf", "--quant", "f16")
    export = ExportedModel.objects.get(run=trained_run)
    assert export.status == "finished", export.message
    assert export.architecture == "llama" and export.verified is True
    assert {f["name"] for f in export.files} == {"model.gguf", "Modelfile"}
    assert "verified" in export.message and "max |Δlogit|" in export.message
    response = viewer_client.get(reverse("models_registry:download", args=[export.pk, "model.gguf"]))
    body = b"".join(response.streaming_content)
    assert body[:4] == b"GGUF" and len(body) == export.files[0]["size"]
    page = viewer_client.get(export.get_absolute_url()).content.decode()
    assert "ollama create" in page and trained_run.dataset.snapshot.name in page


def test_playground_streams_plan_code_and_iterations(trained_run, viewer_client):
    require_llama_cpp()
    call_command("export", str(trained_run.pk), "--format", "gguf", "--quant", "q8_0")
    export = ExportedModel.objects.get(run=trained_run)
    response = viewer_client.post(
        reverse("models_registry:playground_generate"),
        {
            "model": export.pk,
            "title": "Fix nil pointer",
            "body": "",
            "code_before": "func f() {}\n",
            "path": "main.go",
            "max_iterations": 2,
            "max_code_tokens": 24,
            "temperature": 0,
            "seed": 1,
        },
    )
    events = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    kinds = [event["type"] for event in events]
    assert kinds[0] == "start" and kinds[-1] == "done", events[-1]
    assert 1 <= kinds.count("iteration") <= 2
    assert events[-1]["iterations"] == kinds.count("iteration")


def test_safetensors_export_and_export_button(trained_run, operator_client):
    call_command("export", "export-run", "--format", "safetensors")
    export = ExportedModel.objects.get(run=trained_run, format="safetensors")
    assert export.status == "finished", export.message
    assert export.quant == "f32" and export.architecture == "LlamaForCausalLM"
    assert {"model.safetensors", "config.json", "tokenizer.model"} <= {f["name"] for f in export.files}
    weights = next(f for f in export.files if f["name"] == "model.safetensors")
    assert export.files[0] == weights and export.sha256 == weights["sha256"]  # the headline is the weights'
    assert all((Path(export.path) / f["name"]).stat().st_mode & 0o044 for f in export.files)
    assert export.verified is True

    from django_q.models import OrmQ

    response = operator_client.post(
        reverse("models_registry:export", args=[trained_run.pk]), {"format": "gguf", "quant": "q8_0"}
    )
    queued = ExportedModel.objects.filter(run=trained_run, format="gguf").get()
    assert response.status_code == 302 and response["Location"] == queued.get_absolute_url()
    assert queued.status == "queued" and OrmQ.objects.count() == 1

    # The same checkpoint in the same format again would be a byte-identical second model: refused, by number.
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match=rf"is already exported as safetensors f32: model #{export.pk}\."):
        call_command("export", "export-run", "--format", "safetensors")
    with pytest.raises(CommandError, match=rf"is being exported as gguf q8_0: model #{queued.pk}\."):
        call_command("export", "export-run", "--format", "gguf", "--quant", "q8_0")
    # safetensors has no quantization: asking for one is an error, not silently f32.
    with pytest.raises(CommandError, match="--quant is for GGUF"):
        call_command("export", "export-run", "--format", "safetensors", "--quant", "q8_0")
    assert ExportedModel.objects.filter(run=trained_run).count() == 2
    # A deleted file may be exported again.
    import shutil

    shutil.rmtree(export.path)
    call_command("export", "export-run", "--format", "safetensors")
    assert ExportedModel.objects.filter(run=trained_run, format="safetensors").count() == 2


def test_export_without_checkpoint_is_a_clear_error(dataset_files, operator_client):
    from django.core.management.base import CommandError

    dataset = make_dataset(dataset_files, name="no-ckpt-ds")
    run = TrainingRun.objects.create(name="empty-run", dataset=dataset, family="hrm")
    with pytest.raises(CommandError, match="no checkpoint"):
        call_command("export", "empty-run")
    response = operator_client.post(reverse("models_registry:export", args=[run.pk]), {"format": "gguf"}, follow=True)
    assert "no checkpoint" in response.content.decode()
    assert not ExportedModel.objects.exists()
