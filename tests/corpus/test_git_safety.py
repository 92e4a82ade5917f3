"""Importing a hostile repository runs none of its code: config, hooks, fsmonitor, signature programs."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from corpus import gitcmd
from corpus.gitimport import GitImportError, iter_pull_requests, read_repository

HOOKS = (
    "pre-commit",
    "post-checkout",
    "post-merge",
    "post-rewrite",
    "reference-transaction",
    "post-index-change",
    "pre-auto-gc",
    "push-to-checkout",
    "pre-receive",
    "update",
    "post-update",
)


def _git(path: Path, *args: str, stdin: str | None = None) -> str:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_DATE": "2024-01-02T03:04:05+00:00",
        "GIT_COMMITTER_DATE": "2024-01-02T03:04:05+00:00",
    }
    command = ["git", "-C", str(path), "-c", "user.name=dev", "-c", "user.email=dev@example.com"]
    command += ["-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null", *args]
    return subprocess.run(command, env=env, check=True, capture_output=True, text=True, input=stdin).stdout


def _script(folder: Path, name: str, marker: Path) -> Path:
    path = folder / name
    path.write_text(f"#!/bin/sh\necho {name} >> {marker}\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def _signed_commit(repo: Path, message: str) -> str:
    """A commit with a (fake) gpgsig header on top of HEAD: `git log --show-signature` calls gpg.program for it."""
    tree = _git(repo, "write-tree").strip()
    parent = _git(repo, "rev-parse", "HEAD").strip()
    signature = "-----BEGIN PGP SIGNATURE-----\n \n iQEzBAABCAAdFiEEfakefakefake\n =abcd\n -----END PGP SIGNATURE-----"
    body = (
        f"tree {tree}\nparent {parent}\n"
        "author dev <dev@example.com> 1704164645 +0000\n"
        "committer dev <dev@example.com> 1704164645 +0000\n"
        f"gpgsig {signature}\n\n{message}\n"
    )
    sha = _git(repo, "hash-object", "-t", "commit", "-w", "--stdin", stdin=body).strip()
    _git(repo, "update-ref", "refs/heads/main", sha)
    return sha


@pytest.fixture
def hostile(tmp_path) -> tuple[Path, Path]:
    """A clone whose config, hooks and attributes would each run a script; the scripts append to `marker`."""
    marker = tmp_path / "ran.txt"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    repo = tmp_path / "hostile"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "main.go").write_text("package main\n\nfunc main() {}\n")
    (repo / ".gitattributes").write_text("*.go diff=evil filter=evil\n")
    (repo / "LICENSE").write_text(
        "MIT License\n\nPermission is hereby granted, free of charge, to any person obtaining a copy of this software\n"
    )
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "Initial commit")
    (repo / "main.go").write_text("package main\n\nfunc main() { println(1) }\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "Print one (#1)")
    (repo / "main.go").write_text("package main\n\nfunc main() { println(2) }\n")
    _git(repo, "add", "-A")
    _signed_commit(repo, "Print two (#2)")
    _git(repo, "reset", "-q", "--hard")

    hooks = repo / ".git" / "hooks"
    hostile_hooks = tmp_path / "evil-hooks"
    hostile_hooks.mkdir()
    for name in HOOKS:
        _script(hooks, name, marker)
        _script(hostile_hooks, name, marker)
    config = {
        "log.showSignature": "true",
        "gpg.program": _script(bin_dir, "gpg", marker),
        "gpg.ssh.program": _script(bin_dir, "ssh-keygen", marker),
        "core.fsmonitor": _script(bin_dir, "fsmonitor", marker),
        "core.hooksPath": hostile_hooks,
        "core.pager": _script(bin_dir, "pager", marker),
        "core.alternateRefsCommand": _script(bin_dir, "alternate-refs", marker),
        "uploadpack.packObjectsHook": _script(bin_dir, "pack-objects-hook", marker),
        "diff.external": _script(bin_dir, "external-diff", marker),
        "diff.evil.textconv": _script(bin_dir, "textconv", marker),
        "diff.evil.command": _script(bin_dir, "diff-command", marker),
        "filter.evil.clean": _script(bin_dir, "clean-filter", marker),
        "filter.evil.smudge": _script(bin_dir, "smudge-filter", marker),
        "filter.evil.process": _script(bin_dir, "filter-process", marker),
        "remote.origin.url": "https://github.com/evil/repo.git",
    }
    for key, value in config.items():
        _git(repo, "config", key, str(value))
    return repo, marker


def test_the_hostile_repository_does_run_its_scripts_under_plain_git(hostile):
    """The fixture is armed: a plain `git log` in the clone runs its gpg.program (so the next test can fail)."""
    repo, marker = hostile
    _git(repo, "log", "-1", "--format=%H")
    assert "gpg" in marker.read_text()


def test_importing_a_hostile_repository_runs_none_of_its_scripts(hostile):
    repo, marker = hostile
    marker.unlink(missing_ok=True)
    record = read_repository(repo)
    pulls = list(iter_pull_requests(repo, record.full_name))
    assert record.full_name == "evil/repo" and record.default_branch == "main" and record.license_spdx == "MIT"
    assert [p.number for p in pulls] == [1, 2]
    assert "println(2)" in pulls[1].files[0].after
    assert not marker.exists(), marker.read_text()


def test_the_runner_never_overrides_safe_directory(tmp_path):
    with pytest.raises(gitcmd.GitError, match="safe.directory"):
        gitcmd.run(tmp_path, "-c", f"safe.directory={tmp_path}", "status")
    argv = gitcmd.command(tmp_path, ["log"])
    assert not any("safe.directory" in arg for arg in argv)
    assert "core.hooksPath=/dev/null" in argv and "log.showSignature=false" in argv


def test_the_private_copy_carries_none_of_the_source_config(hostile):
    repo, _ = hostile
    with gitcmd.private_clone(repo) as copy:
        config = (copy / "config").read_text()
        assert "evil" not in config and "showSignature" not in config and "fsmonitor" not in config
        assert [h.name for h in copy.glob("hooks/*") if not h.name.endswith(".sample")] == []
    assert not copy.exists()


def test_an_unreadable_source_is_an_import_error(tmp_path):
    with pytest.raises(GitImportError):
        read_repository(tmp_path / "nowhere")


def test_the_fetch_button_imports_a_hostile_repository_without_running_it(operator_client, hostile, settings):
    """The repository page's Fetch re-imports from the stored path through the same safe path."""
    from django.urls import reverse

    from corpus.models import FetchJob, PullRequest, Repository, Source
    from corpus.services import fetch_jobs
    from hrgc_site.jobs import claim, finish

    repo, marker = hostile
    marker.unlink(missing_ok=True)
    settings.HRGC_IMPORT_ROOT = repo.parent
    stored = Repository.objects.create(full_name="evil/repo", source=Source.GIT, provenance=str(repo))
    operator_client.post(reverse("corpus:repository_fetch", args=[stored.pk]))
    job = claim(FetchJob, FetchJob.objects.get().pk)
    status, message = fetch_jobs.run_fetch(job)
    finish(job, status, message)
    assert status == "finished", message
    assert sorted(PullRequest.objects.values_list("number", flat=True)) == [1, 2]
    assert not marker.exists(), marker.read_text()
