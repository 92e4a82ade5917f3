"""Writes to the corpus: ingest records, automatic quality/duplicate exclusion, curation and undo, snapshots."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from django.conf import settings
from django.contrib.postgres.search import SearchVector
from django.db import connection, transaction
from django.db.models import Value
from django.utils import timezone

from corpus import categories, quality
from corpus.models import (
    Comment,
    CurationEvent,
    FetchJob,
    FileChange,
    GitHubSettings,
    PullRequest,
    Repository,
    Snapshot,
    Source,
    full_name_validator,
)
from corpus.plans import extract_plan
from corpus.records import PRRecord, RepoRecord, SerializedRecord, Span
from corpus.serialize import code_files, serialize

# Quality flags that keep a PR out of the training set until a person says otherwise.
BLOCKING_FLAGS = ("empty title", "no Go changes", "only vendored files", "only generated files", "very large change")
SEARCH_CONFIG = "english"
_SURROGATES = re.compile("[\ud800-\udfff]")


# --- text hygiene ----------------------------------------------------------------------------


def clean_text(text: str | None) -> str | None:
    """Text Postgres can store: no NUL characters, no lone surrogates (from undecodable bytes)."""
    if text is None:
        return None
    text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _SURROGATES.sub("\ufffd", text)
    return text


def _record_hash(record: PRRecord) -> str:
    def default(value):
        return value.isoformat() if isinstance(value, datetime) else str(value)

    payload = json.dumps(dataclasses.asdict(record), sort_keys=True, default=default)
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


def dedupe_text(record: PRRecord) -> str:
    """The part of a PR that two copies of one change share: its Go files' paths and texts."""
    parts = [f"{f.path}\n{f.before or ''}\n{f.after or ''}" for f in code_files(record)]
    return "\n".join(parts)


def _comment_id(comment) -> str:
    if comment.external_id:
        return str(comment.external_id)[:100]
    stamp = comment.created_at.isoformat() if comment.created_at else ""
    key = f"{comment.kind}|{comment.author}|{stamp}|{comment.path}|{comment.line}|{comment.body}"
    return "h" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def automatic_reason(pr: PullRequest) -> str:
    """Why the automatic rules leave this PR out ('' when they keep it)."""
    if pr.duplicate_reason:
        return pr.duplicate_reason
    blocking = [flag for flag in pr.quality_flags if flag.startswith(BLOCKING_FLAGS)]
    return f"quality: {blocking[0]}" if blocking else ""


def _apply_automatic_inclusion(pr: PullRequest) -> None:
    """Quality and duplicate rules decide inclusion until a person has curated the PR."""
    if pr.curated_at is not None:
        return
    reason = automatic_reason(pr)
    pr.included = not reason
    pr.excluded_reason = reason[:500]


# --- repositories ----------------------------------------------------------------------------


def validate_repository_name(name: str) -> str:
    """'owner/name' from a name or github.com URL; ValidationError-style ValueError otherwise."""
    from corpus.github.fetch import validate_full_name

    full_name = validate_full_name(name)
    full_name_validator(full_name)
    return full_name


@transaction.atomic
def add_repositories(*, names: Iterable[str], source: str = Source.GITHUB) -> list[Repository]:
    """Create the repositories that are not there yet; returns every named repository, in order."""
    repositories = []
    for name in names:
        repository, _ = Repository.objects.get_or_create(full_name=name, defaults={"source": source})
        repositories.append(repository)
    return repositories


@transaction.atomic
def upsert_repository(*, record: RepoRecord, full_name: str | None = None, source: str = Source.GITHUB) -> Repository:
    """Store what a fetcher learned about a repository, keeping the person's include/exclude choice."""
    name = full_name or record.full_name
    repository, _ = Repository.objects.select_for_update().get_or_create(full_name=name, defaults={"source": source})
    repository.source = source
    repository.license_spdx = record.license_spdx[:64]
    repository.stars = record.stars
    repository.default_branch = record.default_branch[:200]
    repository.description = clean_text(record.description) or ""
    repository.is_fork = record.is_fork
    repository.is_archived = record.is_archived
    repository.provenance = record.provenance[:500]
    if record.head_commit:
        repository.provenance_commit = record.head_commit[:64]
    repository.save()
    return repository


@transaction.atomic
def set_repository_state(*, repository: Repository, state: str, message: str = "") -> None:
    Repository.objects.filter(pk=repository.pk).update(state=state, state_message=message[:500])
    repository.state, repository.state_message = state, message[:500]


@transaction.atomic
def set_repository_included(*, repository: Repository, included: bool, reason: str = "") -> Repository:
    """Include or exclude a whole repository; its PRs keep their own choice for when it comes back."""
    if not included and not reason.strip():
        raise ValueError("Say why the repository is excluded.")
    repository.included = included
    repository.excluded_reason = "" if included else reason.strip()[:300]
    repository.save(update_fields=["included", "excluded_reason"])
    return repository


# --- ingest ----------------------------------------------------------------------------------


def _file_fields(file) -> dict:
    before, after = clean_text(file.before), clean_text(file.after)
    is_binary = file.is_binary or quality.looks_binary(file.before) or quality.looks_binary(file.after)
    if is_binary:
        before = after = None
    return {
        "previous_path": (file.previous_path or "")[:1000],
        "status": (file.status or "modified")[:16],
        "additions": max(0, int(file.additions or 0)),
        "deletions": max(0, int(file.deletions or 0)),
        "patch": "" if is_binary else (clean_text(file.patch) or ""),
        "before_text": before,
        "after_text": after,
        "is_go": quality.is_go_path(file.path),
        "is_test": quality.is_test_path(file.path),
        "is_vendored": quality.is_vendored(file.path),
        "is_generated": quality.is_generated(after) or quality.is_generated(before),
        "is_binary": is_binary,
        "truncated_at": file.truncated_at,
    }


def _comment_fields(comment) -> dict:
    return {
        "author": (comment.author or "")[:200],
        "body": clean_text(comment.body) or "",
        "created_at": comment.created_at,
        "path": (comment.path or "")[:1000],
        "line": comment.line,
        "diff_hunk": clean_text(comment.diff_hunk) or "",
    }


def _sync_children(model, existing: dict, wanted: dict, parent_field: str, parent) -> None:
    """Make the children match `wanted` (key -> fields): update changed, create new, delete gone."""
    for key, row in existing.items():
        if key not in wanted:
            row.delete()
    creates = []
    for key, fields in wanted.items():
        row = existing.get(key)
        if row is None:
            creates.append(model(**{parent_field: parent}, **fields))
            continue
        changed = [name for name, value in fields.items() if getattr(row, name) != value]
        if changed:
            for name in changed:
                setattr(row, name, fields[name])
            row.save(update_fields=changed)
    model.objects.bulk_create(creates)


def _search_text_for_paths(paths: list[str]) -> str:
    # "internal/server.go" also as "internal server go", so a search for "server" finds it.
    return " ".join(
        f"{path} {path.rsplit('/', 1)[-1]} {path.replace('/', ' ').replace('.', ' ').replace('_', ' ')}"
        for path in paths
    )


def _update_search_vector(pr: PullRequest, record: PRRecord) -> None:
    comments = "\n".join(clean_text(c.body) or "" for c in record.comments)
    paths = _search_text_for_paths([f.path for f in record.files])
    vector = (
        SearchVector(Value(clean_text(pr.title) or ""), weight="A", config=SEARCH_CONFIG)
        + SearchVector(Value(clean_text(pr.body) or ""), weight="B", config=SEARCH_CONFIG)
        + SearchVector(Value(paths), weight="B", config=SEARCH_CONFIG)
        + SearchVector(Value(comments[:200_000]), weight="C", config=SEARCH_CONFIG)
    )
    PullRequest.objects.filter(pk=pr.pk).update(search_vector=vector)


@transaction.atomic
def store_pull_request(
    *,
    repository: Repository,
    record: PRRecord,
    fetch_job: FetchJob | None = None,
    source_updated_at: datetime | None = None,
) -> str:
    """Upsert one PR with its files and comments in one transaction: "new", "updated" or "unchanged".

    Keyed on (repository, number); files on path, comments on (kind, external_id). Derived fields
    (flags, category, intent, syntax, serialized size, hashes, search vector) are computed here."""
    if record.number < 1:
        raise ValueError(f"pull request number must be positive, got {record.number}")
    record_hash = _record_hash(record)
    pr = PullRequest.objects.select_for_update().filter(repository=repository, number=record.number).first()
    if pr is not None and pr.source_hash == record_hash:
        if source_updated_at and pr.source_updated_at != source_updated_at:
            PullRequest.objects.filter(pk=pr.pk).update(source_updated_at=source_updated_at)
        return "unchanged"
    outcome = "new" if pr is None else "updated"
    if pr is None:
        pr = PullRequest(repository=repository, number=record.number)

    # Derived from the record as the model will see it (the same serialize the pages and snapshots call).
    record = dataclasses.replace(record, repo=repository.full_name)
    plan = extract_plan(record)
    serialized = serialize(record, plan)
    text = dedupe_text(record)
    go_files = code_files(record)

    pr.title = (clean_text(" ".join((record.title or "").split())) or "")[:1000] or f"#{record.number}"
    pr.body = clean_text(record.body) or ""
    pr.author = (record.author or "")[:200]
    pr.opened_at, pr.merged_at = record.created_at, record.merged_at
    pr.base_commit, pr.head_commit = record.base_commit[:64], record.head_commit[:64]
    pr.merge_commit = record.merge_commit[:64]
    pr.labels = [label[:200] for label in record.labels]
    pr.category = categories.categorize(record)
    pr.intent = plan.intent or ""
    pr.quality_flags = [flag[:200] for flag in quality.quality_flags(record)]
    pr.syntax_ok = None if not any(f.after is not None for f in go_files) else ("<SYNTAX_OK> true" in serialized.text)
    pr.content_hash = quality.content_hash(text) if text else ""
    pr.serialized_chars = len(serialized.text)
    pr.additions = sum(max(0, f.additions) for f in record.files)
    pr.deletions = sum(max(0, f.deletions) for f in record.files)
    pr.file_count, pr.comment_count = len(record.files), len(record.comments)
    pr.source_url = record.source_url[:500]
    pr.fetched_at = timezone.now()
    pr.fetch_job = fetch_job
    pr.source_hash = record_hash
    pr.source_updated_at = source_updated_at or pr.source_updated_at
    _apply_automatic_inclusion(pr)
    pr.save()

    files = {}
    for file in record.files:  # a path listed twice keeps its last entry
        files[file.path[:1000]] = {"path": file.path[:1000], **_file_fields(file)}
    _sync_children(FileChange, {f.path: f for f in pr.files.all()}, files, "pull_request", pr)
    comments = {}
    for comment in record.comments:
        comments[(comment.kind, _comment_id(comment))] = _comment_fields(comment)
    existing = {(c.kind, c.external_id): c for c in pr.comments.all()}
    wanted = {key: {"kind": key[0], "external_id": key[1], **fields} for key, fields in comments.items()}
    _sync_children(Comment, existing, wanted, "pull_request", pr)
    _update_search_vector(pr, record)
    _update_minhash_signature(pr)
    return outcome


# --- duplicates ------------------------------------------------------------------------------


def _stored_dedupe_text(pr: PullRequest) -> str:
    """dedupe_text of the PR as stored (files as saved, in the database's order): what dedupe_corpus compares."""
    from corpus.selectors import pull_request_record

    return dedupe_text(pull_request_record(pr, with_comments=False))


def _pack_signature(values: list[int] | None) -> bytes:
    """quality.minhash_signature as stored: little-endian uint32s (b"" for no identifiers); out of range raises."""
    return b"" if values is None else np.asarray(values, dtype="<u4").tobytes()


_SIGNATURE_BYTES = quality.NUM_PERM * 4
_MISSING = object()


def _unpack_signature(data: bytes | memoryview | None):
    """The stored signature as uint32 values, None for a text without identifiers, _MISSING when not usable."""
    if data is None or len(data) not in (0, _SIGNATURE_BYTES):
        return _MISSING
    return np.frombuffer(data, dtype="<u4") if len(data) else None


def _update_minhash_signature(pr: PullRequest) -> None:
    """Store the MinHash of the PR's stored code text; kept as it is when that text did not change."""
    text = _stored_dedupe_text(pr)
    digest = quality.content_hash(text)
    if pr.minhash_text_hash == digest and _unpack_signature(pr.minhash_signature) is not _MISSING:
        return
    pr.minhash_signature = _pack_signature(quality.minhash_signature(text))
    pr.minhash_text_hash = digest
    PullRequest.objects.filter(pk=pr.pk).update(minhash_signature=pr.minhash_signature, minhash_text_hash=digest)


def _fill_missing_signatures(pks: list[int]) -> dict[int, np.ndarray | None]:
    """Compute and store the signatures of PRs ingested before signatures were kept (from their stored files)."""
    filled: dict[int, np.ndarray | None] = {}
    table = PullRequest._meta.db_table
    for start in range(0, len(pks), 500):
        batch = (
            PullRequest.objects.filter(pk__in=pks[start : start + 500])
            .select_related("repository")
            .prefetch_related("files")
        )
        ids, packed, digests = [], [], []
        for pr in batch:
            text = _stored_dedupe_text(pr)
            ids.append(pr.pk)
            packed.append(_pack_signature(quality.minhash_signature(text)))
            digests.append(quality.content_hash(text))
            filled[pr.pk] = _unpack_signature(packed[-1])
        # One statement per batch (bulk_update's CASE is slow); a row an ingest gave a signature meanwhile keeps it.
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS pr SET minhash_signature = v.signature, minhash_text_hash = v.digest "
                "FROM unnest(%s::bigint[], %s::bytea[], %s::varchar[]) AS v(id, signature, digest) "
                "WHERE pr.id = v.id AND pr.minhash_signature IS NULL",
                [ids, packed, digests],
            )
    return filled


def dedupe_corpus(*, report: Callable[[int, int], None] | None = None) -> dict[str, int]:
    """Flag exact (same content hash) and near (MinHash) duplicates, oldest PR kept; never deletes.

    A duplicate gets `duplicate_of` and "exact/near duplicate of owner/name#N" and, unless a person
    curated it, is excluded; a PR that is no longer a duplicate is let back in. Near duplicates use
    the signatures stored at ingest; only PRs without one are read and hashed here."""
    rows = list(
        PullRequest.objects.exclude(content_hash="").order_by("merged_at", "id").values_list("id", "content_hash")
    )
    exact: dict[int, int] = {}
    kept_by_hash: dict[str, int] = {}
    for pk, digest in rows:
        kept = kept_by_hash.setdefault(digest, pk)
        if kept != pk:
            exact[pk] = kept
    # Near duplicates among the distinct texts, from their stored signatures.
    distinct = [pk for pk, _ in rows if pk not in exact]
    stored: dict[int, object] = {}
    for start in range(0, len(distinct), 5000):
        chunk = PullRequest.objects.filter(pk__in=distinct[start : start + 5000]).values_list("id", "minhash_signature")
        stored.update((pk, _unpack_signature(data)) for pk, data in chunk)
    stored.update(_fill_missing_signatures([pk for pk in distinct if stored.get(pk, _MISSING) is _MISSING]))
    ordered = {pk: stored[pk] for pk in distinct if isinstance(stored.get(pk), np.ndarray)}
    near = quality.near_duplicates_from_signatures(ordered, report=report)

    names = dict(
        PullRequest.objects.filter(pk__in=set(exact.values()) | set(near.values())).values_list("id", "number")
    )
    repos = dict(PullRequest.objects.filter(pk__in=names).values_list("id", "repository__full_name"))
    wanted = {pk: (kept, f"exact duplicate of {repos[kept]}#{names[kept]}") for pk, kept in exact.items()}
    wanted.update({pk: (kept, f"near duplicate of {repos[kept]}#{names[kept]}") for pk, kept in near.items()})

    changed = 0
    flagged = PullRequest.objects.filter(duplicate_of__isnull=False).values_list("id", flat=True)
    candidates = list(set(wanted) | set(flagged))
    current: dict[int, tuple[int | None, str]] = {}
    for start in range(0, len(candidates), 5000):
        current.update(
            (pk, (kept, reason))
            for pk, kept, reason in PullRequest.objects.filter(pk__in=candidates[start : start + 5000]).values_list(
                "id", "duplicate_of", "duplicate_reason"
            )
        )
    for pk in candidates:
        if current.get(pk) == wanted.get(pk, (None, "")):
            continue  # already right: no row lock needed
        with transaction.atomic():
            pr = PullRequest.objects.select_for_update().get(pk=pk)
            kept, reason = wanted.get(pk, (None, ""))
            if pr.duplicate_of_id == kept and pr.duplicate_reason == reason:
                continue
            pr.duplicate_of_id, pr.duplicate_reason = kept, reason
            _apply_automatic_inclusion(pr)
            pr.save(update_fields=["duplicate_of", "duplicate_reason", "included", "excluded_reason"])
            changed += 1
    return {"exact": len(exact), "near": len(near), "changed": changed}


# --- curation --------------------------------------------------------------------------------


@transaction.atomic
def curate_pull_requests(
    *, pull_requests, action: str, reason: str = "", user=None, scope: str = ""
) -> CurationEvent | None:
    """Include or exclude many PRs at once as one undoable event (who, when, scope, previous states).

    PRs already in the wanted state are left alone; None (and no event) when that is all of them."""
    if action not in ("include", "exclude"):
        raise ValueError("action must be include or exclude")
    reason = reason.strip()
    if action == "exclude" and not reason:
        raise ValueError("Say why these pull requests are excluded.")
    rows = list(pull_requests.select_for_update().values_list("id", "included", "excluded_reason", "curated_at"))
    if not rows:
        raise ValueError("No pull requests matched.")
    if action == "include":
        rows = [row for row in rows if not row[1]]
    else:
        rows = [row for row in rows if row[1] or row[2] != reason[:500]]
    if not rows:
        return None
    now = timezone.now()
    previous = {
        str(pk): [included, excluded, curated.isoformat() if curated else None]
        for pk, included, excluded, curated in rows
    }
    ids = [row[0] for row in rows]
    if action == "include":
        PullRequest.objects.filter(pk__in=ids).update(included=True, excluded_reason="", curated_at=now)
    else:
        PullRequest.objects.filter(pk__in=ids).update(included=False, excluded_reason=reason[:500], curated_at=now)
    return CurationEvent.objects.create(
        action=action,
        reason=reason[:500],
        scope=scope[:1000],
        previous=previous,
        count=len(ids),
        user=user if user and user.is_authenticated else None,
    )


@transaction.atomic
def undo_curation(*, event: CurationEvent, user=None) -> int:
    """Put back each PR's state from before the event; returns how many PRs changed back."""
    event = CurationEvent.objects.select_for_update().get(pk=event.pk)
    if event.undone_at is not None:
        raise ValueError("This change was already undone.")
    restored = 0
    for pk, state in event.previous.items():
        included, excluded, curated = (list(state) + [None])[:3]
        restored += PullRequest.objects.filter(pk=int(pk)).update(
            included=included,
            excluded_reason=excluded or ("" if included else "excluded"),
            curated_at=datetime.fromisoformat(curated) if curated else None,
        )
    event.undone_at = timezone.now()
    event.undone_by = user if user and user.is_authenticated else None
    event.save(update_fields=["undone_at", "undone_by"])
    return restored


# --- settings --------------------------------------------------------------------------------


@transaction.atomic
def save_github_settings(
    *, api_url: str, token: str | None, clear_token: bool, allowed_licenses: str, go_only: bool
) -> GitHubSettings:
    """Save the fetch settings; a blank token keeps the stored one (it is never shown back)."""
    row = GitHubSettings.load()
    row.api_url = api_url.strip()
    if clear_token:
        row.token = ""
    elif token:
        row.token = token.strip()
    row.allowed_licenses = ",".join(s.strip() for s in allowed_licenses.split(",") if s.strip())
    row.go_only = go_only
    row.save()
    return row


# --- fetch jobs ------------------------------------------------------------------------------


def create_fetch_job(
    *,
    kind: str,
    targets: list[str],
    user=None,
    git_repo_name: str = "",
    api_url: str = "",
    build_sample: bool = False,
    retry_of: FetchJob | None = None,
    enqueue: bool = True,
) -> FetchJob:
    """A queued fetch/import job; queued on the worker once the surrounding transaction commits."""
    job = FetchJob.objects.create(
        kind=kind,
        targets=list(targets),
        git_repo_name=git_repo_name,
        api_url=api_url,
        build_sample=build_sample,
        retry_of=retry_of,
        repos_total=len(targets),
        created_by=user if user and user.is_authenticated else None,
        message="queued",
    )
    if enqueue:
        from hrgc_site.jobs import enqueue as enqueue_task

        transaction.on_commit(lambda: enqueue_task(job, "corpus.tasks.run_fetch_job"))
    return job


def retry_fetch_job(*, job: FetchJob, user=None) -> FetchJob:
    """A new job for the same targets; stored PRs are skipped, so it resumes where the old one stopped."""
    from hrgc_site.jobs import mark_dead

    if job.looks_dead:
        mark_dead(job)  # its worker is gone: the old row says so and its queue entry never runs again
    elif job.is_active:
        raise ValueError(f"fetch job #{job.pk} is {job.status}; cancel it or wait until it ends before retrying")
    return create_fetch_job(
        kind=job.kind,
        targets=job.targets,
        user=user,
        git_repo_name=job.git_repo_name,
        api_url=job.api_url,
        build_sample=job.build_sample,
        retry_of=job,
    )


def cancel_job(*, job) -> None:
    """Ask a running job to stop (it checks between PRs); a queued one stops before it starts."""
    from hrgc_site.models import JobStatus

    model = type(job)
    # Conditional on the row, not on `job`: a worker may have claimed it since the page was read.
    if model.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.STOPPED, cancel_requested=True, finished_at=timezone.now(), message="cancelled"
    ):
        return
    model.objects.filter(pk=job.pk).update(cancel_requested=True)
    model.objects.filter(pk=job.pk, status__in=[JobStatus.RUNNING, JobStatus.WAITING]).update(status=JobStatus.STOPPING)


# --- snapshots -------------------------------------------------------------------------------


def snapshot_dir() -> Path:
    path = Path(settings.DATA_DIR) / "snapshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def create_snapshot(
    *, name: str, description: str = "", filters: dict | None = None, user=None, enqueue: bool = True
) -> Snapshot:
    """A queued snapshot of the included corpus (optionally narrowed by a PR filter)."""
    snapshot = Snapshot(
        name=name.strip(),
        description=description.strip(),
        filter=filters or {},
        created_by=user if user and user.is_authenticated else None,
        message="queued",
    )
    snapshot.full_clean(exclude=["pull_requests"])
    with transaction.atomic():
        snapshot.save()
        if enqueue:
            from hrgc_site.jobs import enqueue as enqueue_task

            transaction.on_commit(lambda: enqueue_task(snapshot, "corpus.tasks.run_snapshot"))
    return snapshot


def write_snapshot(snapshot: Snapshot, *, progress=None) -> tuple[str, str]:
    """Write the JSONL file, hash it and freeze the PR set; the snapshot job's body."""
    from corpus.selectors import (
        filtered_pull_requests,
        pull_request_record,
        serialized_record,
    )
    from hrgc_site.models import JobStatus

    queryset = filtered_pull_requests(snapshot.filter, force_included=True).order_by("repository__full_name", "number")
    ids = list(queryset.values_list("id", flat=True))
    final = snapshot_dir() / f"{snapshot.name}.jsonl"
    partial = final.with_suffix(".jsonl.partial")
    digest = hashlib.sha256()
    chars = no_intent = 0
    repos: set[int] = set()
    with open(partial, "wb") as handle:
        for start in range(0, len(ids), 200):
            batch = (
                PullRequest.objects.filter(pk__in=ids[start : start + 200])
                .select_related("repository")
                .prefetch_related("files", "comments")
                .order_by("repository__full_name", "number")
            )
            for pr in batch:
                record = serialized_record(pull_request_record(pr))
                line = (
                    json.dumps(
                        {
                            "repo": pr.repository.full_name,
                            "number": pr.number,
                            "title": pr.title,
                            "text": record.text,
                            "spans": [[s.section, s.start, s.end] for s in record.spans],
                            "category": pr.category,
                            "intent": pr.intent or None,
                            "syntax_ok": pr.syntax_ok,
                            "license": pr.repository.license_spdx,
                        },
                        ensure_ascii=False,
                    ).encode("utf-8")
                    + b"\n"
                )
                handle.write(line)
                digest.update(line)
                chars += len(record.text)
                no_intent += not pr.intent
                repos.add(pr.repository_id)
            if progress is not None:
                done = min(len(ids), start + 200)
                if progress.update(progress=done / max(1, len(ids)), message=f"{done} of {len(ids)} records"):
                    partial.unlink(missing_ok=True)
                    return JobStatus.STOPPED, "stopped before it was complete; nothing was kept"
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, final)
    with transaction.atomic():
        snapshot.pull_requests.set(ids)
        Snapshot.objects.filter(pk=snapshot.pk).update(
            pr_count=len(ids),
            repo_count=len(repos),
            chars=chars,
            no_intent_count=no_intent,
            file_path=str(final),
            sha256=digest.hexdigest(),
            progress=1.0,
        )
    return JobStatus.FINISHED, f"{len(ids)} records, sha256 {digest.hexdigest()[:12]}…"


def iter_snapshot_records(snapshot: Snapshot) -> Iterator[tuple[str, SerializedRecord]]:
    """(repository full name, serialized record) for each line of a finished snapshot's JSONL file."""
    if not snapshot.file_path:
        raise ValueError(f"snapshot {snapshot.name} has no file yet (status {snapshot.status})")
    with open(snapshot.file_path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            item = json.loads(line)
            spans = [Span(section, start, end) for section, start, end in item["spans"]]
            yield item["repo"], SerializedRecord(text=item["text"], spans=spans)


def snapshot_file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- job bodies (the worker and the commands run the same code) --------------------------------


class _Run:
    """Counters and messages of one fetch/import job, written through the throttled Progress."""

    def __init__(self, job: FetchJob, echo: Callable[[str], None] | None = None):
        from hrgc_site.jobs import Progress

        self.job = job
        self.progress = Progress(job)
        self.echo = echo or (lambda line: None)
        self.errors: dict[str, str] = dict(job.errors or {})
        self.counts = {
            "prs_new": job.prs_new,
            "prs_updated": job.prs_updated,
            "prs_skipped": job.prs_skipped,
            "files": job.files,
            "repos_done": job.repos_done,
        }
        self.repos_failed = 0

    def say(self, message: str, force: bool = False) -> None:
        self.echo(message)
        self.progress.update(force=force, message=message[:2000])

    def error(self, key: str, message: str) -> None:
        self.errors[key] = message[:1000]
        self.echo(f"{key}: {message}")
        self.progress.update(force=True, errors=self.errors)

    def give_up(self, key: str, message: str) -> None:
        """One target (a repository or a clone) failed as a whole: say why and go on to the next."""
        self.error(key, message)
        self.repos_failed += 1
        self.counts["repos_done"] += 1

    def every_target_failed(self, targets: int) -> bool:
        return targets > 0 and self.repos_failed >= targets

    def stored(self, outcome: str, files: int) -> None:
        key = {"new": "prs_new", "updated": "prs_updated"}.get(outcome, "prs_skipped")
        self.counts[key] += 1
        self.counts["files"] += files
        self.update()

    def update(self, force: bool = False, **fields) -> bool:
        total = max(1, self.job.repos_total)
        return self.progress.update(
            force=force, progress=min(1.0, self.counts["repos_done"] / total), **self.counts, **fields
        )

    def summary(self) -> str:
        c = self.counts
        text = (
            f"{c['repos_done']} of {self.job.repos_total} repositories; {c['prs_new']} new PRs, "
            f"{c['prs_updated']} updated, {c['prs_skipped']} skipped; {c['files']} files"
        )
        return text + (f"; {len(self.errors)} errors" if self.errors else "")


def _github_time(value) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment


def _licence_blocked(repository: Repository, allowed: list[str]) -> str:
    from corpus.licenses import license_allowed

    if license_allowed(repository.license_spdx, set(allowed)):
        return ""
    return f"skipped: licence {repository.license_spdx or 'none'} is not allowed"


def _github_failure(exc: Exception, api_url: str) -> str:
    """One line for a failed request: a dropped connection or a server that kept failing names the API asked."""
    from corpus.github.client import RetriesExhausted

    text = " ".join(str(exc).split())
    if isinstance(exc, RetriesExhausted):
        # The last reason ends with the wait before a retry that never came.
        text = re.sub(r": retry \d+/\d+ in [\d.]+ s$", "", text)
        return f"{text} (is {api_url} reachable?)"[:1000]
    return f"{type(exc).__name__}: {text}"[:1000]


def run_github_fetch(
    job: FetchJob, *, token: str | None = None, echo: Callable[[str], None] | None = None, client=None
) -> tuple[str, str]:
    """Fetch the job's repositories from the GitHub API; returns (status, message) for run_job."""
    import threading

    from django.db import connection

    from corpus.github.client import GitHubClient, GitHubError, NotFound, TokenRejected
    from corpus.github.fetch import (
        fetch_pull_requests,
        fetch_repository,
        list_merged_pulls,
    )
    from hrgc_site.models import JobStatus

    config = GitHubSettings.load()
    run = _Run(job, echo)
    main_thread = threading.current_thread()

    def on_wait(seconds: float, reason: str) -> None:
        until = timezone.now() + timedelta(seconds=seconds)
        FetchJob.objects.filter(pk=job.pk).update(
            status=JobStatus.WAITING, waiting_until=until, message=reason[:2000], heartbeat_at=timezone.now()
        )
        run.echo(reason)
        if threading.current_thread() is not main_thread:
            connection.close()  # the pool's threads must not keep database connections open

    if client is None:
        client = GitHubClient(
            job.api_url or config.effective_api_url, token or config.effective_token or None, on_wait=on_wait
        )
    allowed = config.allowed_license_list

    def counters(**fields) -> bool:
        remaining = client.rate_limit_remaining
        reset = client.rate_limit_reset
        waiting = {}
        if FetchJob.objects.filter(pk=job.pk, status=JobStatus.WAITING).exists():
            waiting = {"status": JobStatus.RUNNING, "waiting_until": None}
        return run.update(
            api_requests=client.requests_made,
            rate_limit_remaining=remaining,
            rate_limit_reset=datetime.fromtimestamp(reset, tz=UTC) if reset else None,
            **waiting,
            **fields,
        )

    def give_up_on(repository: Repository, message: str) -> None:
        """This repository failed (its reason is kept on it and on the job); the job goes on with the next."""
        set_repository_state(repository=repository, state=Repository.State.ERROR, message=message)
        run.give_up(repository.full_name, message)
        counters(force=True)

    try:
        for target in job.targets:
            if run.progress.should_stop():
                return JobStatus.STOPPED, "stopped by user; " + run.summary()
            try:
                name = validate_repository_name(target)
            except Exception as exc:  # noqa: BLE001 - ValueError or ValidationError: a bad name, said clearly
                run.give_up(target, str(getattr(exc, "message", exc)))
                continue
            run.say(f"{name}: reading the repository", force=True)
            try:
                repo_record = fetch_repository(client, name)
            except NotFound:
                repository = add_repositories(names=[name])[0]
                set_repository_state(
                    repository=repository, state=Repository.State.MISSING, message="not found on GitHub (404)"
                )
                run.give_up(name, "not found (404): the repository does not exist or the token cannot see it")
                counters(force=True)
                continue
            except TokenRejected:
                raise
            except GitHubError as exc:  # the API unreachable, or still failing after the retries
                give_up_on(add_repositories(names=[name])[0], _github_failure(exc, client.base_url))
                continue
            repository = upsert_repository(record=repo_record, full_name=name)
            blocked = _licence_blocked(repository, allowed)
            if blocked:
                set_repository_state(repository=repository, state=Repository.State.LICENSE, message=blocked)
                run.give_up(name, blocked)
                continue
            listed_at = timezone.now()
            try:
                summaries, etag = list_merged_pulls(
                    client, name, updated_since=repository.pulls_updated_since, etag=repository.pulls_etag or None
                )
            except TokenRejected:
                raise
            except GitHubError as exc:
                give_up_on(repository, _github_failure(exc, client.base_url))
                continue
            known = dict(repository.pull_requests.values_list("number", "source_updated_at"))
            todo = []
            for summary in summaries:
                stored = known.get(summary["number"])
                if stored is not None and stored == _github_time(summary.get("updated_at")):
                    run.counts["prs_skipped"] += 1  # already stored at this version (a retried job resumes here)
                else:
                    todo.append(summary)
            run.say(f"{name}: {len(summaries)} merged PRs listed, {len(todo)} to fetch", force=True)
            failed: list[str] = []

            def on_result(record, summary, repository=repository):
                if record is None:
                    run.counts["prs_skipped"] += 1
                    counters()
                    return
                outcome = store_pull_request(
                    repository=repository,
                    record=record,
                    fetch_job=job,
                    source_updated_at=_github_time(summary.get("updated_at")),
                )
                run.stored(outcome, len(record.files))
                counters()

            def on_error(summary, exc, name=name, failed=failed):
                failed.append(str(summary.get("number")))
                run.error(f"{name}#{summary.get('number')}", _github_failure(exc, client.base_url))
                counters()

            try:
                outcome = fetch_pull_requests(
                    client,
                    name,
                    todo,
                    on_result=on_result,
                    on_error=on_error,
                    concurrency=config.concurrency,
                    should_stop=run.progress.should_stop,
                    go_only=config.go_only,
                    max_file_bytes=config.max_file_bytes,
                    max_patch_bytes=config.max_file_bytes,
                )
            except TokenRejected:
                raise
            except GitHubError as exc:
                give_up_on(repository, _github_failure(exc, client.base_url))
                continue
            if outcome.stopped:
                return JobStatus.STOPPED, "stopped by user; " + run.summary()
            complete = not failed
            if todo and len(failed) == len(todo):
                run.repos_failed += 1  # not one of its PRs came: the repository failed (each PR's error is listed)
            Repository.objects.filter(pk=repository.pk).update(
                state=Repository.State.OK if complete else Repository.State.ERROR,
                state_message="" if complete else f"{len(failed)} PRs failed: #{', #'.join(failed[:20])}",
                last_fetched_at=timezone.now(),
                # Only a complete pass moves the incremental mark: a failed PR is asked for again next time.
                **(
                    {"pulls_updated_since": listed_at - timedelta(minutes=5), "pulls_etag": etag or ""}
                    if complete
                    else {}
                ),
            )
            run.counts["repos_done"] += 1
            counters(force=True)
    except TokenRejected:
        counters(force=True)
        return JobStatus.FAILED, "token rejected: set a valid token on the corpus settings form or GITHUB_TOKEN"
    finally:
        client.close()
    counters(force=True)
    if run.every_target_failed(len(job.targets)):
        return JobStatus.FAILED, "every repository failed (see the errors); " + run.summary()
    dedupe_corpus()
    return JobStatus.FINISHED, run.summary()


def run_git_import(job: FetchJob, *, echo: Callable[[str], None] | None = None) -> tuple[str, str]:
    """Import merged PRs from local clones (the job's targets); the sample job builds its clones first."""
    from corpus.gitimport import GitImportError, iter_pull_requests, read_repository
    from hrgc_site.models import JobStatus

    config = GitHubSettings.load()
    run = _Run(job, echo)
    targets = list(job.targets)
    discussion: dict[tuple[str, int], PRRecord] = {}
    if job.build_sample:
        from corpus.sample.build_git import build_sample_repos
        from corpus.sample.story import sample_story

        run.say("building the sample git repositories", force=True)
        targets = [str(p) for p in build_sample_repos(Path(settings.DATA_DIR) / "sample-repos")]
        FetchJob.objects.filter(pk=job.pk).update(targets=targets, repos_total=len(targets))
        job.targets, job.repos_total = targets, len(targets)
        # Git holds no discussion: the sample's labels, reviews and comments come from its story, the same
        # data the GitHub-shaped server serves, matched by repository and PR number.
        discussion = {(repo.full_name, pull.number): pull for repo, pulls in sample_story() for pull in pulls}
    for target in targets:
        if run.progress.should_stop():
            return JobStatus.STOPPED, "stopped by user; " + run.summary()
        try:
            name_override = job.git_repo_name or None
            if name_override:
                name_override = validate_repository_name(name_override)
            repo_record = read_repository(Path(target), name_override)
            full_name = validate_repository_name(repo_record.full_name)
        except (GitImportError, ValueError, OSError) as exc:
            run.give_up(target, str(exc))
            continue
        except Exception as exc:  # noqa: BLE001 - a ValidationError from the name check
            run.give_up(target, str(getattr(exc, "message", exc)))
            continue
        repository = upsert_repository(record=repo_record, full_name=full_name, source=Source.GIT)
        blocked = _licence_blocked(repository, config.allowed_license_list)
        if blocked:
            set_repository_state(repository=repository, state=Repository.State.LICENSE, message=blocked)
            run.give_up(full_name, blocked)
            continue
        run.say(f"{full_name}: reading merged pull requests from {target}", force=True)
        # The sample is small enough to read again whole, so PRs stored before it carried discussion get it.
        known = set() if job.build_sample else set(repository.pull_requests.values_list("number", flat=True))
        run.counts["prs_skipped"] += len(known)
        try:
            for record in iter_pull_requests(
                Path(target),
                full_name,
                known_numbers=known,
                go_only=config.go_only,
                max_file_bytes=config.max_file_bytes,
                max_patch_bytes=config.max_file_bytes,
            ):
                story = discussion.get((full_name, record.number))
                if story is not None:
                    record = dataclasses.replace(record, labels=list(story.labels), comments=list(story.comments))
                outcome = store_pull_request(repository=repository, record=record, fetch_job=job)
                run.stored(outcome, len(record.files))
                if run.progress.cancel_requested:
                    return JobStatus.STOPPED, "stopped by user; " + run.summary()
        except GitImportError as exc:
            set_repository_state(repository=repository, state=Repository.State.ERROR, message=str(exc))
            run.give_up(full_name, str(exc))
            continue
        Repository.objects.filter(pk=repository.pk).update(
            state=Repository.State.OK, state_message="", last_fetched_at=timezone.now()
        )
        run.counts["repos_done"] += 1
        run.update(force=True)
    if run.every_target_failed(len(targets)):
        run.update(force=True)
        return JobStatus.FAILED, "every repository failed (see the errors); " + run.summary()
    run.say("looking for duplicates", force=True)
    dedupe_corpus()
    run.update(force=True)
    return JobStatus.FINISHED, run.summary()


def run_fetch(job: FetchJob, **options) -> tuple[str, str]:
    return run_git_import(job, **options) if job.kind == Source.GIT else run_github_fetch(job, **options)
