"""The evaluation job on a tiny trained run, against real PostgreSQL: a result per task, the aggregates,
cancel, a deleted checkpoint, and a killed evaluation that resumes without redoing finished tasks."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from corpus.models import PullRequest, Repository, Source
from evaluation.models import EvalTask, Evaluation, TaskResult
from evaluation.services.evaluations import cancel_evaluation, create_evaluation, reopen
from evaluation.services.job import git_dir_of, run_evaluation, time_left
from evaluation.services.suites import create_suite
from hrgc_site.jobs import run_job
from models_registry.models import ExportedModel
from models_registry.services import create_export, run_export
from tests.evaluation.app_support import base_files, dataset_with_prs, go_repository, trained_run
from tests.llama import require_llama_cpp

pytestmark = pytest.mark.django_db(transaction=True)
FAST = {"max_attempts": 2, "max_tokens": 8}


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path


@pytest.fixture
def trained(dataset_files):
    dataset = dataset_with_prs(dataset_files)
    return trained_run(dataset), create_suite(dataset=dataset, name="s3", task_count=3)


def test_every_task_gets_a_result_and_the_evaluation_its_aggregates(trained):
    run, suite = trained
    evaluation = create_evaluation(suite=suite, run=run, settings=FAST)

    lines = []
    assert run_job(Evaluation, evaluation.pk, lambda job: run_evaluation(job, echo=lines.append)) == "finished"

    evaluation.refresh_from_db()
    assert evaluation.tasks_done == evaluation.tasks_total == 3 and evaluation.progress == 1.0
    # The user sees the pace: each task's seconds and, while tasks remain, the time left at that pace.
    assert (
        lines[0]
        == "3 tasks to score, each up to 2 attempts of 8 tokens (PyTorch, with a KV cache: --max-tokens sets the pace)"
    )
    assert re.fullmatch(r"task 0: .* \(\d+\.\d s; about \d+ (s|min( \d+ s)?) left\)", lines[1])
    assert re.fullmatch(r"task 2: .* \(\d+\.\d s\)", lines[3])
    # The job card's message says the same: 40 min at the pace of 2 tasks in 10 min, for 8 tasks left.
    assert time_left(600.0, 2, 8) == "; about 40 min left" and time_left(600.0, 2, 0) == ""
    results = list(evaluation.results.order_by("task__index"))
    assert [r.task.index for r in results] == [0, 1, 2]
    for result in results:
        assert result.code_loss > 0 and result.code_tokens > 0
        assert 0 <= result.correct_tokens <= result.code_tokens
        assert 1 <= len(result.attempts) <= 2
        assert {"code", "parses", "errors", "decision"} <= result.attempts[0].keys()
        assert result.parses_first is not None and result.parses_final is not None
        assert result.exact_match is not None and 0.0 <= result.edit_similarity <= 1.0
        # The PR's base commit is known but no clone of its repository is at hand: vet is absent, not failed.
        assert result.vet_ok is None and result.task.meta["base_commit"]
    metrics = evaluation.metrics
    assert metrics["n_tasks"] == 3
    mean_loss = sum(r.code_loss * r.code_tokens for r in results) / sum(r.code_tokens for r in results)
    assert metrics["code_loss"] == pytest.approx(mean_loss, rel=1e-6)
    assert metrics["vet_ok"] is None
    assert "3 tasks" in evaluation.message


def test_cancel_stops_between_tasks_and_resume_finishes_the_rest(trained):
    run, suite = trained
    evaluation = create_evaluation(suite=suite, run=run, settings=FAST)
    seen: list[str] = []

    def cancel_after_first(line: str) -> None:
        if line.startswith("task "):
            seen.append(line)
            cancel_evaluation(evaluation)

    status = run_job(Evaluation, evaluation.pk, lambda job: run_evaluation(job, echo=cancel_after_first))
    assert status == "stopped" and len(seen) == 1
    evaluation.refresh_from_db()
    assert evaluation.tasks_done == 1 and evaluation.metrics["n_tasks"] == 1
    kept = TaskResult.objects.get(evaluation=evaluation)

    reopen(evaluation)
    seen.clear()
    assert run_job(Evaluation, evaluation.pk, lambda job: run_evaluation(job, echo=seen.append)) == "finished"
    assert len([line for line in seen if line.startswith("task ")]) == 2
    assert f"task {kept.task.index}:" not in " ".join(seen)
    assert TaskResult.objects.get(pk=kept.pk).created_at == kept.created_at
    evaluation.refresh_from_db()
    assert evaluation.tasks_done == 3 and evaluation.metrics["n_tasks"] == 3


def test_a_killed_worker_is_found_dead_and_its_evaluation_resumes_without_redoing_tasks(trained):
    run, suite = trained
    evaluation = create_evaluation(suite=suite, run=run, settings=FAST)

    class Killed(BaseException):  # stands for SIGKILL: nothing after it runs, the row stays "running"
        pass

    def killed_after_first(line: str) -> None:
        if line.startswith("task "):
            raise Killed

    with pytest.raises(Killed):
        run_job(Evaluation, evaluation.pk, lambda job: run_evaluation(job, echo=killed_after_first))
    Evaluation.objects.filter(pk=evaluation.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    evaluation.refresh_from_db()
    assert evaluation.status == "running" and evaluation.looks_dead
    first = TaskResult.objects.get(evaluation=evaluation)
    # The page's metrics already cover the finished task, though the job never reached its end.
    assert evaluation.tasks_done == 1 and evaluation.metrics["n_tasks"] == 1
    assert evaluation.metrics["code_loss"] == pytest.approx(first.code_loss)

    again = create_evaluation(suite=suite, run=run, settings=FAST)  # "Evaluate" again: the dead one resumes
    assert again.pk == evaluation.pk and again.status == "queued"
    seen: list[str] = []
    assert run_job(Evaluation, evaluation.pk, lambda job: run_evaluation(job, echo=seen.append)) == "finished"
    assert len([line for line in seen if line.startswith("task ")]) == 2
    assert TaskResult.objects.filter(evaluation=evaluation).count() == 3
    assert TaskResult.objects.get(pk=first.pk).created_at == first.created_at


def test_a_checkpoint_deleted_after_queueing_fails_with_a_clear_message(trained):
    run, suite = trained
    evaluation = create_evaluation(suite=suite, run=run, settings=FAST)
    Path(evaluation.checkpoint.path).unlink()
    assert run_job(Evaluation, evaluation.pk, run_evaluation) == "failed"
    evaluation.refresh_from_db()
    assert evaluation.message.startswith(f"The checkpoint of run {run.name} at step {evaluation.step} was deleted")
    assert not evaluation.results.exists()


def test_vet_runs_where_the_repositorys_history_is_at_hand(trained, tmp_path):
    run, suite = trained
    task = suite.tasks.select_related("pull_request__repository").get(index=0)
    clone = tmp_path / "imports" / "project"
    commit = go_repository(clone, base_files(task))
    Repository.objects.filter(pk=task.pull_request.repository_id).update(source=Source.GIT, provenance=str(clone))
    PullRequest.objects.filter(pk=task.pull_request_id).update(base_commit=commit)
    EvalTask.objects.filter(pk=task.pk).update(meta={**task.meta, "base_commit": commit})

    evaluation = create_evaluation(suite=suite, run=run, settings=FAST)
    assert run_job(Evaluation, evaluation.pk, run_evaluation) == "finished"

    vetted = evaluation.results.get(task=task)
    assert vetted.vet_ok is not None, vetted.vet_output  # a verdict: the tiny model's code is judged, not guessed
    assert vetted.vet_ok or vetted.vet_output
    others = evaluation.results.exclude(task=task)
    assert [r.vet_ok for r in others] == [None, None]  # no history at hand for those: absent
    evaluation.refresh_from_db()
    assert evaluation.metrics["vet_ok"] == float(vetted.vet_ok) and evaluation.metrics["vet_tasks"] == 1


def test_the_clone_under_the_data_dir_is_where_history_is_found(trained, settings, tmp_path):
    from corpus.github.clones import clone_path

    _, suite = trained
    task = suite.tasks.select_related("pull_request__repository").get(index=0)
    assert git_dir_of(task) is None
    bare = clone_path(Path(settings.DATA_DIR) / "clones", task.repo)
    go_repository(tmp_path / "work", base_files(task), bare_copy=bare)
    assert git_dir_of(task) == bare


def test_an_exported_gguf_is_evaluated_through_llama_cpp_like_its_checkpoint(trained):
    require_llama_cpp()
    run, suite = trained
    export = create_export(run=run, step=None, format="gguf", quant="f32")
    assert run_job(ExportedModel, export.pk, run_export) == "finished"
    export.refresh_from_db()
    torch_eval = create_evaluation(suite=suite, run=run, settings=FAST)
    gguf_eval = create_evaluation(suite=suite, exported_model=export, settings=FAST)
    assert gguf_eval.backend == "gguf" and gguf_eval.step == torch_eval.step

    for evaluation in (torch_eval, gguf_eval):
        assert run_job(Evaluation, evaluation.pk, run_evaluation) == "finished"
        evaluation.refresh_from_db()
    assert gguf_eval.results.count() == 3
    # F32 in llama.cpp reads the same weights: the teacher-forced loss agrees with PyTorch's.
    assert gguf_eval.metrics["code_loss"] == pytest.approx(torch_eval.metrics["code_loss"], rel=1e-3)
    assert gguf_eval.metrics["n_tasks"] == 3
