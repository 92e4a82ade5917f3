"""Plain records that flow between the fetchers, the serializer and the database (no Django)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class RepoRecord:
    """One repository as a fetcher sees it."""

    full_name: str  # "owner/name"
    source: str = "github"  # "github" | "git"
    license_spdx: str = ""  # "" when none was found, "NOASSERTION" when unrecognised
    stars: int = 0
    default_branch: str = "main"
    description: str = ""
    is_fork: bool = False
    is_archived: bool = False
    provenance: str = ""  # API URL or clone path
    head_commit: str = ""
    pushed_at: datetime | None = None  # last push, as GitHub reports it (search results show it)


@dataclass
class FileRecord:
    """One changed file of a pull request.

    `before`/`after` hold the full text of changed `.go` files (None when the file did
    not exist on that side, or was binary / not Go)."""

    path: str
    status: str = "modified"  # added | modified | removed | renamed
    additions: int = 0
    deletions: int = 0
    patch: str = ""
    before: str | None = None
    after: str | None = None
    previous_path: str = ""
    is_binary: bool = False
    truncated_at: int | None = None  # the size cap (bytes) that cut before/after/patch


@dataclass
class CommentRecord:
    """An issue comment, a review, or a review comment on a diff line."""

    kind: str  # "issue" | "review" | "review_comment"
    author: str
    body: str
    created_at: datetime | None = None
    path: str = ""
    line: int | None = None
    diff_hunk: str = ""
    external_id: str = ""  # GitHub id or a stable hash; keeps upserts idempotent


@dataclass
class PRRecord:
    """One merged pull request with everything the model learns from."""

    repo: str  # "owner/name"
    number: int
    title: str
    body: str = ""
    author: str = ""
    created_at: datetime | None = None
    merged_at: datetime | None = None
    base_commit: str = ""
    head_commit: str = ""
    merge_commit: str = ""
    labels: list[str] = field(default_factory=list)
    files: list[FileRecord] = field(default_factory=list)
    comments: list[CommentRecord] = field(default_factory=list)
    source_url: str = ""


@dataclass(frozen=True)
class Span:
    """A character range [start, end) of a serialized record and the section it belongs to.

    `section` is one of SECTION_LABELS' keys; spans never overlap and cover the text."""

    section: str
    start: int
    end: int


# Token-level labels the dataset writes (one uint8 per token) and the loss weights.
SECTION_LABELS = {"other": 0, "plan": 1, "code": 2, "validate": 3, "refine": 4}


@dataclass
class SerializedRecord:
    text: str
    spans: list[Span]
