"""Fetch repositories and merged pull requests, with their discussion and Go file texts, from the REST API."""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from corpus.github.client import (
    GitHubClient,
    MalformedResponse,
    NotFound,
    TokenRejected,
)
from corpus.licenses import license_allowed
from corpus.records import CommentRecord, FileRecord, PRRecord, RepoRecord

# Owners: letters, digits, hyphens (underscores for managed accounts); repositories also allow "." and "_".
_FULL_NAME = re.compile(r"(?P<owner>[A-Za-z0-9][A-Za-z0-9_-]{0,38})/(?P<name>[A-Za-z0-9._-]{1,100})")
_GITHUB_URL = re.compile(r"^(?:https?://)?(?:www\.)?github\.com/", re.IGNORECASE)
# Git's own test for "is this binary": a NUL byte in the first 8000 bytes.
_BINARY_SNIFF_BYTES = 8000


def validate_full_name(name: str) -> str:
    """'owner/name' (also accepts a github.com URL); ValueError saying what is wrong otherwise."""
    text = name.strip()
    if _GITHUB_URL.match(text):
        text = _GITHUB_URL.sub("", text).rstrip("/").removesuffix(".git")
    match = _FULL_NAME.fullmatch(text)
    if match is None:
        raise ValueError(f"{name.strip()!r} is not a GitHub repository: expected owner/name, e.g. golang/go")
    if set(match["name"]) == {"."}:
        raise ValueError(f"{name.strip()!r} is not a GitHub repository: the name cannot be only dots")
    return f"{match['owner']}/{match['name']}"


def fetch_repository(client: GitHubClient, full_name: str) -> RepoRecord:
    """One repository's metadata (1 request). NotFound when it does not exist or vanished."""
    full_name = validate_full_name(full_name)
    data = client.get_json(f"/repos/{full_name}").data
    return _repo_record(data, f"GET /repos/{full_name}")


def search_repositories(
    client: GitHubClient, query: str, limit: int = 100, *, allowed_licenses: Collection[str] | None = None
) -> list[RepoRecord]:
    """Repositories matching a GitHub search query (`language:go stars:>500 license:mit`), best first.

    With `allowed_licenses`, only repositories whose licence is allowed are kept (and counted)."""
    if not query.strip():
        raise ValueError("the search query is empty")
    allowed = frozenset(allowed_licenses) if allowed_licenses is not None else None
    found: list[RepoRecord] = []
    for item in client.paginate("/search/repositories", {"q": query, "per_page": min(100, max(1, limit))}):
        record = _repo_record(item, "GET /search/repositories")
        if allowed is not None and not license_allowed(record.license_spdx, allowed):
            continue
        found.append(record)
        if len(found) >= limit:
            break
    return found


def list_merged_pulls(
    client: GitHubClient, full_name: str, *, updated_since: datetime | None = None, etag: str | None = None
) -> tuple[list[dict], str | None]:
    """Summaries of merged PRs, most recently updated first, and the first page's ETag.

    With `etag` from the last run, an unchanged list costs one free 304 and returns ([], etag).
    With `updated_since`, paging stops at the first PR updated before it (the list is sorted)."""
    full_name = validate_full_name(full_name)
    since = _aware(updated_since) if updated_since else None
    params = {"state": "closed", "sort": "updated", "direction": "desc", "per_page": 100}
    response = client.get_json(f"/repos/{full_name}/pulls", params, etag=etag)
    if response.not_modified:
        return [], response.etag
    first_etag, merged = response.etag, []
    while True:
        if not isinstance(response.data, list):
            raise MalformedResponse(f"GET /repos/{full_name}/pulls: expected a JSON list")
        for summary in response.data:
            _require(summary, "number", int, "pull request summary")
            updated = _time(summary.get("updated_at"), "updated_at")
            if since is not None and updated is not None and updated < since:
                return merged, first_etag
            if summary.get("merged_at"):
                merged.append(summary)
        if response.next_url is None:
            return merged, first_etag
        response = client.get_json(response.next_url)


def fetch_pull_request(
    client: GitHubClient,
    full_name: str,
    summary: dict,
    *,
    go_only: bool = True,
    max_file_bytes: int = 1_000_000,
    max_patch_bytes: int = 1_000_000,
) -> PRRecord | None:
    """Everything about one merged PR: files, comments, reviews and before/after of changed `.go` files.

    Costs the files pages, 3 discussion requests and up to 2 per `.go` file. Returns None (after
    only the files request) when `go_only` and no `.go` file changed."""
    number = _require(summary, "number", int, "pull request summary")
    where = f"/repos/{full_name}/pulls/{number}"
    files = [_file_record(item, max_patch_bytes) for item in client.paginate(f"{where}/files")]
    if go_only and not any(_is_go(f) for f in files):
        return None
    comments = [_comment("issue", item) for item in client.paginate(f"/repos/{full_name}/issues/{number}/comments")]
    comments += [_comment("review_comment", item) for item in client.paginate(f"{where}/comments")]
    # An approval without words teaches nothing; keep reviews that say something.
    comments += [_comment("review", item) for item in client.paginate(f"{where}/reviews") if item.get("body")]
    base_sha = _require(_require(summary, "base", dict, "summary"), "sha", str, "summary.base")
    head_sha = _require(_require(summary, "head", dict, "summary"), "sha", str, "summary.head")
    # The merge commit lives in the repository even when the fork that held the head is gone.
    after_sha = summary.get("merge_commit_sha") or head_sha
    for changed in files:
        if _is_go(changed):
            _attach_texts(client, full_name, changed, base_sha, after_sha, max_file_bytes)
    user = summary.get("user") or {}
    return PRRecord(
        repo=full_name,
        number=number,
        title=summary.get("title") or "",
        body=summary.get("body") or "",
        author=user.get("login", "ghost"),
        created_at=_time(summary.get("created_at"), "created_at"),
        merged_at=_time(summary.get("merged_at"), "merged_at"),
        base_commit=base_sha,
        head_commit=head_sha,
        merge_commit=summary.get("merge_commit_sha") or "",
        labels=[label["name"] for label in summary.get("labels") or [] if isinstance(label, dict) and "name" in label],
        files=files,
        comments=comments,
        source_url=summary.get("html_url") or "",
    )


@dataclass
class FetchOutcome:
    """What a batch fetch did: PRs delivered, skipped (no Go change), failed (number, message)."""

    fetched: int = 0
    skipped: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)
    stopped: bool = False


def fetch_pull_requests(
    client: GitHubClient,
    full_name: str,
    summaries: Iterable[dict],
    *,
    on_result: Callable[[PRRecord | None, dict], None],
    on_error: Callable[[dict, Exception], None] | None = None,
    concurrency: int = 4,
    should_stop: Callable[[], bool] | None = None,
    go_only: bool = True,
    max_file_bytes: int = 1_000_000,
    max_patch_bytes: int = 1_000_000,
) -> FetchOutcome:
    """Fetch many PRs with at most `concurrency` in flight.

    `on_result`/`on_error` run in the calling thread (so they may write to a database). One PR's
    failure is reported, not raised; TokenRejected aborts everything. `should_stop()` is checked
    before each new PR: PRs already in flight finish and are delivered."""
    pending = iter(summaries)
    outcome = FetchOutcome()
    in_flight: dict[Future, dict] = {}
    options = {"go_only": go_only, "max_file_bytes": max_file_bytes, "max_patch_bytes": max_patch_bytes}
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="pr-fetch") as pool:

        def fill() -> None:
            while len(in_flight) < max(1, concurrency):
                if should_stop is not None and should_stop():
                    outcome.stopped = True
                    return
                summary = next(pending, None)
                if summary is None:
                    return
                in_flight[pool.submit(fetch_pull_request, client, full_name, summary, **options)] = summary

        fill()
        while in_flight:
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                summary = in_flight.pop(future)
                try:
                    record = future.result()
                except TokenRejected:
                    for other in in_flight:
                        other.cancel()
                    raise
                except Exception as exc:  # noqa: BLE001 — one PR's failure must not lose the others
                    outcome.failed.append((summary.get("number", -1), f"{type(exc).__name__}: {exc}"))
                    if on_error is not None:
                        on_error(summary, exc)
                    continue
                if record is None:
                    outcome.skipped += 1
                else:
                    outcome.fetched += 1
                on_result(record, summary)
            if not outcome.stopped:
                fill()
    return outcome


# --- shapes -----------------------------------------------------------------------------------


def _repo_record(data: Any, where: str) -> RepoRecord:
    full_name = _require(data, "full_name", str, where)
    licence = data.get("license")
    spdx = (licence.get("spdx_id") or "") if isinstance(licence, dict) else ""  # null: no licence file
    return RepoRecord(
        full_name=full_name,
        source="github",
        license_spdx=spdx,
        stars=int(data.get("stargazers_count") or 0),
        default_branch=data.get("default_branch") or "main",
        description=data.get("description") or "",
        is_fork=bool(data.get("fork")),
        is_archived=bool(data.get("archived")),
        provenance=data.get("url") or where,
        pushed_at=_time(data.get("pushed_at"), "pushed_at"),
    )


def _file_record(item: Any, max_patch_bytes: int) -> FileRecord:
    path = _require(item, "filename", str, "changed file")
    patch = item.get("patch")
    changed = FileRecord(
        path=path,
        status=item.get("status") or "modified",
        additions=int(item.get("additions") or 0),
        deletions=int(item.get("deletions") or 0),
        previous_path=item.get("previous_filename") or "",
    )
    if patch is None:
        # GitHub leaves the patch out for binary files and for very large diffs; with no line
        # counted, it is binary (a large text diff always counts lines).
        changed.is_binary = changed.additions + changed.deletions == 0 and changed.status != "renamed"
        return changed
    changed.patch, cut = _cap(patch.encode("utf-8", "surrogatepass"), max_patch_bytes)
    if cut:
        changed.truncated_at = max_patch_bytes
    return changed


def _comment(kind: str, item: Any) -> CommentRecord:
    comment_id = _require(item, "id", int, f"{kind} comment")
    user = item.get("user") or {}
    line = item.get("line") or item.get("original_line")
    return CommentRecord(
        kind=kind,
        author=user.get("login", "ghost"),  # a deleted account comes back as user: null
        body=item.get("body") or "",
        created_at=_time(item.get("submitted_at" if kind == "review" else "created_at"), "created_at"),
        path=item.get("path") or "",
        line=int(line) if line is not None else None,
        diff_hunk=item.get("diff_hunk") or "",
        external_id=str(comment_id),
    )


def _attach_texts(
    client: GitHubClient, full_name: str, changed: FileRecord, base_sha: str, after_sha: str, max_bytes: int
) -> None:
    """Fill before/after of a `.go` file; an added file has no before, a removed one no after."""
    sides = {}
    if changed.status != "added":
        sides["before"] = _raw(client, full_name, changed.previous_path or changed.path, base_sha, max_bytes)
    if changed.status != "removed":
        sides["after"] = _raw(client, full_name, changed.path, after_sha, max_bytes)
    fetched = [data for data, _ in sides.values() if data is not None]
    if fetched:  # the contents decide, not the files list's guess
        changed.is_binary = any(b"\0" in data[:_BINARY_SNIFF_BYTES] for data in fetched)
    if changed.is_binary:
        return
    for side, (data, cut) in sides.items():
        if data is None:
            continue
        text, cut = _cap(data, max_bytes, already_cut=cut)
        setattr(changed, side, text)
        if cut:
            changed.truncated_at = max_bytes


def _raw(client: GitHubClient, full_name: str, path: str, ref: str, max_bytes: int) -> tuple[bytes | None, bool]:
    try:
        response = client.get_raw(f"/repos/{full_name}/contents/{quote(path)}", {"ref": ref}, max_bytes=max_bytes)
    except NotFound:
        return None, False  # not at that commit (e.g. the base moved on): nothing to show, not an error
    return response.content, response.truncated


def _cap(data: bytes, max_bytes: int, already_cut: bool = False) -> tuple[str, bool]:
    """Decode UTF-8 with replacement, cut at `max_bytes` without leaving half a character."""
    if not already_cut and len(data) <= max_bytes:
        return data.decode("utf-8", "replace"), False
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    return decoder.decode(data[:max_bytes], final=False), True


def _is_go(changed: FileRecord) -> bool:
    return changed.path.endswith(".go") or changed.previous_path.endswith(".go")


def _require(data: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(data, dict) or not isinstance(data.get(key), kind) or isinstance(data.get(key), bool):
        raise MalformedResponse(f"{where}: expected {key!r} to be {kind.__name__}, got {_shape(data, key)}")
    return data[key]


def _shape(data: Any, key: str) -> str:
    if not isinstance(data, dict):
        return f"a {type(data).__name__} instead of an object"
    return "nothing" if key not in data else type(data[key]).__name__


def _time(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return _aware(datetime.fromisoformat(str(value)))
    except ValueError:
        raise MalformedResponse(f"{name}: {value!r} is not an ISO 8601 time") from None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
