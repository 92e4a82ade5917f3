"""Curation: which pull requests and repositories are in the training set, by rule or by a person's choice."""

from __future__ import annotations

import re
from datetime import datetime
from typing import NamedTuple

from django.db import transaction
from django.utils import timezone

from corpus.models import CurationEvent, PullRequest, Repository
from hrgc_site.errors import ActionRefused

# Quality flags that keep a PR out of the training set until a person says otherwise.
BLOCKING_FLAGS = (
    "empty title",
    "no Go changes",
    "only vendored files",
    "only generated files",
    "very large change",
    "no declaration changed",
)


def automatic_reason(pr: PullRequest) -> str:
    """Why the automatic rules leave this PR out ('' when they keep it)."""
    if pr.duplicate_reason:
        return pr.duplicate_reason
    blocking = [flag for flag in pr.quality_flags if flag.startswith(BLOCKING_FLAGS)]
    return f"quality: {blocking[0]}" if blocking else ""


def apply_automatic_inclusion(pr: PullRequest) -> None:
    """Quality and duplicate rules decide inclusion until a person has curated the PR."""
    if pr.curated_at is not None:
        return
    reason = automatic_reason(pr)
    pr.included = not reason
    pr.excluded_reason = reason[:500]


@transaction.atomic
def set_repository_included(*, repository: Repository, included: bool, reason: str = "") -> Repository:
    """Include or exclude a whole repository; its PRs keep their own choice for when it comes back."""
    if not included and not reason.strip():
        raise ActionRefused("Say why the repository is excluded.")
    repository.included = included
    repository.excluded_reason = "" if included else reason.strip()[:300]
    repository.save(update_fields=["included", "excluded_reason"])
    return repository


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
        raise ActionRefused("Say why these pull requests are excluded.")
    rows = list(pull_requests.select_for_update().values_list("id", "included", "excluded_reason", "curated_at"))
    if not rows:
        raise ActionRefused("No pull requests matched.")
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
        created_at=now,  # the PRs' curated_at: undo tells this event's decisions from later ones by it
        action=action,
        reason=reason[:500],
        scope=scope[:1000],
        previous=previous,
        count=len(ids),
        user=user if user and user.is_authenticated else None,
    )


# Curation events the rules wrote (no user): their scope starts with this.
AUTOMATIC_SCOPE = "automatic rules"


@transaction.atomic
def record_automatic_exclusions(*, fetch_job) -> CurationEvent | None:
    """One history entry for the pull requests a fetch or import left out by the quality and duplicate rules.

    Only PRs no person has curated, stored or updated by this job; None when there are none. Undoing it
    includes them as a person's decision (curated), so the rules do not take them out again."""
    from collections import Counter

    rows = list(
        PullRequest.objects.filter(fetch_job=fetch_job, included=False, curated_at__isnull=True)
        .exclude(excluded_reason="")
        .values_list("id", "excluded_reason")
    )
    if not rows:
        return None
    # "quality: no Go changes ×3; near duplicate of acme/web#2" — near-duplicate reasons name their PR: group them.
    kinds = Counter(re.sub(r" of \S+#\d+$", "", reason) for _, reason in rows)
    summary = "; ".join(f"{kind} ×{count}" if count > 1 else kind for kind, count in kinds.most_common())
    return CurationEvent.objects.create(
        action="exclude",
        reason=summary[:500],
        scope=f"{AUTOMATIC_SCOPE}, fetch job #{fetch_job.pk}"[:1000],
        previous={str(pk): [True, "", None] for pk, _ in rows},
        count=len(rows),
        user=None,
    )


class UndoResult(NamedTuple):
    restored: int  # PRs put back to their state from before the event
    skipped: int  # PRs a later decision changed since: left as that decision made them


@transaction.atomic
def undo_curation(*, event: CurationEvent, user=None) -> UndoResult:
    """Put back each PR's state from before the event, except PRs curated again after it: undoing an old
    event never overwrites a later decision (undo the later one first, or curate those PRs again).

    Refused (ValueError) when every PR of the event has a later decision: there is nothing left to undo."""
    event = CurationEvent.objects.select_for_update().get(pk=event.pk)
    if event.undone_at is not None:
        raise ActionRefused("This change was already undone.")
    ids = [int(pk) for pk in event.previous]
    rows = PullRequest.objects.select_for_update().filter(pk__in=ids)
    # The event stamped its PRs with its own time; a later decision stamped them later.
    later = set(rows.filter(curated_at__gt=event.created_at).values_list("pk", flat=True))
    if ids and len(later) == len(ids):
        raise ActionRefused(
            f"Nothing undone: all {_count(len(ids), 'pull request')} of this change were curated again since. "
            "Undo those later changes first, or curate the pull requests directly."
        )
    restored = 0
    now = timezone.now()
    # Undoing what the rules did is a person's decision: curated, so the next fetch's rules leave it alone.
    automatic = event.user_id is None and event.scope.startswith(AUTOMATIC_SCOPE)
    for pk, state in event.previous.items():
        if int(pk) in later:
            continue
        included, excluded, curated = (list(state) + [None])[:3]
        restored += PullRequest.objects.filter(pk=int(pk)).update(
            included=included,
            excluded_reason=excluded or ("" if included else "excluded"),
            curated_at=now if automatic else (datetime.fromisoformat(curated) if curated else None),
        )
    event.undone_at = timezone.now()
    event.undone_by = user if user and user.is_authenticated else None
    event.save(update_fields=["undone_at", "undone_by"])
    return UndoResult(restored, len(later))


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
