"""Rows the board's tests share: a suite of hand-written tasks and finished evaluations with per-task results."""

from __future__ import annotations

from tests.factories import make_lineage


def make_suite(name: str = "suite-a", tasks: int = 3, dataset=None):
    from evaluation.models import EvalSuite, EvalTask

    if dataset is None:
        dataset = make_lineage(name).dataset
    suite = EvalSuite.objects.create(name=name, dataset=dataset, task_count=tasks, sha256="0" * 64)
    for index in range(tasks):
        EvalTask.objects.create(
            suite=suite,
            index=index,
            record_index=index,
            prompt=f"<PR_TITLE> Fix thing {index}\n<CONTEXT>\nfunc f{index}() {{}}\n<CODE>",
            reference=f"func f{index}() {{ return }}",
            title=f"Fix thing {index}",
            repo="acme/widgets",
            path=f"pkg/f{index}.go",
        )
    return suite


def make_evaluation(
    suite,
    run,
    *,
    step: int = 10,
    tokens: int = 1000,
    metrics: dict | None = None,
    outputs=None,
    status: str = "finished",
    export=None,
):
    """A finished evaluation of `run` at `step` with one result per task (output `outputs[i]`)."""
    from evaluation.models import Evaluation, TaskResult

    evaluation = Evaluation.objects.create(
        suite=suite,
        run=run,
        step=step,
        training_tokens=tokens,
        backend="gguf" if export else "torch",
        exported_model=export,
        status=status,
        tasks_total=suite.task_count,
        tasks_done=suite.task_count,
        metrics=metrics or {},
    )
    for task in suite.tasks.all():
        output = outputs[task.index] if outputs else f"func f{task.index}() {{ /* {run.name}@{step} */ }}"
        TaskResult.objects.create(evaluation=evaluation, task=task, output=output, attempts=[{"code": output}])
    return evaluation
