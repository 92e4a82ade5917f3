"""Build real git repositories from the sample story: an initial commit, then one merge per pull request."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from datetime import datetime
from pathlib import Path

from corpus import gitcmd
from corpus.records import PRRecord, RepoRecord
from corpus.sample.story import repo_spec, sample_files, sample_story

GITHUB_COMMITTER = ("GitHub", "noreply@github.com")
_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")

Story = list[tuple[RepoRecord, list[PRRecord]]]


def build_sample_repos(dest: Path, story: Story | None = None) -> list[Path]:
    """Create (or reuse) one git repository per story repository under `dest`; returns their paths.

    Pull requests alternate between a true merge commit ("Merge pull request #N from
    author/branch") and a squash commit ("Title (#N)"). Identities and dates are fixed, so the
    commit ids are the same on every machine."""
    story = sample_story() if story is None else story
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    return [_build_repository(dest / repo.full_name.split("/")[-1], repo, pulls) for repo, pulls in story]


def merge_style(index: int) -> str:
    """How the pull request at `index` (0-based, in merge order) lands on main: "merge" or "squash"."""
    return "merge" if index % 2 == 0 else "squash"


def branch_name(title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return slug[:40].rstrip("-") or "patch"


def _build_repository(path: Path, repo: RepoRecord, pulls: list[PRRecord]) -> Path:
    if _is_complete(path, repo, pulls):
        return path
    if path.exists():
        if not (path / ".git").exists():
            raise FileExistsError(f"{path} exists and is not a git repository; refusing to overwrite it")
        shutil.rmtree(path)
    # Build next to the target and rename at the end, so an interrupted build never looks complete.
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        _write_history(staging, repo, pulls)
        os.replace(staging, path)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return path


def _is_complete(path: Path, repo: RepoRecord, pulls: list[PRRecord]) -> bool:
    if not (path / ".git").is_dir():
        return False
    try:
        count = _git(path, "rev-list", "--count", "main").strip()
        subject = _git(path, "log", "-1", "--format=%s", "main").strip()
        origin = _git(path, "remote", "get-url", "origin").strip()
    except subprocess.CalledProcessError:
        return False
    expected = 1 + sum(2 if merge_style(i) == "merge" else 1 for i in range(len(pulls)))
    last_subject = _subject(pulls[-1], len(pulls) - 1) if pulls else "Initial commit"
    return count == str(expected) and subject == last_subject and origin == _origin_url(repo)


def _write_history(work: Path, repo: RepoRecord, pulls: list[PRRecord]) -> None:
    spec = repo_spec(repo.full_name)
    tree = sample_files(repo.full_name)
    _git(work, "init", "-q", "-b", "main")
    _git(work, "remote", "add", "origin", _origin_url(repo))
    head = _commit(
        work, tree, {}, [], "Initial commit", (spec.maintainer, spec.created), (spec.maintainer, spec.created)
    )
    for index, pull in enumerate(pulls):
        new_tree = tree_after(tree, pull)
        author = (pull.author, pull.created_at)
        if merge_style(index) == "merge":
            message = pull.title + (f"\n\n{pull.body}" if pull.body else "")
            tip = _commit(work, new_tree, tree, [head], message, author, author)
            # GitHub's "pull request title and description" merge message, so the import can read both.
            merge_message = f"{_subject(pull, index)}\n\n{pull.title}" + (f"\n\n{pull.body}" if pull.body else "")
            head = _commit(
                work,
                new_tree,
                new_tree,
                [head, tip],
                merge_message,
                (spec.maintainer, pull.merged_at),
                (GITHUB_COMMITTER[0], pull.merged_at),
            )
        else:
            message = f"{pull.title} (#{pull.number})" + (f"\n\n{pull.body}" if pull.body else "")
            head = _commit(work, new_tree, tree, [head], message, author, (GITHUB_COMMITTER[0], pull.merged_at))
        tree = new_tree


def _subject(pull: PRRecord, index: int) -> str:
    if merge_style(index) == "merge":
        return f"Merge pull request #{pull.number} from {pull.author}/{branch_name(pull.title)}"
    return f"{pull.title} (#{pull.number})"


def _origin_url(repo: RepoRecord) -> str:
    # Not github.com: the samples are ours and live nowhere else, so their pull requests link to no GitHub page.
    return f"https://git.example.invalid/{repo.full_name}.git"


def tree_after(tree: dict[str, str], pull: PRRecord) -> dict[str, str]:
    """The file tree after a pull request, from its file records (full text for Go, patches otherwise)."""
    result = dict(tree)
    for changed in pull.files:
        old_path = changed.previous_path or changed.path
        if changed.before is not None and result.get(old_path) != changed.before:
            raise ValueError(f"PR #{pull.number}: before text of {old_path} does not match the history")
        if changed.status == "removed":
            result.pop(changed.path, None)
            continue
        if changed.after is not None:
            text = changed.after
        elif changed.is_binary:
            raise ValueError(f"PR #{pull.number}: cannot rebuild binary file {changed.path}")
        else:
            text = apply_patch(result.get(old_path, ""), changed.patch)
        if changed.previous_path:
            result.pop(changed.previous_path, None)
        result[changed.path] = text
    return result


def apply_patch(text: str, patch: str) -> str:
    """Apply unified hunks (no file headers, as GitHub shows them) to text that ends with a newline."""
    old = text.splitlines()
    new: list[str] = []
    position = 0
    for line in patch.split("\n") if patch else []:
        header = _HUNK_HEADER.match(line)
        if header:
            start = int(header.group(1))
            # A hunk on an empty side names line 0; otherwise lines are 1-based.
            target = start - 1 if header.group(2) != "0" else start
            new.extend(old[position:target])
            position = target
        elif line.startswith("+"):
            new.append(line[1:])
        elif line.startswith(("-", " ")):
            expected = line[1:]
            if position >= len(old) or old[position] != expected:
                raise ValueError(f"patch does not apply at line {position + 1}: {expected!r}")
            if not line.startswith("-"):
                new.append(expected)
            position += 1
    new.extend(old[position:])
    return "\n".join(new) + "\n" if new else ""


def _commit(
    work: Path,
    tree: dict[str, str],
    previous: dict[str, str],
    parents: list[str],
    message: str,
    author: tuple[str, datetime | None],
    committer: tuple[str, datetime | None],
) -> str:
    """Write `tree` into the work tree and index, record a commit on main, return its id."""
    for path in previous.keys() - tree.keys():
        (work / path).unlink()
    for path, text in tree.items():
        if previous.get(path) != text:
            target = work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(text.encode("utf-8"))
    _git(work, "add", "-A")
    tree_id = _git(work, "write-tree").strip()
    parent_args = [arg for parent in parents for arg in ("-p", parent)]
    env = _identity_env("AUTHOR", author) | _identity_env("COMMITTER", committer)
    commit = _git(work, "commit-tree", tree_id, *parent_args, "-F", "-", env=env, stdin=message + "\n").strip()
    _git(work, "update-ref", "refs/heads/main", commit)
    return commit


def _identity_env(role: str, identity: tuple[str, datetime | None]) -> dict[str, str]:
    name, when = identity
    email = GITHUB_COMMITTER[1] if name == GITHUB_COMMITTER[0] else f"{name}@users.noreply.github.com"
    env = {f"GIT_{role}_NAME": name, f"GIT_{role}_EMAIL": email}
    if when is not None:
        env[f"GIT_{role}_DATE"] = when.isoformat()
    return env


def _git(work: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    # The safe runner's environment and config (no user or system config): the build is the same everywhere.
    command = gitcmd.command(
        work,
        [
            "-c",
            "user.name=HRGC sample builder",
            "-c",
            "user.email=samples@hrgc.invalid",
            "-c",
            "core.autocrlf=false",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
            *args,
        ],
    )
    result = subprocess.run(
        command, env=gitcmd.safe_environ(env), input=stdin, capture_output=True, text=True, check=True
    )
    return result.stdout
