"""Git import against what `git clone` really produces: a `master` default branch, a checked-out feature
branch, origin/HEAD, shallow clones, and branches that merged the default branch back in."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from corpus.gitimport import iter_pull_requests, read_repository

_clock = [1_704_164_645]


def git(path: Path, *args: str, author: str = "dev") -> str:
    _clock[0] += 60
    when = f"{_clock[0]} +0000"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_DATE": when,
        "GIT_COMMITTER_DATE": when,
    }
    command = ["git", "-C", str(path), "-c", f"user.name={author}", "-c", f"user.email={author}@example.com"]
    command += ["-c", "commit.gpgsign=false", "-c", "protocol.file.allow=always", *args]
    return subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout


def commit_file(repo: Path, name: str, text: str, message: str, author: str = "dev") -> str:
    (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message, author=author)
    return git(repo, "rev-parse", "HEAD").strip()


def merge_pr(repo: Path, number: int, branch: str, title: str, files: dict[str, str], author: str) -> None:
    """A GitHub-style true merge of a topic branch into the checked-out default branch."""
    default = git(repo, "symbolic-ref", "--short", "HEAD").strip()
    git(repo, "checkout", "-q", "-b", branch)
    for name, text in files.items():
        commit_file(repo, name, text, f"work on {name}", author=author)
    git(repo, "checkout", "-q", default)
    git(repo, "merge", "-q", "--no-ff", branch, "-m", f"Merge pull request #{number} from {author}/{branch}\n\n{title}")


def squash_pr(repo: Path, number: int, title: str, files: dict[str, str], author: str = "dev") -> None:
    for name, text in files.items():
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"{title} (#{number})", author=author)


def upstream_repo(root: Path, branch: str = "main") -> Path:
    """A bare "GitHub" repository with five merged PRs on `branch` (both merge styles)."""
    work = root / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", branch)
    commit_file(work, "go.mod", "module example.com/up\n", "Initial commit")
    merge_pr(work, 1, "add-a", "Add a", {"a.go": "package up\n\nvar A = 1\n"}, "ana")
    squash_pr(work, 2, "Add b", {"b.go": "package up\n\nvar B = 2\n"})
    merge_pr(work, 3, "add-c", "Add c", {"c.go": "package up\n\nvar C = 3\n"}, "bo")
    squash_pr(work, 4, "Add d", {"d.go": "package up\n\nvar D = 4\n"})
    merge_pr(work, 5, "add-e", "Add e", {"e.go": "package up\n\nvar E = 5\n"}, "cy")
    bare = root / "up.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True, env=_env())
    return bare


def _env() -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }


def clone(source: Path, dest: Path, *args: str) -> Path:
    subprocess.run(
        ["git", "-c", "protocol.file.allow=always", "clone", "-q", *args, str(source), str(dest)],
        check=True,
        env=_env(),
        capture_output=True,
    )
    return dest


def numbers(path: Path, name: str = "up/up") -> list[int]:
    return [p.number for p in iter_pull_requests(path, name)]


def test_a_clone_of_a_master_repository(tmp_path):
    up = upstream_repo(tmp_path, "master")
    local = clone(up, tmp_path / "local")
    repo = read_repository(local)
    assert repo.default_branch == "master"
    assert repo.head_commit == git(local, "rev-parse", "origin/master").strip()
    assert numbers(local) == [1, 2, 3, 4, 5]


def test_a_checked_out_feature_branch_is_not_the_history_read(tmp_path):
    up = upstream_repo(tmp_path)
    local = clone(up, tmp_path / "local")
    git(local, "checkout", "-q", "-b", "my-feature")
    squash_pr(local, 99, "Local work that looks like a PR", {"z.go": "package up\n\nvar Z = 9\n"})
    repo = read_repository(local)
    assert repo.default_branch == "main"
    assert repo.head_commit == git(local, "rev-parse", "origin/main").strip()
    assert numbers(local) == [1, 2, 3, 4, 5]


def test_origin_head_names_the_default_branch_even_without_a_local_branch(tmp_path):
    up = upstream_repo(tmp_path, "trunk")
    local = clone(up, tmp_path / "local")
    git(local, "checkout", "-q", "-b", "elsewhere", "origin/trunk~2")
    git(local, "branch", "-q", "-D", "trunk")
    assert git(local, "symbolic-ref", "refs/remotes/origin/HEAD").strip() == "refs/remotes/origin/trunk"
    repo = read_repository(local)
    assert repo.default_branch == "trunk"
    assert repo.head_commit == git(local, "rev-parse", "origin/trunk").strip()
    assert numbers(local) == [1, 2, 3, 4, 5]


def test_a_fetched_but_not_pulled_clone_reads_what_origin_has(tmp_path):
    up = upstream_repo(tmp_path)
    local = clone(up, tmp_path / "local")
    pusher = clone(up, tmp_path / "pusher")
    squash_pr(pusher, 6, "Add f", {"f.go": "package up\n\nvar F = 6\n"})
    git(pusher, "push", "-q", "origin", "main")
    git(local, "fetch", "-q", "origin")  # origin/main moves; the local main stays behind
    assert numbers(local) == [1, 2, 3, 4, 5, 6]


def test_a_bare_mirror_clone(tmp_path):
    up = upstream_repo(tmp_path)
    mirror = clone(up, tmp_path / "mirror.git", "--mirror")
    assert read_repository(mirror).default_branch == "main"
    assert numbers(mirror) == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("depth", [1, 2, 4, 6])
def test_a_shallow_clone_yields_only_whole_pull_requests(tmp_path, depth):
    up = upstream_repo(tmp_path)
    local = clone(up, tmp_path / "local", "--depth", str(depth), "--no-local")
    assert (local / ".git" / "shallow").exists()
    pulls = list(iter_pull_requests(local, "up/up"))
    full = {p.number: p for p in iter_pull_requests(up, "up/up")}
    # The oldest commit of a shallow clone has no parents: never diff it against the empty tree.
    for pull in pulls:
        assert pull.base_commit, pull.number
        assert [f.path for f in pull.files] == [f.path for f in full[pull.number].files]
    assert [p.number for p in pulls] == sorted(p.number for p in pulls)
    assert set(full) >= {p.number for p in pulls}
    if depth == 1:
        assert pulls == []  # the one commit there is has its parents cut
    if depth in (2, 4):
        assert 5 in [p.number for p in pulls] and len(pulls) < 5


def test_a_branch_that_merged_main_back_in(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    commit_file(work, "go.mod", "module example.com/up\n", "Initial commit")
    git(work, "checkout", "-q", "-b", "long-feature")
    commit_file(work, "feature.go", "package up\n\nvar F = 1\n", "Start the feature", author="ana")
    git(work, "checkout", "-q", "main")
    merge_pr(work, 1, "quick-fix", "Quick fix", {"fix.go": "package up\n\nvar Fix = 1\n"}, "bo")
    git(work, "checkout", "-q", "long-feature")
    git(work, "merge", "-q", "--no-ff", "main", "-m", "Merge branch 'main' into long-feature", author="ana")
    commit_file(work, "feature.go", "package up\n\nvar F = 2\n", "Finish the feature", author="ana")
    git(work, "checkout", "-q", "main")
    git(work, "merge", "-q", "--no-ff", "long-feature", "-m", "Merge pull request #2 from ana/long-feature\n\nFeature")
    local = clone(work, tmp_path / "local")

    pulls = {p.number: p for p in iter_pull_requests(local, "up/up")}
    assert sorted(pulls) == [1, 2]
    feature = pulls[2]
    assert [f.path for f in feature.files] == ["feature.go"]  # main's fix is not part of the feature
    assert feature.author == "ana" and feature.title == "Feature"
    assert feature.files[0].before is None and "F = 2" in feature.files[0].after


def test_a_fast_forwarded_branch_that_merged_main_in_keeps_the_pull_requests_of_main(tmp_path):
    """Someone merged main into a branch and fast-forwarded main to it: main's first-parent line now runs
    through the branch, and the PRs merged meanwhile sit behind "Merge branch 'main' into …"."""
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    commit_file(work, "go.mod", "module example.com/up\n", "Initial commit")
    git(work, "checkout", "-q", "-b", "topic")
    commit_file(work, "topic.go", "package up\n\nvar T = 1\n", "Topic work", author="ana")
    git(work, "checkout", "-q", "main")
    merge_pr(work, 1, "fix-one", "Fix one", {"one.go": "package up\n\nvar One = 1\n"}, "bo")
    squash_pr(work, 2, "Fix two", {"two.go": "package up\n\nvar Two = 2\n"})
    git(work, "checkout", "-q", "topic")
    git(work, "merge", "-q", "--no-ff", "main", "-m", "Merge branch 'main' into topic", author="ana")
    git(work, "checkout", "-q", "main")
    git(work, "merge", "-q", "--ff-only", "topic")
    local = clone(work, tmp_path / "local")
    assert numbers(local) == [1, 2]
