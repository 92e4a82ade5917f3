"""Frozen snapshots keep their pull requests: deleting a PR (or the repository it belongs to) that a
snapshot lists is refused, so a snapshot's page always agrees with its counts and its file."""

from __future__ import annotations

from django.db.models import ProtectedError
from django.db.models.signals import pre_delete


def snapshots_listing(pull_requests) -> list:
    """The snapshots that list any of these pull requests (a queryset or a list of ids)."""
    from corpus.models import Snapshot

    return list(Snapshot.objects.filter(pull_requests__in=pull_requests).distinct().order_by("name"))


def refusal(snapshots: list, what: str) -> str:
    names = ", ".join(snapshot.name for snapshot in snapshots[:5]) + (" …" if len(snapshots) > 5 else "")
    return (
        f"{what} cannot be deleted: frozen snapshot{'s' if len(snapshots) != 1 else ''} {names} "
        "list its pull requests. Delete those snapshots first (and what was built from them), or exclude "
        "the pull requests instead."
    )


def _keep_listed_pull_requests(sender, instance, **kwargs) -> None:
    snapshots = snapshots_listing([instance.pk])
    if snapshots:
        raise ProtectedError(refusal(snapshots, f"Pull request {instance}"), set(snapshots))


def connect() -> None:
    from corpus.models import PullRequest

    pre_delete.connect(_keep_listed_pull_requests, sender=PullRequest, dispatch_uid="corpus-keep-listed-prs")
