"""Helpers the suite/evaluation tests share: a finished dataset with a trained tiny run, and PR rows that the
dataset's validation records were cut from."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from corpus.models import PullRequest, Repository
from evaluation.suites import read_tasks
from tests.training.support import FIXTURES, make_dataset, tiny_run
from training.tasks.runs import train_run

# Two steps of the tiny preset, one checkpoint at the end: enough for every metric to be computed.
SHORT = {"max_steps": "2", "eval_steps": "2", "save_steps": "2", "logging_steps": "1", "warmup_steps": "1"}


def dataset_with_prs(dataset_files, name: str = "ds-eval"):
    """A finished dataset whose snapshot holds a PR row for each validation task (repo + title)."""
    dataset = make_dataset(dataset_files, name=name)
    dataset.tokenizer.model_path = str(dataset.directory / "tokenizer.model")  # export reads it from here
    dataset.tokenizer.save()
    for task in read_tasks(dataset.directory, 100):
        repo, _ = Repository.objects.get_or_create(full_name=task.repo, defaults={"license_spdx": "MIT"})
        number = int(task.title.rsplit(" ", 1)[-1]) + 1
        pr, _ = PullRequest.objects.get_or_create(
            repository=repo, number=number, defaults={"title": task.title, "base_commit": f"{number:040x}"}
        )
        dataset.snapshot.pull_requests.add(pr)
    return dataset


GO_MOD = "module example.com/project\n\ngo 1.19\n"


def base_files(task) -> dict[str, str]:
    """A module holding the task's file as it was before the change (the Go fixture the record was made from)."""
    return {"go.mod": GO_MOD, task.path: (FIXTURES / f"{Path(task.path).stem}_before.go").read_text()}


def trained_run(dataset, name: str = "eval-run", family: str = "gpt"):
    """A tiny run trained for two steps by the real training task; its checkpoint is on disk."""
    run = tiny_run(dataset, name=name, family=family, **SHORT)
    assert train_run(run.pk) == "finished"
    run.refresh_from_db()
    return run


def go_repository(path: Path, files: dict[str, str], *, bare_copy: Path | None = None) -> str:
    """A git repository at `path` with one commit holding `files`; returns the commit. `bare_copy`: also a
    bare clone there (the layout of the clones under DATA_DIR/clones)."""
    env = {
        "GIT_AUTHOR_NAME": "Dev",
        "GIT_AUTHOR_EMAIL": "dev@example.com",
        "GIT_COMMITTER_NAME": "Dev",
        "GIT_COMMITTER_EMAIL": "dev@example.com",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "HOME": str(path),
    }

    def git(*args: str, cwd: Path = path) -> str:
        return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout

    path.mkdir(parents=True)
    git("init", "-q", "-b", "main")
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git("add", "-A")
    git("commit", "-q", "-m", "base")
    if bare_copy is not None:
        bare_copy.parent.mkdir(parents=True, exist_ok=True)
        git("clone", "-q", "--bare", str(path), str(bare_copy), cwd=path.parent)
    return git("rev-parse", "HEAD").strip()
