"""Workers killed with SIGKILL mid-job (a lost machine, the OOM killer): the job turns dead, and running it
again loses nothing and duplicates nothing — for a GitHub fetch and for a training run."""

from __future__ import annotations

import os
import signal
import time

import pytest

from corpus.github.server import GitHubShapedServer
from corpus.models import FetchJob, PullRequest, Repository
from corpus.sample.story import sample_story
from tests.training.support import FAST, make_dataset
from training.models import MetricPoint, TrainingRun

pytestmark = pytest.mark.e2e


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def kill_cluster(live_stack, name: str) -> None:
    """SIGKILL the whole process group of one cluster: sentinel and the worker running the task."""
    process = live_stack.processes.pop(name)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_fetch_killed_mid_job_then_retried_stores_every_pr_once(live_stack):
    from corpus.services.fetch_jobs import create_fetch_job, retry_fetch_job

    story = sample_story()
    expected = {
        (repo.full_name, pr.number)
        for repo, prs in story
        for pr in prs
        if any(f.path.endswith(".go") for f in pr.files)
    }
    with GitHubShapedServer(story) as server:
        server.faults.delay = 0.15  # slow enough to be killed half way
        names = [repo.full_name for repo, _ in story]
        job = create_fetch_job(kind="github", targets=names, api_url=server.base_url)
        wait_for(lambda: PullRequest.objects.count() >= 5, 120, "the first PRs")
        kill_cluster(live_stack, "qcluster")
        stored_before = PullRequest.objects.count()
        assert 0 < stored_before < len(expected)

        job.refresh_from_db()
        assert job.status == "running"
        wait_for(lambda: FetchJob.objects.get(pk=job.pk).looks_dead, 30, "the job to look dead")

        server.faults.delay = 0.0
        live_stack.start_cluster()
        retry = retry_fetch_job(job=job)
        wait_for(lambda: FetchJob.objects.get(pk=retry.pk).status not in ("queued", "running"), 180, "the retry")
        retry.refresh_from_db()
        assert retry.status == "finished", retry.message
        job.refresh_from_db()
        assert job.status == "dead"

    stored = set(PullRequest.objects.values_list("repository__full_name", "number"))
    assert stored == expected
    assert PullRequest.objects.count() == len(expected)  # none twice
    assert Repository.objects.count() == len(story)
    assert retry.prs_new == len(expected) - stored_before


def test_training_killed_mid_run_resumes_from_its_checkpoint_without_duplicate_points(live_stack, dataset_files):
    from training.services.runs import create_run, resume_run

    dataset = make_dataset(dataset_files, name="killed-ds")
    overrides = {**FAST, "max_steps": "80", "save_steps": "10", "eval_steps": "20"}
    run = create_run(dataset=dataset, family="hrm", preset_name="tiny", name="killed-run", overrides=overrides)
    wait_for(
        lambda: TrainingRun.objects.get(pk=run.pk).checkpoints.filter(step__gte=20).exists(),
        180,
        "a checkpoint at step 20",
    )
    kill_cluster(live_stack, "qcluster-long")
    run.refresh_from_db()
    killed_at = run.step
    assert run.status == "running" and killed_at < 80

    wait_for(lambda: TrainingRun.objects.get(pk=run.pk).looks_dead, 30, "the run to look dead")
    live_stack.start_cluster()
    resume_run(run)
    wait_for(
        lambda: TrainingRun.objects.get(pk=run.pk).status not in ("queued", "running", "dead"),
        240,
        "the resumed run to end",
    )
    run.refresh_from_db()
    assert run.status == "finished", run.message
    assert run.step == 80 and run.resumes == 1
    steps = list(MetricPoint.objects.filter(run=run, kind="train").values_list("step", flat=True))
    assert len(steps) == len(set(steps))
    assert sorted(steps) == list(range(2, 81, 2))  # every logged step once, the replayed ones overwritten
