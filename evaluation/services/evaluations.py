"""Queue, resume, cancel and delete evaluations, after checking that the model fits the suite."""

from __future__ import annotations

from pathlib import Path

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from evaluation.models import EvalSuite, Evaluation
from evaluation.suites import tokenizer_sha256
from hrgc_site.errors import ActionRefused, InUse
from hrgc_site.jobs import enqueue_on_commit, mark_dead
from hrgc_site.models import JobStatus, heartbeat_dead_after
from models_registry.models import ExportedModel
from training.models import Checkpoint, TrainingRun

TASK = "evaluation.tasks.evaluate_task"
DEFAULT_SETTINGS = {"max_attempts": 3, "max_tokens": 256}
# What the form and `manage.py evaluate` accept: 0 tokens ran a whole evaluation of empty attempts.
SETTING_LIMITS = {"max_attempts": (1, 5), "max_tokens": (8, 2048)}
RESUMABLE = (JobStatus.STOPPED, JobStatus.FAILED, JobStatus.DEAD)


# ?sort= keys of an evaluation's task table -> TaskResult fields; an unknown key sorts by task number.
RESULT_SORTS = {"task": "task__index", "loss": "code_loss", "edit": "edit_similarity", "seconds": "seconds"}


def sorted_results(evaluation: Evaluation, sort: str):
    """The evaluation's task results in the order `sort` asks ("loss", "-edit", …): a user looking for the
    worst tasks sorts by loss descending. Absent values (an unmeasured task) sort last either way; ties
    keep task order. Returns (queryset, the sort applied)."""
    key = sort.lstrip("-")
    if key not in RESULT_SORTS:
        sort, key = "task", "task"
    field = F(RESULT_SORTS[key])
    order = field.desc(nulls_last=True) if sort.startswith("-") else field.asc(nulls_last=True)
    results = evaluation.results.select_related("task").order_by(order, "task__index")
    return results, sort


def vet_absent_reasons(evaluation: Evaluation) -> list[str]:
    """What `go vet` said on each task of `evaluation` it gave no verdict for (presentation.vet_absent_note)."""
    return list(
        evaluation.results.filter(vet_ok__isnull=True).exclude(vet_output="").values_list("vet_output", flat=True)
    )


def checked_settings(settings: dict | None) -> dict:
    """The generation settings with defaults filled in, or ActionRefused naming the one out of range."""
    merged = {**DEFAULT_SETTINGS, **(settings or {})}
    for key, (low, high) in SETTING_LIMITS.items():
        if not low <= int(merged[key]) <= high:
            name = key.replace("_", " ")  # the form's label and the option (--max-tokens) both read so
            raise ActionRefused(f"{name.capitalize()} is {merged[key]}; it takes {low} to {high}.")
    return merged


def _tokenizer_matches(run: TrainingRun, suite: EvalSuite) -> None:
    """ActionRefused unless the model reads the suite's tokens: the same tokenizer, or an identical file."""
    model_tokenizer, suite_tokenizer = run.dataset.tokenizer, suite.dataset.tokenizer
    if model_tokenizer.pk == suite_tokenizer.pk:
        return
    try:
        same = tokenizer_sha256(run.dataset.directory) == tokenizer_sha256(suite.dataset.directory)
    except FileNotFoundError:
        same = False
    if not same:
        raise ActionRefused(
            f"The model's tokenizer ({model_tokenizer.name}) differs from the suite's "
            f"({suite_tokenizer.name}, dataset {suite.dataset.name}): its token ids would mean other text. "
            "Evaluate it on a suite of a dataset built with its own tokenizer."
        )


def checkpoint_file(checkpoint: Checkpoint | None, run: TrainingRun, step: int) -> Path:
    """The checkpoint's file, or ActionRefused saying it was deleted."""
    if checkpoint is None or not checkpoint.path or not Path(checkpoint.path).is_file():
        where = f" ({checkpoint.path})" if checkpoint is not None and checkpoint.path else ""
        raise ActionRefused(
            f"The checkpoint of run {run.name} at step {step} was deleted{where}; choose another checkpoint."
        )
    return Path(checkpoint.path)


def gguf_file(model: ExportedModel) -> Path:
    """The exported model's GGUF file, or ActionRefused saying why there is none."""
    if model.format != ExportedModel.Format.GGUF:
        raise ActionRefused(f"{model} is a {model.get_format_display()} export; evaluations run GGUF files.")
    if model.status != JobStatus.FINISHED:
        raise ActionRefused(f"Export {model} is {model.status}; evaluate it once it has finished.")
    path = model.registered_file("model.gguf")
    if path is None:
        raise ActionRefused(f"The GGUF file of export {model} was deleted.")
    return path


def _target(*, run, step, exported_model) -> dict:
    """The evaluation's model: a run's checkpoint (the latest when step is None) or an exported GGUF."""
    if exported_model is not None:
        gguf_file(exported_model)
        return {
            "backend": Evaluation.Backend.GGUF,
            "run": exported_model.run,
            "exported_model": exported_model,
            "checkpoint": exported_model.checkpoint,
            "step": exported_model.step,
        }
    checkpoints = run.checkpoints.order_by("-step")
    checkpoint = checkpoints.filter(step=step).first() if step is not None else checkpoints.first()
    if checkpoint is None:
        steps = ", ".join(str(s) for s in checkpoints.values_list("step", flat=True)[:20])
        where = f" at step {step}." if step is not None else "."
        raise ActionRefused(
            f"Run {run.name} has no checkpoint{where}" + (f" Its checkpoints: steps {steps}." if steps else "")
        )
    checkpoint_file(checkpoint, run, checkpoint.step)
    return {"backend": Evaluation.Backend.TORCH, "run": run, "checkpoint": checkpoint, "step": checkpoint.step}


def _training_tokens(run: TrainingRun, step: int) -> int:
    return step * run.tokens_per_step if run.tokens_per_step else (run.tokens if step == run.step else 0)


def create_evaluation(
    *,
    suite: EvalSuite,
    run: TrainingRun | None = None,
    step: int | None = None,
    exported_model: ExportedModel | None = None,
    settings: dict | None = None,
    user=None,
) -> Evaluation:
    """A queued evaluation row after every check (ActionRefused with the reason otherwise). An earlier
    evaluation of the same model on the same suite that stopped, failed or died is resumed instead:
    its finished tasks are kept, when it was made with the same settings."""
    settings = checked_settings(settings)
    tasks = suite.tasks.count()
    if not tasks:
        raise ActionRefused(f"Suite {suite.name} has no tasks; make a suite with at least one.")
    target = _target(run=run, step=step, exported_model=exported_model)
    _tokenizer_matches(target["run"], suite)
    same = Evaluation.objects.filter(
        suite=suite,
        backend=target["backend"],
        run=target["run"],
        step=target["step"],
        exported_model=target.get("exported_model"),
    )
    for earlier in same.filter(status__in=[*RESUMABLE, JobStatus.RUNNING, JobStatus.STOPPING, JobStatus.QUEUED]):
        if earlier.looks_dead:
            mark_dead(earlier)
            earlier.refresh_from_db()
        if earlier.is_active:
            raise InUse(f"{earlier} is {earlier.status} already (evaluation #{earlier.pk})." + _if_killed(earlier))
        # Resumed only with the same settings: its finished tasks were generated with them. Rerunning a
        # slow evaluation with a lower --max-tokens starts a new one instead of silently keeping the old cap.
        if earlier.settings == settings:
            return reopen(earlier)
    return Evaluation.objects.create(
        suite=suite,
        tasks_total=tasks,
        settings=settings,
        training_tokens=_training_tokens(target["run"], target["step"]),
        created_by=user,
        message="queued",
        **target,
    )


def _if_killed(evaluation: Evaluation) -> str:
    """What to do when the running evaluation's process was in fact killed (Ctrl-C, kill): its row says
    running until its heartbeat is older than HRGC_HEARTBEAT_DEAD_AFTER, then evaluating again resumes it."""
    if evaluation.status == JobStatus.QUEUED:
        return ""
    last = evaluation.heartbeat_at or evaluation.started_at
    if last is None:
        return ""
    wait = max(0, int((last + heartbeat_dead_after() - timezone.now()).total_seconds()))
    return (
        f" If its process was killed, it counts as dead {wait} s from now (no heartbeat for "
        f"{int(heartbeat_dead_after().total_seconds())} s); evaluate again then to resume it."
    )


def reopen(evaluation: Evaluation) -> Evaluation:
    """Queue a stopped, failed or dead evaluation again; the job skips the tasks it has results for."""
    if evaluation.looks_dead:
        mark_dead(evaluation)
        evaluation.refresh_from_db()
    if evaluation.status not in RESUMABLE:
        raise ActionRefused(
            f"Evaluation #{evaluation.pk} is {evaluation.status}; only a stopped, failed or dead one resumes."
        )
    done = evaluation.results.count()
    Evaluation.objects.filter(pk=evaluation.pk, status=evaluation.status).update(
        status=JobStatus.QUEUED,
        cancel_requested=False,
        finished_at=None,
        message=f"queued to resume: {done} of {evaluation.tasks_total} tasks done",
    )
    evaluation.refresh_from_db()
    return evaluation


@transaction.atomic
def request_evaluation(**kwargs) -> Evaluation:
    evaluation = create_evaluation(**kwargs)
    enqueue_on_commit(evaluation, TASK)
    return evaluation


@transaction.atomic
def resume_evaluation(evaluation: Evaluation) -> Evaluation:
    evaluation = reopen(evaluation)
    enqueue_on_commit(evaluation, TASK)
    return evaluation


def cancel_evaluation(evaluation: Evaluation) -> None:
    """Ask a running evaluation to stop after its current task; a queued one stops before it starts."""
    if Evaluation.objects.filter(pk=evaluation.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.STOPPED, cancel_requested=True, finished_at=timezone.now(), message="cancelled"
    ):
        return
    Evaluation.objects.filter(pk=evaluation.pk).update(cancel_requested=True)
    Evaluation.objects.filter(pk=evaluation.pk, status__in=[JobStatus.RUNNING, JobStatus.WAITING]).update(
        status=JobStatus.STOPPING
    )


def delete_evaluation(evaluation: Evaluation) -> None:
    if evaluation.is_active and not evaluation.looks_dead:
        raise InUse(f"Evaluation #{evaluation.pk} is {evaluation.status}; cancel it first.")
    evaluation.delete()
