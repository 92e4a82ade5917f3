"""The offline sample corpus: three small Go repositories and their merged pull requests as records."""

from __future__ import annotations

import difflib
import hashlib
import re
from datetime import timedelta

from corpus.records import CommentRecord, FileRecord, PRRecord, RepoRecord
from corpus.sample import csvtool, httprouter_lite, kvstore
from corpus.sample.spec import CommentSpec, PullSpec, RepoSpec, apply_change, tabs

REPO_SPECS: tuple[RepoSpec, ...] = (kvstore.REPO, httprouter_lite.REPO, csvtool.REPO)

_HUNK_HEADER = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")


def repo_spec(full_name: str) -> RepoSpec:
    for spec in REPO_SPECS:
        if spec.full_name == full_name:
            return spec
    raise KeyError(f"no sample repository named {full_name!r}")


def sample_files(repo_full_name: str) -> dict[str, str]:
    """The initial tree of a sample repository (LICENSE, README.md, go.mod, Go sources)."""
    spec = repo_spec(repo_full_name)
    return {path: tabs(text) if path.endswith(".go") else text for path, text in spec.files.items()}


def file_trees(repo_full_name: str) -> list[dict[str, str]]:
    """The tree after the initial commit and after each pull request, in merge order."""
    spec = repo_spec(repo_full_name)
    trees = [sample_files(repo_full_name)]
    for pull in spec.pulls:
        tree = dict(trees[-1])
        for change in pull.changes:
            apply_change(tree, change)
        trees.append(tree)
    return trees


def sample_story() -> list[tuple[RepoRecord, list[PRRecord]]]:
    """Every sample repository with its merged pull requests, oldest first; deterministic."""
    story = []
    for spec in REPO_SPECS:
        trees = file_trees(spec.full_name)
        pulls = [
            _pull_record(spec, pull, before, after)
            for pull, before, after in zip(spec.pulls, trees[:-1], trees[1:], strict=True)
        ]
        story.append((_repo_record(spec), pulls))
    return story


def _repo_record(spec: RepoSpec) -> RepoRecord:
    return RepoRecord(
        full_name=spec.full_name,
        source="github",
        license_spdx=spec.license_spdx,
        stars=spec.stars,
        default_branch="main",
        description=spec.description,
        provenance=f"https://api.github.com/repos/{spec.full_name}",
    )


def _pull_record(spec: RepoSpec, pull: PullSpec, before: dict[str, str], after: dict[str, str]) -> PRRecord:
    files = [_file_record(change.path, change.rename_from, before, after) for change in pull.changes]
    comments = [_comment_record(spec, pull, index, comment, files) for index, comment in enumerate(pull.comments)]
    return PRRecord(
        repo=spec.full_name,
        number=pull.number,
        title=pull.title,
        body=pull.body,
        author=pull.author,
        created_at=pull.created,
        merged_at=pull.merged,
        labels=list(pull.labels),
        files=files,
        comments=comments,
        source_url=f"https://github.com/{spec.full_name}/pull/{pull.number}",
    )


def _file_record(path: str, previous_path: str, before: dict[str, str], after: dict[str, str]) -> FileRecord:
    old_path = previous_path or path
    old_text = before.get(old_path)
    new_text = after.get(path)
    if previous_path:
        status = "renamed"
    elif old_text is None:
        status = "added"
    elif new_text is None:
        status = "removed"
    else:
        status = "modified"
    patch = unified_patch(old_text or "", new_text or "")
    lines = patch.split("\n") if patch else []
    is_go = path.endswith(".go")
    return FileRecord(
        path=path,
        status=status,
        additions=sum(1 for line in lines if line.startswith("+")),
        deletions=sum(1 for line in lines if line.startswith("-")),
        patch=patch,
        before=old_text if is_go else None,
        after=new_text if is_go else None,
        previous_path=previous_path,
    )


def unified_patch(old: str, new: str) -> str:
    """A GitHub-style patch: unified hunks with three lines of context and no file headers."""
    diff = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=3)
    lines = list(diff)[2:]  # drop the ---/+++ header lines
    return "\n".join(lines)


def _comment_record(
    spec: RepoSpec, pull: PullSpec, index: int, comment: CommentSpec, files: list[FileRecord]
) -> CommentRecord:
    line = None
    diff_hunk = ""
    if comment.kind == "review_comment":
        changed = next(f for f in files if f.path == comment.path)
        line = _anchor_line(changed, comment.anchor)
        diff_hunk = _hunk_through(changed.patch, line)
    key = f"{spec.full_name}#{pull.number}/{comment.kind}/{index}"
    return CommentRecord(
        kind=comment.kind,
        author=comment.author,
        body=comment.body,
        created_at=pull.created + timedelta(hours=comment.hours),
        path=comment.path,
        line=line,
        diff_hunk=diff_hunk,
        external_id="sample-" + hashlib.sha1(key.encode()).hexdigest()[:16],
    )


def _anchor_line(changed: FileRecord, anchor: str) -> int:
    text = changed.after or ""
    for number, line in enumerate(text.split("\n"), start=1):
        if anchor in line:
            return number
    raise ValueError(f"review comment anchor {anchor!r} not found in {changed.path}")


def _hunk_through(patch: str, new_line: int) -> str:
    """The hunk that shows `new_line`, cut after that line, as GitHub's `diff_hunk` is."""
    kept: list[str] = []
    current = 0
    for line in patch.split("\n"):
        header = _HUNK_HEADER.match(line)
        if header:
            kept = [line]
            current = int(header.group(1)) - 1
            continue
        kept.append(line)
        if not line.startswith("-"):
            current += 1
            if current == new_line:
                return "\n".join(kept)
    raise ValueError(f"line {new_line} is not inside the patch")
