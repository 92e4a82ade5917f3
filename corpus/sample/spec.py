"""Compact description of the sample repositories: an initial tree plus pull requests as file edits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class CommentSpec:
    """A discussion entry; `hours` counts from the PR's creation, `anchor` picks the commented line."""

    kind: str  # issue | review | review_comment
    author: str
    body: str
    hours: float
    path: str = ""
    anchor: str = ""  # text found on the commented line of the new file (review comments)


@dataclass(frozen=True)
class ChangeSpec:
    """One file of a pull request: full new text, search/replace edits, an append, a rename or a removal."""

    path: str
    content: str | None = None
    replacements: tuple[tuple[str, str], ...] = ()
    append: str = ""
    rename_from: str = ""
    remove: bool = False


@dataclass(frozen=True)
class PullSpec:
    number: int
    title: str
    author: str
    created: datetime
    merged: datetime
    changes: tuple[ChangeSpec, ...]
    body: str = ""
    labels: tuple[str, ...] = ()
    comments: tuple[CommentSpec, ...] = ()
    branch: str = ""


@dataclass(frozen=True)
class RepoSpec:
    full_name: str
    license_spdx: str
    description: str
    stars: int
    maintainer: str  # who presses the merge button
    created: datetime  # date of the initial commit
    files: dict[str, str] = field(default_factory=dict)
    pulls: tuple[PullSpec, ...] = ()


def at(stamp: str) -> datetime:
    """A fixed UTC datetime from "YYYY-MM-DD HH:MM"."""
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def days_later(start: datetime, days: float) -> datetime:
    return start + timedelta(days=days)


def tabs(source: str) -> str:
    """Turn leading groups of four spaces into tabs, as gofmt indents Go code.

    The Go sources in the sample modules are written with spaces so that they read well in
    Python files; only indentation is converted, alignment inside a line is kept."""
    lines = []
    for line in source.split("\n"):
        stripped = line.lstrip(" ")
        indent = len(line) - len(stripped)
        lines.append("\t" * (indent // 4) + " " * (indent % 4) + stripped)
    return "\n".join(lines)


def edit(path: str, *pairs: tuple[str, str]) -> ChangeSpec:
    return ChangeSpec(path=path, replacements=tuple(pairs))


def write(path: str, content: str) -> ChangeSpec:
    return ChangeSpec(path=path, content=content)


def append(path: str, text: str) -> ChangeSpec:
    return ChangeSpec(path=path, append=text)


def rename(old: str, new: str, *pairs: tuple[str, str]) -> ChangeSpec:
    return ChangeSpec(path=new, rename_from=old, replacements=tuple(pairs))


def issue(author: str, body: str, hours: float) -> CommentSpec:
    return CommentSpec(kind="issue", author=author, body=body, hours=hours)


def review(author: str, body: str, hours: float) -> CommentSpec:
    return CommentSpec(kind="review", author=author, body=body, hours=hours)


def on_line(author: str, path: str, anchor: str, body: str, hours: float) -> CommentSpec:
    return CommentSpec(kind="review_comment", author=author, body=body, hours=hours, path=path, anchor=anchor)


def apply_change(files: dict[str, str], change: ChangeSpec) -> None:
    """Apply one change to a file tree in place; raises ValueError when an edit does not fit."""
    go = change.path.endswith(".go")
    if change.remove:
        del files[change.path]
        return
    if change.rename_from:
        text = files.pop(change.rename_from)
    elif change.content is not None:
        text = tabs(change.content) if go else change.content
    else:
        text = files[change.path]
    for old, new in change.replacements:
        if go:
            old, new = tabs(old), tabs(new)
        if text.count(old) != 1:
            raise ValueError(f"{change.path}: edit must match exactly once, found {text.count(old)}: {old[:60]!r}")
        text = text.replace(old, new)
    if change.append:
        text += tabs(change.append) if go else change.append
    files[change.path] = text
