"""The corpus commands end to end: import_sample, import_git, fetch_github (against the local server), snapshot."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from corpus.github.server import GitHubShapedServer
from corpus.models import FetchJob, PullRequest, Repository, Snapshot
from corpus.sample.story import sample_story
from corpus.services.snapshots import snapshot_file_sha256

# The commands run the job the way the worker does (run_job), which manages its own connections.
pytestmark = pytest.mark.django_db(transaction=True)


def _call(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=out)
    return out.getvalue()


def test_import_sample_then_snapshot(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    output = _call("import_sample")
    assert "finished" in output and "hrgc-samples/kvstore" in output
    assert Repository.objects.count() == 3
    go_pulls = [p for _, pulls in sample_story() for p in pulls if any(f.path.endswith(".go") for f in p.files)]
    assert PullRequest.objects.count() == len(go_pulls)

    assert "0 new PRs" in _call("import_git", str(tmp_path / "sample-repos" / "kvstore"))
    assert FetchJob.objects.count() == 2

    output = _call("snapshot", "create", "s1", "--description", "from the sample")
    snap = Snapshot.objects.get(name="s1")
    assert snap.status == "finished" and snap.sha256 in output
    assert snapshot_file_sha256(snap.file_path) == snap.sha256
    assert "s1\tfinished" in _call("snapshot", "list")
    with pytest.raises(CommandError):
        _call("snapshot", "create", "s1")


def test_import_git_with_a_name_and_a_bad_path(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    from corpus.sample.build_git import build_sample_repos

    clone = build_sample_repos(tmp_path / "clones")[2]
    _call("import_git", str(clone), "--repo", "me/csv")
    assert Repository.objects.get().full_name == "me/csv"
    stored = PullRequest.objects.count()
    # The same folder again without --repo updates me/csv: no second copy under the folder's own name.
    again = _call("import_git", str(clone))
    assert "was imported before as me/csv: updating it" in again and f"{stored} skipped" in again
    assert list(Repository.objects.values_list("full_name", flat=True)) == ["me/csv"]
    assert PullRequest.objects.count() == stored
    with pytest.raises(CommandError, match="not a directory"):
        _call("import_git", str(tmp_path / "missing"))
    # A folder that is no repository: the reason is printed once, then the job's failure (not four times).
    (tmp_path / "notgit").mkdir()
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"fetch job #\d+ failed: every repository failed") as failure:
        call_command("import_git", str(tmp_path / "notgit"), stdout=out, stderr=out)
    assert (out.getvalue() + str(failure.value)).count("is not a git repository") == 1


def test_fetch_github_against_the_local_server():
    with GitHubShapedServer(sample_story(), token="good") as server:
        output = _call(
            "fetch_github", "hrgc-samples/kvstore", "hrgc-samples/gone", "--api-url", server.base_url, "--token", "good"
        )
        assert "finished" in output and "hrgc-samples/gone: not found (404)" in output
        assert PullRequest.objects.filter(repository__full_name="hrgc-samples/kvstore").exists()
        assert Repository.objects.get(full_name="hrgc-samples/gone").state == Repository.State.MISSING
        with pytest.raises(CommandError, match="token rejected"):
            _call("fetch_github", "hrgc-samples/csvtool", "--api-url", server.base_url, "--token", "bad")
    with pytest.raises(CommandError, match="owner/name"):
        _call("fetch_github", "no-slash")


def test_github_server_serves_a_local_repository_that_fetch_github_reads_through_graphql_and_git(tmp_path):
    """`github_server --repo OWNER/NAME=PATH`: a local clone's history served as REST, GraphQL and git."""
    from corpus.gitimport import iter_pull_requests
    from corpus.sample.build_git import build_sample_repos
    from tests.commands import command_env, manage, spawn, stop, wait_for_line

    path = build_sample_repos(tmp_path / "repos")[0]
    expected = {pr.number for pr in iter_pull_requests(path, "acme/local")}
    env = command_env(tmp_path / "data", GITHUB_TOKEN="", HRGC_GITHUB_ALLOWED_HOSTS="127.0.0.1")
    log = tmp_path / "github_server.log"
    server = spawn("github_server", "--port", "0", "--repo", f"acme/local={path}", env=env, log=log)
    try:
        url = wait_for_line(log, "GitHub-shaped API on", server).split(" on ", 1)[1].split()[0]
        assert "git on" in wait_for_line(log, "GraphQL on", server)
        out = manage("fetch_github", "acme/local", "--api-url", url, env=env).stdout
    finally:
        stop(server)
    assert "finished" in out, out
    job = FetchJob.objects.get()
    assert job.method == "GraphQL + git" and job.git_bytes > 0, job.method
    stored = set(PullRequest.objects.filter(repository__full_name="acme/local").values_list("number", flat=True))
    assert expected and stored == expected
