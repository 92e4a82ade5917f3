"""The training task on a small real dataset: rows it writes, stop, resume without duplicate points, sampling,
and the `train` management command."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from django.core.management import CommandError, call_command

from hrgc_site.jobs import run_job
from tests.training.support import FAST, make_dataset, serialized_records
from training.models import Checkpoint, MetricPoint, RunLogLine, TrainingRun
from training.sampling import held_out_prompts, prompt_from_text
from training.services.runs import create_run, request_stop, resume_run
from training.tasks.runs import execute_run, train_run

# The task runs the way the worker runs it (run_job manages its own connections): no wrapping transaction.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path


def steps_of(run, kind: str) -> list[int]:
    return list(MetricPoint.objects.filter(run=run, kind=kind).order_by("step").values_list("step", flat=True))


def test_task_trains_and_records_metrics_checkpoints_and_log(dataset_files):
    dataset = make_dataset(dataset_files)
    run = create_run(dataset=dataset, family="hrm", preset_name="tiny", name="hrm-a", overrides=FAST, queue=False)
    assert run.config["model"]["vocab_size"] == 700 and run.max_steps == 12 and run.parameter_count > 0

    assert train_run(run.pk) == "finished"

    run.refresh_from_db()
    assert run.status == "finished" and run.step == 12 and run.tokens == 12 * 4 * 64
    assert run.last_loss is not None and run.best_val_loss is not None and run.tokens_per_sec > 0
    assert run.device.startswith("cpu") and run.memory_bytes > 0 and run.elapsed_seconds > 0
    assert steps_of(run, "train") == [2, 4, 6, 8, 10, 12]
    assert steps_of(run, "eval") == [6, 12]
    first = MetricPoint.objects.get(run=run, kind="train", step=2).values
    assert {"loss", "lr", "grad_norm", "tokens_per_sec"} <= first.keys()
    assert any(key.startswith("loss_") for key in first)  # per-section losses
    assert list(Checkpoint.objects.filter(run=run).values_list("step", flat=True)) == [12, 6]
    assert Checkpoint.objects.get(run=run, step=12).val_loss == pytest.approx(run.last_val_loss)
    assert (run.directory / "checkpoints" / "step_0000012.pt").exists()
    assert RunLogLine.objects.filter(run=run, message__contains="parameters").exists()


def test_cancel_request_stops_with_a_checkpoint(dataset_files):
    dataset = make_dataset(dataset_files)
    run = create_run(dataset=dataset, family="gpt", preset_name="tiny", name="gpt-stop", overrides=FAST, queue=False)
    TrainingRun.objects.filter(pk=run.pk).update(status="running")
    assert request_stop(run) == "stopping"
    TrainingRun.objects.filter(pk=run.pk).update(status="queued")  # as if the stop arrived right after the claim

    assert train_run(run.pk) == "stopped"

    run.refresh_from_db()
    assert run.status == "stopped" and 1 <= run.step < 12 and not run.cancel_requested
    assert Checkpoint.objects.filter(run=run, step=run.step).exists()


def test_resume_after_a_lost_worker_never_duplicates_points(dataset_files):
    dataset = make_dataset(dataset_files)
    run = create_run(dataset=dataset, family="hrm", preset_name="tiny", name="hrm-resume", overrides=FAST, queue=False)
    seen = []

    def echo(line: str) -> None:
        seen.append(line)

    # First attempt stops after step 8 (checkpoints at 6 and 8).
    status = run_job(
        TrainingRun,
        run.pk,
        lambda job: execute_run(
            job, echo=echo, interrupted=lambda: any(line.startswith("step       8") for line in seen)
        ),
    )
    assert status == "stopped"
    assert steps_of(run, "train") == [2, 4, 6, 8]
    # A worker killed with -9 after step 8 would not have written the step-8 checkpoint: resume from 6.
    (run.directory / "checkpoints" / "step_0000008.pt").unlink()
    Checkpoint.objects.filter(run=run, step=8).delete()
    before = dict(MetricPoint.objects.filter(run=run, kind="train").values_list("step", "id"))

    resume_run(run)
    assert train_run(run.pk) == "finished"

    run.refresh_from_db()
    assert run.status == "finished" and run.step == 12 and run.resumes == 1
    counts = Counter(MetricPoint.objects.filter(run=run).values_list("kind", "step"))
    assert max(counts.values()) == 1
    assert steps_of(run, "train") == [2, 4, 6, 8, 10, 12]
    after = dict(MetricPoint.objects.filter(run=run, kind="train").values_list("step", "id"))
    assert after[8] == before[8]  # step 8 was logged again and replaced in place
    assert RunLogLine.objects.filter(run=run, message__contains="resumed from").exists()


def test_samples_record_parse_share(dataset_files):
    dataset = make_dataset(dataset_files)
    overrides = {
        **FAST,
        "max_steps": "4",
        "validation_frequency": "4",
        "sample_count": "2",
        "sample_max_tokens": "12",
        "max_refinement_iterations": "2",
    }
    run = create_run(
        dataset=dataset, family="gpt", preset_name="tiny", name="gpt-samples", overrides=overrides, queue=False
    )
    assert train_run(run.pk) == "finished"
    run.refresh_from_db()
    point = MetricPoint.objects.get(run=run, kind="samples", step=4)
    train = MetricPoint.objects.get(run=run, kind="train", step=4)
    assert point.tokens == train.tokens > 0 and point.elapsed == train.elapsed > 0  # chartable by tokens or time
    evaluation = MetricPoint.objects.get(run=run, kind="eval", step=4)
    assert evaluation.tokens == train.tokens and evaluation.elapsed == train.elapsed
    assert 0.0 <= point.values["parse_share"] <= 1.0 and run.parse_share == point.values["parse_share"]
    samples = run.last_samples["samples"]
    assert len(samples) == 2 and all({"title", "code", "syntax_ok", "iterations"} <= s.keys() for s in samples)
    assert 1 <= samples[0]["iterations"] <= 2


def test_held_out_prompts_come_from_the_dataset(dataset_files):
    prompts = held_out_prompts(dataset_files, 3)
    titles = {record.text.split("<PR_TITLE> ")[1].split("\n")[0] for _, record in serialized_records()}
    assert prompts and all(prompt.title in titles for prompt in prompts)
    assert all(re.search(r"^package \w+$", prompt.code_before, re.M) for prompt in prompts)  # whole Go files
    prompt = prompt_from_text(serialized_records()[0][1].text)
    assert prompt.repo == "owner0/project0" and prompt.path == "pkg/add_cache.go" and prompt.body.startswith("Change 0")


def test_train_command_runs_in_the_foreground(dataset_files, capsys):
    make_dataset(dataset_files, name="ds-cmd")
    args = ["train", "ds-cmd", "--family", "gpt", "--name", "cmd-run"]
    for key, value in {**FAST, "max_steps": "4"}.items():
        args += ["--set", f"{key}={value}"]
    call_command(*args)
    run = TrainingRun.objects.get(name="cmd-run")
    assert run.status == "finished" and run.step == 4 and run.family == "gpt"
    assert run.overrides["max_steps"] == "4"
    out = capsys.readouterr().out
    assert "val loss" in out and "finished" in out

    with pytest.raises(CommandError, match="n_head"):
        call_command("train", "latest", "--set", "n_head=3")
    with pytest.raises(CommandError, match="no finished dataset"):
        call_command("train", "nope")


def test_train_command_enqueue_puts_the_task_on_the_training_cluster(dataset_files):
    from django_q.models import OrmQ

    make_dataset(dataset_files, name="ds-q")
    call_command("train", "latest", "--family", "hrm", "--name", "queued-run", "--enqueue", "--set", "max_steps=3")
    run = TrainingRun.objects.get(name="queued-run")
    assert run.status == "queued" and run.task_id
    rows = [row for row in OrmQ.objects.all() if row.task_id() == run.task_id]
    assert len(rows) == 1 and rows[0].key == "long"


@pytest.mark.django_db
def test_train_command_answers_unrunnable_settings_and_bad_names_with_a_clear_error(dataset_files):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    dataset = make_dataset(dataset_files, name="cmd-errors-ds")
    with pytest.raises(CommandError, match="block_size"):
        call_command("train", dataset.name, "--family", "gpt", "--preset", "tiny", "--set", "block_size=100000")
    with pytest.raises(CommandError, match="bad --name"):
        call_command("train", dataset.name, "--name", "no spaces/allowed")


def test_every_point_up_to_a_checkpoint_is_written_before_the_checkpoint_file(dataset_files):
    """A worker killed while a checkpoint file is written resumes after that step and never logs its steps
    again, so their points must be in the database before the file exists (not at the next timed flush)."""
    from training.tasks.runs import RunRecorder

    dataset = make_dataset(dataset_files)
    run = create_run(dataset=dataset, family="hrm", preset_name="tiny", name="flush-run", overrides=FAST, queue=False)
    recorder = RunRecorder(run, every=3600.0)  # no timed flush during the test
    for step in (2, 4):
        recorder.report(
            "metrics", {"step": step, "loss": 1.0, "lr": 1e-3, "grad_norm": 1.0, "tokens_per_sec": 1.0, "tokens": step}
        )
    assert steps_of(run, "train") == []
    recorder.report("saving", {"step": 4})
    assert steps_of(run, "train") == [2, 4]


def test_an_infinite_loss_or_gradient_norm_is_stored_as_a_gap_not_a_failed_run(dataset_files):
    """fp16 training: a step whose gradients overflow has an inf gradient norm (the GradScaler skips it), and a
    diverged run an inf or nan loss. PostgreSQL's jsonb refuses Infinity/NaN, which failed the whole write."""
    from training.tasks.runs import RunRecorder

    dataset = make_dataset(dataset_files)
    run = create_run(dataset=dataset, family="gpt", preset_name="tiny", name="inf-run", overrides=FAST, queue=False)
    recorder = RunRecorder(run, every=3600.0)
    recorder.report("metrics", {"step": 2, "loss": 2.5, "grad_norm": float("inf"), "lr": 1e-3, "tokens": 2})
    recorder.report("metrics", {"step": 4, "loss": float("nan"), "grad_norm": 1.5, "lr": 1e-3, "tokens": 4})
    recorder.report("eval", {"step": 4, "val_loss": float("inf"), "tokens": 4})
    recorder.flush_points()

    points = {(p.kind, p.step): p.values for p in MetricPoint.objects.filter(run=run)}
    assert points[("train", 2)] == {"loss": 2.5, "grad_norm": None, "lr": 1e-3}
    assert points[("train", 4)]["loss"] is None and points[("train", 4)]["grad_norm"] == 1.5
    assert points[("eval", 4)]["val_loss"] is None
