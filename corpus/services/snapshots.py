"""Snapshots: a frozen, hashed JSONL file of the included corpus, the input of tokenizers and datasets."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from corpus.models import PullRequest, Snapshot
from corpus.records import SerializedRecord, Span
from corpus.selectors import filtered_pull_requests, stored_plan_and_parts
from corpus.serialize import FORMAT_VERSION, snapshot_line
from hrgc_site.errors import Invalid
from hrgc_site.jobs import enqueue_on_commit
from hrgc_site.models import JobStatus


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
    try:
        snapshot.full_clean(exclude=["pull_requests"])
    except ValidationError as error:
        raise Invalid(error) from error
    with transaction.atomic():
        snapshot.save()
        if enqueue:
            enqueue_on_commit(snapshot, "corpus.tasks.run_snapshot")
    return snapshot


def write_snapshot(snapshot: Snapshot, *, progress=None) -> tuple[str, str]:
    """Write the JSONL file, hash it and freeze the PR set; the snapshot job's body."""
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
                .select_related("repository", "duplicate_of__repository")
                .prefetch_related("files", "comments")
                .order_by("repository__full_name", "number")
            )
            for pr in batch:
                _, parts = stored_plan_and_parts(pr)
                kept = pr.duplicate_of
                item = snapshot_line(
                    repo=pr.repository.full_name,
                    number=pr.number,
                    title=pr.title,
                    parts=parts,
                    merged_at=pr.merged_at.isoformat() if pr.merged_at else "",
                    duplicate_of=f"{kept.repository.full_name}#{kept.number}" if kept else "",
                    category=pr.category,
                    intent=pr.intent or None,
                    syntax_ok=pr.syntax_ok,
                    license=pr.repository.license_spdx,
                )
                line = json.dumps(item, ensure_ascii=False).encode("utf-8") + b"\n"
                handle.write(line)
                digest.update(line)
                chars += len(item["text"])
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
            record_format=FORMAT_VERSION,
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
