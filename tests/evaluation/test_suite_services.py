"""Suites made from a dataset on real PostgreSQL: tasks, hash, PR mapping, refusals and deletion."""

from __future__ import annotations

import pytest

from evaluation.models import EvalSuite, EvalTask, Evaluation
from evaluation.services.suites import create_suite, delete_suite, suite_for
from evaluation.suites import read_tasks, suite_hash
from hrgc_site.errors import ActionRefused, InUse
from tests.evaluation.app_support import dataset_with_prs
from tests.training.support import make_dataset

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path


def test_a_suite_freezes_the_tasks_with_their_hash_and_their_pull_requests(dataset_files, operator_user):
    dataset = dataset_with_prs(dataset_files)
    suite = create_suite(dataset=dataset, name="val-4", task_count=4, user=operator_user)

    tasks = list(suite.tasks.all())
    assert suite.task_count == len(tasks) == 4 and [t.index for t in tasks] == [0, 1, 2, 3]
    assert suite.sha256 == suite_hash(read_tasks(dataset.directory, 4))
    for task in tasks:
        assert task.prompt.endswith("<CODE>") and task.reference.endswith("</CODE>")
        assert task.pull_request is not None and task.pull_request.title == task.title
        assert task.pull_request.repository.full_name == task.repo
        assert task.meta["base_commit"] == task.pull_request.base_commit and task.meta["number"]


def test_without_a_matching_pr_the_task_has_none(dataset_files):
    suite = create_suite(dataset=make_dataset(dataset_files), name="no-prs", task_count=2)
    assert suite.tasks.filter(pull_request__isnull=False).count() == 0
    assert "base_commit" not in suite.tasks.first().meta


def test_refusals_are_clear(dataset_files):
    dataset = make_dataset(dataset_files)
    create_suite(dataset=dataset, name="taken", task_count=1)
    with pytest.raises(ActionRefused, match="exists already"):
        create_suite(dataset=dataset, name="taken", task_count=1)
    with pytest.raises(ActionRefused, match="1 to 1,000 tasks"):
        create_suite(dataset=dataset, name="zero", task_count=0)
    (dataset.directory / "val.bin").write_bytes(b"")
    (dataset.directory / "val.starts.u64").unlink(missing_ok=True)
    with pytest.raises(ActionRefused, match="val split holds no records"):
        create_suite(dataset=dataset, name="empty", task_count=3)
    dataset.status = "running"
    with pytest.raises(ActionRefused, match="needs a finished dataset"):
        create_suite(dataset=dataset, name="early", task_count=3)
    assert list(EvalSuite.objects.values_list("name", flat=True)) == ["taken"]
    assert EvalTask.objects.count() == 1


def test_the_default_suite_is_made_once_and_reused(dataset_files):
    dataset = make_dataset(dataset_files)
    first = suite_for(dataset=dataset, task_count=3)
    assert first.name == "ds-small-val-3" and first.task_count == 3
    assert suite_for(dataset=dataset, task_count=3).pk == first.pk
    assert suite_for(dataset=dataset, name="ds-small-val-3").pk == first.pk
    with pytest.raises(ActionRefused, match="No suite named 'nope'"):
        suite_for(dataset=dataset, name="nope")


def test_a_used_suite_is_not_deleted(dataset_files):
    from training.models import TrainingRun

    dataset = make_dataset(dataset_files)
    suite = create_suite(dataset=dataset, name="used", task_count=1)
    run = TrainingRun.objects.create(name="r", dataset=dataset, family="gpt")
    Evaluation.objects.create(suite=suite, run=run, status="finished")
    with pytest.raises(InUse, match="used by 1 evaluation"):
        delete_suite(suite)
    Evaluation.objects.all().delete()
    delete_suite(suite)
    assert not EvalSuite.objects.exists() and not EvalTask.objects.exists()
