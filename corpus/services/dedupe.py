"""Duplicates: exact (content hash) and near (MinHash) copies of one change, flagged and left out."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from django.db import connection, transaction

from corpus import quality
from corpus.models import PullRequest
from corpus.records import PRRecord
from corpus.selectors import stored_plan_and_parts
from corpus.serialize import FORMAT_VERSION, build_parts, change_text, near_duplicate_text
from corpus.services.curation import apply_automatic_inclusion


def dedupe_text(record: PRRecord) -> str:
    """The part of a PR that two copies of one change share: the lines its changed declarations add or remove
    (not whole files, nor whole declarations: PRs editing different lines of one function differ)."""
    return near_duplicate_text(build_parts(record))


def _stored_dedupe_text(pr: PullRequest) -> str:
    """dedupe_text of the PR as stored (its stored record parts): what dedupe_corpus compares."""
    return near_duplicate_text(stored_plan_and_parts(pr)[1])


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


def update_minhash_signature(pr: PullRequest) -> None:
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
            apply_automatic_inclusion(pr)
            pr.save(update_fields=["duplicate_of", "duplicate_reason", "included", "excluded_reason"])
            changed += 1
    return {"exact": len(exact), "near": len(near), "changed": changed}


def rejudge_duplicates(*, report: Callable[[str], None] | None = None) -> dict[str, int]:
    """Judge every stored PR again on its change: refresh its stored plan and record parts where they
    are from an older format, its exact-duplicate hash and MinHash signature where the change text
    differs from what they were made of, then flag duplicates anew. PRs the old whole-file rule
    excluded come back unless a person excluded them (curated PRs keep their state)."""
    say = report or (lambda message: None)
    was_out = set(
        PullRequest.objects.filter(included=False, curated_at__isnull=True)
        .exclude(duplicate_reason="")
        .values_list("id", flat=True)
    )
    ids = list(PullRequest.objects.order_by("id").values_list("id", flat=True))
    refreshed = flagged = 0
    for start in range(0, len(ids), 200):
        batch = (
            PullRequest.objects.filter(pk__in=ids[start : start + 200])
            .select_related("repository")
            .prefetch_related("files", "comments")
        )
        for pr in batch:
            stale = pr.record_format != FORMAT_VERSION
            _, parts = stored_plan_and_parts(pr)  # computes and stores the plan and parts of a stale row
            text, code = near_duplicate_text(parts), change_text(parts, with_title=False)
            digest, exact = quality.content_hash(text), quality.content_hash(code) if code else ""
            if stale or pr.minhash_text_hash != digest or pr.content_hash != exact:
                PullRequest.objects.filter(pk=pr.pk).update(
                    content_hash=exact,
                    minhash_signature=_pack_signature(quality.minhash_signature(text)),
                    minhash_text_hash=digest,
                )
                refreshed += 1
            flags = quality.with_declaration_flag(pr.quality_flags, code)
            if flags != pr.quality_flags:  # rows stored before the "no declaration changed" rule
                pr.quality_flags = flags
                apply_automatic_inclusion(pr)
                pr.save(update_fields=["quality_flags", "included", "excluded_reason"])
                flagged += 1
        say(f"{min(len(ids), start + 200):,} of {len(ids):,} pull requests judged on their change")
    counts = dedupe_corpus()
    back = PullRequest.objects.filter(pk__in=was_out, included=True).count()
    say(f"{counts['exact']} exact and {counts['near']} near duplicates; {back} pull requests came back")
    return {**counts, "refreshed": refreshed, "came_back": back, "no_declaration": flagged}
