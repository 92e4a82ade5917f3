"""Every management command of the README's table, run as a shell runs it, with the README's arguments.

`call_command` skips the argument parsing a shell goes through; these run `python manage.py ...`
subprocesses against the test database (and a real GitHub-shaped server and a real worker)."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import psutil
import pytest
import requests

from corpus.models import FetchJob, PullRequest, Repository, Snapshot
from hrgc_site.models import JobStatus
from models_registry.models import ExportedModel
from tests.commands import command_env, manage, spawn, stop, wait_for_line
from tests.training.support import make_dataset
from training.models import DatasetBuild, TokenizerVersion, TrainingRun

# The commands are other processes: what they write must be committed where the test can read it.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

TRAIN_SETTINGS = {
    "max_steps": "2",
    "eval_steps": "2",
    "save_steps": "2",
    "logging_steps": "1",
    "eval_iters": "1",
    "validation_frequency": "1000",
    "warmup_steps": "1",
    "batch_size": "2",
    "block_size": "64",
    "num_threads": "1",
    "device": "cpu",
}


def test_train_set_parses_as_a_shell_passes_it(tmp_path):
    """`--set` once collided with Django's own `--settings` and crashed before doing anything."""
    env = command_env(tmp_path)
    result = manage(
        "train", "nope", "--family", "hrm", "--preset", "tiny", "--set", "max_steps=2", env=env, check=False
    )
    assert "TypeError" not in result.stderr
    assert result.returncode == 1 and "no finished dataset 'nope'" in result.stderr


def test_the_readme_pipeline_from_the_command_line(tmp_path):
    env = command_env(tmp_path)

    out = manage("import_sample", env=env).stdout
    assert "finished" in out and Repository.objects.count() == 3
    sample_pulls = PullRequest.objects.count()
    assert sample_pulls > 0

    out = manage("import_git", str(tmp_path / "sample-repos" / "kvstore"), "--repo", "me/kvstore", env=env).stdout
    assert "finished" in out
    assert PullRequest.objects.filter(repository__full_name="me/kvstore").exists()

    out = manage("snapshot", "create", "cli-snap", env=env).stdout
    snap = Snapshot.objects.get(name="cli-snap")
    assert snap.status == JobStatus.FINISHED and snap.sha256 in out
    assert "cli-snap\tfinished" in manage("snapshot", "list", env=env).stdout

    out = manage("train_tokenizer", "cli-snap", "--vocab-size", "400", env=env).stdout
    tokenizer = TokenizerVersion.objects.get()
    assert tokenizer.status == JobStatus.FINISHED and "400 pieces" in out

    manage("build_dataset", "cli-snap", "latest", "--processes", "2", env=env)
    dataset = DatasetBuild.objects.get()
    assert dataset.status == JobStatus.FINISHED and dataset.tokenizer == tokenizer
    # The build writes the record index the dataset page reads samples through.
    assert (Path(dataset.path) / "train.starts.u64").stat().st_size > 0

    args = ["train", dataset.name, "--family", "hrm", "--preset", "tiny", "--name", "cli-run"]
    for key, value in TRAIN_SETTINGS.items():
        args += ["--set", f"{key}={value}"]
    out = manage(*args, env=env).stdout
    run = TrainingRun.objects.get(name="cli-run")
    assert run.status == JobStatus.FINISHED and run.step == 2 and "finished" in out
    assert run.overrides["max_steps"] == "2" and run.config["model"]["block_size"] == 64

    manage("export", "cli-run", "--step", "2", "--format", "safetensors", "--quant", "f32", env=env)
    export = ExportedModel.objects.get()
    assert export.status == JobStatus.FINISHED and export.step == 2 and export.format == "safetensors"


def test_github_server_command_serves_fetch_github_in_the_foreground_and_through_a_worker(tmp_path):
    env = command_env(tmp_path)
    server_log = tmp_path / "github_server.log"
    server = spawn("github_server", "--port", "0", "--token", "cli-token", env=env, log=server_log)
    worker = None
    try:
        line = wait_for_line(server_log, "GitHub-shaped API on", server)
        url = line.split(" on ", 1)[1].split()[0]

        out = manage("fetch_github", "hrgc-samples/kvstore", "--api-url", url, "--token", "cli-token", env=env).stdout
        assert "finished" in out
        assert PullRequest.objects.filter(repository__full_name="hrgc-samples/kvstore").exists()
        bad = manage("fetch_github", "hrgc-samples/csvtool", "--api-url", url, "--token", "wrong", env=env, check=False)
        assert bad.returncode == 1 and "token rejected" in bad.stderr
        # The server logs each request: the fetch went over real HTTP to the command's server.
        assert "/repos/hrgc-samples/kvstore/pulls" in server_log.read_text()

        # A queued fetch uses the token of the settings form or GITHUB_TOKEN; a worker takes it to the end.
        worker_env = {**env, "GITHUB_TOKEN": "cli-token"}
        out = manage("fetch_github", "hrgc-samples/csvtool", "--api-url", url, "--enqueue", env=worker_env).stdout
        job = FetchJob.objects.order_by("-pk").first()
        assert f"queued fetch job #{job.pk}" in out and job.status == JobStatus.QUEUED
        worker = spawn("qcluster", env=worker_env, log=tmp_path / "qcluster.log")
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
            assert worker.poll() is None, (tmp_path / "qcluster.log").read_text()
            time.sleep(0.5)
            job.refresh_from_db()
        assert job.status == JobStatus.FINISHED, job.message
        assert job.worker and job.worker != ""
        assert PullRequest.objects.filter(repository__full_name="hrgc-samples/csvtool").exists()
    finally:
        if worker is not None:
            stop(worker)
        stop(server)


def test_the_readme_worker_machine_commands(tmp_path, settings, dataset_files):
    """`serve --no-workers` serves pages only; `Q_CLUSTER_NAME=long manage.py qcluster` takes the training runs."""
    settings.DATA_DIR = tmp_path / "data"  # the commands below share it, as worker machines share HRGC_DATA_DIR
    make_dataset(dataset_files, name="ds-workers")
    env = command_env(settings.DATA_DIR, HRGC_ADMIN_PASSWORD="admin-pass-123", WEB_WORKERS="1")
    serve_log = tmp_path / "serve.log"
    serve = spawn("serve", "--no-workers", "--port", "0", env=env, log=serve_log)
    worker = None
    try:
        url = re.search(r"(http://[^ ]+?)/? ", wait_for_line(serve_log, "HRGC is up at", serve, timeout=300)).group(1)
        children = " ".join(" ".join(child.cmdline()) for child in psutil.Process(serve.pid).children(recursive=True))
        assert "gunicorn" in children and "qcluster" not in children

        args = ["train", "ds-workers", "--family", "gpt", "--preset", "tiny", "--name", "queued-run", "--enqueue"]
        for key, value in TRAIN_SETTINGS.items():
            args += ["--set", f"{key}={value}"]
        assert "queued on the training cluster" in manage(*args, env=env).stdout
        run = TrainingRun.objects.get(name="queued-run")
        assert run.status == JobStatus.QUEUED

        worker_log = tmp_path / "qcluster-long.log"
        worker = spawn("qcluster", env={**env, "Q_CLUSTER_NAME": "long"}, log=worker_log)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and run.status in (JobStatus.QUEUED, JobStatus.RUNNING):
            assert worker.poll() is None, worker_log.read_text()
            time.sleep(0.5)
            run.refresh_from_db()
        assert run.status == JobStatus.FINISHED and run.step == 2, run.message

        session = requests.Session()
        login = session.get(url + "/accounts/login/", timeout=60)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        session.post(
            url + "/accounts/login/",
            data={"username": "admin", "password": "admin-pass-123", "csrfmiddlewaretoken": token},
            timeout=60,
        )
        page = session.get(url + run.get_absolute_url(), timeout=60)
        assert page.status_code == 200 and "queued-run" in page.text and "finished" in page.text
    finally:
        if worker is not None:
            stop(worker)
        assert stop(serve, signal.SIGINT, timeout=120) == 0
