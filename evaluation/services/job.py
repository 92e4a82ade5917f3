"""The evaluation job's body: load the model once, score each remaining task, store its result as it
finishes, and aggregate. The worker (evaluation.tasks) and `manage.py evaluate` run this same code."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from django.db.models import Sum

from corpus.github.clones import clone_path
from corpus.models import Source
from corpus.services.ingest import clean_json
from corpus.services.repositories import clones_root
from evaluation.models import EvalTask, Evaluation, TaskResult
from evaluation.services.evaluations import checkpoint_file, gguf_file
from hrgc_site.errors import ActionRefused
from hrgc_site.jobs import Progress
from hrgc_site.models import JobStatus
from hrgc_site.system import human_duration
from training.dataset import TOKENIZER_FILE

RESULT_FIELDS = (
    "code_loss",
    "code_tokens",
    "correct_tokens",
    "attempts",
    "output",
    "exact_match",
    "edit_similarity",
    "parses_first",
    "parses_final",
    "gofmt_ok",
    "vet_ok",
    "vet_output",
    "seconds",
)


def load_scorer(evaluation: Evaluation):
    """The scorer of the evaluation's backend (ActionRefused when its file is gone)."""
    from evaluation.scorers import GGUFScorer, TorchScorer

    if evaluation.backend == Evaluation.Backend.GGUF:
        return GGUFScorer(gguf_file(evaluation.exported_model))
    from training.devices import pick_device

    path = checkpoint_file(evaluation.checkpoint, evaluation.run, evaluation.step)
    device = pick_device((evaluation.settings or {}).get("device", "auto"))
    return TorchScorer.from_checkpoint(path, tokenizer_file(evaluation.run), device=device)


def tokenizer_file(run) -> Path:
    """The tokenizer the run trained with: the copy in its dataset's folder, else the tokenizer version's file."""
    copy = run.dataset.directory / TOKENIZER_FILE
    return copy if copy.is_file() else Path(run.dataset.tokenizer.model_path)


def git_dir_of(task: EvalTask) -> Path | None:
    """Where the task's repository history is at hand: its clone under DATA_DIR/clones, or the local
    clone it was imported from; None when neither exists (vet is then absent)."""
    pr = task.pull_request
    if pr is None or not pr.base_commit:
        return None
    repository = pr.repository
    clone = clone_path(clones_root(), repository.full_name)
    if (clone / "HEAD").is_file():
        return clone
    if repository.source == Source.GIT and repository.provenance and Path(repository.provenance).is_dir():
        return Path(repository.provenance)
    return None


def result_rows(evaluation: Evaluation) -> list[dict]:
    return list(TaskResult.objects.filter(evaluation=evaluation).values(*RESULT_FIELDS))


def store_aggregates(evaluation: Evaluation) -> dict:
    from evaluation.metrics import aggregate

    summary = aggregate(result_rows(evaluation))
    done = TaskResult.objects.filter(evaluation=evaluation).count()
    seconds = TaskResult.objects.filter(evaluation=evaluation).aggregate(total=Sum("seconds"))["total"] or 0.0
    Evaluation.objects.filter(pk=evaluation.pk).update(metrics=summary, tasks_done=done, seconds=seconds)
    evaluation.metrics, evaluation.tasks_done = summary, done
    return summary


def run_evaluation(evaluation: Evaluation, echo: Callable[[str], None] | None = None) -> tuple[str, str]:
    """Score every task without a result yet (a resumed evaluation keeps the finished ones)."""
    from evaluation.scoring import score_task

    echo = echo or (lambda line: None)
    progress = Progress(evaluation)
    tasks = list(
        evaluation.suite.tasks.exclude(results__evaluation=evaluation).select_related("pull_request__repository")
    )
    total = evaluation.suite.tasks.count()
    done = total - len(tasks)
    progress.update(
        force=True,
        tasks_total=total,
        tasks_done=done,
        progress=done / total if total else 1.0,
        message=f"loading the model ({done} of {total} tasks done before)",
    )
    torch_backend = evaluation.backend == Evaluation.Backend.TORCH
    try:
        scorer = load_scorer(evaluation)
    except ActionRefused as error:
        return JobStatus.FAILED, str(error)
    settings = evaluation.settings or {}
    attempts, tokens = settings.get("max_attempts", 3), settings.get("max_tokens", 256)
    echo(
        f"{len(tasks)} tasks to score, each up to {attempts} attempt{'s' if attempts != 1 else ''} of {tokens} "
        f"tokens ({'PyTorch' if torch_backend else 'llama.cpp'}, with a KV cache: --max-tokens sets the pace)"
    )
    began, scored = time.monotonic(), 0
    for task in tasks:
        if progress.should_stop():
            store_aggregates(evaluation)
            return JobStatus.STOPPED, f"cancelled after {done} of {total} tasks; evaluate again to resume"
        git_dir = git_dir_of(task)
        row = score_task(
            scorer,
            prompt=task.prompt,
            reference=task.reference,
            max_attempts=int(settings.get("max_attempts", 3)),
            max_tokens=int(settings.get("max_tokens", 256)),
            git_dir=git_dir,
            base_commit=(task.meta or {}).get("base_commit", ""),
            path=task.path,
        )
        progress.check_owner()
        # An untrained model can write NUL (a <0x00> byte piece): text and jsonb columns refuse it.
        TaskResult.objects.update_or_create(evaluation=evaluation, task=task, defaults=clean_json(row))
        # The page's metrics cover the finished tasks at every moment, so a killed evaluation shows them too.
        store_aggregates(evaluation)
        done, scored = done + 1, scored + 1
        left = time_left(time.monotonic() - began, scored, total - done)
        echo(
            f"task {task.index}: loss {row['code_loss'] if row['code_loss'] is None else round(row['code_loss'], 3)}"
            f" attempts {len(row['attempts'])} parses {row['parses_final']} ({row['seconds']:.1f} s{left})"
        )
        progress.update(force=True, tasks_done=done, progress=done / total, message=f"{done} of {total} tasks{left}")
    summary = store_aggregates(evaluation)
    return JobStatus.FINISHED, f"{done} tasks: " + summary_line(summary)


def time_left(elapsed: float, scored: int, remaining: int) -> str:
    """ "; about 40 min left" from the pace of the tasks scored so far in this run ("" when none remain):
    a task of an undertrained PyTorch model can take minutes, and the user should know before waiting."""
    if not remaining or not scored:
        return ""
    return f"; about {human_duration(elapsed / scored * remaining)} left"


def summary_line(summary: dict) -> str:
    def share(key):
        value = summary.get(key)
        return "—" if value is None else f"{100 * value:.0f}%"

    loss = summary.get("code_loss")
    return (
        f"code loss {'—' if loss is None else f'{loss:.3f}'}, exact {share('exact_match')}, "
        f"parses {share('parse_first')} → {share('parse_final')}"
    )
