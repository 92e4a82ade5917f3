"""Create, find and delete evaluation suites: frozen held-out tasks cut from a dataset's validation split."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from corpus.models import PullRequest
from evaluation.models import EvalSuite, EvalTask
from evaluation.suites import SuiteError, SuiteTask, read_tasks, suite_hash
from hrgc_site.errors import ActionRefused, InUse, Invalid
from hrgc_site.models import JobStatus
from training.models import DatasetBuild, name_validator

MAX_TASKS = 1000
DEFAULT_TASKS = 20


def default_suite_name(dataset: DatasetBuild, task_count: int) -> str:
    return f"{dataset.name}-val-{task_count}"[:100]


def _pull_request(dataset: DatasetBuild, task: SuiteTask) -> PullRequest | None:
    """The snapshot's PR a task was cut from, matched on repository and title (a dataset keeps no PR numbers)."""
    if not task.repo or not task.title:
        return None
    matches = dataset.snapshot.pull_requests.filter(repository__full_name=task.repo, title=task.title)
    return matches.select_related("repository").order_by("number").first()


def _task_row(suite: EvalSuite, dataset: DatasetBuild, task: SuiteTask) -> EvalTask:
    pr = _pull_request(dataset, task)
    meta = dict(task.meta)
    if pr is not None:
        meta.update(number=pr.number, base_commit=pr.base_commit)
    return EvalTask(
        suite=suite,
        index=task.index,
        record_index=task.record_index,
        prompt=task.prompt,
        reference=task.reference,
        prompt_tokens=task.prompt_tokens,
        reference_tokens=task.reference_tokens,
        repo=task.repo[:200],
        title=task.title[:500],
        path=task.path[:500],
        pull_request=pr,
        meta=meta,
    )


def create_suite(
    *, dataset: DatasetBuild, name: str, task_count: int = DEFAULT_TASKS, description: str = "", user=None
) -> EvalSuite:
    """Read `task_count` tasks of the dataset's validation split and freeze them as a suite with their hash."""
    if dataset.status != JobStatus.FINISHED:
        raise ActionRefused(f"Dataset {dataset.name} is {dataset.status}; a suite needs a finished dataset.")
    if not 1 <= task_count <= MAX_TASKS:
        raise ActionRefused(f"A suite holds 1 to {MAX_TASKS:,} tasks, not {task_count}.")
    try:
        name_validator(name)
    except ValidationError as error:
        raise Invalid(error) from None
    if EvalSuite.objects.filter(name=name).exists():
        raise ActionRefused(f"A suite named {name!r} exists already; choose another name.")
    try:
        tasks = read_tasks(dataset.directory, task_count)
    except SuiteError as error:
        raise ActionRefused(f"No suite made from {dataset.name}: {error}.") from None
    except FileNotFoundError as error:
        raise ActionRefused(f"Dataset {dataset.name}'s files are missing ({error.filename}).") from None
    try:
        with transaction.atomic():
            suite = EvalSuite.objects.create(
                name=name,
                dataset=dataset,
                task_count=len(tasks),
                sha256=suite_hash(tasks),
                description=description,
                created_by=user,
            )
            EvalTask.objects.bulk_create([_task_row(suite, dataset, task) for task in tasks])
    except IntegrityError:
        raise ActionRefused(f"A suite named {name!r} exists already; choose another name.") from None
    return suite


def suite_for(*, dataset: DatasetBuild, name: str | None = None, task_count: int = DEFAULT_TASKS, user=None):
    """The suite `name`, or the dataset's default suite of `task_count` tasks (made when missing)."""
    if name:
        suite = EvalSuite.objects.filter(name=name).first()
        if suite is None:
            names = list(dataset.eval_suites.values_list("name", flat=True)[:10])
            known = f" Suites of dataset {dataset.name}: {', '.join(names)}." if names else ""
            raise ActionRefused(f"No suite named {name!r}.{known}")
        return suite
    default = default_suite_name(dataset, task_count)
    suite = EvalSuite.objects.filter(name=default, dataset=dataset).first()
    return suite or create_suite(dataset=dataset, name=default, task_count=task_count, user=user)


def delete_suite(suite: EvalSuite) -> None:
    """Delete a suite nobody evaluated on (scores on it would lose their tasks)."""
    used = suite.evaluations.count()
    if used:
        raise InUse(f"Suite {suite.name} is used by {used} evaluation(s); delete those first.")
    suite.delete()
