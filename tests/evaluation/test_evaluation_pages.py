"""The pages say why an evaluation or a suite was refused: an empty suite, another tokenizer, a deleted
checkpoint, an empty validation split; the run page's Evaluate card offers the suites the model can read."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from evaluation.models import EvalSuite, EvalTask, Evaluation, TaskResult
from evaluation.services.suites import create_suite
from tests.training.support import make_dataset
from training.models import Checkpoint, DatasetBuild, TokenizerVersion, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path


@pytest.fixture
def run(dataset_files):
    dataset = make_dataset(dataset_files)
    run = TrainingRun.objects.create(name="r", dataset=dataset, family="gpt", step=4)
    path = run.directory / "step_4.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"checkpoint")
    Checkpoint.objects.create(run=run, step=4, path=str(path))
    return run


def evaluate(client, run, suite, step=4):
    payload = {"suite": suite.pk, "step": step, "max_attempts": 1, "max_tokens": 8}
    return client.post(reverse("evaluation:evaluate_run", args=[run.pk]), payload, follow=True)


def test_the_run_page_offers_the_suites_and_checkpoints_an_operator_can_evaluate(run, operator_client, viewer_user):
    suite = create_suite(dataset=run.dataset, name="offered", task_count=1)
    page = operator_client.get(run.get_absolute_url()).content.decode()
    assert 'id="evaluate-form"' in page and f'<option value="{suite.pk}">offered (1 tasks)' in page
    assert '<option value="4">step 4' in page
    viewer = Client()
    viewer.force_login(viewer_user)
    assert 'id="evaluate-form"' not in viewer.get(run.get_absolute_url()).content.decode()


def test_refusals_are_shown_on_the_page(run, operator_client, dataset_files):
    empty = EvalSuite.objects.create(name="empty", dataset=run.dataset, sha256="0" * 64)
    assert "Suite empty has no tasks" in evaluate(operator_client, run, empty).content.decode()

    suite = create_suite(dataset=run.dataset, name="real", task_count=1)
    Path(run.checkpoints.get().path).unlink()
    page = evaluate(operator_client, run, suite).content.decode()
    assert "The checkpoint of run r at step 4 was deleted" in page

    tokenizer = TokenizerVersion.objects.create(name="tok-b", snapshot=run.dataset.snapshot, status="finished")
    other = DatasetBuild.objects.create(
        name="ds-b", snapshot=run.dataset.snapshot, tokenizer=tokenizer, status="finished"
    )
    shutil.copytree(dataset_files, other.directory)
    foreign = create_suite(dataset=other, name="foreign", task_count=1)
    (other.directory / "tokenizer.model").write_bytes(b"another vocabulary")
    Path(run.checkpoints.get().path).write_bytes(b"checkpoint")
    page = evaluate(operator_client, run, foreign).content.decode()
    assert "The model&#x27;s tokenizer (tok-ds-small) differs from the suite&#x27;s (tok-b" in page
    assert not Evaluation.objects.exists()


def test_a_suite_from_an_empty_validation_split_is_refused_on_the_page(run, operator_client):
    (run.dataset.directory / "val.bin").write_bytes(b"")
    (run.dataset.directory / "val.starts.u64").unlink(missing_ok=True)
    page = operator_client.post(
        reverse("evaluation:suite_create"), {"dataset": run.dataset.pk, "name": "none", "task_count": 5}, follow=True
    ).content.decode()
    assert "No suite made from ds-small: the dataset&#x27;s val split holds no records." in page
    assert not EvalSuite.objects.exists()


def test_the_dataset_page_lists_its_suites_and_links_to_make_one(run, operator_client):
    suite = create_suite(dataset=run.dataset, name="listed", task_count=2)
    page = operator_client.get(run.dataset.get_absolute_url()).content.decode()
    assert f'href="{suite.get_absolute_url()}">listed</a>' in page and "2 tasks" in page
    assert f"{reverse('evaluation:suites')}?dataset={run.dataset.pk}" in page


def _long_suite(run, count: int) -> tuple[EvalSuite, Evaluation]:
    """A suite of `count` tasks and a finished evaluation of it whose loss rises with the task number, except
    task 5, whose loss is absent."""
    suite = EvalSuite.objects.create(name="long", dataset=run.dataset, sha256="1" * 64, task_count=count)
    tasks = EvalTask.objects.bulk_create(
        EvalTask(suite=suite, index=i, record_index=i, prompt=f"prompt-{i}<CODE>", reference=f"ref-{i}", title=f"t{i}")
        for i in range(count)
    )
    evaluation = Evaluation.objects.create(suite=suite, run=run, step=4, tasks_total=count, status="finished")
    TaskResult.objects.bulk_create(
        TaskResult(evaluation=evaluation, task=task, code_loss=None if task.index == 5 else 1.0 + task.index / 100)
        for task in tasks
    )
    return suite, evaluation


def test_long_task_tables_are_paginated_and_the_results_sort_by_loss(run, operator_client):
    suite, evaluation = _long_suite(run, 120)

    first = operator_client.get(suite.get_absolute_url()).content.decode()
    assert first.count("prompt-") == 50 and "prompt-49&lt;" in first and "prompt-50&lt;" not in first
    assert "page 1 of 3" in first
    last = operator_client.get(suite.get_absolute_url() + "?page=3").content.decode()
    assert "prompt-119&lt;" in last and "prompt-99&lt;" not in last

    page = operator_client.get(evaluation.get_absolute_url()).content.decode()
    assert page.count('class="task-link"') == 50 and "page 1 of 3" in page
    worst = operator_client.get(evaluation.get_absolute_url() + "?sort=-loss").content.decode()
    links = re.findall(r"/tasks/(\d+)/\" class=\"task-link\"", worst)
    assert links[:3] == ["119", "118", "117"]
    # The absent loss sorts last in both directions, and the next page keeps the order.
    best_last_page = operator_client.get(evaluation.get_absolute_url() + "?sort=loss&page=3").content.decode()
    assert re.findall(r"/tasks/(\d+)/\" class=\"task-link\"", best_last_page)[-1] == "5"
    assert "sort=loss&page=2" in best_last_page
    # An unknown sort key falls back to task order.
    assert re.findall(
        r"/tasks/(\d+)/\" class=\"task-link\"",
        operator_client.get(evaluation.get_absolute_url() + "?sort=prompt").content.decode(),
    )[:2] == ["0", "1"]


def test_the_evaluation_page_says_why_go_vet_is_absent(run, operator_client):
    suite, evaluation = _long_suite(run, 4)
    evaluation.tasks_done = 4
    evaluation.save()
    newer = "the module asks for Go 1.24 and Go 1.19 is installed, which cannot vet it: install Go 1.24 or newer"
    reasons = {0: f"{newer}\ngo: errors parsing go.mod", 1: newer, 2: "the change spans several Go modules"}
    for index, reason in reasons.items():
        TaskResult.objects.filter(evaluation=evaluation, task__index=index).update(vet_output=reason)
    TaskResult.objects.filter(evaluation=evaluation, task__index=3).update(vet_ok=True)

    page = operator_client.get(evaluation.get_absolute_url()).content.decode()
    assert f'id="vet-note">go vet absent for 3 of 4 tasks: most often {newer}</p>' in page

    TaskResult.objects.filter(evaluation=evaluation).update(vet_ok=True)
    assert 'id="vet-note"' not in operator_client.get(evaluation.get_absolute_url()).content.decode()
