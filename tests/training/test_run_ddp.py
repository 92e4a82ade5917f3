"""A run on two CPU processes (gloo), launched by the training task with torchrun the way the worker does:
it trains, stops with one checkpoint, resumes, and its page lists each rank with its heartbeat and log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.urls import reverse

from hrgc_site.jobs import run_job
from tests.training.support import FAST, make_dataset
from training import launch
from training.engine import load_checkpoint
from training.hrm.config import RunConfig, preset
from training.models import Checkpoint, MetricPoint, TrainingRun
from training.ranks import SILENT_AFTER, RankLog, read_ranks
from training.services.runs import create_run, resume_run
from training.tasks.runs import execute_run, train_run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path


def train_steps(run) -> list[int]:
    return list(MetricPoint.objects.filter(run=run, kind="train").order_by("step").values_list("step", flat=True))


@pytest.mark.slow
def test_two_processes_train_stop_resume_and_show_their_ranks(dataset_files, operator_client):
    dataset = make_dataset(dataset_files)
    run = create_run(
        dataset=dataset,
        family="hrm",
        preset_name="tiny",
        name="ddp",
        overrides={**FAST, "nproc_per_node": 2},
        queue=False,
    )
    assert run.tokens_per_step == 2 * 4 * 64

    # First launch: the worker asks to stop once step 4 is recorded; both ranks stop at the same step.
    status = run_job(TrainingRun, run.pk, lambda job: execute_run(job, interrupted=lambda: 4 in train_steps(job)))
    assert status == "stopped"
    run.refresh_from_db()
    assert 4 <= run.step < 12 and run.device.endswith("× 2 processes")
    assert Checkpoint.objects.filter(run=run, step=run.step).exists()
    ranks = read_ranks(run.directory)
    assert [r["rank"] for r in ranks] == [0, 1] and {r["state"] for r in ranks} == {"stopped"}
    assert len({r["pid"] for r in ranks}) == 2 and all(r["world_size"] == 2 for r in ranks)
    assert any(" metrics " in line for line in ranks[1]["log"])  # the quiet rank logs its own steps

    # Resume: torchrun again, from the checkpoint, to the end, with no step recorded twice.
    resume_run(run)
    assert train_run(run.pk) == "finished"
    run.refresh_from_db()
    assert run.status == "finished" and run.step == 12 and run.tokens == 12 * 2 * 4 * 64
    assert train_steps(run) == [2, 4, 6, 8, 10, 12]
    state = load_checkpoint(run.directory / "checkpoints" / "step_0000012.pt")
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    assert not (run.directory / launch.STOP_FILE).exists()

    html = operator_client.get(reverse("training:run", args=[run.pk])).content.decode()
    assert 'id="ranks"' in html and 'id="rank-0"' in html and 'id="rank-1"' in html
    assert "2 ranks launched by torchrun" in html


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().split(")")[-1].split()[0] != "Z"


def wait_until(condition, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.mark.slow
def test_a_rank_that_dies_fails_the_run_and_resume_continues(dataset_files):
    dataset = make_dataset(dataset_files)
    overrides = {**FAST, "nproc_per_node": 2, "save_steps": "2"}
    run = create_run(
        dataset=dataset, family="gpt", preset_name="tiny", name="ddp-dies", overrides=overrides, queue=False
    )
    killed: list[dict] = []

    def kill_rank_one(job) -> bool:
        if not killed and 4 in train_steps(job):
            ranks = read_ranks(job.directory)
            killed.extend(ranks)
            os.kill(next(r["pid"] for r in ranks if r["rank"] == 1), signal.SIGKILL)
        return False

    status = run_job(TrainingRun, run.pk, lambda job: execute_run(job, interrupted=lambda: kill_rank_one(job)))
    assert status == "failed" and killed
    run.refresh_from_db()
    assert "torchrun exited with status" in run.message
    assert not any(alive(rank["pid"]) for rank in killed)  # rank 0 did not stay behind, waiting for rank 1

    resume_run(run)
    assert train_run(run.pk) == "finished"
    run.refresh_from_db()
    assert run.step == 12 and train_steps(run) == [2, 4, 6, 8, 10, 12]


@pytest.mark.slow
def test_ranks_end_when_the_worker_that_launched_them_is_killed(dataset_files, tmp_path):
    """A killed worker (out of memory, machine gone) leaves no ranks training: the run is marked dead by its
    heartbeat and resumed elsewhere, and two launches must never write the same run directory."""
    config = preset("gpt", "tiny", vocab_size=700).with_overrides(
        {
            **FAST,
            "max_steps": "100000",
            "eval_steps": "100000",
            "save_steps": "100000",
            "logging_steps": "100000",  # silent ranks: no broken pipe ends them, only the worker's death
            "nproc_per_node": "2",
        }
    )
    out = tmp_path / "run"
    launch.prepare(config, out)
    command = launch.torchrun_command(config, dataset_files, out, rdzv_id="killed-worker", samples=False)
    worker_code = (
        "import json, sys\n"
        "from training import launch\n"
        "launch.run_torchrun(json.loads(sys.argv[1]), sys.argv[2], report=lambda k, p: None, should_stop=lambda: False)\n"
    )
    worker = subprocess.Popen([sys.executable, "-c", worker_code, json.dumps(command), str(out)], cwd=launch.ROOT)
    try:
        assert wait_until(lambda: len(read_ranks(out)) == 2, 120), (out / "torchrun.log").read_text()
        pids = [rank["pid"] for rank in read_ranks(out)]
        time.sleep(3)  # into the training steps
        assert all(alive(pid) for pid in pids)
        worker.kill()
        worker.wait()
        assert wait_until(lambda: not any(alive(pid) for pid in pids), 60)
    finally:
        worker.kill()
        for rank in read_ranks(out):  # a failed check must not leave ranks training
            if alive(rank["pid"]):
                os.kill(rank["pid"], signal.SIGKILL)


def test_the_torchrun_command_is_standalone_on_one_node_and_meets_at_the_rendezvous_across_nodes(tmp_path):
    config = RunConfig().with_overrides({"nproc_per_node": "4"})
    command = launch.torchrun_command(config, tmp_path / "ds", tmp_path / "run", rdzv_id="hrgc-run-7")
    assert command[1:3] == ["-m", "torch.distributed.run"] and "--standalone" in command
    assert command[command.index("--nproc-per-node") + 1] == "4" and "--samples" in command
    assert command[command.index("--stop-file") + 1] == str(tmp_path / "run" / launch.STOP_FILE)

    config = RunConfig().with_overrides({"nproc_per_node": "8", "nnodes": "2", "rdzv_endpoint": "node0:29500"})
    command = launch.torchrun_command(config, tmp_path / "ds", tmp_path / "run", rdzv_id="hrgc-run-7")
    assert "--standalone" not in command and command[command.index("--rdzv-endpoint") + 1] == "node0:29500"
    assert command[command.index("--rdzv-id") + 1] == "hrgc-run-7" and command[command.index("--nnodes") + 1] == "2"
    with pytest.raises(ValueError, match="rendezvous"):
        RunConfig().with_overrides({"nnodes": "2"})

    launch.prepare(config, tmp_path / "run")
    assert RunConfig.from_dict(json.loads((tmp_path / "run" / launch.CONFIG_FILE).read_text())) == config


def test_a_rank_unheard_of_shows_as_silent(tmp_path):
    RankLog(tmp_path, rank=0, local_rank=0, world_size=2).log("metrics", {"step": 3})
    quiet = RankLog(tmp_path, rank=1, local_rank=1, world_size=2)
    quiet.finish("stopped")
    later = time.time() + SILENT_AFTER + 1
    ranks = read_ranks(tmp_path, now=later)
    assert [(r["rank"], r["step"], r["silent"]) for r in ranks] == [(0, 3, True), (1, None, False)]
    assert ranks[0]["log"][-1].endswith('metrics {"step": 3}')


@pytest.mark.slow
def test_a_two_process_run_from_the_train_command_exports(dataset_files):
    from django.core.management import call_command

    from models_registry.models import ExportedModel

    dataset = make_dataset(dataset_files, name="ddp-export-ds")
    dataset.tokenizer.model_path = str(dataset.directory / "tokenizer.model")  # the export reads the tokenizer
    dataset.tokenizer.save()
    settings = [arg for key, value in {**FAST, "nproc_per_node": 2}.items() for arg in ("--set", f"{key}={value}")]
    call_command("train", dataset.name, "--family", "gpt", "--preset", "tiny", "--name", "ddp-export", *settings)
    run = TrainingRun.objects.get(name="ddp-export")
    assert run.status == "finished" and run.step == 12 and "× 2 processes" in run.device

    call_command("export", str(run.pk), "--format", "safetensors")
    export = ExportedModel.objects.get(run=run)
    assert export.status == "finished" and export.verified is True, export.message
