"""The git-import path is limited to the import root (HRGC_IMPORT_ROOT) and every refusal reads the same:
the form must not tell anyone which server paths exist."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from corpus.forms import GitImportForm, import_path_error
from corpus.models import FetchJob, Repository, Source


def make_clone(path: Path) -> Path:
    path.mkdir(parents=True)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("GIT_")}, "GIT_CONFIG_NOSYSTEM": "1"}
    env["GIT_CONFIG_GLOBAL"] = os.devnull
    base = ["git", "-C", str(path), "-c", "user.name=a", "-c", "user.email=a@example.com"]
    subprocess.run([*base, "init", "-q", "-b", "main"], check=True, env=env)
    (path / "a.go").write_text("package a\n")
    subprocess.run([*base, "add", "-A"], check=True, env=env)
    subprocess.run([*base, "commit", "-q", "-m", "Initial commit"], check=True, env=env)
    return path


@pytest.fixture
def root(settings, tmp_path) -> Path:
    folder = tmp_path / "imports"
    folder.mkdir()
    settings.HRGC_IMPORT_ROOT = folder
    return folder


def test_paths_outside_the_root_or_not_repositories_get_one_generic_error(root, tmp_path):
    outside = make_clone(tmp_path / "outside")
    inside = make_clone(root / "inside")
    (root / "plain").mkdir()
    (root / "file.txt").write_text("x")
    (root / "escape").symlink_to(outside)
    (inside / "sub").mkdir()
    refused = [
        str(outside),  # a real repository, but outside the root
        str(root / "missing"),
        str(root / "plain"),
        str(root / "file.txt"),
        str(root / "escape"),  # a link inside the root pointing out of it
        str(root / "inside" / ".." / ".." / "outside"),
        str(inside / "sub"),
        str(root),
        "/etc",
        "/nonexistent/really",
        "relative/path",
        "~/x",
    ]
    errors = set()
    for path in refused:
        form = GitImportForm({"path": path})
        assert not form.is_valid(), path
        errors.add(tuple(form.errors["path"]))
    assert errors == {(import_path_error(),)}
    assert str(root) in import_path_error() and "exist" not in import_path_error()
    good = GitImportForm({"path": str(inside)})
    assert good.is_valid(), good.errors and good.cleaned_data["path"] == str(inside)


def test_a_link_inside_the_root_to_a_clone_inside_the_root_is_accepted(root):
    target = make_clone(root / "real")
    (root / "alias").symlink_to(target)
    form = GitImportForm({"path": str(root / "alias")})
    assert form.is_valid() and form.cleaned_data["path"] == str(target)


def test_the_import_view_queues_nothing_outside_the_root(operator_client, root, tmp_path):
    outside = make_clone(tmp_path / "elsewhere")
    response = operator_client.post(reverse("corpus:import_git"), {"path": str(outside)}, follow=True)
    assert not FetchJob.objects.exists()
    assert [str(m) for m in get_messages(response.wsgi_request)] == [import_path_error()]
    inside = make_clone(root / "ok")
    operator_client.post(reverse("corpus:import_git"), {"path": str(inside)})
    assert FetchJob.objects.get().targets == [str(inside)]


def test_the_fetch_button_refuses_a_repository_that_is_no_longer_under_the_root(operator_client, root, tmp_path):
    outside = make_clone(tmp_path / "moved-away")
    repo = Repository.objects.create(full_name="me/moved", source=Source.GIT, provenance=str(outside))
    response = operator_client.post(reverse("corpus:repository_fetch", args=[repo.pk]), follow=True)
    assert not FetchJob.objects.exists()
    assert any(import_path_error() in str(m) for m in get_messages(response.wsgi_request))
    # The page says so before anyone clicks: no button, but the way to fetch it again.
    page = operator_client.get(repo.get_absolute_url()).content.decode()
    assert 'id="refetch-refused"' in page and "manage.py import_git PATH" in page and ">Fetch now</button>" not in page
    inside = make_clone(root / "kept")
    Repository.objects.filter(pk=repo.pk).update(provenance=str(inside))
    assert ">Fetch now</button>" in operator_client.get(repo.get_absolute_url()).content.decode()
    operator_client.post(reverse("corpus:repository_fetch", args=[repo.pk]))
    assert FetchJob.objects.get().targets == [str(inside)]


def test_a_worktree_inside_the_root_of_a_repository_outside_it_is_refused(root, tmp_path):
    """A `.git` file can point anywhere: the repository it names must be inside the root too."""
    outside = make_clone(tmp_path / "private")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("GIT_")}, "GIT_CONFIG_NOSYSTEM": "1"}
    env["GIT_CONFIG_GLOBAL"] = os.devnull
    subprocess.run(
        ["git", "-C", str(outside), "worktree", "add", "-q", str(root / "linked"), "-b", "other"], check=True, env=env
    )
    pointer = root / "pointer"
    pointer.mkdir()
    (pointer / ".git").write_text(f"gitdir: {outside / '.git'}\n")
    for path in (root / "linked", pointer):
        form = GitImportForm({"path": str(path)})
        assert not form.is_valid() and form.errors["path"] == [import_path_error()], path


def test_a_job_started_from_the_web_reads_only_inside_the_root(root, tmp_path, operator_user):
    """The worker checks again: the job may predate a change of the root, or be a retry of an old job."""
    from corpus.services import fetch_jobs
    from hrgc_site.jobs import claim, finish

    outside = make_clone(tmp_path / "outside")
    job = fetch_jobs.create_fetch_job(kind="git", targets=[str(outside)], user=operator_user, enqueue=False)
    job = claim(FetchJob, job.pk)
    status, message = fetch_jobs.run_fetch(job)
    finish(job, status, message)
    job.refresh_from_db()
    assert status == "failed" and "import root" in str(job.errors) and not Repository.objects.exists()
    # The command line (no user) is not limited: whoever runs it runs the server.
    cli = fetch_jobs.create_fetch_job(kind="git", targets=[str(outside)], enqueue=False)
    cli = claim(FetchJob, cli.pk)
    status, message = fetch_jobs.run_fetch(cli)
    finish(cli, status, message)
    assert Repository.objects.filter(source="git").count() == 1, message
