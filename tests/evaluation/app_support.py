"""Helpers the suite/evaluation tests share: a finished dataset with a trained tiny run, and PR rows that the
dataset's validation records were cut from."""

from __future__ import annotations

from corpus.models import PullRequest, Repository
from evaluation.suites import read_tasks
from tests.training.support import make_dataset, tiny_run
from training.tasks.runs import train_run

# Two steps of the tiny preset, one checkpoint at the end: enough for every metric to be computed.
SHORT = {"max_steps": "2", "eval_steps": "2", "save_steps": "2", "logging_steps": "1", "warmup_steps": "1"}


def dataset_with_prs(dataset_files, name: str = "ds-eval"):
    """A finished dataset whose snapshot holds a PR row for each validation task (repo + title)."""
    dataset = make_dataset(dataset_files, name=name)
    for task in read_tasks(dataset.directory, 100):
        repo, _ = Repository.objects.get_or_create(full_name=task.repo, defaults={"license_spdx": "MIT"})
        number = int(task.title.rsplit(" ", 1)[-1]) + 1
        pr, _ = PullRequest.objects.get_or_create(
            repository=repo, number=number, defaults={"title": task.title, "base_commit": f"{number:040x}"}
        )
        dataset.snapshot.pull_requests.add(pr)
    return dataset


def trained_run(dataset, name: str = "eval-run", family: str = "gpt"):
    """A tiny run trained for two steps by the real training task; its checkpoint is on disk."""
    run = tiny_run(dataset, name=name, family=family, **SHORT)
    assert train_run(run.pk) == "finished"
    run.refresh_from_db()
    return run
