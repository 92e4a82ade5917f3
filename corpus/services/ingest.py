"""Ingest: store a fetched pull request with its files and comments, and the fields derived from it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from corpus import categories, quality
from corpus.models import Comment, FetchJob, FileChange, PullRequest, Repository
from corpus.records import PRRecord
from corpus.search import pull_request_vector
from corpus.serialize import FORMAT_VERSION, change_text, code_files, derive, render
from corpus.services.curation import apply_automatic_inclusion
from corpus.services.dedupe import update_minhash_signature

_SURROGATES = re.compile("[\ud800-\udfff]")


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


def clean_json(value):
    """`value` with every string made storable (jsonb refuses NUL characters like text columns do)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [clean_json(item) for item in value]
    if isinstance(value, dict):
        return {key: clean_json(item) for key, item in value.items()}
    return value


def _record_hash(record: PRRecord) -> str:
    def default(value):
        return value.isoformat() if isinstance(value, datetime) else str(value)

    payload = json.dumps(dataclasses.asdict(record), sort_keys=True, default=default)
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


def _comment_id(comment) -> str:
    if comment.external_id:
        return str(comment.external_id)[:100]
    stamp = comment.created_at.isoformat() if comment.created_at else ""
    key = f"{comment.kind}|{comment.author}|{stamp}|{comment.path}|{comment.line}|{comment.body}"
    return "h" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:40]


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


def _update_search_vector(pr: PullRequest, record: PRRecord) -> None:
    vector = pull_request_vector(
        title=clean_text(pr.title) or "",
        body=clean_text(pr.body) or "",
        paths=[f.path for f in record.files],
        comments="\n".join(clean_text(c.body) or "" for c in record.comments),
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
    plan, parts = derive(record)  # parsed once here and stored: pages and snapshots read what is stored
    serialized = render(parts)
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
    code = change_text(parts, with_title=False)  # the same change under another title is an exact duplicate
    # Go files changed but no declaration did (functions moved, whitespace): the record's CODE is empty.
    pr.quality_flags = quality.with_declaration_flag(pr.quality_flags, code)
    pr.content_hash = quality.content_hash(code) if code else ""
    pr.serialized_chars = len(serialized.text)
    pr.plan, pr.record_parts = clean_json(plan.to_json()), clean_json(parts.to_json())
    pr.record_format = FORMAT_VERSION
    pr.additions = sum(max(0, f.additions) for f in record.files)
    pr.deletions = sum(max(0, f.deletions) for f in record.files)
    pr.file_count, pr.comment_count = len(record.files), len(record.comments)
    pr.source_url = record.source_url[:500]
    pr.fetched_at = timezone.now()
    pr.fetch_job = fetch_job
    pr.source_hash = record_hash
    pr.source_updated_at = source_updated_at or pr.source_updated_at
    apply_automatic_inclusion(pr)
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
    update_minhash_signature(pr)
    return outcome
