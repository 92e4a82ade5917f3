"""`manage.py evaluate` as a shell runs it, with the README's arguments: a run by name, an exported model as
model:ID, the bad inputs as clear errors, and a SIGKILLed evaluation that the next command resumes."""

from __future__ import annotations

import os
import signal
import time

import pytest

from evaluation.models import EvalSuite, Evaluation, TaskResult
from hrgc_site.jobs import run_job
from models_registry.models import ExportedModel
from models_registry.services import create_export, run_export
from tests.commands import command_env, manage, spawn, stop, wait_for_line
from tests.evaluation.app_support import dataset_with_prs, trained_run
from tests.llama import require_llama_cpp

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
FAST = ("--max-attempts", "1", "--max-tokens", "8")


@pytest.fixture
def run(settings, tmp_path, dataset_files):
    settings.DATA_DIR = tmp_path
    return trained_run(dataset_with_prs(dataset_files))


def test_evaluate_a_run_prints_the_metric_table_and_stores_every_task(run, tmp_path):
    result = manage("evaluate", run.name, "--tasks", "2", *FAST, env=command_env(tmp_path))

    suite = EvalSuite.objects.get()
    assert suite.name == f"{run.dataset.name}-val-2" and suite.task_count == 2
    evaluation = Evaluation.objects.get()
    assert evaluation.status == "finished" and evaluation.results.count() == 2
    for label in ("code loss (nats/token)", "perplexity", "exact match", "parses, after refinement", "gofmt accepts"):
        assert label in result.stdout
    assert "type-checks (go vet)" in result.stdout and "absent" in result.stdout
    loss_line = next(line for line in result.stdout.splitlines() if "code loss" in line)
    assert f"{evaluation.metrics['code_loss']:.3f}" in loss_line

    # The same suite by name, at the run's checkpoint step: a second evaluation on the reused suite.
    manage("evaluate", str(run.pk), "--suite", suite.name, "--step", str(run.step), *FAST, env=command_env(tmp_path))
    assert EvalSuite.objects.count() == 1 and Evaluation.objects.filter(status="finished").count() == 2


def test_bad_input_is_a_clear_command_error(run, tmp_path):
    env = command_env(tmp_path)
    missing = manage("evaluate", run.name, "--step", "999", *FAST, env=env, check=False)
    assert missing.returncode == 1 and f"Run {run.name} has no checkpoint at step 999." in missing.stderr
    steps = ", ".join(str(step) for step in run.checkpoints.order_by("-step").values_list("step", flat=True))
    assert f"Its checkpoints: steps {steps}." in missing.stderr
    zero = manage("evaluate", run.name, "--tasks", "1", "--max-tokens", "0", env=env, check=False)
    assert zero.returncode == 1 and "Max tokens is 0; it takes 8 to 2048." in zero.stderr
    unknown = manage("evaluate", "model:4242", env=env, check=False)
    assert unknown.returncode == 1 and "No exported model '4242'" in unknown.stderr
    checkpoint = run.checkpoints.get()
    os.remove(checkpoint.path)
    deleted = manage("evaluate", run.name, "--tasks", "1", *FAST, env=env, check=False)
    assert deleted.returncode == 1 and "was deleted" in deleted.stderr
    assert not Evaluation.objects.exists()


def test_a_killed_evaluation_resumes_on_the_next_command_without_redoing_tasks(run, tmp_path):
    env = command_env(tmp_path, HRGC_HEARTBEAT_DEAD_AFTER="3")
    log = tmp_path / "evaluate.log"
    # Tasks long enough (attempts of up to 256 tokens) that the kill lands mid-run: with FAST's 8 tokens a task
    # takes tens of milliseconds and the command could finish before the kill.
    slow = ("--max-attempts", "2", "--max-tokens", "256")
    process = spawn("evaluate", run.name, "--tasks", "4", *slow, env=env, log=log)
    wait_for_line(log, "task 0:", process, timeout=300)
    stop(process, signal.SIGKILL)
    kept = {row.task_id: row.created_at for row in TaskResult.objects.all()}
    assert kept and Evaluation.objects.get().status == "running"

    time.sleep(4)  # past HRGC_HEARTBEAT_DEAD_AFTER: the silent worker is taken for dead
    result = manage("evaluate", run.name, "--tasks", "4", *slow, env=env)  # the same settings resume it
    evaluation = Evaluation.objects.get()
    assert evaluation.status == "finished" and evaluation.results.count() == 4
    assert sum(line.startswith("task ") for line in result.stdout.splitlines()) == 4 - len(kept)
    for task_id, created_at in kept.items():
        assert TaskResult.objects.get(evaluation=evaluation, task_id=task_id).created_at == created_at


def test_evaluate_an_exported_gguf_by_model_id(run, tmp_path):
    require_llama_cpp()
    export = create_export(run=run, step=None, format="gguf", quant="q8_0")
    assert run_job(ExportedModel, export.pk, run_export) == "finished"

    result = manage("evaluate", f"model:{export.pk}", "--tasks", "2", *FAST, env=command_env(tmp_path))

    evaluation = Evaluation.objects.get()
    assert evaluation.backend == "gguf" and evaluation.exported_model_id == export.pk
    assert evaluation.status == "finished" and evaluation.results.count() == 2
    assert f"Evaluating {export} on {run.dataset.name}-val-2" in result.stdout
    assert f"{evaluation.metrics['code_loss']:.3f}" in result.stdout
