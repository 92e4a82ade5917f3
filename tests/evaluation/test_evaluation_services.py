"""Queueing evaluations: the bad inputs (empty suite, another tokenizer, a deleted checkpoint or GGUF), one
evaluation per model and suite at a time, resume, cancel and delete."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from evaluation.models import EvalSuite, Evaluation, TaskResult
from evaluation.services.evaluations import (
    cancel_evaluation,
    create_evaluation,
    delete_evaluation,
    reopen,
)
from evaluation.services.suites import create_suite
from hrgc_site.errors import ActionRefused, InUse
from models_registry.models import ExportedModel
from tests.training.support import make_dataset
from training.models import Checkpoint, DatasetBuild, TokenizerVersion, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path


@pytest.fixture
def world(dataset_files):
    dataset = make_dataset(dataset_files)
    suite = create_suite(dataset=dataset, name="s", task_count=2)
    run = TrainingRun.objects.create(name="r", dataset=dataset, family="gpt", step=4, tokens_per_step=128)
    path = run.directory / "checkpoints" / "step_0000004.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"a checkpoint")
    checkpoint = Checkpoint.objects.create(run=run, step=4, path=str(path))
    return dataset, suite, run, checkpoint


def test_a_checkpoint_evaluation_is_queued_with_its_settings(world):
    _, suite, run, checkpoint = world
    evaluation = create_evaluation(suite=suite, run=run, settings={"max_tokens": 32})
    assert evaluation.status == "queued" and evaluation.backend == "torch"
    assert evaluation.checkpoint == checkpoint and evaluation.step == 4 and evaluation.tasks_total == 2
    assert evaluation.training_tokens == 4 * 128
    assert evaluation.settings == {"max_attempts": 3, "max_tokens": 32}


def test_an_empty_suite_is_refused(world):
    dataset, _, run, _ = world
    empty = EvalSuite.objects.create(name="empty", dataset=dataset, sha256="0" * 64)
    with pytest.raises(ActionRefused, match="Suite empty has no tasks"):
        create_evaluation(suite=empty, run=run)


def test_a_deleted_checkpoint_is_refused(world):
    _, suite, run, checkpoint = world
    Path(checkpoint.path).unlink()
    with pytest.raises(ActionRefused, match="checkpoint of run r at step 4 was deleted"):
        create_evaluation(suite=suite, run=run, step=4)
    with pytest.raises(ActionRefused, match="has no checkpoint at step 9"):
        create_evaluation(suite=suite, run=run, step=9)
    assert not Evaluation.objects.exists()


def test_a_model_with_another_tokenizer_is_refused(world, dataset_files):
    dataset, suite, _, _ = world
    other_tokenizer = TokenizerVersion.objects.create(name="tok-other", snapshot=dataset.snapshot, status="finished")
    other = DatasetBuild.objects.create(
        name="ds-other", snapshot=dataset.snapshot, tokenizer=other_tokenizer, status="finished"
    )
    shutil.copytree(dataset_files, other.directory)
    run = TrainingRun.objects.create(name="r-other", dataset=other, family="gpt")
    path = run.directory / "c.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x")
    Checkpoint.objects.create(run=run, step=1, path=str(path))
    # Another tokenizer row with a byte-identical file reads the same ids: allowed.
    assert create_evaluation(suite=suite, run=run).status == "queued"
    (other.directory / "tokenizer.model").write_bytes(b"another vocabulary")
    Evaluation.objects.all().delete()
    with pytest.raises(ActionRefused, match=r"tokenizer \(tok-other\) differs from the suite's \(tok-ds-small"):
        create_evaluation(suite=suite, run=run)


def test_a_gguf_without_its_file_is_refused(world):
    _, suite, run, checkpoint = world
    model = ExportedModel.objects.create(run=run, checkpoint=checkpoint, step=4, format="gguf", status="finished")
    with pytest.raises(ActionRefused, match="GGUF file of export .* was deleted"):
        create_evaluation(suite=suite, exported_model=model)
    model.format = "safetensors"
    with pytest.raises(ActionRefused, match="evaluations run GGUF files"):
        create_evaluation(suite=suite, exported_model=model)


def test_one_evaluation_per_model_and_suite_runs_at_a_time_and_a_stopped_one_resumes(world):
    _, suite, run, _ = world
    first = create_evaluation(suite=suite, run=run)
    with pytest.raises(InUse, match="queued already"):
        create_evaluation(suite=suite, run=run)
    Evaluation.objects.filter(pk=first.pk).update(status="running", heartbeat_at=timezone.now())
    with pytest.raises(InUse, match=r"running already .* If its process was killed, it counts as dead \d+ s from now"):
        create_evaluation(suite=suite, run=run)
    cancel_evaluation(first)
    first.refresh_from_db()
    assert first.status == "stopping" and first.cancel_requested
    with pytest.raises(InUse, match="cancel it first"):
        delete_evaluation(first)
    Evaluation.objects.filter(pk=first.pk).update(status="stopped")
    TaskResult.objects.create(evaluation=first, task=suite.tasks.first(), code_loss=1.0)

    again = create_evaluation(suite=suite, run=run)  # the same model and suite: the stopped one, resumed
    assert again.pk == first.pk and again.status == "queued" and not again.cancel_requested
    assert "1 of 2 tasks done" in again.message and again.results.count() == 1
    with pytest.raises(ActionRefused, match="only a stopped, failed or dead one resumes"):
        reopen(again)


def test_a_stopped_evaluation_resumes_only_with_the_same_settings(world):
    _, suite, run, _ = world
    slow = create_evaluation(suite=suite, run=run, settings={"max_attempts": 3, "max_tokens": 256})
    Evaluation.objects.filter(pk=slow.pk).update(status="stopped")
    TaskResult.objects.create(evaluation=slow, task=suite.tasks.first(), code_loss=1.0)

    quicker = create_evaluation(suite=suite, run=run, settings={"max_attempts": 1, "max_tokens": 32})
    assert quicker.pk != slow.pk and quicker.settings == {"max_attempts": 1, "max_tokens": 32}
    assert quicker.results.count() == 0
    Evaluation.objects.filter(pk=quicker.pk).update(status="stopped")
    assert create_evaluation(suite=suite, run=run, settings={"max_tokens": 256}).pk == slow.pk


def test_a_dead_evaluation_is_marked_dead_and_resumes(world):
    _, suite, run, _ = world
    evaluation = create_evaluation(suite=suite, run=run)
    Evaluation.objects.filter(pk=evaluation.pk).update(
        status="running", worker="gone:1", started_at=timezone.now(), heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    evaluation.refresh_from_db()
    resumed = reopen(evaluation)
    assert resumed.status == "queued"


def test_a_queued_evaluation_is_cancelled_at_once_and_deleted(world):
    _, suite, run, _ = world
    evaluation = create_evaluation(suite=suite, run=run)
    cancel_evaluation(evaluation)
    evaluation.refresh_from_db()
    assert evaluation.status == "stopped"
    delete_evaluation(evaluation)
    assert not Evaluation.objects.exists()
